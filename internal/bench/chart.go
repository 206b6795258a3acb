package bench

import (
	"slices"
	"strings"
)

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
	dash        string    // the stroke-dasharray; "" is a solid line
	values      []float64 // per size; 0 or less means no point
	details     []string  // per size, said after the value in the point's tooltip; may be nil
}

// Line styles.
const (
	solid  = ""
	dashed = "6 4"
	dotted = "2 3"
)

// throughputChart is a chart of MB/s by size, with the axes both runs use;
// series and notes are the caller's.
func throughputChart(title, subtitle string, sizes []int64) chart {
	sizes = slices.Clone(sizes)
	slices.Sort(sizes)
	return chart{
		title:    title,
		subtitle: subtitle,
		xLabel:   "object size (log scale)",
		yLabel:   "throughput, MB/s (log scale)",
		sizes:    sizes,
	}
}

// addSeries adds a series whose value at each size is what mbPerS finds
// there (0, no point, where it finds none), with the details it gives for
// the point's tooltip.
func (c *chart) addSeries(name, color, dash string, mbPerS func(size int64) (v float64, details string, ok bool)) {
	vals, details := make([]float64, len(c.sizes)), make([]string, len(c.sizes))
	for i, size := range c.sizes {
		if v, d, ok := mbPerS(size); ok {
			vals[i], details[i] = v, d
		}
	}
	c.series = append(c.series, chartSeries{name: name, color: color, dash: dash, values: vals, details: details})
}

// kmsChart draws throughput by size for both modes, with the
// envelope/direct ratio under each size.
func kmsChart(results []Result, subtitle string) []byte {
	c := throughputChart("s3seal bench: envelope vs direct KMS encryption", subtitle,
		sizesOf(results, func(r Result) int64 { return r.Size }))
	for _, s := range []struct{ mode, color string }{{modeEnvelope, "#1f77b4"}, {modeDirect, "#d62728"}} {
		c.addSeries(s.mode, s.color, solid, func(size int64) (float64, string, bool) {
			r, ok := findResult(results, s.mode, size)
			return r.MBPerS, "", ok
		})
	}
	c.notes = make([]string, len(c.sizes))
	for i, size := range c.sizes {
		e, ok1 := findResult(results, modeEnvelope, size)
		d, ok2 := findResult(results, modeDirect, size)
		if ok1 && ok2 && d.MBPerS > 0 {
			c.notes[i] = "envelope/direct " + formatRatio(e.MBPerS/d.MBPerS)
		}
	}
	return c.svg()
}

// targetChart draws PUT and GET throughput by size: through s3seal
// (solid), through the pass-through hop (dotted) and direct (dashed). A
// point's tooltip adds the hop's CPU per GiB and s3seal's KMS calls.
func targetChart(results []TargetResult) []byte {
	c := throughputChart("s3seal bench --target: s3seal vs pass-through vs direct",
		"whole-object PUT and GET, MB/s: through s3seal (solid), a pass-through hop (dotted), direct (dashed)", sizesOf(results, func(r TargetResult) int64 { return r.Size }))
	for _, op := range []struct{ name, color string }{{"put", "#1f77b4"}, {"get", "#2ca02c"}} {
		for _, s := range []struct{ path, dash string }{{pathS3seal, solid}, {pathPassThrough, dotted}, {pathDirect, dashed}} {
			c.addSeries(s.path+" "+op.name, op.color, s.dash, func(size int64) (float64, string, bool) {
				r, ok := findTarget(results, s.path, op.name, size)
				return r.MBPerS, costDetails(r), ok
			})
		}
	}
	return c.svg()
}

// costDetails says a result's cost figures, where measured: "CPU 1.19
// s/GiB, 1.00 KMS calls/object".
func costDetails(r TargetResult) string {
	var parts []string
	if r.HopCPUSPerGiB != nil {
		parts = append(parts, "CPU "+formatNumber(*r.HopCPUSPerGiB)+" s/GiB")
	}
	if r.KMSCallsPerObject != nil {
		parts = append(parts, formatNumber(*r.KMSCallsPerObject)+" KMS calls/object")
	}
	return strings.Join(parts, ", ")
}
