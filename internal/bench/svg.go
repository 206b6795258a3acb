package bench

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// The SVG's size and the margins around the plot, in pixels.
const (
	svgWidth, svgHeight                              = 860, 540
	marginLeft, marginRight, marginTop, marginBottom = 96, 56, 78, 96
)

// plot maps sizes and values to SVG coordinates: log2 of the size across,
// whole decades of the value up.
type plot struct {
	w, h     float64 // of the plot area
	dlo, dhi float64 // the lowest and highest decade, log10
	xlo, xhi float64 // log2 of the sizes at the left and right edges
}

func newPlot(c chart) plot {
	p := plot{w: float64(svgWidth - marginLeft - marginRight), h: float64(svgHeight - marginTop - marginBottom)}
	lo, hi := c.valueRange()
	p.dlo, p.dhi = math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if p.dhi <= p.dlo {
		p.dhi = p.dlo + 1
	}
	p.xlo, p.xhi = 0.0, 1.0
	if len(c.sizes) > 0 {
		p.xlo, p.xhi = math.Log2(float64(c.sizes[0])), math.Log2(float64(c.sizes[len(c.sizes)-1]))
	}
	pad := math.Max((p.xhi-p.xlo)*0.06, 0.5)
	p.xlo, p.xhi = p.xlo-pad, p.xhi+pad
	return p
}

// valueRange is the smallest and largest value shown; 1 and 10 when none is.
func (c chart) valueRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range c.series {
		for _, v := range s.values {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return 1, 10
	}
	return lo, hi
}

func (p plot) x(size int64) float64 {
	return float64(marginLeft) + p.w*(math.Log2(float64(size))-p.xlo)/(p.xhi-p.xlo)
}

func (p plot) y(v float64) float64 {
	return float64(marginTop) + p.h*(1-(math.Log10(v)-p.dlo)/(p.dhi-p.dlo))
}

// svgDoc is an SVG document being written, one element a line.
type svgDoc struct{ strings.Builder }

func (d *svgDoc) p(format string, args ...any) {
	fmt.Fprintf(d, format, args...)
	d.WriteByte('\n')
}

var esc = html.EscapeString

// svg renders the chart as a standalone SVG document.
func (c chart) svg() []byte {
	p := newPlot(c)
	var d svgDoc
	c.header(&d)
	c.yGrid(&d, p)
	c.xAxis(&d, p)
	c.frame(&d, p)
	for _, s := range c.series {
		c.drawSeries(&d, p, s)
	}
	c.legend(&d)
	d.p(`</svg>`)
	return []byte(d.String())
}

func (c chart) header(d *svgDoc) {
	d.p(`<?xml version="1.0" encoding="UTF-8"?>`)
	d.p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">`, svgWidth, svgHeight, svgWidth, svgHeight)
	d.p(`<title>%s</title>`, esc(c.title))
	d.p(`<rect width="100%%" height="100%%" fill="#ffffff"/>`)
	d.p(`<text x="%d" y="30" font-size="18" font-weight="bold" fill="#222">%s</text>`, marginLeft, esc(c.title))
	if c.subtitle != "" {
		d.p(`<text x="%d" y="52" font-size="13" fill="#555">%s</text>`, marginLeft, esc(c.subtitle))
	}
}

