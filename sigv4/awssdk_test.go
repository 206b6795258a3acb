package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// awsSign signs req with aws-sdk-go-v2's SigV4 signer configured as the S3
// client configures it (no double path escaping), after setting
// x-amz-content-sha256 as the S3 client's middleware does.
func awsSign(t *testing.T, req *http.Request, payloadHash, ak, secret, region string, at time.Time) {
	t.Helper()
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: secret},
		req, payloadHash, "s3", region, at)
	if err != nil {
		t.Fatal(err)
	}
}

func awsPresign(t *testing.T, method string, u *url.URL, expires int, region string, at time.Time) *http.Request {
	t.Helper()
	q := u.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(expires))
	u.RawQuery = q.Encode()
	req := mustNewRequest(t, method, u, nil)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	signed, hdr, err := s.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSecret},
		req, unsignedPayload, "s3", region, at)
	if err != nil {
		t.Fatal(err)
	}
	pu, err := url.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	out := mustNewRequest(t, method, pu, nil)
	for k, v := range hdr {
		if k != "Host" {
			out.Header[k] = v
		}
	}
	out.Host = req.Host
	return out
}

func TestAWSSDKHeaderAuth(t *testing.T) {
	body := payload(3000)
	keys := []string{
		"plain.txt", "dir/sub/file", "with space", "ünïcødé/日本", "a+b", "a=b&c", "percent%2Fslash",
		"tilde~x", "x!'()*", "sp  two", "semi;colon:@$,",
	}
	for _, key := range keys {
		for _, vhost := range []bool{false, true} {
			t.Run(key+"/vhost="+strconv.FormatBool(vhost), func(t *testing.T) {
				u := objectURL("s3.example.com", "/bucket/", key, "")
				host := ""
				if vhost {
					u = objectURL("bucket.s3.example.com:9000", "/", key, "")
					host = "bucket.s3.example.com:9000"
				}
				req := mustNewRequest(t, http.MethodPut, u, body)
				req.Host = host
				req.Header.Set("X-Amz-Meta-Note", "  spaced   value ")
				req.Header.Set("Content-Type", "application/octet-stream")
				awsSign(t, req, hexSHA256(body), testAK, testSecret, testRegion, time.Now())
				res := roundTrip(t, testVerifier(), req)
				if res.status != 200 || !bytes.Equal(res.body, body) {
					t.Fatalf("status %d code %q, body ok=%v", res.status, res.code, bytes.Equal(res.body, body))
				}
				if res.req.Payload != PayloadSignedSHA256 || res.req.AccessKey != testAK || res.req.ContentLength != int64(len(body)) {
					t.Fatalf("request = %+v", res.req)
				}
			})
		}
	}
}

func TestAWSSDKEncodedSlash(t *testing.T) {
	// A client that encodes '/' inside a segment signs %2F; it must not be
	// confused with a separator.
	u := &url.URL{Scheme: "http", Host: "s3.example.com", Path: "/bucket/a/b", RawPath: "/bucket/a%2Fb"}
	req := mustNewRequest(t, http.MethodGet, u, nil)
	awsSign(t, req, emptySHA256Hex, testAK, testSecret, testRegion, time.Now())
	if res := roundTrip(t, testVerifier(), req); res.status != 200 {
		t.Fatalf("status %d code %q", res.status, res.code)
	}
}

func TestAWSSDKQueries(t *testing.T) {
	queries := []string{
		"list-type=2&prefix=a%2Fb&delimiter=%2F",
		"uploads",
		"acl=&versionId=",
		"tag=b&tag=a&tag=",
		"prefix=with%20space&start-after=%C3%BC",
		"x=a%2Bb",
		"x=a+b",
		"k~=v~&k.=v.&k_=v_",
	}
	for _, q := range queries {
		t.Run(q, func(t *testing.T) {
			req := mustNewRequest(t, http.MethodGet, objectURL("s3.example.com", "/bucket", "", q), nil)
			awsSign(t, req, emptySHA256Hex, testAK, testSecret, testRegion, time.Now())
			if res := roundTrip(t, testVerifier(), req); res.status != 200 {
				t.Fatalf("status %d code %q", res.status, res.code)
			}
		})
	}
}

