package sigv4

import (
	"fmt"
	"net/http"
)

// Error is a verification failure carrying the S3 error code and HTTP status
// the proxy must answer with. The proxy renders it as S3 XML; the codes and
// messages follow what AWS S3 (and MinIO) answer so that SDK retry and error
// handling logic behaves as it would against S3.
type Error struct {
	Code    string // S3 error code, e.g. "SignatureDoesNotMatch"
	Status  int    // HTTP status code
	Message string // human readable, safe to send to the client
	Err     error  // underlying cause, if any; never sent to the client
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("sigv4: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("sigv4: %s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// S3 error codes returned by this package.
const (
	CodeAccessDenied                      = "AccessDenied"
	CodeAuthorizationHeaderMalformed      = "AuthorizationHeaderMalformed"
	CodeAuthorizationQueryParametersError = "AuthorizationQueryParametersError"
	CodeBadDigest                         = "BadDigest"
	CodeIncompleteBody                    = "IncompleteBody"
	CodeInvalidAccessKeyID                = "InvalidAccessKeyId"
	CodeInvalidArgument                   = "InvalidArgument"
	CodeInvalidDigest                     = "InvalidDigest"
	CodeInvalidRequest                    = "InvalidRequest"
	CodeInvalidToken                      = "InvalidToken"
	CodeMissingContentLength              = "MissingContentLength"
	CodeRequestTimeTooSkewed              = "RequestTimeTooSkewed"
	CodeSignatureDoesNotMatch             = "SignatureDoesNotMatch"
	CodeXAmzContentSHA256Mismatch         = "XAmzContentSHA256Mismatch"
)

func newError(code string, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Message: msg}
}

func errorf(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

func wrapError(code string, status int, msg string, err error) *Error {
	return &Error{Code: code, Status: status, Message: msg, Err: err}
}

// Frequently used failures.
func errAccessDenied(msg string) *Error {
	return newError(CodeAccessDenied, http.StatusForbidden, msg)
}

func errSignatureMismatch() *Error {
	return newError(CodeSignatureDoesNotMatch, http.StatusForbidden,
		"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
}

func errUnsupportedAuth() *Error {
	return newError(CodeInvalidRequest, http.StatusBadRequest,
		"The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
}

func errMalformedEncoding(err error) *Error {
	return wrapError(CodeInvalidRequest, http.StatusBadRequest,
		"The request body is not a valid aws-chunked encoding.", err)
}

func errIncompleteBody(err error) *Error {
	return wrapError(CodeIncompleteBody, http.StatusBadRequest,
		"You did not provide the number of bytes specified by the Content-Length HTTP header.", err)
}
