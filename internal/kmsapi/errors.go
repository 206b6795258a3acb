package kmsapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/s3seal/s3seal/envelope/kms"
)

// The error types (__type) this server answers, named as AWS KMS names them.
const (
	errAccessDenied          = "AccessDeniedException"
	errAlreadyExists         = "AlreadyExistsException"
	errDisabled              = "DisabledException"
	errDryRun                = "DryRunOperationException"
	errIncompleteSignature   = "IncompleteSignatureException"
	errIncorrectKey          = "IncorrectKeyException"
	errInternal              = "KMSInternalException"
	errInvalidAliasName      = "InvalidAliasNameException"
	errInvalidCiphertext     = "InvalidCiphertextException"
	errInvalidKeyUsage       = "InvalidKeyUsageException"
	errInvalidMarker         = "InvalidMarkerException"
	errInvalidSignature      = "InvalidSignatureException"
	errInvalidState          = "KMSInvalidStateException"
	errMissingAuthentication = "MissingAuthenticationTokenException"
	errNotFound              = "NotFoundException"
	errSerialization         = "SerializationException"
	errUnknownOperation      = "UnknownOperationException"
	errUnrecognizedClient    = "UnrecognizedClientException"
	errUnsupported           = "UnsupportedOperationException"
	errValidation            = "ValidationException"
)

// apiError is an error answered to the client: its __type, HTTP status
// and message, which must never carry plaintext, data keys or request
// blobs. cause, if any, is logged and never sent.
type apiError struct {
	Type    string
	Status  int
	Message string
	cause   error
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

// newError is a client error of type typ, with AWS's status for it.
func newError(typ, format string, args ...any) *apiError {
	return &apiError{Type: typ, Status: statusOf(typ), Message: fmt.Sprintf(format, args...)}
}

// statusOf is the HTTP status AWS KMS answers typ with: 400 for every
// client error (denials and signature failures included), but these.
func statusOf(typ string) int {
	switch typ {
	case errInternal:
		return http.StatusInternalServerError
	case errDryRun:
		return http.StatusPreconditionFailed
	}
	return http.StatusBadRequest
}

// validation is a ValidationException about one request field. It names
// the field and the rule, never the value.
func validation(field, format string, args ...any) *apiError {
	return newError(errValidation, "1 validation error detected: Value at '%s' failed to satisfy constraint: %s",
		field, fmt.Sprintf(format, args...))
}

// required is the ValidationException for a missing field.
func required(field string) *apiError {
	return newError(errValidation, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
}

// asAPIError turns any error an operation returned into what is answered.
// Keyring errors carry AWS's code for them (envelope/keyring/errors.go)
// and causes that hold no secrets; an outage is an internal error whose
// cause (a file path, a system error) is logged only.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ke *kms.KMSError
	if !errors.As(err, &ke) || errors.Is(err, kms.ErrKMSUnavailable) {
		return &apiError{Type: errInternal, Status: http.StatusInternalServerError,
			Message: "internal error", cause: err}
	}
	typ := ke.Code
	if typ == "" {
		typ = typeOfKind(ke.Kind)
	}
	msg := ke.Kind.Error()
	if ke.Cause != nil {
		msg = ke.Cause.Error()
	}
	return &apiError{Type: typ, Status: statusOf(typ), Message: msg}
}

// typeOfKind answers a keyring error that carries no code by its kind.
func typeOfKind(kind error) string {
	switch kind {
	case kms.ErrKeyNotFound:
		return errNotFound
	case kms.ErrKeyDisabled:
		return errInvalidState
	case kms.ErrAccessDenied:
		return errAccessDenied
	case kms.ErrInvalidCiphertext:
		return errInvalidCiphertext
	}
	return errValidation
}

// WriteHTTPSRequired answers a plain HTTP request that reached the KMS
// API's TLS port, which s3seal serve reads before any TLS: a
// ValidationException that names the https URL to use instead.
func WriteHTTPSRequired(w http.ResponseWriter, httpsURL string) {
	writeError(w, requestID(), newError(errValidation, "This port serves HTTPS: use %s as the endpoint.", httpsURL))
}
