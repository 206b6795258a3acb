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
//
// The cost fields are per GiB (2^30 bytes) of object bytes moved, or per
// object, and absent where they were not measured (nil), so that a
// measured zero stays distinct from none.
type TargetResult struct {
	Path      string  `json:"path"`      // direct, pass-through or s3seal
	Operation string  `json:"operation"` // put or get
	Size      int64   `json:"size"`
	Requests  int     `json:"requests"`
	MBPerS    float64 `json:"mb_per_s"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`

	// BenchCPUSPerGiB is the CPU time (user and system) the benchmark's
	// own process spent per GiB during the cell: its clients (and s3seal,
	// when it runs in the same process, as in tests).
	BenchCPUSPerGiB *float64 `json:"bench_cpu_s_per_gib,omitempty"`
	// HopCPUSPerGiB and HopCPUMsPerRequest are the CPU time the hop's
	// process spent during the cell, per GiB and per request: on the s3seal
	// path the s3seal process's (its process_cpu_seconds_total), on the
	// pass-through path the hop process's (/proc/<pid>/stat; Linux only).
	// None on the direct path, which has no hop.
	HopCPUSPerGiB      *float64 `json:"hop_cpu_s_per_gib,omitempty"`
	HopCPUMsPerRequest *float64 `json:"hop_cpu_ms_per_request,omitempty"`
	// KMSCalls and KMSCallsPerObject are the key-service calls s3seal made
	// during the cell (its s3seal_kms_requests_total); s3seal path only.
	KMSCalls          *int64   `json:"kms_calls,omitempty"`
	KMSCallsPerObject *float64 `json:"kms_calls_per_object,omitempty"`
	// StoreRequests and StoreRequestsPerObject are the requests s3seal sent
	// the store during the cell (the count of its
	// s3seal_upstream_request_duration_seconds): more than one per object
	// is latency the pass-through does not have. s3seal path only.
	StoreRequests          *int64   `json:"store_requests,omitempty"`
	StoreRequestsPerObject *float64 `json:"store_requests_per_object,omitempty"`
}

// bytes is the object bytes the cell moved.
func (r TargetResult) bytes() int64 { return r.Size * int64(r.Requests) }

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