func TestAWSSDKPresign(t *testing.T) {
	for _, key := range []string{"obj", "with space/ü+=~"} {
		req := awsPresign(t, http.MethodGet, objectURL("s3.example.com", "/bucket/", key, "response-content-type=text%2Fplain"), 3600, testRegion, time.Now())
		res := roundTrip(t, testVerifier(), req)
		if res.status != 200 || !res.req.Presigned || res.req.Payload != PayloadUnsigned {
			t.Fatalf("%q: status %d code %q", key, res.status, res.code)
		}
	}
	// A presigned PUT carries an unsigned body.
	body := payload(100)
	req := awsPresign(t, http.MethodPut, objectURL("s3.example.com", "/bucket/", "put", ""), 60, testRegion, time.Now())
	req.Body, req.ContentLength = readCloser(body), int64(len(body))
	res := roundTrip(t, testVerifier(), req)
	if res.status != 200 || !bytes.Equal(res.body, body) {
		t.Fatalf("presigned PUT: status %d code %q", res.status, res.code)
	}
}

func TestAWSSDKUnsignedTrailer(t *testing.T) {
	body := payload(150 << 10)
	mk := func(t *testing.T, decoded int, trailer string) *http.Request {
		enc := unsignedChunked(body, 64<<10, trailer)
		req := mustNewRequest(t, http.MethodPut, objectURL("s3.example.com", "/bucket/", "trailer", ""), enc)
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		req.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "CRC32")
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(decoded))
		awsSign(t, req, streamingUnsignedTrailer, testAK, testSecret, testRegion, time.Now())
		return req
	}
	good := "x-amz-checksum-crc32:" + crc32b64(body)
	res := roundTrip(t, testVerifier(), mk(t, len(body), good))
	if res.status != 200 || !bytes.Equal(res.body, body) || res.checksum != crc32b64(body) || res.req.Checksum != "CRC32" {
		t.Fatalf("status %d code %q checksum %q", res.status, res.code, res.checksum)
	}
	cases := []struct {
		name    string
		decoded int
		trailer string
		code    string
	}{
		{"wrong checksum", len(body), "x-amz-checksum-crc32:AAAAAA==", CodeBadDigest},
		{"invalid checksum", len(body), "x-amz-checksum-crc32:!!", CodeInvalidRequest},
		{"missing trailer", len(body), "", CodeIncompleteBody},
		{"other trailer", len(body), "x-amz-checksum-sha1:" + crc32b64(body), CodeInvalidRequest},
		{"decoded length too long", len(body) + 1, good, CodeIncompleteBody},
		{"decoded length too short", len(body) - 1, good, CodeInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := roundTrip(t, testVerifier(), mk(t, c.decoded, c.trailer))
			if res.code != c.code || res.status != 400 {
				t.Fatalf("got %d %q, want 400 %q", res.status, res.code, c.code)
			}
		})
	}
}

