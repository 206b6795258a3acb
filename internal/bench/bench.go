// Package bench is `s3seal bench`: envelope encryption against direct KMS
// encryption with a key service (RunKMS), and the proxy's end-to-end cost
// against its store and against a plain pass-through hop, CPU and KMS calls
// included (RunTarget). Each run measures cells (a mode or path, an
// operation, a size), prints a table, optionally writes JSON and an SVG
// chart, and publishes the cells as gauges.
//
// The caller builds what the runs measure (the key service, the endpoints)
// and the registry the results go to; this package reads no configuration.
package bench

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/s3seal/s3seal/metrics"
)

// Options say how much each cell runs and where the results go; both runs
// take them.
type Options struct {
	Sizes       []int64       // object sizes, ascending (ParseSizes)
	Duration    time.Duration // how long each cell runs, when Count is 0
	Count       int           // objects per cell instead of Duration
	Concurrency int           // objects in flight at once

	Stdout   io.Writer      // the table and the names of the files written
	Progress io.Writer      // the progress bar or lines (stderr)
	Out      string         // directory for the JSON and SVG files; "" writes none
	Gauges   *metrics.Bench // publishes each cell; required
}

// worker is one worker's reusable buffers.
type worker struct {
	ct, pt bytes.Buffer
	blobs  []kms.Wrapped
	buf    []byte // --target's GETs read through it
}

// job is what a cell measures, once per object: a round trip or a request.
type job func(ctx context.Context, w *worker) error

// cell is one cell's run: what its workers share.
type cell struct {
	o      Options
	prog   *progress
	start  time.Time
	cancel context.CancelFunc
	issued atomic.Int64

	mu  sync.Mutex
	lat []time.Duration
	err error // the first
}

// runCell runs j on o.Concurrency workers, o.Count times in all or,
// without a count, for o.Duration (at least once), and returns each run's
// latency and the wall time until the last one ended. The first error stops
// the cell.
func runCell(ctx context.Context, o Options, prog *progress, j job) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &cell{o: o, prog: prog, start: time.Now(), cancel: cancel}
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() { c.work(ctx, j) })
	}
	wg.Wait()
	elapsed := time.Since(c.start)
	if c.err == nil && ctx.Err() != nil {
		c.err = ctx.Err()
	}
	return c.lat, elapsed, c.err
}

// next reports whether another run is due.
func (c *cell) next(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	n := c.issued.Add(1)
	if c.o.Count > 0 {
		return n <= int64(c.o.Count)
	}
	return n == 1 || time.Since(c.start) < c.o.Duration
}

// work is one worker: runs j until no run is due or one fails.
func (c *cell) work(ctx context.Context, j job) {
	w := &worker{}
	for c.next(ctx) {
		t0 := time.Now()
		err := j(ctx, w)
		d := time.Since(t0)
		c.mu.Lock()
		if err != nil {
			if c.err == nil {
				c.err = err
			}
			c.mu.Unlock()
			c.cancel()
			return
		}
		c.lat = append(c.lat, d)
		c.mu.Unlock()
		c.prog.add(1)
	}
}
