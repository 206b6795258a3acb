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

// ErrStalled is the cause of a request to the store cancelled because it
// made no progress for Config.Timeout: no answer, or no body bytes sent or
// received. It is wrapped in ErrUnreachable when no answer came.
var ErrStalled = errors.New("store made no progress")

// watchdog cancels one request when it makes no progress for d. Progress
// is any body read, either way; a transfer that keeps moving is never cut,
// however long it takes in all.
type watchdog struct {
	d      time.Duration
	timer  *time.Timer
	cancel context.CancelCauseFunc
	once   sync.Once
}

// watch returns ctx bound to a new watchdog, which starts now.
func watch(ctx context.Context, d time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{d: d, cancel: cancel}
	w.timer = time.AfterFunc(d, func() { cancel(fmt.Errorf("%w for %s", ErrStalled, d)) })
	return ctx, w
}

func (w *watchdog) kick() { w.timer.Reset(w.d) }

// stop ends the watch and releases the request's context.
func (w *watchdog) stop() {
	w.once.Do(func() {
		w.timer.Stop()
		w.cancel(nil)
	})
}

// progress is a body whose reads kick the watchdog.
type progress struct {
	io.Reader
	w *watchdog
}

func (p progress) Read(b []byte) (int, error) {
	n, err := p.Reader.Read(b)
	if n > 0 {
		p.w.kick()
	}
	return n, err
}

// watchedBody is an answer's body: reads kick the watchdog, Close stops it,
// and a read cut by it says so.
type watchedBody struct {
	rc  io.ReadCloser
	ctx context.Context
	w   *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.w.kick()
	}
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), ErrStalled) {
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
			return nil, fmt.Errorf("%w: %w", ErrUnreachable, cause)
		}
		return nil, err
	}
	resp.Body = &watchedBody{rc: resp.Body, ctx: ctx, w: w}
	return resp, nil
}
