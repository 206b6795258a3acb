package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Result is one (mode, size) cell of the key-service benchmark, as
// bench.json has it.
type Result struct {
	Mode           string  `json:"mode"`
	Size           int64   `json:"size"`
	MBPerS         float64 `json:"mb_per_s"`
	KMSCalls       int64   `json:"kms_calls"`
	KMSCallsPerMiB float64 `json:"kms_calls_per_mib"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`

	objects int // for the table only
}

// TargetResult is one (path, operation, size) cell of the end-to-end
// benchmark, as bench-target.json has it.
type TargetResult struct {
	Path      string  `json:"path"`      // s3seal or direct
	Operation string  `json:"operation"` // put or get
	Size      int64   `json:"size"`
	Requests  int     `json:"requests"`
	MBPerS    float64 `json:"mb_per_s"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// stats is what one cell measured, in the units the results show.
type stats struct {
	objects      int
	mbPerS       float64
	p50Ms, p99Ms float64
}

// measure turns a cell's latencies (sorted in place) and wall time into its
// figures; every object is size bytes.
func measure(size int64, lat []time.Duration, elapsed time.Duration) stats {
	s := stats{objects: len(lat)}
	if elapsed > 0 {
		s.mbPerS = round3(float64(size) * float64(len(lat)) / elapsed.Seconds() / 1e6)
	}
	s.p50Ms = round3(float64(percentile(lat, 0.50)) / float64(time.Millisecond))
	s.p99Ms = round3(float64(percentile(lat, 0.99)) / float64(time.Millisecond))
	return s
}

// round3 rounds to three decimal places: enough for a table, and stable in
// JSON.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// percentile is the nearest-rank q-quantile; lat is sorted in place.
func percentile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	i := int(math.Ceil(q*float64(len(lat)))) - 1
	return lat[min(max(i, 0), len(lat)-1)]
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// find is the first result match accepts.
func find[R any](results []R, match func(R) bool) (R, bool) {
	if i := slices.IndexFunc(results, match); i >= 0 {
		return results[i], true
	}
	var zero R
	return zero, false
}

// save writes results into o.Out, when set, as NAME.json ({"results":
// [...]}) and NAME.svg, creating the directory if missing, and says so.
func save[R any](o Options, name string, results []R, chart func([]R) []byte) error {
	if o.Out == "" {
		return nil
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		Results []R `json:"results"`
	}{results}, "", "  ")
	if err != nil {
		return err
	}
	jsonPath, svgPath := filepath.Join(o.Out, name+".json"), filepath.Join(o.Out, name+".svg")
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(svgPath, chart(results), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "\nwrote %s and %s\n", jsonPath, svgPath)
	return nil
}