func TestAWSSDKFailures(t *testing.T) {
	body := payload(1000)
	now := time.Now()
	md5sum := md5.Sum(body)
	cases := []struct {
		name   string
		v      func(*Verifier)
		sign   func(t *testing.T) *http.Request
		status int
		code   string
	}{
		{"wrong secret", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, "not-the-secret", testRegion, now)
			return r
		}, 403, CodeSignatureDoesNotMatch},
		{"unknown key", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), "AKIDUNKNOWN", testSecret, testRegion, now)
			return r
		}, 403, CodeInvalidAccessKeyID},
		{"wrong region", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, "eu-west-1", now)
			return r
		}, 400, CodeAuthorizationHeaderMalformed},
		{"any region accepted", func(v *Verifier) { v.Region = "" }, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, "eu-west-1", now)
			return r
		}, 200, ""},
		{"skew past", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now.Add(-16*time.Minute))
			return r
		}, 403, CodeRequestTimeTooSkewed},
		{"skew future", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now.Add(16*time.Minute))
			return r
		}, 403, CodeRequestTimeTooSkewed},
		{"skew within", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now.Add(-14*time.Minute))
			return r
		}, 200, ""},
		{"tampered header", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.Header.Set("X-Amz-Meta-Note", "a")
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now)
			r.Header.Set("X-Amz-Meta-Note", "b")
			return r
		}, 403, CodeSignatureDoesNotMatch},
		{"unsigned x-amz header", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now)
			r.Header.Set("X-Amz-Acl", "public-read")
			return r
		}, 403, CodeAccessDenied},
		{"tampered query", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.URL.RawQuery = "partNumber=1&uploadId=x"
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now)
			r.URL.RawQuery = "partNumber=2&uploadId=x"
			return r
		}, 403, CodeSignatureDoesNotMatch},
		{"tampered path", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now)
			r.URL = objectURL("s3.example.com", "/bucket/", "other", "")
			return r
		}, 403, CodeSignatureDoesNotMatch},
		{"tampered host", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now)
			r.Host = "other.s3.example.com"
			return r
		}, 403, CodeSignatureDoesNotMatch},
		{"tampered body", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now)
			bad := bytes.Clone(body)
			bad[500] ^= 1
			r.Body = readCloser(bad)
			return r
		}, 400, CodeXAmzContentSHA256Mismatch},
		{"wrong sha256", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body[1:]), testAK, testSecret, testRegion, now)
			return r
		}, 400, CodeXAmzContentSHA256Mismatch},
		{"invalid sha256", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, "abc", testAK, testSecret, testRegion, now)
			return r
		}, 400, CodeInvalidArgument},
		{"content-md5 ok", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(md5sum[:]))
			awsSign(t, r, unsignedPayload, testAK, testSecret, testRegion, now)
			return r
		}, 200, ""},
		{"content-md5 wrong", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(make([]byte, 16)))
			awsSign(t, r, unsignedPayload, testAK, testSecret, testRegion, now)
			return r
		}, 400, CodeBadDigest},
		{"content-md5 malformed", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.Header.Set("Content-MD5", "nope")
			awsSign(t, r, unsignedPayload, testAK, testSecret, testRegion, now)
			return r
		}, 400, CodeInvalidDigest},
		{"checksum header ok", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.Header.Set("X-Amz-Checksum-Crc32", crc32b64(body))
			r.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "CRC32")
			awsSign(t, r, unsignedPayload, testAK, testSecret, testRegion, now)
			return r
		}, 200, ""},
		{"checksum header wrong", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.Header.Set("X-Amz-Checksum-Crc32", crc32b64(body[1:]))
			awsSign(t, r, unsignedPayload, testAK, testSecret, testRegion, now)
			return r
		}, 400, CodeBadDigest},
		{"two checksum headers", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.Header.Set("X-Amz-Checksum-Crc32", crc32b64(body))
			r.Header.Set("X-Amz-Checksum-Crc32c", crc32b64(body))
			awsSign(t, r, unsignedPayload, testAK, testSecret, testRegion, now)
			return r
		}, 400, CodeInvalidRequest},
		{"sdk algorithm without value", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "SHA256")
			awsSign(t, r, unsignedPayload, testAK, testSecret, testRegion, now)
			return r
		}, 200, ""},
		{"session token", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.Header.Set("X-Amz-Security-Token", "tok")
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now)
			return r
		}, 400, CodeInvalidToken},
		{"no auth", nil, func(t *testing.T) *http.Request {
			return putReq(t, body)
		}, 403, CodeAccessDenied},
		{"sigv2", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			r.Header.Set("Authorization", "AWS "+testAK+":c2lnbmF0dXJl")
			return r
		}, 400, CodeInvalidRequest},
		{"missing content sha256", nil, func(t *testing.T) *http.Request {
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now)
			r.Header.Del("X-Amz-Content-Sha256")
			return r
		}, 400, CodeInvalidRequest},
		{"content-length changed", nil, func(t *testing.T) *http.Request {
			// Content-Length is signed; the body ends early on the wire.
			r := putReq(t, body)
			awsSign(t, r, hexSHA256(body), testAK, testSecret, testRegion, now)
			r.Body = readCloser(body[:10])
			r.ContentLength = 10
			r.Header.Set("Content-Length", strconv.Itoa(len(body)))
			return r
		}, 403, CodeSignatureDoesNotMatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := testVerifier()
			if c.v != nil {
				c.v(v)
			}
			res := roundTrip(t, v, c.sign(t))
			if res.status != c.status || res.code != c.code {
				t.Fatalf("got %d %q, want %d %q", res.status, res.code, c.status, c.code)
			}
			if c.status == 200 && !bytes.Equal(res.body, body) {
				t.Fatal("body differs")
			}
		})
	}
}

