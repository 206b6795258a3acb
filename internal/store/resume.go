package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
)

// Resumes is how many times the reads of one client request may resume a
// broken store answer; one budget is shared by all of them, so a read of
// many parts cannot multiply it. The zero value allows none.
type Resumes struct{ left atomic.Int32 }

// NewResumes allows n resumes.
func NewResumes(n int) *Resumes {
	r := &Resumes{}
	r.left.Store(int32(n))
	return r
}

func (r *Resumes) take() bool {
	if r == nil {
		return false
	}
	return r.left.Add(-1) >= 0
}

// Resume makes body, an answer that carries stored bytes [off, off+n) of o,
// outlast a broken connection: when a read fails before the last of those
// bytes (the connection reset or cut short, a stall, the store ending
// early), the rest is asked for with a ranged GET pinned to etag
// (If-Match), while budget allows. Bytes already read are not asked for
// again.
//
// Nothing is believed on this account: the caller authenticates the stored
// bytes chunk by chunk, bytes from either answer alike, so an answer with
// another object's bytes under the same ETag fails authentication. A read
// that cannot resume returns the failure that ended it; the caller's own
// cancellation (its client gone) is never resumed. onResume, if set, is
// told of each attempt and whether it got an answer.
//
// A read that ends for good says why in terms the caller can classify:
// a broken connection (a reset, a cut, a stall) is ErrUnreachable and never
// looks like an end of the stored bytes (io.ErrUnexpectedEOF), which a
// decrypting caller would take for a truncated object; an answer that ended
// cleanly before its span did is io.ErrUnexpectedEOF (the store said that
// was all); a resume the store refused is the resume's failure (ErrChanged,
// ErrRangeNotSatisfiable, ErrUnexpectedAnswer for an error status, whose
// answer is closed here).
func (c *Client) Resume(ctx context.Context, o Object, etag string, off, n int64, body io.ReadCloser, budget *Resumes, onResume func(ok bool)) io.ReadCloser {
	if etag == "" || strings.HasPrefix(etag, "W/") {
		// Nothing to pin a second request to: a weak ETag vouches for
		// equivalent content, not for the same bytes.
		budget = nil
	}
	return &resumer{c: c, ctx: ctx, o: o, etag: etag, pos: off, end: off + n, body: body, budget: budget, onResume: onResume}
}

type resumer struct {
	c        *Client
	ctx      context.Context
	o        Object
	etag     string
	pos, end int64 // the next stored byte and the end of the span
	// body is replaced by Read (resume) and closed by Close, which may run
	// on another goroutine (a transport reading a copy's source after the
	// store answered): mu guards both, and a closed read stays closed.
	mu       sync.Mutex
	body     io.ReadCloser
	closed   bool
	failed   error // a failure of body not yet acted on (bytes came with it)
	ended    error // why the read ended for good
	budget   *Resumes
	onResume func(ok bool)
}

func (r *resumer) Read(p []byte) (int, error) {
	for {
		switch {
		case r.ended != nil:
			return 0, r.ended
		case r.pos >= r.end:
			return 0, io.EOF
		case r.failed != nil:
			if r.ended = r.resume(); r.ended != nil {
				return 0, r.ended
			}
		}
		if int64(len(p)) > r.end-r.pos {
			p = p[:r.end-r.pos]
		}
		k, err := r.body.Read(p)
		r.pos += int64(k)
		switch {
		case err == io.EOF && r.pos < r.end:
			err = errEndedEarly // the store ended early
		case err == io.EOF:
			return k, nil // the span's end is reported by the next Read
		}
		if err != nil {
			r.failed = err
		}
		if k > 0 || err == nil {
			return k, nil
		}
	}
}

// errEndedEarly: an answer that ended cleanly before the last byte of its
// span, as if the stored bytes ended there.
var errEndedEarly = fmt.Errorf("the store's answer ended early: %w", io.ErrUnexpectedEOF)

// resume replaces the failed body with the rest of the span, or returns
// why it cannot.
func (r *resumer) resume() error {
	failed := r.failed
	if r.ctx.Err() != nil {
		return failed // the caller gave up: nobody reads on
	}
	if !r.budget.take() {
		return r.broken(failed)
	}
	r.mu.Lock()
	closed := r.closed
	r.body.Close()
	r.mu.Unlock()
	if closed {
		return fmt.Errorf("%w (the read was closed)", failed)
	}
	body, err := r.c.GetRange(r.ctx, r.o, r.etag, r.pos, r.end-r.pos)
	if r.onResume != nil {
		r.onResume(err == nil)
	}
	if err != nil {
		// Keep a closed body in place for Close; the resume's failure is
		// what ended the read, the original one is only told.
		var f *Failure
		switch {
		case errors.As(err, &f):
			f.Resp.Body.Close() // nobody relays it: the read is under way
			err = fmt.Errorf("store answered %d: %w", f.Resp.StatusCode, ErrUnexpectedAnswer)
		case errors.Is(err, io.ErrUnexpectedEOF):
			// The whole object, sent for the range, broke off before it.
			err = r.broken(err)
		}
		return fmt.Errorf("resuming at stored byte %d: %w (after: %v)", r.pos, err, failed)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		body.Close()
		return fmt.Errorf("%w (closed while resuming at stored byte %d)", failed, r.pos)
	}
	r.body, r.failed = body, nil
	return nil
}

// broken is why a read ends that failed and cannot resume: an answer that
// ended cleanly too early stays an early end, anything else is a broken
// connection (ErrUnreachable), whatever error the transport reported it
// with (io.ErrUnexpectedEOF for a body cut short of its Content-Length).
func (r *resumer) broken(failed error) error {
	if failed == errEndedEarly || errors.Is(failed, ErrUnreachable) {
		return failed
	}
	return fmt.Errorf("%w: the store's answer broke off at stored byte %d of %d: %v", ErrUnreachable, r.pos, r.end, failed)
}

func (r *resumer) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.body.Close()
}
