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
	tw := newTable(w, "size\top\tpath\trequests\tMB/s\tp50 ms\tp99 ms\tCPU s/GiB\tCPU ms/request\tKMS calls\tKMS calls/object\t"+
		"store requests/object\tMB/s ÷ direct\tMB/s ÷ pass-through\tp50 ÷ pass-through\tCPU ÷ pass-through\t")
	for _, size := range sizesOf(results, func(r TargetResult) int64 { return r.Size }) {
		for _, op := range operations {
			for _, path := range paths {
				if r, ok := findTarget(results, path, op, size); ok {
					writeTargetRow(tw, results, r)
				}
			}
		}
	}
	tw.Flush()
	fmt.Fprint(w, "\nCPU s/GiB, CPU ms/request: the hop's process's CPU seconds (user + system) per GiB of object bytes\n"+
		"moved and per request, in the kernel's 10 ms ticks: s3seal's from its process_cpu_seconds_total, the\n"+
		"pass-through's (a process of its own) from /proc/<pid>/stat. KMS calls, store requests: s3seal's\n"+
		"key-service calls and requests to the store during the cell, from its own counters (the pass-through\n"+
		"sends one per request). p50 ÷ pass-through: s3seal's median latency over the hop's.\n")
	if notMeasured != "" {
		fmt.Fprintf(w, "Not measured: %s.\n", notMeasured)
	}
}

// writeTargetRow prints r's row; the ratios compare it with the direct and
// pass-through rows of its operation and size.
func writeTargetRow(tw io.Writer, results []TargetResult, r TargetResult) {
	d, hasD := findTarget(results, pathDirect, r.Operation, r.Size)
	p, hasP := findTarget(results, pathPassThrough, r.Operation, r.Size)
	var vsDirect, vsPass, p50VsPass, cpuVsPass string
	if r.Path != pathDirect && hasD && d.MBPerS > 0 {
		vsDirect = formatRatio(r.MBPerS / d.MBPerS)
	}
	if r.Path == pathS3seal && hasP {
		if p.MBPerS > 0 {
			vsPass = formatRatio(r.MBPerS / p.MBPerS)
		}
		if p.P50Ms > 0 {
			p50VsPass = formatRatio(r.P50Ms / p.P50Ms)
		}
		if r.HopCPUSPerGiB != nil && p.HopCPUSPerGiB != nil && *p.HopCPUSPerGiB > 0 {
			cpuVsPass = formatRatio(*r.HopCPUSPerGiB / *p.HopCPUSPerGiB)
		}
	}
	var kmsCalls string
	if r.KMSCalls != nil {
		kmsCalls = formatCount(*r.KMSCalls)
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", FormatSize(r.Size), r.Operation, r.Path, r.Requests,
		formatNumber(r.MBPerS), formatNumber(r.P50Ms), formatNumber(r.P99Ms),
		formatOptional(r.HopCPUSPerGiB), formatOptional(r.HopCPUMsPerRequest), kmsCalls, formatOptional(r.KMSCallsPerObject),
		formatOptional(r.StoreRequestsPerObject), vsDirect, vsPass, p50VsPass, cpuVsPass)
}

// formatOptional prints a measured figure, and nothing for none.
func formatOptional(v *float64) string {
	if v == nil {
		return ""
	}
	return formatNumber(*v)
}

// formatCount prints a whole number, with thousands separators.
func formatCount(n int64) string {
	if n > -100 && n < 100 {
		return strconv.FormatInt(n, 10)
	}
	return formatNumber(float64(n))
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
