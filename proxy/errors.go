package proxy

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/store"
	"github.com/s3seal/s3seal/sigv4"
)

// s3Error is an error the proxy answers itself, in S3's XML error format, so
// that SDKs apply the same retry and error handling as against S3.
type s3Error struct {
	Code    string
	Status  int
	Message string // sent to the client: never key-service text or secrets
	Err     error  // cause, for the log only
	// Header holds headers that belong to this error's answer, such as
	// Content-Range on 416.
	Header http.Header
	// Details are the further elements S3 puts in this error's document
	// (EntityTooSmall's ProposedSize, ...), in order.
	Details []xmlField
}

// xmlField is one element of a flat XML document, such as an S3 error's.
type xmlField struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

func field(name, value string) xmlField {
	return xmlField{XMLName: xml.Name{Local: name}, Value: value}
}

func (e *s3Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *s3Error) Unwrap() error { return e.Err }

func newS3Error(code string, status int, msg string, cause error) *s3Error {
	return &s3Error{Code: code, Status: status, Message: msg, Err: cause}
}

func errNotImplemented(what string) *s3Error {
	return newS3Error("NotImplemented", http.StatusNotImplemented,
		what+" is not supported yet by s3seal.", nil)
}

// Stored objects that fail authentication are answered with 502 and a code of
// their own rather than S3's 500 InternalError: the proxy works, the store
// handed back bytes (or metadata) that s3seal never wrote for this object —
// tampered, truncated, or moved from another bucket or key. A distinct code
// tells operators to look at the store, not at s3seal, and 5xx keeps SDKs from
// treating it as a client mistake.
const codeStoredObjectCorrupt = "StoredObjectCorrupt"

func errCorrupt(cause error) *s3Error {
	return newS3Error(codeStoredObjectCorrupt, http.StatusBadGateway,
		"The stored object failed authentication (tampered, truncated or moved).", cause)
}

func errUpstream(cause error) *s3Error {
	// 503 is what SDKs retry with back-off, which is the right reaction to
	// a store that is briefly unreachable.
	return newS3Error("ServiceUnavailable", http.StatusServiceUnavailable,
		"The upstream store is unreachable. Please retry.", cause)
}

func errInternal(cause error) *s3Error {
	return newS3Error("InternalError", http.StatusInternalServerError,
		"We encountered an internal error. Please try again.", cause)
}

// asS3Error maps any error of a request's handling to what the client sees.
// Key-service errors keep only their kind: their text may echo plaintext.
func asS3Error(err error) *s3Error {
	var se *s3Error
	if errors.As(err, &se) {
		return se
	}
	var ve *sigv4.Error
	if errors.As(err, &ve) {
		return newS3Error(ve.Code, ve.Status, ve.Message, err)
	}
	if denied(err) {
		// Which grant is missing is for the log, not for the client.
		return newS3Error("AccessDenied", http.StatusForbidden, "Access Denied", err)
	}
	var na *kms.KeyNotAllowedError
	if errors.As(err, &na) {
		// Checked before any KMS call: the store wrote the metadata, and
		// only the configured CMKs may vouch for an object.
		return newS3Error("AccessDenied", http.StatusForbidden,
			"The object is encrypted under KMS key "+na.KeyID+", which s3seal is not configured to decrypt with. "+
				"If that key is yours, add it to S3SEAL_KMS_DECRYPT_KEY_IDS.", err)
	}
	switch {
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return newS3Error("RequestCanceled", 499, "The request was canceled.", err)
	case errors.Is(err, store.ErrUnreachable),
		// An answer that is not the one asked for (a wrong range, no
		// UploadId, ...): nothing of it is used, and a retry may do better.
		errors.Is(err, store.ErrUnexpectedAnswer):
		return errUpstream(err)
	case errors.Is(err, store.ErrChanged):
		return errObjectChanged()
	case errors.Is(err, store.ErrRangeNotSatisfiable):
		// s3seal asked for bytes its metadata says are stored.
		return errCorrupt(err)
	case errors.Is(err, kms.ErrKMSUnavailable):
		return newS3Error("ServiceUnavailable", http.StatusServiceUnavailable,
			"The key management service is unavailable. Please retry.", err)
	case errors.Is(err, kms.ErrKeyDisabled):
		return newS3Error("KMS.DisabledException", http.StatusBadRequest,
			"The KMS key is disabled or pending deletion.", err)
	case errors.Is(err, kms.ErrKeyNotFound):
		return newS3Error("KMS.NotFoundException", http.StatusBadRequest,
			"The KMS key does not exist.", err)
	case errors.Is(err, kms.ErrAccessDenied):
		return newS3Error("AccessDenied", http.StatusForbidden,
			"Access to the KMS key was denied.", err)
	case errors.Is(err, kms.ErrInvalidCiphertext),
		errors.Is(err, envelope.ErrAuthentication),
		errors.Is(err, envelope.ErrTruncated),
		errors.Is(err, envelope.ErrImpossibleSize),
		errors.Is(err, envelope.ErrMalformedMetadata),
		// The object's metadata said version 1 (inspect): a segment header
		// saying otherwise is damage, or a header read where none is.
		errors.Is(err, envelope.ErrUnsupportedVersion):
		return errCorrupt(err)
	case errors.Is(err, kms.ErrInvalidKMSRequest):
		return errInternal(err)
	}
	return errInternal(err)
}

type xmlError struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Details   []xmlField `xml:",any"`
	Resource  string
	RequestID string `xml:"RequestId"`
	HostID    string `xml:"HostId"`
}

// retryAfter is the seconds a 503 answer asks clients to wait.
const retryAfter = "2"

// writeError answers e as S3 does: XML, or headers only for HEAD; the
// document names the request as its headers do (RequestId and HostId).
//
// Headers prepared for a successful answer (ETag, metadata, ...) are dropped
// first: they do not describe an error.
func writeError(w http.ResponseWriter, r *http.Request, e *s3Error, id requestIDs) {
	h := w.Header()
	clear(h)
	for k, vs := range e.Header {
		h[k] = vs
	}
	id.set(h)
	h.Set("Content-Type", "application/xml")
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		// A dependency is down or slow: a hint for clients that heed it,
		// beside their own backoff.
		h.Set("Retry-After", retryAfter)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	body, err := xml.Marshal(xmlError{Code: e.Code, Message: e.Message, Details: e.Details, Resource: r.URL.Path,
		RequestID: id.request, HostID: id.host})
	if err != nil { // cannot happen for these string fields
		w.WriteHeader(status)
		return
	}
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(body)
}

// WriteHTTPSRequired answers a plain HTTP request that reached s3seal's
// TLS port, which s3seal serve reads before any TLS: an S3 error (400
// InvalidRequest) that names the https URL to use instead.
func WriteHTTPSRequired(w http.ResponseWriter, r *http.Request, httpsURL string) {
	writeError(w, r, newS3Error("InvalidRequest", http.StatusBadRequest,
		"This port serves HTTPS: use "+httpsURL+" as the endpoint.", nil), newRequestIDs())
}
