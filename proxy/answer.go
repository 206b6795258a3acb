package proxy

// Relaying a store's answers to the client: checked to be the answer the
// operation has (a document, an S3 error, nothing), with only the headers S3
// answers with.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// maxEmptyAnswer bounds the body of answers that should have none: a store
// may send a little XML, never an object.
const maxEmptyAnswer = 64 << 10

// relayAnswer relays a store's 2xx answer to a passthrough route after
// checking that it is the answer the operation has: the route's document,
// or no body. A store that took the request for another one (a PUT
// ?tagging stored as the object, a GET ?acl answered with the object's
// ciphertext) is answered 502, and nothing of what it said is passed on.
func (p *Proxy) relayAnswer(x *exchange, resp *http.Response) error {
	rt := x.t.route
	if rt.out != nil && !rt.out.json() {
		return p.relayDocument(x, resp, rt.out)
	}
	max := int64(maxEmptyAnswer)
	if rt.out != nil {
		max = rt.out.max
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return errUpstream(err)
	}
	if err := checkAnswer(x, resp, b, max); err != nil {
		return errBadAnswer(x, err)
	}
	h := x.w.Header()
	copyResponseHeader(h, resp)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	x.w.WriteHeader(resp.StatusCode)
	if x.r.Method != http.MethodHead {
		x.w.Write(b)
	}
	return nil
}

// checkAnswer checks a buffered answer of a route whose answer is JSON or
// has no document.
func checkAnswer(x *exchange, resp *http.Response, b []byte, max int64) error {
	rt := x.t.route
	switch {
	case int64(len(b)) > max:
		return fmt.Errorf("answer longer than %d bytes", max)
	case rt.out != nil:
		if !isJSONObject(b) {
			return errors.New("answer is not a JSON object")
		}
	case x.t.level == levelObject && x.r.Method != http.MethodHead && resp.Header.Get("ETag") != "":
		// Configuration calls change no object; an ETag means the store
		// wrote the body as one.
		return errors.New("answer carries an ETag: the store took the request for an object write")
	case len(bytes.TrimSpace(b)) > 0 && checkXML(b, "") != nil:
		return errors.New("answer body is not one XML document")
	}
	return nil
}

// relayDocument streams a store's XML answer after checking its root
// element, and checks the rest is well-formed XML as it flows (a late flaw
// cuts the answer off).
func (p *Proxy) relayDocument(x *exchange, resp *http.Response, d *document) error {
	return p.relayRewritten(x, resp, d.root, nil)
}

func errBadAnswer(x *exchange, cause error) *s3Error {
	return newS3Error("BadStoreAnswer", http.StatusBadGateway,
		"The store did not answer "+x.t.op()+" as S3 does; nothing it sent was passed on. The s3seal log says why.", cause)
}

// relayPlaintext streams a store's answer as it is: for objects stored
// without s3seal encryption (AllowPlaintextReads). A body cut short must
// not look complete to the client, so it aborts.
func relayPlaintext(x *exchange, resp *http.Response) {
	copyResponseHeader(x.w.Header(), resp)
	x.w.WriteHeader(resp.StatusCode)
	if x.r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(x.w, resp.Body); err != nil {
		x.abort(err)
	}
}

// copyResponseHeader copies to the client the headers of a store's answer
// that S3 answers with (answerHeader).
func copyResponseHeader(dst http.Header, resp *http.Response) {
	for k, vs := range resp.Header {
		if answerHeader(strings.ToLower(k), resp.StatusCode) {
			dst[k] = append([]string(nil), vs...)
		}
	}
}

// answerHeaders are the headers of a store's answer a client may see, besides
// x-amz-*: what S3 answers with. Anything else (Set-Cookie, HSTS, Alt-Svc,
// Link, ...) could make a client keep state or go elsewhere on the store's
// word, and Location does only on a success (CreateBucket's).
var answerHeaders = map[string]bool{
	"accept-ranges": true, "cache-control": true, "content-disposition": true, "content-encoding": true,
	"content-language": true, "content-length": true, "content-range": true, "content-type": true,
	"date": true, "etag": true, "expires": true, "last-modified": true, "retry-after": true,
}

// answerHeader says whether the header lk (lower case) of a store's answer
// of status may reach the client. Never s3seal's metadata, nor the store's
// request ids (s3seal sets its own).
func answerHeader(lk string, status int) bool {
	switch {
	case answerHeaders[lk]:
		return true
	case lk == "location":
		return status/100 == 2
	case lk == "x-amz-request-id", lk == "x-amz-id-2", strings.HasPrefix(lk, "x-amz-meta-") && envelope.IsReserved(lk):
		return false
	}
	return strings.HasPrefix(lk, "x-amz-")
}

// relayLateError relays a 200 answer whose body, read already, is an S3
// error document (S3 reports some failures so, after the status is out);
// anything else is not an answer S3 gives, and is refused.
func (p *Proxy) relayLateError(x *exchange, resp *http.Response, body []byte) error {
	if checkXML(body, "Error") != nil {
		return errBadAnswer(x, fmt.Errorf("%s answer is neither its result nor an Error", x.t.op()))
	}
	body, err := p.completeError(x, resp.StatusCode, body)
	if err != nil {
		return errBadAnswer(x, err)
	}
	h := x.w.Header()
	copyResponseHeader(h, resp)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(resp.StatusCode)
	x.w.Write(body)
	return nil
}

// maxErrorBody bounds a store's error document.
const maxErrorBody = 64 << 10

// relayStoreError relays a store's answer that is not a success of the
// kind expected (304, 412, 404, the store's errors), once it is checked to
// be an S3 error document or empty, and completed (completeError). An unexpected success is an error
// instead: relaying it could hand stored ciphertext to the client as if it
// were the object.
func (p *Proxy) relayStoreError(x *exchange, resp *http.Response) error {
	if resp.StatusCode < 300 || (resp.StatusCode < 400 && resp.StatusCode != http.StatusNotModified) {
		// A success that is not the one expected, or a redirect: relayed,
		// either could make a client take the store's bytes for the
		// object, or send its body where the store says.
		return errBadAnswer(x, fmt.Errorf("store answered %s %s with status %d", x.r.Method, x.t.op(), resp.StatusCode))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	if err != nil {
		return errUpstream(err)
	}
	if len(b) > maxErrorBody || (len(bytes.TrimSpace(b)) > 0 && checkXML(b, "Error") != nil) {
		return errBadAnswer(x, fmt.Errorf("store answered %d with a body that is not an S3 error", resp.StatusCode))
	}
	// An error's answer is a complete S3 error document (HEAD: only its
	// headers); a 304 is no error, and has no body.
	isError := resp.StatusCode != http.StatusNotModified
	if isError && x.r.Method != http.MethodHead {
		if b, err = p.completeError(x, resp.StatusCode, b); err != nil {
			return errBadAnswer(x, err)
		}
	}
	h := x.w.Header()
	copyResponseHeader(h, resp)
	if isError {
		h.Set("Content-Type", "application/xml")
	}
	for k := range h {
		// Checksums of stored bytes never describe an error's body.
		if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
			delete(h, k)
		}
	}
	if x.r.Method != http.MethodHead {
		h.Set("Content-Length", strconv.Itoa(len(b)))
	}
	if resp.StatusCode == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", retryAfter) // as on s3seal's own 503s (writeError)
	}
	x.w.WriteHeader(resp.StatusCode)
	if x.r.Method != http.MethodHead {
		x.w.Write(b)
	}
	return nil
}
