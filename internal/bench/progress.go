package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress shows how far a run is: a redrawn bar on a terminal, one line
// per finished cell otherwise (logs, CI, pipes).
type progress struct {
	w     io.Writer
	tty   bool
	cells int
	count int
	dur   time.Duration

	done atomic.Int64

	mu      sync.Mutex
	cell    int
	label   string
	started time.Time
	stop    chan struct{}
	stopped chan struct{}
}

// newProgress is the display of a run of cells cells, each of o.Count
// objects or o.Duration long.
func newProgress(o Options, cells int) *progress {
	return &progress{w: o.Progress, tty: isTerminal(o.Progress), cells: cells, count: o.Count, dur: o.Duration}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// start begins the next cell; on a terminal the bar is redrawn until finish.
func (p *progress) start(label string) {
	p.mu.Lock()
	p.cell++
	p.label = label
	p.started = time.Now()
	p.done.Store(0)
	p.mu.Unlock()
	if !p.tty {
		return
	}
	p.stop, p.stopped = make(chan struct{}), make(chan struct{})
	go p.redraw()
}

// redraw draws the bar every 100ms until stop closes.
func (p *progress) redraw() {
	defer close(p.stopped)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		p.draw()
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

func (p *progress) add(n int) { p.done.Add(int64(n)) }

// bar renders the current state, e.g.
// "[########------------]  40%  3/8  direct   64KiB  12 objects".
func (p *progress) bar() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := p.done.Load()
	within := 0.0
	if p.count > 0 {
		within = float64(done) / float64(p.count)
	} else if p.dur > 0 {
		within = time.Since(p.started).Seconds() / p.dur.Seconds()
	}
	within = math.Min(within, 0.99)
	frac := (float64(p.cell-1) + within) / float64(max(p.cells, 1))
	const width = 24
	full := int(frac * width)
	return fmt.Sprintf("[%s%s] %3.0f%%  %d/%d  %s  %d objects",
		strings.Repeat("#", full), strings.Repeat("-", width-full), frac*100, p.cell, p.cells, p.label, done)
}

func (p *progress) draw() { fmt.Fprintf(p.w, "\r\033[K%s", p.bar()) }

// finish ends the current cell; line (if any) stays on screen.
func (p *progress) finish(line string) {
	if p.tty && p.stop != nil {
		close(p.stop)
		<-p.stopped
		p.stop = nil
		fmt.Fprint(p.w, "\r\033[K")
	}
	if line != "" {
		fmt.Fprintf(p.w, "bench: %s\n", line)
	}
}
