package bench

// The running s3seal's own counters, read from its metrics listener before
// and after each cell of the s3seal path: the CPU its process spent and the
// KMS calls it made are what s3seal counted, not estimates. A separate
// process cannot be measured from here otherwise, and its /metrics works
// wherever it runs (another host, a container) as long as it is reachable.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The families read.
const (
	// famCPU is the process collector's user and system CPU seconds,
	// which `s3seal serve` registers (on Linux, from /proc/self/stat:
	// 10 ms ticks).
	famCPU      = "process_cpu_seconds_total"
	famKMS      = "s3seal_kms_requests_total" // every key-service call, cache hits excluded
	famRequests = "s3seal_requests_total"     // answered S3 requests, by operation
	// famUpstream times every request s3seal sends the store: its count
	// is how many it sent.
	famUpstream = "s3seal_upstream_request_duration_seconds"
	// famInflight is always exported by s3seal, even before its first
	// request: it tells s3seal's metrics from another program's.
	famInflight = "s3seal_inflight_requests"
)

// s3sealOperations are s3seal's operation labels of the benchmark's
// operations.
var s3sealOperations = map[string]string{"put": "PutObject", "get": "GetObject"}

// s3sealCounters is one reading of s3seal's counters.
type s3sealCounters struct {
	cpuSeconds float64
	hasCPU     bool // the process collector is there (it is not on every platform)
	kmsCalls   float64
	upstream   float64            // requests sent to the store
	requests   map[string]float64 // by operation, every status
}

// parseS3sealCounters reads the text exposition format.
func parseS3sealCounters(r io.Reader) (s3sealCounters, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return s3sealCounters{}, err
	}
	if fams[famInflight] == nil {
		return s3sealCounters{}, fmt.Errorf("no %s: not an s3seal's metrics", famInflight)
	}
	c := s3sealCounters{requests: map[string]float64{}}
	if f := fams[famCPU]; f != nil && len(f.GetMetric()) > 0 {
		c.cpuSeconds, c.hasCPU = counterSum(f), true
	}
	// A counter family with no series yet (no KMS call, no request) is
	// not exported at all: it reads as zero.
	if f := fams[famKMS]; f != nil {
		c.kmsCalls = counterSum(f)
	}
	if f := fams[famUpstream]; f != nil {
		for _, m := range f.GetMetric() {
			c.upstream += float64(m.GetHistogram().GetSampleCount())
		}
	}
	if f := fams[famRequests]; f != nil {
		for _, m := range f.GetMetric() {
			c.requests[labelValue(m, "operation")] += m.GetCounter().GetValue()
		}
	}
	return c, nil
}

// counterSum adds up every series of f.
func counterSum(f *dto.MetricFamily) float64 {
	n := 0.0
	for _, m := range f.GetMetric() {
		n += m.GetCounter().GetValue() + m.GetUntyped().GetValue()
	}
	return n
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// scrapeS3seal reads s3seal's counters from url.
func scrapeS3seal(ctx context.Context, c *http.Client, url string) (s3sealCounters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s3sealCounters{}, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := c.Do(req)
	if err != nil {
		return s3sealCounters{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s3sealCounters{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseS3sealCounters(resp.Body)
}

// errNotTarget says the metrics read did not count the cell's requests:
// they are another s3seal's.
var errNotTarget = errors.New("they did not count the requests sent to --target: another s3seal's metrics?")

// s3sealCost is what s3seal spent on one cell: the difference between two
// readings, after n requests of operation op sent to it. It fails with
// errNotTarget when after does not count the n requests.
type s3sealCost struct {
	cpuSeconds float64
	hasCPU     bool
	kmsCalls   float64
	upstream   float64
}

func costBetween(before, after s3sealCounters, op string, n int) (s3sealCost, error) {
	if after.requests[op]-before.requests[op] < float64(n) {
		return s3sealCost{}, errNotTarget
	}
	return s3sealCost{
		cpuSeconds: after.cpuSeconds - before.cpuSeconds,
		hasCPU:     before.hasCPU && after.hasCPU,
		kmsCalls:   after.kmsCalls - before.kmsCalls,
		upstream:   after.upstream - before.upstream,
	}, nil
}
