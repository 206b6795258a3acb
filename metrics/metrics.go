// Package metrics is s3seal's Prometheus instrumentation: the proxy's
// requests, the time and bytes spent in the envelope cipher, every key-service
// call, the data-key cache, the upstream store, and the benchmark's results.
//
// Nothing here is global: New registers its families in the registry it is
// given, so tests (and a process running two proxies) use their own. The
// family names are an interface: dashboards (deploy/grafana) query them, and
// deploy's tests check that every name a dashboard uses is one Families
// reports.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every family s3seal exports.
const Namespace = "s3seal"

// Cipher directions, the values of the direction label.
const (
	Encrypt = "encrypt"
	Decrypt = "decrypt"
)

// Buckets of the latency histograms, in seconds. Requests range from a
// cached HEAD (a millisecond) to multi-GiB transfers (minutes); key-service
// calls from a local keyring (microseconds) to a distant KMS region.
var (
	requestBuckets = prometheus.ExponentialBuckets(0.001, 2.5, 13)  // 1 ms .. ~60 s
	kmsBuckets     = prometheus.ExponentialBuckets(0.0001, 2.5, 12) // 0.1 ms .. ~24 s
)

// Metrics is the serving process's instrumentation. Its Observe* methods and
// InflightAdd are the hook the proxy calls; all are safe for concurrent use.
type Metrics struct {
	reg prometheus.Registerer

	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	envelopeBytes    *prometheus.CounterVec
	envelopeSeconds  *prometheus.CounterVec
	kmsRequests      *prometheus.CounterVec
	kmsDuration      *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	inflight         prometheus.Gauge
	accessDenied     *prometheus.CounterVec
	upstreamResumes  *prometheus.CounterVec
	kmsAPIRequests   *prometheus.CounterVec
	kmsAPIDuration   *prometheus.HistogramVec
	refused          *prometheus.CounterVec
}

// Reasons a connection or request is refused before it is served, the
// values of s3seal_refused_total's reason label.
const (
	RefusedOverCap   = "over_cap"   // a connection beyond the listener's cap, closed at once
	RefusedPlainHTTP = "plain_http" // a plain HTTP request on a TLS port, told to use https
)

// New registers the serving families in reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		requests: counterVec("requests_total",
			"S3 requests answered, by operation and HTTP status (\"aborted\": cut off mid-response).", "operation", "status"),
		requestDuration: histogramVec("request_duration_seconds",
			"Time to answer an S3 request, body included, by operation.", requestBuckets, "operation"),
		envelopeBytes: counterVec("envelope_bytes_total",
			"Plaintext bytes through the envelope cipher, by direction (encrypt, decrypt).", "direction"),
		envelopeSeconds: counterVec("envelope_seconds_total",
			"Time spent in the envelope cipher itself (not waiting on client or store), by direction; rate(bytes)/rate(seconds) is local envelope throughput.", "direction"),
		kmsRequests: counterVec("kms_requests_total",
			"Key-service calls, by operation and result (ok, not_found, disabled, access_denied, invalid_ciphertext, unavailable, invalid_request, error).", "operation", "result"),
		kmsDuration: histogramVec("kms_request_duration_seconds",
			"Key-service call latency, by operation.", kmsBuckets, "operation"),
		upstreamDuration: histogramVec("upstream_request_duration_seconds",
			"Time from sending a request to the upstream store to its response headers, by the client operation it serves.", requestBuckets, "operation"),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "inflight_requests",
			Help: "S3 requests being answered now."}),
		accessDenied: counterVec("access_denied_total",
			"S3 requests refused because the principal lacks a bucket or CMK grant, by operation.", "operation"),
		upstreamResumes: counterVec("upstream_resumes_total",
			"Store reads that broke mid-body and were asked for again from where they broke, by operation and result (ok: the store answered; failed: it did not, and the client got a 503 or a cut answer).", "operation", "result"),
		kmsAPIRequests: counterVec("kms_api_requests_total",
			"Requests to s3seal's KMS API (S3SEAL_KMS_API_ADDR), by operation and result (ok, or the AWS error name).", "operation", "result"),
		kmsAPIDuration: histogramVec("kms_api_request_duration_seconds",
			"Time to answer a KMS API request, by operation.", kmsBuckets, "operation"),
		refused: counterVec("refused_total",
			"Connections and requests refused before they were served, by listener (its setting: S3SEAL_ADDR, S3SEAL_KMS_API_ADDR, S3SEAL_METRICS_ADDR) and reason (over_cap: a connection beyond the connection cap, closed at once; plain_http: plain HTTP on a TLS port, answered \"use https\").", "listener", "reason"),
	}
	if err := register(reg, m.requests, m.requestDuration, m.envelopeBytes, m.envelopeSeconds,
		m.kmsRequests, m.kmsDuration, m.upstreamDuration, m.inflight,
		m.accessDenied, m.upstreamResumes, m.kmsAPIRequests, m.kmsAPIDuration, m.refused); err != nil {
		return nil, err
	}
	// Both directions exist from the start, so rate() over them is defined
	// (zero) before the first object rather than missing.
	for _, d := range []string{Encrypt, Decrypt} {
		m.envelopeBytes.WithLabelValues(d)
		m.envelopeSeconds.WithLabelValues(d)
	}
	return m, nil
}

// counterVec, histogramVec and gaugeVec make families in Namespace.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
}

func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
}

// register registers cs in reg, stopping at the first failure.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// ObserveRequest records one answered S3 request. status is the HTTP status
// sent; 0 or less means the response was aborted after it had started.
func (m *Metrics) ObserveRequest(op string, status int, d time.Duration) {
	s := "aborted"
	if status > 0 {
		s = strconv.Itoa(status)
	}
	m.requests.WithLabelValues(op, s).Inc()
	m.requestDuration.WithLabelValues(op).Observe(d.Seconds())
}

// ObserveUpstream records one request to the store, on behalf of a client
// request of operation op, from send to response headers.
func (m *Metrics) ObserveUpstream(op string, d time.Duration) {
	m.upstreamDuration.WithLabelValues(op).Observe(d.Seconds())
}

// ObserveCipher records plaintext bytes encrypted or decrypted (direction
// Encrypt or Decrypt) and the time the cipher itself took for them.
func (m *Metrics) ObserveCipher(direction string, bytes int64, d time.Duration) {
	m.envelopeBytes.WithLabelValues(direction).Add(float64(bytes))
	m.envelopeSeconds.WithLabelValues(direction).Add(d.Seconds())
}

// InflightAdd moves the in-flight gauge: +1 when a request starts, -1 when
// it ends.
func (m *Metrics) InflightAdd(n int) {
	m.inflight.Add(float64(n))
}

// ObserveDenied records an S3 request of operation op refused for want of
// a grant.
func (m *Metrics) ObserveDenied(op string) {
	m.accessDenied.WithLabelValues(op).Inc()
}

// ObserveResume records a store read resumed after it broke mid-body; ok
// says whether the store answered the resumed request.
func (m *Metrics) ObserveResume(op string, ok bool) {
	m.upstreamResumes.WithLabelValues(op, map[bool]string{true: "ok", false: "failed"}[ok]).Inc()
}

// ObserveKMSAPI records one KMS API request: its operation, its result
// ("ok" or the AWS error name) and the time it took.
func (m *Metrics) ObserveKMSAPI(op, result string, d time.Duration) {
	m.kmsAPIRequests.WithLabelValues(op, result).Inc()
	m.kmsAPIDuration.WithLabelValues(op).Observe(d.Seconds())
}

// ObserveRefused counts a connection or request refused on listener (its
// setting's name) for reason (RefusedOverCap, RefusedPlainHTTP).
func (m *Metrics) ObserveRefused(listener, reason string) {
	m.refused.WithLabelValues(listener, reason).Inc()
}

// ObserveCache exports c's hit and miss counters (and its size). Call it
// once per process for the one cache the proxy uses.
func (m *Metrics) ObserveCache(c *kms.Cache) error {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: Namespace, Name: name, Help: help}
	}
	return register(m.reg,
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("datakey_cache_hits_total",
			"Data-key unwraps answered from the cache (no KMS Decrypt).")), func() float64 { return float64(c.Hits()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("datakey_cache_misses_total",
			"Data-key unwraps the cache could not answer (each one a KMS Decrypt).")), func() float64 { return float64(c.Misses()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("datakey_cache_entries",
			"Unwrapped data keys held in memory now.")), func() float64 { return float64(c.Len()) }),
	)
}

// Handler serves g in the Prometheus exposition formats.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// RegisterBuildInfo registers s3seal_build_info, a gauge that is always 1
// and says by its labels which build is running, so dashboards and alerts
// can tell versions apart during a rollout.
func RegisterBuildInfo(reg prometheus.Registerer, version, revision, goVersion string) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   Namespace,
		Name:        "build_info",
		Help:        "Always 1; the labels name the running build: module version, VCS revision (+dirty) and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	})
	g.Set(1)
	return register(reg, g)
}