// yGrid draws the horizontal grid: decades labelled, 2 and 5 between them
// faint.
func (c chart) yGrid(d *svgDoc, p plot) {
	d.p(`<g class="y-grid">`)
	for dec := p.dlo; dec <= p.dhi; dec++ {
		v := math.Pow(10, dec)
		d.p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#bbb" stroke-width="1"/>`, marginLeft, p.y(v), svgWidth-marginRight, p.y(v))
		d.p(`<text x="%d" y="%.1f" text-anchor="end" fill="#333">%s</text>`, marginLeft-8, p.y(v)+4, esc(axisNumber(v)))
		if dec < p.dhi {
			for _, m := range []float64{2, 5} {
				d.p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e6e6e6" stroke-width="1"/>`, marginLeft, p.y(v*m), svgWidth-marginRight, p.y(v*m))
			}
		}
	}
	d.p(`</g>`)
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

// xAxis draws a vertical tick at each measured size, with its note.
func (c chart) xAxis(d *svgDoc, p plot) {
	d.p(`<g class="x-axis">`)
	for i, s := range c.sizes {
		d.p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee" stroke-width="1"/>`, p.x(s), marginTop, p.x(s), svgHeight-marginBottom)
		d.p(`<text x="%.1f" y="%d" text-anchor="middle" fill="#333">%s</text>`, p.x(s), svgHeight-marginBottom+20, esc(FormatSize(s)))
		if i < len(c.notes) && c.notes[i] != "" {
			d.p(`<text x="%.1f" y="%d" text-anchor="middle" font-size="12" fill="#666">%s</text>`, p.x(s), svgHeight-marginBottom+38, esc(c.notes[i]))
		}
	}
	d.p(`</g>`)
}

// frame draws the plot's border and the axis labels.
func (c chart) frame(d *svgDoc, p plot) {
	midY := float64(marginTop) + p.h/2
	d.p(`<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444" stroke-width="1"/>`, marginLeft, marginTop, p.w, p.h)
	d.p(`<text class="x-label" x="%.1f" y="%d" text-anchor="middle" fill="#222">%s</text>`, float64(marginLeft)+p.w/2, svgHeight-18, esc(c.xLabel))
	d.p(`<text class="y-label" x="%d" y="%.1f" text-anchor="middle" fill="#222" transform="rotate(-90 %d %.1f)">%s</text>`, 22, midY, 22, midY, esc(c.yLabel))
}

// drawSeries draws one series: its line, and a labelled point per size.
func (c chart) drawSeries(d *svgDoc, p plot, s chartSeries) {
	var pts []string
	for i, v := range s.values {
		if v > 0 && i < len(c.sizes) {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.x(c.sizes[i]), p.y(v)))
		}
	}
	d.p(`<g class="series" data-series="%s">`, esc(s.name))
	d.p(`<polyline data-series="%s" points="%s" fill="none" stroke="%s" stroke-width="2.5"%s/>`, esc(s.name), strings.Join(pts, " "), s.color, s.dashAttr())
	for i, v := range s.values {
		if v <= 0 || i >= len(c.sizes) {
			continue
		}
		x, y := p.x(c.sizes[i]), p.y(v)
		tip := fmt.Sprintf("%s %s: %s MB/s", s.name, FormatSize(c.sizes[i]), formatNumber(v))
		if i < len(s.details) && s.details[i] != "" {
			tip += "; " + s.details[i]
		}
		d.p(`<circle data-series="%s" cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s</title></circle>`,
			esc(s.name), x, y, s.color, esc(tip))
		d.p(`<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="%s">%s</text>`, x, y+c.labelOffset(i, v), s.color, esc(formatNumber(v)))
	}
	d.p(`</g>`)
}

// labelOffset places a point's label above it, or below it when another
// series is higher at this size, so close points stay legible.
func (c chart) labelOffset(i int, v float64) float64 {
	for _, o := range c.series {
		if i < len(o.values) && o.values[i] > v {
			return 18
		}
	}
	return -9
}

// dashAttr is the stroke attribute of a dashed or dotted series.
func (s chartSeries) dashAttr() string {
	if s.dash != "" {
		return ` stroke-dasharray="` + s.dash + `"`
	}
	return ""
}

// legend goes top left inside the plot: throughput grows with size, so
// that corner is the emptiest.
func (c chart) legend(d *svgDoc) {
	const lh = 20
	lw := 0
	for _, s := range c.series {
		lw = max(lw, 8*len(s.name))
	}
	lx, ly := marginLeft+10, marginTop+10
	d.p(`<g class="legend">`)
	d.p(`<rect x="%d" y="%d" width="%d" height="%d" fill="#fff" fill-opacity="0.9" stroke="#ccc"/>`, lx, ly, lw+46, lh*len(c.series)+10)
	for i, s := range c.series {
		yy := ly + 15 + i*lh
		d.p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"%s/>`, lx+8, yy, lx+32, yy, s.color, s.dashAttr())
		d.p(`<text x="%d" y="%d" fill="#222">%s</text>`, lx+38, yy+4, esc(s.name))
	}
	d.p(`</g>`)
}