func TestAWSSDKPresignFailures(t *testing.T) {
	now := time.Now()
	u := func() *url.URL { return objectURL("s3.example.com", "/bucket/", "obj", "") }
	cases := []struct {
		name   string
		v      func(*Verifier)
		req    func(t *testing.T) *http.Request
		status int
		code   string
	}{
		{"expired", func(v *Verifier) { v.Now = func() time.Time { return now.Add(2 * time.Hour) } },
			func(t *testing.T) *http.Request { return awsPresign(t, "GET", u(), 3600, testRegion, now) }, 403, CodeAccessDenied},
		{"not yet valid", nil,
			func(t *testing.T) *http.Request {
				return awsPresign(t, "GET", u(), 3600, testRegion, now.Add(time.Hour))
			}, 403, CodeAccessDenied},
		{"expires too long", nil,
			func(t *testing.T) *http.Request { return awsPresign(t, "GET", u(), 604801, testRegion, now) }, 400, CodeAuthorizationQueryParametersError},
		{"wrong region", nil,
			func(t *testing.T) *http.Request { return awsPresign(t, "GET", u(), 60, "eu-west-1", now) }, 400, CodeAuthorizationQueryParametersError},
		{"tampered query", nil, func(t *testing.T) *http.Request {
			r := awsPresign(t, "GET", objectURL("s3.example.com", "/bucket/", "obj", "versionId=1"), 60, testRegion, now)
			r.URL.RawQuery = r.URL.RawQuery + "&versionId=2"
			return r
		}, 403, CodeSignatureDoesNotMatch},
		{"tampered expiry", nil, func(t *testing.T) *http.Request {
			r := awsPresign(t, "GET", u(), 60, testRegion, now)
			q := r.URL.Query()
			q.Set("X-Amz-Expires", "61")
			r.URL.RawQuery = q.Encode()
			return r
		}, 403, CodeSignatureDoesNotMatch},
		{"tampered path", nil, func(t *testing.T) *http.Request {
			r := awsPresign(t, "GET", u(), 60, testRegion, now)
			r.URL.Path, r.URL.RawPath = "/bucket/obj2", ""
			return r
		}, 403, CodeSignatureDoesNotMatch},
		{"security token", nil, func(t *testing.T) *http.Request {
			r := awsPresign(t, "GET", u(), 60, testRegion, now)
			r.URL.RawQuery += "&X-Amz-Security-Token=x"
			return r
		}, 400, CodeInvalidToken},
		{"both auth mechanisms", nil, func(t *testing.T) *http.Request {
			r := awsPresign(t, "GET", u(), 60, testRegion, now)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
			return r
		}, 400, CodeInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := testVerifier()
			if c.v != nil {
				c.v(v)
			}
			res := roundTrip(t, v, c.req(t))
			if res.status != c.status || res.code != c.code {
				t.Fatalf("got %d %q, want %d %q", res.status, res.code, c.status, c.code)
			}
		})
	}
}

func putReq(t *testing.T, body []byte) *http.Request {
	return mustNewRequest(t, http.MethodPut, objectURL("s3.example.com", "/bucket/", "key", ""), body)
}
