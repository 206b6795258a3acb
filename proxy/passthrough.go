package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/sigv4"
)

// maxBufferedBody bounds the one case where a passthrough body is held in
// memory: a client that sent its checksum as an aws-chunked trailer, which
// must become a header for the store. Such bodies are XML configurations and
// DeleteObjects lists (1000 keys of ≤ 1 KiB), far below this.
const maxBufferedBody = 4 << 20

// passthrough forwards a request the proxy does not need to understand,
// re-signed, with the body and the answer streamed both ways unchanged.
func (p *Proxy) passthrough(x *exchange) error {
	r, t, req := x.r, x.t, x.req
	header := passthroughHeader(t.header)
	body, size := io.Reader(req.Body), req.ContentLength
	if req.Checksum != "" && header.Get("X-Amz-Checksum-"+req.Checksum) == "" && size >= 0 && size <= maxBufferedBody {
		// The checksum came as a trailer: read the (small) body first so the
		// verified value can go to the store as a header.
		buf, err := io.ReadAll(io.LimitReader(req.Body, maxBufferedBody+1))
		if err != nil {
			return err
		}
		if v := req.ChecksumValue(); v != "" {
			header.Set("X-Amz-Checksum-"+req.Checksum, v)
		}
		body = bytes.NewReader(buf)
	}
	rec := &readRecorder{r: body}
	if size == 0 {
		rec = nil
	}
	upReq, err := p.up.newRequest(r.Context(), r.Method, t.bucket, t.key, t.query, header, readerOrNil(rec), size)
	if err != nil {
		return errInternal(err)
	}
	resp, err := p.up.do(upReq)
	if err != nil {
		return rec.cause(err)
	}
	defer resp.Body.Close()
	relay(x, resp)
	return nil
}

// relay answers with a store's response as it is, body streamed. A body cut
// short must not look complete to the client, so it aborts.
func relay(x *exchange, resp *http.Response) {
	copyResponseHeader(x.w.Header(), resp.Header)
	x.w.WriteHeader(resp.StatusCode)
	if x.r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(x.w, resp.Body); err != nil {
		x.abort(err)
	}
}

// copyResponseHeader copies a store's answer headers to the client, except
// connection-level ones and the store's request id (s3seal sets its own).
func copyResponseHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
	for _, k := range hopByHop {
		dst.Del(k)
	}
	dst.Del("X-Amz-Request-Id")
	for k := range dst {
		// Clients never see s3seal's metadata, whatever the answer.
		if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") && envelope.IsReserved(k) {
			delete(dst, k)
		}
	}
}

// expect sends a bodiless request to the store. When the store answers with
// status want, it returns the response for the caller to read and close.
// Any other answer (304, 412, 404, the store's errors) is relayed to the
// client as it is, and expect returns a nil response: the request is
// answered, and the error, if any, is what the caller returns.
func (p *Proxy) expect(x *exchange, want int, method, bucket, key string, query url.Values, header http.Header) (*http.Response, error) {
	req, err := p.up.newRequest(x.r.Context(), method, bucket, key, query, header, nil, 0)
	if err != nil {
		return nil, errInternal(err)
	}
	resp, err := p.up.do(req)
	if err != nil {
		return nil, errUpstream(err)
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		return nil, relayFailure(x, resp)
	}
	return resp, nil
}

// pass sends a bodiless request to the store and relays its answer to the
// client, whatever it is.
func (p *Proxy) pass(x *exchange, method, bucket, key string, query url.Values, header http.Header) error {
	req, err := p.up.newRequest(x.r.Context(), method, bucket, key, query, header, nil, 0)
	if err != nil {
		return errInternal(err)
	}
	resp, err := p.up.do(req)
	if err != nil {
		return errUpstream(err)
	}
	defer resp.Body.Close()
	relay(x, resp)
	return nil
}

// relayFailure relays a store's answer that is not a success of the kind
// expected (304, 412, 404, the store's errors). An unexpected success is an
// error instead: relaying it could hand stored ciphertext to the client as if
// it were the object.
func relayFailure(x *exchange, resp *http.Response) error {
	if resp.StatusCode < 300 {
		return errUpstream(fmt.Errorf("store answered %s %s with status %d", x.r.Method, x.t.op, resp.StatusCode))
	}
	for k := range resp.Header {
		// Checksums of stored bytes never describe an error's body.
		if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
			delete(resp.Header, k)
		}
	}
	relay(x, resp)
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

func readerOrNil(rr *readRecorder) io.Reader {
	if rr == nil {
		return nil
	}
	return rr
}
