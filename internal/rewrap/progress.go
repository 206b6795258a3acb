package rewrap

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/term"
)

// Metrics is told about a run as it goes; *metrics.Rewrap implements it.
type Metrics interface {
	ObserveListed(size int64)
	ObserveObject(outcome string, size int64)
}

// Progress is an Observer that shows a run to a person — on a terminal a
// line redrawn a few times a second (objects, bytes, rate, ETA), otherwise
// (logs, CI, pipes) a line every Every objects — and passes each event on
// to its Metrics.
type Progress struct {
	w        io.Writer
	terminal bool
	every    int64
	metrics  Metrics // nil: none
	start    time.Time

	listed, listedBytes, done, doneBytes atomic.Int64
	listingDone                          atomic.Bool

	mu      sync.Mutex // serializes writes to w
	stop    chan struct{}
	stopped chan struct{}
}

// NewProgress shows a run on w, redrawn when w is a terminal, else a line
// every `every` objects (< 1 means 1000).
func NewProgress(w io.Writer, every int, m Metrics) *Progress {
	f, ok := w.(*os.File)
	p := &Progress{w: w, terminal: ok && term.IsTerminal(int(f.Fd())), every: int64(every), metrics: m, start: time.Now()}
	if p.every < 1 {
		p.every = 1000
	}
	if p.terminal {
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.redraw()
	}
	return p
}

func (p *Progress) Listed(size int64) {
	p.listed.Add(1)
	p.listedBytes.Add(size)
	if p.metrics != nil {
		p.metrics.ObserveListed(size)
	}
}

func (p *Progress) ListingDone() { p.listingDone.Store(true) }

func (p *Progress) Finished(r Result) {
	n := p.done.Add(1)
	p.doneBytes.Add(r.Size)
	if p.metrics != nil {
		p.metrics.ObserveObject(string(r.Outcome), r.Size)
	}
	if !p.terminal && n%p.every == 0 {
		p.mu.Lock()
		fmt.Fprintf(p.w, "rewrap: %s\n", p.line())
		p.mu.Unlock()
	}
}

// Close stops redrawing and clears the line.
func (p *Progress) Close() {
	if !p.terminal {
		return
	}
	close(p.stop)
	<-p.stopped
	fmt.Fprint(p.w, "\r\033[K")
}

func (p *Progress) redraw() {
	defer close(p.stopped)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		fmt.Fprintf(p.w, "\r\033[K%s", p.line())
		p.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// line is e.g. "1200/5000 objects  1.2 GiB/4.0 GiB  35.2 MiB/s  ETA 1m20s";
// while listing goes on the totals are "5000+" and there is no ETA.
func (p *Progress) line() string {
	done, doneBytes := p.done.Load(), p.doneBytes.Load()
	listed, listedBytes := p.listed.Load(), p.listedBytes.Load()
	elapsed := time.Since(p.start).Seconds()
	rate := float64(doneBytes) / max(elapsed, 1e-3)
	more, eta := "+", "listing"
	if p.listingDone.Load() {
		more, eta = "", "ETA "+etaText(done, listed, doneBytes, listedBytes, elapsed)
	}
	return fmt.Sprintf("%d/%d%s objects  %s/%s%s  %s/s  %s",
		done, listed, more, sizeText(doneBytes), sizeText(listedBytes), more, sizeText(int64(rate)), eta)
}

// etaText estimates the time left from the bytes (or, for small objects,
// the objects) done so far, whichever is further from done.
func etaText(done, total, doneBytes, totalBytes int64, elapsed float64) string {
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	if totalBytes > 0 {
		frac = min(frac, float64(doneBytes)/float64(totalBytes))
	}
	if frac <= 0 {
		return "?"
	}
	left := time.Duration(elapsed * (1 - frac) / frac * float64(time.Second))
	return left.Round(time.Second).String()
}

func sizeText(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }
