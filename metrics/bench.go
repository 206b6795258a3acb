package metrics

import (
	"sort"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Bench holds the results of `s3seal bench` as gauges, so a Prometheus
// scraping the benchmark (--metrics-addr) can chart envelope against direct
// KMS encryption beside the proxy's live figures.
type Bench struct {
	throughput     *prometheus.GaugeVec
	kmsCallsPerMiB *prometheus.GaugeVec
	latency        *prometheus.GaugeVec

	targetThroughput *prometheus.GaugeVec
	targetLatency    *prometheus.GaugeVec
	targetCPU        *prometheus.GaugeVec
	targetKMS        *prometheus.GaugeVec
}

// NewBench registers the benchmark families in reg.
func NewBench(reg prometheus.Registerer) (*Bench, error) {
	b := &Bench{
		throughput: gaugeVec("bench_throughput_bytes_per_second",
			"Benchmark: plaintext bytes encrypted and decrypted again per second, by mode (envelope, direct) and object size.", "mode", "size"),
		kmsCallsPerMiB: gaugeVec("bench_kms_calls_per_mebibyte",
			"Benchmark: key-service calls per MiB of plaintext round-tripped, by mode and object size.", "mode", "size"),
		latency: gaugeVec("bench_object_seconds",
			"Benchmark: time to encrypt and decrypt one object, by mode, size and quantile (0.5, 0.99).", "mode", "size", "quantile"),
		targetThroughput: gaugeVec("bench_target_throughput_bytes_per_second",
			"End-to-end benchmark (--target): object bytes per second, by path (direct, pass-through, s3seal), operation (put, get) and object size.", "path", "operation", "size"),
		targetLatency: gaugeVec("bench_target_object_seconds",
			"End-to-end benchmark (--target): time of one request, by path, operation, size and quantile (0.5, 0.99).", "path", "operation", "size", "quantile"),
		targetCPU: gaugeVec("bench_target_hop_cpu_seconds_per_gibibyte",
			"End-to-end benchmark (--target): CPU seconds the hop (s3seal's process; the in-process pass-through proxy) spent per GiB of object bytes, by path (pass-through, s3seal), operation and size.", "path", "operation", "size"),
		targetKMS: gaugeVec("bench_target_kms_calls_per_object",
			"End-to-end benchmark (--target): key-service calls s3seal made per object, from its own counters, by path (s3seal), operation and size.", "path", "operation", "size"),
	}
	if err := register(reg, b.throughput, b.kmsCallsPerMiB, b.latency, b.targetThroughput, b.targetLatency, b.targetCPU, b.targetKMS); err != nil {
		return nil, err
	}
	return b, nil
}

// SetResult publishes one (mode, size) cell of the key-service benchmark.
func (b *Bench) SetResult(mode, size string, bytesPerSecond, kmsCallsPerMiB float64, p50, p99 time.Duration) {
	b.throughput.WithLabelValues(mode, size).Set(bytesPerSecond)
	b.kmsCallsPerMiB.WithLabelValues(mode, size).Set(kmsCallsPerMiB)
	b.latency.WithLabelValues(mode, size, "0.5").Set(p50.Seconds())
	b.latency.WithLabelValues(mode, size, "0.99").Set(p99.Seconds())
}

// SetTargetResult publishes one (path, operation, size) cell of the
// end-to-end benchmark.
func (b *Bench) SetTargetResult(path, op, size string, bytesPerSecond float64, p50, p99 time.Duration) {
	b.targetThroughput.WithLabelValues(path, op, size).Set(bytesPerSecond)
	b.targetLatency.WithLabelValues(path, op, size, "0.5").Set(p50.Seconds())
	b.targetLatency.WithLabelValues(path, op, size, "0.99").Set(p99.Seconds())
}

// SetTargetCost publishes the cost figures of one end-to-end cell, those
// measured (non-nil): the hop's CPU seconds per GiB and KMS calls per
// object.
func (b *Bench) SetTargetCost(path, op, size string, cpuSecondsPerGiB, kmsCallsPerObject *float64) {
	if cpuSecondsPerGiB != nil {
		b.targetCPU.WithLabelValues(path, op, size).Set(*cpuSecondsPerGiB)
	}
	if kmsCallsPerObject != nil {
		b.targetKMS.WithLabelValues(path, op, size).Set(*kmsCallsPerObject)
	}
}

// Family is one exported metric family.
type Family struct {
	Name string
	Type dto.MetricType // COUNTER, GAUGE, HISTOGRAM, ...
}

// Families lists every family s3seal exports (serving and benchmark), read
// back from a registry after one of each observation, so the list cannot
// drift from what is registered. Histograms are listed once, under their
// base name; their series are NAME_bucket, NAME_sum and NAME_count.
func Families() ([]Family, error) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		return nil, err
	}
	if err := m.ObserveCache(kms.NewCache(nil, 0, 0)); err != nil {
		return nil, err
	}
	b, err := NewBench(reg)
	if err != nil {
		return nil, err
	}
	if _, err := NewRewrap(reg); err != nil {
		return nil, err
	}
	if err := RegisterBuildInfo(reg, "v0", "r", "go"); err != nil {
		return nil, err
	}
	m.ObserveRequest("PutObject", 200, time.Millisecond)
	m.ObserveUpstream("PutObject", time.Millisecond)
	m.ObserveCipher(Encrypt, 1, time.Millisecond)
	m.InflightAdd(0)
	m.ObserveDenied("GetObject")
	m.ObserveKMSAPI("Encrypt", "ok", time.Millisecond)
	m.ObserveResume("GetObject", true)
	m.ObserveRefused("S3SEAL_ADDR", RefusedOverCap)
	m.kmsRequests.WithLabelValues("GenerateDataKey", "ok")
	m.kmsDuration.WithLabelValues("GenerateDataKey")
	b.SetResult("envelope", "4KiB", 1, 1, time.Millisecond, time.Millisecond)
	b.SetTargetResult("s3seal", "put", "4KiB", 1, time.Millisecond, time.Millisecond)
	one := 1.0
	b.SetTargetCost("s3seal", "put", "4KiB", &one, &one)

	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := make([]Family, 0, len(mfs))
	for _, mf := range mfs {
		out = append(out, Family{Name: mf.GetName(), Type: mf.GetType()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SeriesNames is every metric name a PromQL query can use for fams: the
// family names, plus _bucket, _sum and _count for histograms (and _sum,
// _count for summaries).
func SeriesNames(fams []Family) map[string]bool {
	names := map[string]bool{}
	for _, f := range fams {
		names[f.Name] = true
		switch f.Type {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[f.Name+"_bucket"] = true
			fallthrough
		case dto.MetricType_SUMMARY:
			names[f.Name+"_sum"] = true
			names[f.Name+"_count"] = true
		}
	}
	return names
}
