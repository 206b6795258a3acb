package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// polylines parses svg strictly and returns each series' number of points.
func polylines(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	dec.Strict = true
	points := map[string]int{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return points
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "polyline" {
			var name string
			var n int
			for _, a := range el.Attr {
				switch a.Name.Local {
				case "data-series":
					name = a.Value
				case "points":
					n = len(strings.Fields(a.Value))
				}
			}
			points[name] = n
		}
	}
}

func TestCharts(t *testing.T) {
	kms := []Result{
		{Mode: modeEnvelope, Size: 4096, MBPerS: 10}, {Mode: modeDirect, Size: 4096, MBPerS: 8},
		{Mode: modeEnvelope, Size: 1 << 20, MBPerS: 1000}, {Mode: modeDirect, Size: 1 << 20, MBPerS: 0},
	}
	cpu, kmsCalls := 1.5, 1.0
	target := []TargetResult{
		{Path: pathS3seal, Operation: "put", Size: 1024, MBPerS: 5, HopCPUSPerGiB: &cpu, KMSCallsPerObject: &kmsCalls},
		{Path: pathDirect, Operation: "put", Size: 1024, MBPerS: 6},
		{Path: pathPassThrough, Operation: "put", Size: 1024, MBPerS: 5.5},
		{Path: pathS3seal, Operation: "get", Size: 1024, MBPerS: 7},
	}
	for _, tc := range []struct {
		name  string
		svg   []byte
		want  map[string]int
		texts []string
	}{
		{"kms", kmsChart(kms, "sub <&>"), map[string]int{"envelope": 2, "direct": 1},
			[]string{"sub &lt;&amp;&gt;", "envelope/direct 1.25×", "1MiB", "1,000"}},
		{"target", targetChart(target), map[string]int{"s3seal put": 1, "pass-through put": 1, "direct put": 1,
			"s3seal get": 1, "pass-through get": 0, "direct get": 0},
			[]string{"through s3seal", `stroke-dasharray="6 4"`, `stroke-dasharray="2 3"`,
				"s3seal put 1KiB: 5.00 MB/s; CPU 1.50 s/GiB, 1.00 KMS calls/object</title>", "pass-through put 1KiB: 5.50 MB/s</title>"}},
		{"empty", chart{title: "nothing"}.svg(), map[string]int{}, []string{"<title>nothing</title>"}},
	} {
		got := polylines(t, tc.svg)
		if len(got) != len(tc.want) {
			t.Errorf("%s: series %v, want %v", tc.name, got, tc.want)
		}
		for name, n := range tc.want {
			if got[name] != n {
				t.Errorf("%s: series %q has %d points, want %d", tc.name, name, got[name], n)
			}
		}
		for _, s := range tc.texts {
			if !bytes.Contains(tc.svg, []byte(s)) {
				t.Errorf("%s: chart lacks %q", tc.name, s)
			}
		}
	}
}
