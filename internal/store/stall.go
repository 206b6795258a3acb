package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// ErrStalled is the cause of a request to the store cancelled because the
// store made no progress for Config.Timeout while s3seal waited on it. It
// is always wrapped with ErrUnreachable.
var ErrStalled = errors.New("store made no progress")

// slowAnswer bounds the wait for the answer to a request the store works
// on before it answers (Request.SlowAnswer): a store copying gigabytes for
// a CompleteMultipartUpload or a copy sends nothing meanwhile.
const slowAnswer = 15 * time.Minute

// watchdog cancels one request when the store makes no progress for d
// while s3seal waits on it: for its answer, for it to take the next body
// bytes, or for the next bytes of its answer's body. Time s3seal spends
// elsewhere — waiting on its client, or on the key service, with the
// answer held unread — is not the store's and does not count.
type watchdog struct {
	d, answer time.Duration // answer: the bound on the wait for the answer
	timer     *time.Timer
	cancel    context.CancelCauseFunc

	mu       sync.Mutex
	answered bool // the answer's headers came: the upload no longer arms
	stopped  bool
}

// watch returns ctx bound to a new watchdog, armed for d.
func watch(ctx context.Context, d, answer time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{d: d, answer: answer, cancel: cancel}
	w.timer = time.AfterFunc(d, func() { cancel(fmt.Errorf("%w: %w", ErrUnreachable, ErrStalled)) })
	return ctx, w
}

// arm starts the clock for d, unless the watch ended or upload is set and
// the answer came (the transport may read on after it).
func (w *watchdog) arm(d time.Duration, upload bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped && !(upload && w.answered) {
		w.timer.Reset(d)
	}
}

func (w *watchdog) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Stop()
}

// gotAnswer stops the clock: the answer's body arms it when it is read.
func (w *watchdog) gotAnswer() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answered = true
	w.timer.Stop()
}

// stop ends the watch and releases the request's context.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.stopped = true
		w.timer.Stop()
		w.cancel(nil)
	}
}

// progress is an upload body: the clock stops while its source is read
// (that is the client's time) and runs while the transport sends what it
// read to the store; after the last byte, it runs for the answer.
type progress struct {
	io.Reader
	w *watchdog
}

func (p progress) Read(b []byte) (int, error) {
	p.w.disarm()
	n, err := p.Reader.Read(b)
	if err == io.EOF {
		p.w.arm(p.w.answer, true)
	} else {
		p.w.arm(p.w.d, true)
	}
	return n, err
}

// watchedBody is an answer's body: the clock runs while a read waits on
// the store, and Close ends the watch.
type watchedBody struct {
	rc  io.ReadCloser
	ctx context.Context
	w   *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.w.arm(b.w.d, false)
	n, err := b.rc.Read(p)
	b.w.disarm()
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), ErrStalled) {
		// As unreachable as no answer at all: a 503 when no bytes went to
		// the client yet, never blamed on the object.
		err = fmt.Errorf("reading the store's answer: %w", context.Cause(b.ctx))
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.w.stop()
	return err
}

// sendWatched sends req, built on ctx from watch, under w: the answer's
// body carries the watch on, and the watch ends with it.
func (c *Client) sendWatched(ctx context.Context, req *http.Request, w *watchdog) (*http.Response, error) {
	resp, err := c.send(req)
	if err != nil {
		w.stop()
		if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
			return nil, cause
		}
		return nil, err
	}
	w.gotAnswer()
	resp.Body = &watchedBody{rc: resp.Body, ctx: ctx, w: w}
	return resp, nil
}
