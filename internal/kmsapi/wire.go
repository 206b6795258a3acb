package kmsapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"time"
)

// The wire format: JSON bodies (blobs in base64, timestamps in epoch
// seconds) under the awsJson1_1 content type; errors as {"__type",
// "message"} with the type in X-Amzn-ErrorType too, as AWS sends them.

// maxBody bounds a request body. KMS requests are a few KiB at most (4096
// bytes of plaintext, 6144 of ciphertext, in base64).
const maxBody = 1 << 20

const contentType = "application/x-amz-json-1.1"

// readBody reads the whole body, refusing one over maxBody.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBody {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, newError(errSerialization, "could not read the request body")
	}
	if len(body) > maxBody {
		return nil, tooLarge()
	}
	return body, nil
}

func tooLarge() *apiError {
	return &apiError{Type: errValidation, Status: http.StatusRequestEntityTooLarge,
		Message: "the request body is larger than " + strconv.Itoa(maxBody) + " bytes"}
}

// decodeInput parses body into in. Members this server does not know are
// ignored, as AWS does; a member of the wrong type, or anything after the
// object, is a SerializationException. Messages name the field at most:
// the decoder's own text can quote a value.
func decodeInput(body []byte, in any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(in); err != nil {
		return serializationError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return newError(errSerialization, "unexpected data after the request's JSON object")
	}
	return nil
}

func serializationError(err error) *apiError {
	var typeErr *json.UnmarshalTypeError
	var b64Err base64.CorruptInputError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return newError(errSerialization, "the value of %s is not of its type (%s)", typeErr.Field, typeErr.Type)
	case errors.As(err, &b64Err):
		return newError(errSerialization, "a blob member is not valid base64")
	}
	return newError(errSerialization, "the request body is not a valid JSON object")
}

// wiper is an output holding secrets (plaintext, data keys), wiped once
// the response is written.
type wiper interface{ wipe() }

func writeOutput(w http.ResponseWriter, id string, out any) {
	b, err := json.Marshal(out)
	if wp, ok := out.(wiper); ok {
		defer wp.wipe()
		defer clear(b)
	}
	if err != nil {
		writeError(w, id, &apiError{Type: errInternal, Status: http.StatusInternalServerError, Message: "internal error"})
		return
	}
	writeBody(w, id, http.StatusOK, b)
}

func writeError(w http.ResponseWriter, id string, e *apiError) {
	b, _ := json.Marshal(map[string]string{"__type": e.Type, "message": e.Message}) // strings only: cannot fail
	w.Header().Set("X-Amzn-ErrorType", e.Type)
	writeBody(w, id, e.Status, b)
}

func writeBody(w http.ResponseWriter, id string, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Amzn-RequestId", id)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// epoch is a timestamp as AWS JSON carries it: seconds since the epoch, a
// JSON number with up to millisecond fractions. The zero time is omitted
// (omitzero).
type epoch time.Time

func (t epoch) IsZero() bool { return time.Time(t).IsZero() }

func (t epoch) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(time.Time(t).UnixMilli())/1000, 'f', -1, 64), nil
}

func (t *epoch) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return &json.UnmarshalTypeError{Value: "timestamp", Type: reflect.TypeFor[time.Time]()}
	}
	*t = epoch(time.UnixMilli(int64(secs * 1000)).UTC())
	return nil
}
