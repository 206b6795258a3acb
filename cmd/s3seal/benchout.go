package main

// What `s3seal bench` reads and writes: sizes, the progress bar, the table,
// bench.json and the SVG chart.

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// sizeUnits are the units --sizes accepts, matched case-insensitively.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
}

// parseSize reads "16MiB", "4k", "1000" and the like.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q: want a whole number with an optional unit (B, KiB, MiB, GiB)", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (want B, KiB, MiB, GiB)", s, strings.TrimSpace(s[i:]))
	}
	if n > maxBenchSize/unit {
		return 0, fmt.Errorf("%q is more than %s", s, formatSize(maxBenchSize))
	}
	return n * unit, nil
}

// parseSizes reads --sizes: distinct sizes from 1 byte to maxBenchSize,
// returned in ascending order.
func parseSizes(list string) ([]int64, error) {
	var out []int64
	for f := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		n, err := parseSize(f)
		if err != nil {
			return nil, err
		}
		if n < 1 {
			return nil, fmt.Errorf("%q: sizes start at 1 byte", strings.TrimSpace(f))
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%s is listed twice", formatSize(n))
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no sizes given")
	}
	slices.Sort(out)
	return out, nil
}

// formatSize names a size in the largest binary unit that divides it:
// 4096 is "4KiB", 1000 is "1000B". Labels and tables use it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		v    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// progress shows how far the benchmark is: a redrawn bar on a terminal,
// one line per finished cell otherwise (logs, CI, pipes).
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

