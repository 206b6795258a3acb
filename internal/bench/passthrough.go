package bench

// The pass-through baseline of the end-to-end benchmark: a plain reverse
// proxy in front of the same store, in a process of its own
// (hopprocess.go), that forwards every request unchanged. It is what any hop costs (a second pass of each byte
// through the kernel and a Go HTTP server and client) without what s3seal
// adds (SigV4 verification and re-signing, encryption, KMS), so s3seal can
// be compared with the hop rather than only with the store.

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// passThrough is the running pass-through hop.
type passThrough struct {
	addr string // host:port on 127.0.0.1
	srv  *http.Server
	tr   *http.Transport
	done chan struct{}
}

// startPassThrough listens on a free port of 127.0.0.1 (loopback only: it
// forwards whatever reaches it to the store) and forwards to store; errors
// of the hop go to errLog.
//
// How the requests stay validly signed: the clients of this path sign for
// the store itself, with the store's credential and its Host, exactly as the
// direct path's clients do, and only their connection is sent here instead
// (viaClient). The hop forwards each request byte for byte, Host header
// included, so the store checks the client's own signature. It verifies,
// signs and hashes nothing, which is what a plain proxy costs; re-signing
// with the store's credential would add work s3seal does but a plain proxy
// does not, and would make the baseline dearer than it is. Because Host and
// the signature are the store's own, this works for any store, https ones
// and AWS S3 included (the hop speaks https to them).
func startPassThrough(store *url.URL, errLog io.Writer) (*passThrough, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pass-through: %w", err)
	}
	// The store transport as s3seal's own (internal/store): idle
	// connections enough for every request in flight, no compression.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 512, 256
	tr.DisableCompression = true
	rp := &httputil.ReverseProxy{
		// Rewrite starts from a copy of the inbound request: its Host (the
		// store's, as signed) stays; only where it is sent changes. No
		// X-Forwarded-* headers are added.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = store.Scheme, store.Host
		},
		Transport:  tr,
		BufferPool: newBufferPool(),
		ErrorLog:   log.New(errLog, "bench: pass-through: ", 0),
	}
	p := &passThrough{
		addr: ln.Addr().String(),
		srv:  &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second, ErrorLog: rp.ErrorLog},
		tr:   tr,
		done: make(chan struct{}),
	}
	go func() {
		defer close(p.done)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rp.ErrorLog.Print(err)
		}
	}()
	return p, nil
}

// close stops listening, ends every connection and waits for the server.
func (p *passThrough) close() {
	p.srv.Close()
	<-p.done
	p.tr.CloseIdleConnections()
}

// bufferPool reuses the 32 KiB copy buffers of the hop, as a well-set-up
// proxy does: the baseline should not pay for garbage s3seal avoids.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(s []byte) { b.p.Put(&s) }

// httpDoer is the SDK's HTTP client interface.
type httpDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// viaClient sends every request, signed for its URL's host, over plain
// HTTP to addr instead, keeping the Host header it was signed with.
type viaClient struct {
	inner httpDoer
	addr  string
}

func (c viaClient) Do(req *http.Request) (*http.Response, error) {
	out := req.WithContext(req.Context()) // a shallow copy: the SDK's request stays as it built it
	u := *req.URL
	u.Scheme, u.Host = "http", c.addr
	out.URL = &u
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	return c.inner.Do(out)
}
