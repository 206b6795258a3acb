package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/sigv4"
)

// passthrough forwards an operation whose bodies s3seal need not
// transform: configurations, bucket operations, deletes. The request
// document, if any, has been read, verified and checked (request.go); the
// answer is checked to be what the operation answers before any of it
// reaches the client (relayAnswer).
func (p *Proxy) passthrough(x *exchange) error {
	header := passthroughHeader(x.t.header)
	// The document's type is s3seal's to say: it checked what it is.
	header.Del("Content-Type")
	if len(x.doc) > 0 {
		header.Set("Content-Type", map[bool]string{true: "application/json", false: "application/xml"}[x.t.route.in.json()])
	}
	if c := x.req.Checksum; c != "" && header.Get("X-Amz-Checksum-"+c) == "" {
		// A checksum that came as a trailer, now verified, goes to the
		// store as a header, since the body is sent without framing.
		if v := x.req.ChecksumValue(); v != "" {
			header.Set("X-Amz-Checksum-"+c, v)
		}
	}
	return p.forward(x, x.r.Method, x.t.key, x.t.query, header, x.doc)
}

// send sends one request to the store, with body (nil: none) as its exact
// content.
func (p *Proxy) send(ctx context.Context, method, bucket, key string, query url.Values, header http.Header, body []byte) (*http.Response, error) {
	req, err := p.up.newRequest(ctx, method, bucket, key, query, header, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return nil, errInternal(err)
	}
	resp, err := p.up.do(req)
	if err != nil {
		return nil, errUpstream(err)
	}
	return resp, nil
}

// forward sends a request on x's bucket and relays the store's answer once
// checked: a success as the route's answer (relayAnswer), anything else as
// a store failure.
func (p *Proxy) forward(x *exchange, method, key string, query url.Values, header http.Header, body []byte) error {
	resp, err := p.send(x.r.Context(), method, x.t.bucket, key, query, header, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return relayFailure(x, resp)
	}
	return p.relayAnswer(x, resp)
}

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

// relay streams a store's answer as it is: for objects stored without
// s3seal encryption (AllowPlaintextReads). A body cut short must not look
// complete to the client, so it aborts.
func relay(x *exchange, resp *http.Response) {
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
// request id (s3seal sets its own).
func answerHeader(lk string, status int) bool {
	switch {
	case answerHeaders[lk]:
		return true
	case lk == "location":
		return status/100 == 2
	case lk == "x-amz-request-id", strings.HasPrefix(lk, "x-amz-meta-") && envelope.IsReserved(lk):
		return false
	}
	return strings.HasPrefix(lk, "x-amz-")
}

// expect sends a bodiless request to the store. When the store answers with
// status want, it returns the response for the caller to read and close.
// Any other answer (304, 412, 404, the store's errors) is relayed to the
// client as it is, and expect returns a nil response: the request is
// answered, and the error, if any, is what the caller returns.
func (p *Proxy) expect(x *exchange, want int, method, bucket, key string, query url.Values, header http.Header) (*http.Response, error) {
	resp, err := p.send(x.r.Context(), method, bucket, key, query, header, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		return nil, relayFailure(x, resp)
	}
	return resp, nil
}

// relayLateError relays a 200 answer whose body, read already, is an S3
// error document (S3 reports some failures so, after the status is out);
// anything else is not an answer S3 gives, and is refused.
func relayLateError(x *exchange, resp *http.Response, body []byte) error {
	if checkXML(body, "Error") != nil {
		return errBadAnswer(x, fmt.Errorf("%s answer is neither its result nor an Error", x.t.op()))
	}
	h := x.w.Header()
	copyResponseHeader(h, resp)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(resp.StatusCode)
	x.w.Write(body)
	return nil
}

// maxErrorBody bounds a store's error document.
const maxErrorBody = 64 << 10

// relayFailure relays a store's answer that is not a success of the kind
// expected (304, 412, 404, the store's errors), once it is checked to be an
// S3 error document or empty. An unexpected success is an error instead:
// relaying it could hand stored ciphertext to the client as if it were the
// object.
func relayFailure(x *exchange, resp *http.Response) error {
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
	h := x.w.Header()
	copyResponseHeader(h, resp)
	for k := range h {
		// Checksums of stored bytes never describe an error's body.
		if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
			delete(h, k)
		}
	}
	if x.r.Method != http.MethodHead {
		h.Set("Content-Length", strconv.Itoa(len(b)))
	}
	x.w.WriteHeader(resp.StatusCode)
	if x.r.Method != http.MethodHead {
		x.w.Write(b)
	}
	return nil
}

// readRecorder remembers the first error its source returned, so that when
// the transport reports a failed request the proxy can tell a client body
// that failed verification (answered with its S3 error) from a store that
// failed (answered 503).
//
// The transport reads bodies on its own goroutine, hence the lock.
type readRecorder struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF {
		rr.mu.Lock()
		if rr.err == nil {
			rr.err = err
		}
		rr.mu.Unlock()
	}
	return n, err
}

// failed is the first error the source returned, if any.
func (rr *readRecorder) failed() error {
	if rr == nil {
		return nil
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.err
}

// cause explains a failed upstream round trip.
func (rr *readRecorder) cause(err error) error {
	if rerr := rr.failed(); rerr != nil {
		var ve *sigv4.Error
		if errors.As(rerr, &ve) {
			return ve
		}
		return newS3Error(sigv4.CodeIncompleteBody, http.StatusBadRequest,
			"The request body ended before its declared length.", rerr)
	}
	if errors.Is(err, context.Canceled) {
		return asS3Error(err)
	}
	return errUpstream(err)
}
