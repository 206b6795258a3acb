package kmsapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"

	"github.com/s3seal/s3seal/sigv4"
)

// authenticate verifies the request's SigV4 signature over body and
// returns its access key.
//
// AWS clients sign KMS requests without an X-Amz-Content-Sha256 header:
// the signature still covers the body's hash, which the server computes.
// The verifier reads the hash from that header, so it is set here from the
// body. It needs no signing: it is the last line of the canonical request,
// so a wrong value fails the signature. A client's own value must be that
// hash: UNSIGNED-PAYLOAD or a streaming mode would leave the body covered
// by nothing.
func (h *handler) authenticate(r *http.Request, body []byte) (string, error) {
	if err := checkAuthPresent(r); err != nil {
		return "", err
	}
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:])
	if got := r.Header.Values("X-Amz-Content-Sha256"); len(got) > 1 || len(got) == 1 && got[0] != want {
		return "", newError(errInvalidSignature, "X-Amz-Content-Sha256 must be the SHA-256 of the body (no UNSIGNED-PAYLOAD or streaming)")
	}
	r.Header.Set("X-Amz-Content-Sha256", want)
	r.Body = io.NopCloser(bytes.NewReader(body))
	req, err := h.cfg.Auth.Verify(r)
	if err != nil {
		return "", authError(err)
	}
	// The body's checks (its hash) are done as it is read to its end.
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return "", authError(err)
	}
	return req.AccessKey, nil
}

// checkAuthPresent refuses anonymous requests and query-string (presigned)
// authentication, which KMS clients never use.
func checkAuthPresent(r *http.Request) error {
	q := r.URL.Query()
	if q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Signature") {
		return newError(errIncompleteSignature, "query-string authentication is not supported; sign the Authorization header")
	}
	if r.Header.Get("Authorization") == "" {
		return newError(errMissingAuthentication, "Missing Authentication Token")
	}
	return nil
}

// authError answers a verification failure as AWS KMS does. The
// verifier's messages are safe to send (sigv4.Error); its S3 codes become
// KMS's.
func authError(err error) *apiError {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return &apiError{Type: errUnrecognizedClient, Status: http.StatusBadRequest,
			Message: "the request could not be authenticated", cause: err}
	}
	switch se.Code {
	case sigv4.CodeInvalidAccessKeyID, sigv4.CodeInvalidToken:
		return newError(errUnrecognizedClient, "The security token included in the request is invalid.")
	case sigv4.CodeSignatureDoesNotMatch:
		return newError(errInvalidSignature, "The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method.")
	case sigv4.CodeRequestTimeTooSkewed:
		return newError(errInvalidSignature, "Signature expired: the request time is too far from the server's time.")
	case sigv4.CodeXAmzContentSHA256Mismatch:
		return newError(errInvalidSignature, "The body does not match the payload hash that was signed.")
	}
	return newError(errIncompleteSignature, "%s", se.Message)
}
