package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// newTable starts a right-aligned table after a blank line; header is its
// tab-separated column names.
func newTable(w io.Writer, header string) *tabwriter.Writer {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, header)
	return tw
}

// writeKMSTable prints the results, envelope and direct side by side per
// size, with the envelope/direct throughput ratio.
func writeKMSTable(w io.Writer, results []Result) {
	tw := newTable(w, "size\tmode\tobjects\tMB/s\tKMS calls/MiB\tp50 ms\tp99 ms\tenvelope/direct\t")
	for _, r := range results {
		ratio := ""
		if r.Mode == modeEnvelope {
			if d, ok := findResult(results, modeDirect, r.Size); ok && d.MBPerS > 0 {
				ratio = formatRatio(r.MBPerS / d.MBPerS)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", FormatSize(r.Size), r.Mode, r.objects,
			formatNumber(r.MBPerS), formatNumber(r.KMSCallsPerMiB), formatNumber(r.P50Ms), formatNumber(r.P99Ms), ratio)
	}
	tw.Flush()
}

// writeTargetTable prints s3seal and direct side by side per size and
// operation.
func writeTargetTable(w io.Writer, results []TargetResult) {
	tw := newTable(w, "size\top\ts3seal MB/s\tdirect MB/s\ts3seal/direct\ts3seal p50 ms\tp99 ms\tdirect p50 ms\tp99 ms\t")
	for _, size := range sizesOf(results, func(r TargetResult) int64 { return r.Size }) {
		for _, op := range operations {
			s, ok1 := findTarget(results, pathS3seal, op, size)
			d, ok2 := findTarget(results, pathDirect, op, size)
			if !ok1 || !ok2 {
				continue
			}
			ratio := ""
			if d.MBPerS > 0 {
				ratio = strconv.FormatFloat(s.MBPerS/d.MBPerS, 'f', 2, 64) + "×"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", FormatSize(size), op,
				formatNumber(s.MBPerS), formatNumber(d.MBPerS), ratio,
				formatNumber(s.P50Ms), formatNumber(s.P99Ms), formatNumber(d.P50Ms), formatNumber(d.P99Ms))
		}
	}
	tw.Flush()
}

// formatRatio prints a throughput ratio: two decimals, whole above 10.
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
