package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Limits on what a client may send, S3's where S3 has one.
const (
	// MaxHeaderBytes is what http.Server.MaxHeaderBytes should be for
	// the proxy: net/http refuses a request line and headers beyond it
	// itself, with a plain-text 431, before any handler runs. It is well
	// above maxHeaderSection plus maxRequestURI, so that every request a
	// client may plausibly send reaches ServeHTTP, which refuses those
	// over s3seal's limits with an S3 XML error; only a grossly
	// oversized one gets net/http's answer. It also bounds the memory a
	// connection may hold before it is authenticated.
	MaxHeaderBytes = 64 << 10
	// maxHeaderSection is S3's limit on a request's headers; presigned
	// URLs carry their signature in the query, not in headers.
	maxHeaderSection = 8 << 10
	// maxRequestURI bounds the request target: a key of S3's 1024 bytes
	// is at most 3 KiB percent-encoded, and a presigned URL's query
	// (credential, signature, a session token, response-* overrides)
	// stays well within the rest.
	maxRequestURI = 16 << 10
	// maxKeyLength is S3's limit on an object key, in bytes of UTF-8.
	maxKeyLength = 1024
)

// checkRequestSize refuses a request line or headers over s3seal's
// limits, before anything else is done with the request.
func checkRequestSize(r *http.Request) error {
	if n := len(r.RequestURI); n > maxRequestURI {
		return newS3Error("RequestURITooLong", http.StatusRequestURITooLong,
			fmt.Sprintf("The request URI is %d bytes, more than the %d bytes s3seal accepts.", n, maxRequestURI), nil)
	}
	if n := headerSectionSize(r); n > maxHeaderSection {
		e := newS3Error("RequestHeaderSectionTooLarge", http.StatusBadRequest,
			"Your request header section exceeds the maximum allowed size.", nil)
		e.Details = []xmlField{field("MaxSizeAllowed", strconv.Itoa(maxHeaderSection))}
		return e
	}
	return nil
}

// headerSectionSize is the size of r's header lines as sent ("Name:
// value" and CRLF), Host included: net/http moves it out of r.Header.
func headerSectionSize(r *http.Request) int {
	n := 0
	if r.Host != "" {
		n += len("Host: \r\n") + len(r.Host)
	}
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + len(": \r\n") + len(v)
		}
	}
	return n
}

// checkKeyLength refuses a key longer than S3 allows, before the store
// sees it: S3 would refuse it too, and a store may not.
func checkKeyLength(key string) error {
	if len(key) <= maxKeyLength {
		return nil
	}
	e := newS3Error("KeyTooLongError", http.StatusBadRequest, "Your key is too long", nil)
	e.Details = []xmlField{field("MaxSizeAllowed", strconv.Itoa(maxKeyLength)), field("Size", strconv.Itoa(len(key)))}
	return e
}

func errRequestTimeout(cause error) *s3Error {
	return newS3Error("RequestTimeout", http.StatusBadRequest,
		"Your socket connection to the server was not read from or written to within the timeout period. "+
			"Idle connections will be closed.", cause)
}

// idleBody bounds how long a client's body may make no progress: each
// read must return within the timeout, so a large upload that keeps moving
// is never cut, and one that trickles or stops is. The bound is the
// connection's read deadline (http.ResponseController), moved before each
// read, rather than a timer of s3seal's own: a read past it fails at once,
// and the server closes the connection after the answer.
//
// Over HTTP/2 the deadline is set only while a read is under way, and
// lifted once it returns: a stream's deadline is a timer that breaks the
// body when it fires, read or not, and s3seal may legitimately take longer
// than the timeout between reads (a slow key service before the first one,
// a slow store taking the bytes already read). Over HTTP/1 it stays set
// between reads, where it bounds only net/http's own reads of the body
// (its discarding of an unread rest, in Close or as it answers).
type idleBody struct {
	body     io.ReadCloser
	rc       *http.ResponseController
	timeout  time.Duration
	mu       sync.Mutex
	until    time.Time // when set, no read may last past it (see bound)
	timedOut bool
	ended    bool // the body ended (or broke, or timed out): no read is left
	lift     bool // lift the deadline between reads (HTTP/2)
	off      bool // the connection has no read deadline (a test recorder)
}

// watchBody wraps r's body in an idleBody when there is one to bound.
// Over HTTP/1 the deadline is set at once, not only on the first read, and
// Close and finish set it once more: a request refused before its body
// ended still has the rest discarded by net/http (up to 256 KiB), and that
// must not wait on the client forever either.
func watchBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) *idleBody {
	if timeout <= 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b := &idleBody{body: r.Body, rc: http.NewResponseController(w), timeout: timeout, lift: r.ProtoMajor >= 2}
	if !b.lift {
		b.arm()
	}
	r.Body = b
	return b
}

// arm moves the read deadline to timeout from now, or to until if sooner.
func (b *idleBody) arm() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.off {
		return
	}
	d := time.Now().Add(b.timeout)
	if !b.until.IsZero() && b.until.Before(d) {
		d = b.until
	}
	if err := b.rc.SetReadDeadline(d); err != nil {
		b.off = true
	}
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.arm()
	n, err := b.body.Read(p)
	switch {
	case err == nil:
		if b.lift {
			b.clear() // s3seal's own work until the next read is not the client's
		}
	case isTimeout(err):
		b.mu.Lock()
		b.timedOut, b.ended = true, true
		b.mu.Unlock()
		err = fmt.Errorf("the client's body made no progress in time: %w", err)
	default:
		// The body is over (or broken). net/http reads the connection on
		// its own once the body has ended, and a deadline left behind
		// would cancel the request's context there: lift it.
		b.mu.Lock()
		b.ended = true
		b.mu.Unlock()
		b.clear()
	}
	return n, err
}

// finish bounds, once the handler is done, net/http's discarding of what
// is left of a body that did not end.
func (b *idleBody) finish() {
	if b != nil {
		b.rearm()
	}
}

// rearm moves the deadline to timeout from now if the body has not ended.
func (b *idleBody) rearm() {
	b.mu.Lock()
	ended := b.ended
	b.mu.Unlock()
	if !ended {
		b.arm()
	}
}

func (b *idleBody) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.off {
		b.rc.SetReadDeadline(time.Time{})
	}
}

// Close bounds net/http's discarding of the rest of a body not read to its
// end (HTTP/1). Nothing reads the body after it (net/http then starts its
// own read of the connection, if the discarding reached the body's end):
// finish must not set the deadline again.
func (b *idleBody) Close() error {
	b.rearm()
	err := b.body.Close()
	b.mu.Lock()
	b.ended = true
	b.mu.Unlock()
	return err
}

// bound makes every read end by t at the latest, until release is
// called: what s3seal reads before it knows who the client is gets a
// total bound, not only an idle one, so that a trickle cannot hold it.
func (b *idleBody) bound(t time.Time) (release func()) {
	if b == nil {
		return func() {}
	}
	b.mu.Lock()
	b.until = t
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		b.until = time.Time{}
		b.mu.Unlock()
	}
}

// explain makes err, the failure of a request whose body timed out, a
// RequestTimeout, however the reader of the body reported it (an
// incomplete body, a malformed form, the request's context canceled by
// net/http once its read failed).
func (b *idleBody) explain(err error) error {
	if b == nil || err == nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timedOut {
		return errRequestTimeout(err)
	}
	return err
}

// isTimeout says err is a read deadline passing: os.ErrDeadlineExceeded
// from HTTP/1 connections and HTTP/2 streams alike.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