func newProgress(w io.Writer, cells, count int, dur time.Duration) *progress {
	return &progress{w: w, tty: isTerminal(w), cells: cells, count: count, dur: dur}
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
	go func() {
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
	}()
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

func (p *progress) close() {}

// writeBenchTable prints the results, envelope and direct side by side per
// size, with the envelope/direct throughput ratio.
func writeBenchTable(w io.Writer, results []benchResult) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tmode\tobjects\tMB/s\tKMS calls/MiB\tp50 ms\tp99 ms\tenvelope/direct\t")
	for _, r := range results {
		ratio := ""
		if r.Mode == modeEnvelope {
			if d, ok := findResult(results, modeDirect, r.Size); ok && d.MBPerS > 0 {
				ratio = formatRatio(r.MBPerS / d.MBPerS)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", formatSize(r.Size), r.Mode, r.objects,
			formatNumber(r.MBPerS), formatNumber(r.KMSCallsPerMiB), formatNumber(r.P50Ms), formatNumber(r.P99Ms), ratio)
	}
	tw.Flush()
}

func findResult(results []benchResult, mode string, size int64) (benchResult, bool) {
	for _, r := range results {
		if r.Mode == mode && r.Size == size {
			return r, true
		}
	}
	return benchResult{}, false
}

func formatRatio(r float64) string {
	if r >= 10 {
		return formatNumber(math.Round(r)) + "×"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "×"
}

// formatNumber prints 3 significant digits below 100 and whole numbers with
// thousands separators above.
func formatNumber(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) < 0.01:
		return strconv.FormatFloat(v, 'g', 2, 64)
	case math.Abs(v) < 1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case math.Abs(v) < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case math.Abs(v) < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// axisNumber labels a decade: 0.01, 0.1, 1, 10, 1,000.
func axisNumber(v float64) string {
	if v >= 100 {
		return formatNumber(v)
	}
	if v >= 1 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// benchFile is bench.json.
type benchFile struct {
	Results []benchResult `json:"results"`
}

// writeBenchFiles writes DIR/bench.json and DIR/bench.svg.
func writeBenchFiles(dir string, results []benchResult, provider string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(benchFile{Results: results}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.svg"), benchChart(results, provider), 0o644)
}

// benchChart draws throughput by size for both modes.
func benchChart(results []benchResult, provider string) []byte {
	var sizes []int64
	for _, r := range results {
		if !slices.Contains(sizes, r.Size) {
			sizes = append(sizes, r.Size)
		}
	}
	slices.Sort(sizes)
	ch := chart{
		title:  "s3seal bench: envelope vs direct KMS encryption",
		xLabel: "object size (log scale)",
		yLabel: "throughput, MB/s (log scale)",
		sizes:  sizes,
	}
	switch provider {
	case providerKeyring:
		ch.subtitle = "key service: embedded keyring (no network round trip: comparison not meaningful)"
	case providerAWS:
		ch.subtitle = "key service: AWS KMS API; encrypt + decrypt round trip, plaintext MB/s"
	}
	for _, s := range []struct{ mode, color string }{{modeEnvelope, "#1f77b4"}, {modeDirect, "#d62728"}} {
		vals := make([]float64, len(sizes))
		for i, size := range sizes {
			if r, ok := findResult(results, s.mode, size); ok {
				vals[i] = r.MBPerS
			}
		}
		ch.series = append(ch.series, chartSeries{name: s.mode, color: s.color, values: vals})
	}
	ch.notes = make([]string, len(sizes))
	for i, size := range sizes {
		e, ok1 := findResult(results, modeEnvelope, size)
		d, ok2 := findResult(results, modeDirect, size)
		if ok1 && ok2 && d.MBPerS > 0 {
			ch.notes[i] = "envelope/direct " + formatRatio(e.MBPerS/d.MBPerS)
		}
	}
	return ch.svg()
}

// chart is a line chart of values by object size, both axes logarithmic.
type chart struct {
	title, subtitle string
	xLabel, yLabel  string
	sizes           []int64
	series          []chartSeries
	notes           []string // per size, under its tick label; may be nil
}

type chartSeries struct {
	name, color string
	dashed      bool
	values      []float64 // per size; 0 or less means no point
}

// svg renders the chart as a standalone SVG document.
func (c chart) svg() []byte {
	const (
		width, height            = 860, 540
		left, right, top, bottom = 96, 56, 78, 96
	)
	pw, ph := float64(width-left-right), float64(height-top-bottom)

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range c.series {
		for _, v := range s.values {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	y := func(v float64) float64 { return float64(top) + ph*(1-(math.Log10(v)-dlo)/(dhi-dlo)) }

	xlo, xhi := 0.0, 1.0
	if len(c.sizes) > 0 {
		xlo, xhi = math.Log2(float64(c.sizes[0])), math.Log2(float64(c.sizes[len(c.sizes)-1]))
	}
	pad := math.Max((xhi-xlo)*0.06, 0.5)
	xlo, xhi = xlo-pad, xhi+pad
	x := func(size int64) float64 { return float64(left) + pw*(math.Log2(float64(size))-xlo)/(xhi-xlo) }

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...); b.WriteByte('\n') }
	esc := html.EscapeString
	p(`<?xml version="1.0" encoding="UTF-8"?>`)
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">`, width, height, width, height)
	p(`<title>%s</title>`, esc(c.title))
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>`)
	p(`<text x="%d" y="30" font-size="18" font-weight="bold" fill="#222">%s</text>`, left, esc(c.title))
	if c.subtitle != "" {
		p(`<text x="%d" y="52" font-size="13" fill="#555">%s</text>`, left, esc(c.subtitle))
	}

	// Horizontal grid: decades labelled, 2 and 5 between them faint.
	p(`<g class="y-grid">`)
	for d := dlo; d <= dhi; d++ {
		v := math.Pow(10, d)
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#bbb" stroke-width="1"/>`, left, y(v), width-right, y(v))
		p(`<text x="%d" y="%.1f" text-anchor="end" fill="#333">%s</text>`, left-8, y(v)+4, esc(axisNumber(v)))
		if d < dhi {
			for _, m := range []float64{2, 5} {
				p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e6e6e6" stroke-width="1"/>`, left, y(v*m), width-right, y(v*m))
			}
		}
	}
	p(`</g>`)
	// Vertical ticks at each measured size.
	p(`<g class="x-axis">`)
	for i, s := range c.sizes {
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee" stroke-width="1"/>`, x(s), top, x(s), height-bottom)
		p(`<text x="%.1f" y="%d" text-anchor="middle" fill="#333">%s</text>`, x(s), height-bottom+20, esc(formatSize(s)))
		if i < len(c.notes) && c.notes[i] != "" {
			p(`<text x="%.1f" y="%d" text-anchor="middle" font-size="12" fill="#666">%s</text>`, x(s), height-bottom+38, esc(c.notes[i]))
		}
	}
	p(`</g>`)
	p(`<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444" stroke-width="1"/>`, left, top, pw, ph)
	p(`<text class="x-label" x="%.1f" y="%d" text-anchor="middle" fill="#222">%s</text>`, float64(left)+pw/2, height-18, esc(c.xLabel))
	p(`<text class="y-label" x="%d" y="%.1f" text-anchor="middle" fill="#222" transform="rotate(-90 %d %.1f)">%s</text>`, 22, float64(top)+ph/2, 22, float64(top)+ph/2, esc(c.yLabel))

	for _, s := range c.series {
		var pts []string
		for i, v := range s.values {
			if v > 0 && i < len(c.sizes) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(c.sizes[i]), y(v)))
			}
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		p(`<g class="series" data-series="%s">`, esc(s.name))
		p(`<polyline data-series="%s" points="%s" fill="none" stroke="%s" stroke-width="2.5"%s/>`, esc(s.name), strings.Join(pts, " "), s.color, dash)
		for i, v := range s.values {
			if v <= 0 || i >= len(c.sizes) {
				continue
			}
			p(`<circle data-series="%s" cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s %s: %s MB/s</title></circle>`,
				esc(s.name), x(c.sizes[i]), y(v), s.color, esc(s.name), esc(formatSize(c.sizes[i])), esc(formatNumber(v)))
			// The label goes above the point, or below it when another
			// series is higher at this size, so close points stay legible.
			dy := -9.0
			for _, o := range c.series {
				if i < len(o.values) && o.values[i] > v {
					dy = 18
				}
			}
			p(`<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="%s">%s</text>`, x(c.sizes[i]), y(v)+dy, s.color, esc(formatNumber(v)))
		}
		p(`</g>`)
	}

	// Legend, top left inside the plot: throughput grows with size, so
	// that corner is the emptiest.
	lh := 20
	lw := 0
	for _, s := range c.series {
		lw = max(lw, 8*len(s.name))
	}
	lx, ly := left+10, top+10
	p(`<g class="legend">`)
	p(`<rect x="%d" y="%d" width="%d" height="%d" fill="#fff" fill-opacity="0.9" stroke="#ccc"/>`, lx, ly, lw+46, lh*len(c.series)+10)
	for i, s := range c.series {
		yy := ly + 15 + i*lh
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"%s/>`, lx+8, yy, lx+32, yy, s.color, dash)
		p(`<text x="%d" y="%d" fill="#222">%s</text>`, lx+38, yy+4, esc(s.name))
	}
	p(`</g>`)
	p(`</svg>`)
	return []byte(b.String())
}
