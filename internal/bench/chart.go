package bench

import "slices"

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
// there (0, no point, where it finds none).
func (c *chart) addSeries(name, color string, dashed bool, mbPerS func(size int64) (float64, bool)) {
	vals := make([]float64, len(c.sizes))
	for i, size := range c.sizes {
		if v, ok := mbPerS(size); ok {
			vals[i] = v
		}
	}
	c.series = append(c.series, chartSeries{name: name, color: color, dashed: dashed, values: vals})
}

// kmsChart draws throughput by size for both modes, with the
// envelope/direct ratio under each size.
func kmsChart(results []Result, subtitle string) []byte {
	c := throughputChart("s3seal bench: envelope vs direct KMS encryption", subtitle,
		sizesOf(results, func(r Result) int64 { return r.Size }))
	for _, s := range []struct{ mode, color string }{{modeEnvelope, "#1f77b4"}, {modeDirect, "#d62728"}} {
		c.addSeries(s.mode, s.color, false, func(size int64) (float64, bool) {
			r, ok := findResult(results, s.mode, size)
			return r.MBPerS, ok
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

// targetChart draws PUT and GET throughput by size, through s3seal (solid)
// and direct (dashed).
func targetChart(results []TargetResult) []byte {
	c := throughputChart("s3seal bench --target: through s3seal vs straight to the store",
		"whole-object PUT and GET, MB/s of object bytes", sizesOf(results, func(r TargetResult) int64 { return r.Size }))
	for _, s := range []struct {
		path, op, color string
		dashed          bool
	}{
		{pathS3seal, "put", "#1f77b4", false}, {pathDirect, "put", "#1f77b4", true},
		{pathS3seal, "get", "#2ca02c", false}, {pathDirect, "get", "#2ca02c", true},
	} {
		c.addSeries(s.path+" "+s.op, s.color, s.dashed, func(size int64) (float64, bool) {
			r, ok := findTarget(results, s.path, s.op, size)
			return r.MBPerS, ok
		})
	}
	return c.svg()
}
