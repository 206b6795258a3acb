package bench

import (
	"bytes"
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
	tw := tabwriter.NewWriter(&trimWriter{w: w}, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, header)
	return tw
}

// trimWriter writes whole lines without the trailing blanks a table's
// empty last columns leave.
type trimWriter struct {
	w       io.Writer
	pending []byte
}

func (t *trimWriter) Write(p []byte) (int, error) {
	t.pending = append(t.pending, p...)
	for {
		i := bytes.IndexByte(t.pending, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := bytes.TrimRight(t.pending[:i], " ")
		if _, err := fmt.Fprintf(t.w, "%s\n", line); err != nil {
			return 0, err
		}
		t.pending = t.pending[i+1:]
	}
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

// writeTargetTable prints, per size and operation, the direct,
// pass-through and s3seal rows one under the other, with the ratios on the
// hops' rows, and says under it what the cost columns are (and why they are
// empty, if notMeasured says).
func writeTargetTable(w io.Writer, results []TargetResult, notMeasured string) {
	tw := newTable(w, "size\top\tpath\trequests\tMB/s\tp50 ms\tp99 ms\tCPU s/GiB\tKMS calls/object\tMB/s ÷ direct\tMB/s ÷ pass-through\tCPU ÷ pass-through\t")
	for _, size := range sizesOf(results, func(r TargetResult) int64 { return r.Size }) {
		for _, op := range operations {
			d, hasD := findTarget(results, pathDirect, op, size)
			p, hasP := findTarget(results, pathPassThrough, op, size)
			for _, path := range paths {
				r, ok := findTarget(results, path, op, size)
				if !ok {
					continue
				}
				var vsDirect, vsPass, cpuVsPass string
				if path != pathDirect && hasD && d.MBPerS > 0 {
					vsDirect = formatRatio(r.MBPerS / d.MBPerS)
				}
				if path == pathS3seal && hasP {
					if p.MBPerS > 0 {
						vsPass = formatRatio(r.MBPerS / p.MBPerS)
					}
					if r.HopCPUSPerGiB != nil && p.HopCPUSPerGiB != nil && *p.HopCPUSPerGiB > 0 {
						cpuVsPass = formatRatio(*r.HopCPUSPerGiB / *p.HopCPUSPerGiB)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", FormatSize(size), op, path, r.Requests,
					formatNumber(r.MBPerS), formatNumber(r.P50Ms), formatNumber(r.P99Ms),
					formatOptional(r.HopCPUSPerGiB), formatOptional(r.KMSCallsPerObject), vsDirect, vsPass, cpuVsPass)
			}
		}
	}
	tw.Flush()
	fmt.Fprint(w, "\nCPU s/GiB: the hop's CPU seconds (user + system) per GiB of object bytes moved. s3seal: its\n"+
		"process's, from its process_cpu_seconds_total (10 ms ticks). pass-through: this process's less the\n"+
		"direct path's (the clients' share), an estimate: where the clients cost more than the hop (small\n"+
		"objects) it is within noise and can come out negative. KMS calls/object: s3seal's own counter.\n")
	if notMeasured != "" {
		fmt.Fprintf(w, "Not measured: %s.\n", notMeasured)
	}
}

// formatOptional prints a measured figure, and nothing for none.
func formatOptional(v *float64) string {
	if v == nil {
		return ""
	}
	return formatNumber(*v)
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
