package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// PostForm is what a browser form upload (S3's POST Object) is
// authenticated by: its form fields, named in lowercase (S3 takes form field
// names in any case). The signature covers the base64 policy document and
// nothing else: the fields are bound to it only by the policy's conditions,
// which the caller checks, and the file by its content-length-range.
type PostForm map[string]string

// IsSignedPost reports whether a form carries a signature of either version;
// a form without one is an anonymous upload.
func (f PostForm) IsSignedPost() bool {
	_, v4 := f["x-amz-signature"]
	_, v2 := f["signature"]
	return v4 || v2
}

// VerifyPost authenticates a POST Object form: SigV4 (x-amz-algorithm,
// x-amz-credential, x-amz-date, x-amz-signature: the HMAC-SHA256 of the
// policy under the SigV4 signing key) or, where v.SigV2 allows it, SigV2
// (awsaccesskeyid, signature: the base64 HMAC-SHA1 of the policy). The
// returned Request has no Body: the form's file is read by the caller, and
// is authentic only as far as the policy's conditions bound it. The
// policy's expiration is the caller's to check, with its conditions.
func (v *Verifier) VerifyPost(f PostForm) (*Request, error) {
	if _, ok := f["x-amz-security-token"]; ok {
		return nil, newError(CodeInvalidToken, http.StatusBadRequest,
			"The provided token is malformed or otherwise invalid: session tokens are not supported.")
	}
	_, v4 := f["x-amz-signature"]
	_, v2 := f["signature"]
	switch {
	case v4 && v2:
		return nil, newError(CodeInvalidArgument, http.StatusBadRequest,
			"Only one auth mechanism allowed; only the x-amz-signature or the signature form field should be specified")
	case v2 && (!v.SigV2 || v.service() != "s3"):
		return nil, errUnsupportedAuth()
	case v2:
		return v.verifyPostV2(f)
	case v4:
		return v.verifyPostV4(f)
	}
	return nil, errAccessDenied("Anonymous access is not supported; sign the POST policy with AWS Signature Version 4.")
}

// missingField is S3's answer to a form without a field it needs.
func missingField(name string) *Error {
	return newError(CodeInvalidArgument, http.StatusBadRequest,
		"Bucket POST must contain a field named '"+name+"'.  If it is specified, please check the order of the fields.")
}

func (v *Verifier) verifyPostV4(f PostForm) (*Request, error) {
	for _, k := range []string{"policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"} {
		if f[k] == "" {
			return nil, missingField(k)
		}
	}
	if f["x-amz-algorithm"] != algorithm {
		return nil, newError(CodeInvalidArgument, http.StatusBadRequest,
			`X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`)
	}
	malformed := func(msg string) error {
		return newError(CodeInvalidArgument, http.StatusBadRequest, "Error parsing the X-Amz-Credential parameter; "+msg)
	}
	ak, sc, err := v.parseCredential(f["x-amz-credential"], malformed)
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(iso8601Basic, f["x-amz-date"])
	if err != nil {
		return nil, newError(CodeInvalidArgument, http.StatusBadRequest,
			`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`)
	}
	if t.UTC().Format(scopeDateLayout) != sc.date {
		return nil, malformed("Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	secret, err := v.secret(ak)
	if err != nil {
		return nil, err
	}
	want := hex.EncodeToString(hmacSHA256(signingKey(secret, sc), f["policy"]))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(f["x-amz-signature"]))) {
		return nil, errSignatureMismatch()
	}
	return &Request{AccessKey: ak, Region: sc.region, Time: t, Payload: PayloadUnsigned, ContentLength: -1}, nil
}

func (v *Verifier) verifyPostV2(f PostForm) (*Request, error) {
	for _, k := range []string{"awsaccesskeyid", "policy", "signature"} {
		if f[k] == "" {
			return nil, missingField(k)
		}
	}
	secret, err := v.secret(f["awsaccesskeyid"])
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(f["policy"]))
	got, err := base64.StdEncoding.DecodeString(f["signature"])
	if err != nil || !hmac.Equal(mac.Sum(nil), got) {
		return nil, errSignatureMismatch()
	}
	return &Request{AccessKey: f["awsaccesskeyid"], Payload: PayloadUnsigned, ContentLength: -1, SigV2: true}, nil
}
