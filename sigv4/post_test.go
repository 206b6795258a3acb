package sigv4

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// postFormV4 is a form signed by minio-go's POST policy signer, an
// implementation independent of this package's.
func postFormV4(t time.Time, ak, secret, policy string) PostForm {
	b64 := base64.StdEncoding.EncodeToString([]byte(policy))
	return PostForm{
		"policy":           b64,
		"x-amz-algorithm":  algorithm,
		"x-amz-credential": ak + "/" + t.Format(scopeDateLayout) + "/" + testRegion + "/s3/aws4_request",
		"x-amz-date":       t.Format(iso8601Basic),
		"x-amz-signature":  signer.PostPresignSignatureV4(b64, t, secret, testRegion),
	}
}

func TestVerifyPost(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	policy := `{"expiration":"2026-12-01T11:00:00Z","conditions":[{"bucket":"b"}]}`
	b64 := base64.StdEncoding.EncodeToString([]byte(policy))
	tests := []struct {
		name  string
		sigV2 bool
		form  func() PostForm
		code  string
	}{
		{"v4", false, func() PostForm { return postFormV4(now, testAK, testSecret, policy) }, ""},
		{"v4 uppercase hex", false, func() PostForm {
			f := postFormV4(now, testAK, testSecret, policy)
			f["x-amz-signature"] = upper(f["x-amz-signature"])
			return f
		}, ""},
		{"v4 policy tampered", false, func() PostForm {
			f := postFormV4(now, testAK, testSecret, policy)
			f["policy"] = base64.StdEncoding.EncodeToString([]byte(policy + " "))
			return f
		}, CodeSignatureDoesNotMatch},
		{"v4 wrong secret", false, func() PostForm { return postFormV4(now, testAK, "other", policy) }, CodeSignatureDoesNotMatch},
		{"v4 unknown key", false, func() PostForm { return postFormV4(now, "NOPE", testSecret, policy) }, CodeInvalidAccessKeyID},
		{"v4 date not the scope's", false, func() PostForm {
			f := postFormV4(now, testAK, testSecret, policy)
			f["x-amz-date"] = now.AddDate(0, 0, 1).Format(iso8601Basic)
			return f
		}, CodeInvalidArgument},
		{"v4 wrong algorithm", false, func() PostForm {
			f := postFormV4(now, testAK, testSecret, policy)
			f["x-amz-algorithm"] = "AWS4-ECDSA-P256-SHA256"
			return f
		}, CodeInvalidArgument},
		{"v4 no policy", false, func() PostForm {
			f := postFormV4(now, testAK, testSecret, policy)
			delete(f, "policy")
			return f
		}, CodeInvalidArgument},
		{"v4 no credential", false, func() PostForm {
			f := postFormV4(now, testAK, testSecret, policy)
			delete(f, "x-amz-credential")
			return f
		}, CodeInvalidArgument},
		{"session token", false, func() PostForm {
			f := postFormV4(now, testAK, testSecret, policy)
			f["x-amz-security-token"] = "t"
			return f
		}, CodeInvalidToken},
		{"anonymous", false, func() PostForm { return PostForm{"policy": b64} }, CodeAccessDenied},
		{"v2", true, func() PostForm {
			return PostForm{"awsaccesskeyid": testAK, "policy": b64, "signature": signer.PostPresignSignatureV2(b64, testSecret)}
		}, ""},
		{"v2 off", false, func() PostForm {
			return PostForm{"awsaccesskeyid": testAK, "policy": b64, "signature": signer.PostPresignSignatureV2(b64, testSecret)}
		}, CodeInvalidRequest},
		{"v2 tampered", true, func() PostForm {
			return PostForm{"awsaccesskeyid": testAK, "policy": b64 + "AA", "signature": signer.PostPresignSignatureV2(b64, testSecret)}
		}, CodeSignatureDoesNotMatch},
		{"both versions", true, func() PostForm {
			f := postFormV4(now, testAK, testSecret, policy)
			f["signature"] = "x"
			return f
		}, CodeInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := testVerifier()
			v.SigV2 = tc.sigV2
			v.Now = func() time.Time { return now }
			req, err := v.VerifyPost(tc.form())
			if tc.code == "" {
				if err != nil {
					t.Fatalf("VerifyPost: %v", err)
				}
				if req.AccessKey != testAK || req.Body != nil {
					t.Fatalf("request %+v", req)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Code != tc.code {
				t.Fatalf("error %v, want code %s", err, tc.code)
			}
		})
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
