package store

import (
	"context"
	"fmt"
	"io"
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
func (c *Client) Resume(ctx context.Context, o Object, etag string, off, n int64, body io.ReadCloser, budget *Resumes, onResume func(ok bool)) io.ReadCloser {
	if etag == "" {
		budget = nil // nothing to pin a second request to
	}
	return &resumer{c: c, ctx: ctx, o: o, etag: etag, pos: off, end: off + n, body: body, budget: budget, onResume: onResume}
}

type resumer struct {
	c        *Client
	ctx      context.Context
	o        Object
	etag     string
	pos, end int64 // the next stored byte and the end of the span
	body     io.ReadCloser
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
			err = io.ErrUnexpectedEOF // the store ended early
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

// resume replaces the failed body with the rest of the span, or returns
// why it cannot.
func (r *resumer) resume() error {
	failed := r.failed
	if r.ctx.Err() != nil || !r.budget.take() {
		return failed
	}
	r.body.Close()
	body, err := r.c.GetRange(r.ctx, r.o, r.etag, r.pos, r.end-r.pos)
	if r.onResume != nil {
		r.onResume(err == nil)
	}
	if err != nil {
		// Keep a closed body in place for Close; the original failure is
		// what ended the read, the resume's says why it stays ended.
		return fmt.Errorf("%w (resuming at stored byte %d: %w)", failed, r.pos, err)
	}
	r.body, r.failed = body, nil
	return nil
}

func (r *resumer) Close() error {
	return r.body.Close()
}
