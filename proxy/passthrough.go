package proxy

import (
	"net/http"

	"github.com/s3seal/s3seal/internal/store"
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
	if c := x.verified.Checksum; c != "" && header.Get("X-Amz-Checksum-"+c) == "" {
		// A checksum that came as a trailer, now verified, goes to the
		// store as a header, since the body is sent without framing.
		if v := x.verified.ChecksumValue(); v != "" {
			header.Set("X-Amz-Checksum-"+c, v)
		}
	}
	return p.forward(x, store.Request{Method: x.r.Method, Bucket: x.t.bucket, Key: x.t.key, Query: x.t.query, Header: header, Body: x.doc})
}

// forward sends r and relays the store's answer once checked: a success as
// the route's answer (relayAnswer), anything else as the store's error.
func (p *Proxy) forward(x *exchange, r store.Request) error {
	resp, err := p.store.Do(x.r.Context(), r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return p.relayStoreError(x, resp)
	}
	return p.relayAnswer(x, resp)
}

// request sends r and returns the store's answer when its status is want,
// for the caller to read and close. Any other answer (304, 412, 404, the
// store's errors) is relayed to the client and request returns a nil
// response: the client has its answer, and the error, if any, is what the
// caller returns.
func (p *Proxy) request(x *exchange, want int, r store.Request) (*http.Response, error) {
	resp, err := p.store.Do(x.r.Context(), r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		return nil, p.relayStoreError(x, resp)
	}
	return resp, nil
}
