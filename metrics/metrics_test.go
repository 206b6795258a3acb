package metrics_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/s3seal/s3seal/internal/metricstest"
	"github.com/s3seal/s3seal/metrics"
)

// serve registers a fresh Metrics and serves its registry like s3seal does.
func serve(t *testing.T) (*metrics.Metrics, *prometheus.Registry, func() metricstest.Scrape) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(metrics.Handler(reg))
	t.Cleanup(srv.Close)
	return m, reg, func() metricstest.Scrape {
		t.Helper()
		s, err := metricstest.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func near(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 }

// The proxy hook: each call moves exactly its families.
func TestObserverHook(t *testing.T) {
	m, _, scrape := serve(t)
	before := scrape()
	for _, d := range []string{"encrypt", "decrypt"} {
		if !before.Has("s3seal_envelope_bytes_total") || before.Sum("s3seal_envelope_bytes_total", "direction="+d) != 0 {
			t.Errorf("envelope_bytes_total{direction=%s} not exported as 0 before traffic", d)
		}
	}

	m.InflightAdd(1)
	m.InflightAdd(1)
	if got := scrape().Sum("s3seal_inflight_requests"); got != 2 {
		t.Errorf("inflight = %v, want 2", got)
	}
	m.ObserveRequest("PutObject", 200, 30*time.Millisecond)
	m.ObserveRequest("PutObject", 200, 10*time.Millisecond)
	m.ObserveRequest("GetObject", 404, time.Millisecond)
	m.ObserveRequest("GetObject", 0, time.Millisecond) // aborted mid-body
	m.ObserveUpstream("PutObject", 5*time.Millisecond)
	m.ObserveCipher(metrics.Encrypt, 1<<20, 250*time.Microsecond)
	m.ObserveCipher(metrics.Encrypt, 1<<20, 250*time.Microsecond)
	m.ObserveCipher(metrics.Decrypt, 100, time.Microsecond)
	m.InflightAdd(-1)
	m.InflightAdd(-1)

	s := scrape()
	checks := []struct {
		name   string
		got    float64
		want   float64
		labels string
	}{
		{"s3seal_requests_total", s.Sum("s3seal_requests_total", "operation=PutObject", "status=200"), 2, "PutObject 200"},
		{"s3seal_requests_total", s.Sum("s3seal_requests_total", "operation=GetObject", "status=404"), 1, "GetObject 404"},
		{"s3seal_requests_total", s.Sum("s3seal_requests_total", "operation=GetObject", "status=aborted"), 1, "GetObject aborted"},
		{"s3seal_request_duration_seconds", s.Sum("s3seal_request_duration_seconds", "operation=PutObject"), 2, "count"},
		{"s3seal_request_duration_seconds", s.HistogramSum("s3seal_request_duration_seconds", "operation=PutObject"), 0.04, "sum"},
		{"s3seal_upstream_request_duration_seconds", s.Sum("s3seal_upstream_request_duration_seconds", "operation=PutObject"), 1, "count"},
		{"s3seal_envelope_bytes_total", s.Sum("s3seal_envelope_bytes_total", "direction=encrypt"), 2 << 20, "encrypt"},
		{"s3seal_envelope_bytes_total", s.Sum("s3seal_envelope_bytes_total", "direction=decrypt"), 100, "decrypt"},
		{"s3seal_envelope_seconds_total", s.Sum("s3seal_envelope_seconds_total", "direction=encrypt"), 0.0005, "encrypt"},
		{"s3seal_inflight_requests", s.Sum("s3seal_inflight_requests"), 0, ""},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.labels, c.got, c.want)
		}
	}
	// rate(bytes)/rate(seconds) is the envelope throughput: here 2 MiB in 0.5 ms.
	if tp := s.Sum("s3seal_envelope_bytes_total", "direction=encrypt") / s.Sum("s3seal_envelope_seconds_total", "direction=encrypt"); tp < 4e9 || tp > 4.3e9 {
		t.Errorf("envelope throughput %v B/s", tp)
	}
}

// The KMS wrapper counts and times every call and labels its result with
// the error kind; the cache's counters are exported as counters.
func TestInstrumentedKeysAndCache(t *testing.T) {
	ctx := context.Background()
	m, reg, scrape := serve(t)
	ring, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := ring.CreateKey("metrics test")
	if err != nil {
		t.Fatal(err)
	}
	ks := m.InstrumentKeys(ring)
	cache := kms.NewCache(ks, 10, time.Minute)
	if err := m.ObserveCache(cache); err != nil {
		t.Fatal(err)
	}
	if err := m.ObserveCache(cache); err == nil {
		t.Error("registering a second cache did not fail")
	}
	encCtx := kms.BindingContext("b", "k")
	dk, err := ks.GenerateDataKey(ctx, info.ID, encCtx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // one miss (a KMS Decrypt), two hits
		if _, err := cache.Decrypt(ctx, dk.KeyID, dk.Ciphertext, encCtx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ks.Decrypt(ctx, "", dk.Ciphertext, kms.BindingContext("b", "other")); err == nil {
		t.Fatal("decrypt under the wrong context succeeded")
	}
	if _, err := ks.GenerateDataKey(ctx, "alias/missing", encCtx); err == nil {
		t.Fatal("missing key worked")
	}
	if _, err := ks.Encrypt(ctx, info.ID, make([]byte, 4097), encCtx); err == nil {
		t.Fatal("oversized Encrypt worked")
	}
	if _, err := ks.Encrypt(ctx, info.ID, []byte("piece"), encCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.ReEncrypt(ctx, dk.Ciphertext, "", encCtx, info.ID, encCtx); err != nil {
		t.Fatal(err)
	}

	s := scrape()
	want := map[[2]string]float64{
		{"GenerateDataKey", "ok"}:         1,
		{"GenerateDataKey", "not_found"}:  1,
		{"Decrypt", "ok"}:                 1,
		{"Decrypt", "invalid_ciphertext"}: 1,
		{"Encrypt", "ok"}:                 1,
		{"Encrypt", "invalid_request"}:    1,
		{"ReEncrypt", "ok"}:               1,
	}
	total := 0.0
	for k, v := range want {
		if got := s.Sum("s3seal_kms_requests_total", "operation="+k[0], "result="+k[1]); got != v {
			t.Errorf("kms_requests_total{operation=%s,result=%s} = %v, want %v", k[0], k[1], got, v)
		}
		total += v
	}
	if got := s.Sum("s3seal_kms_requests_total"); got != total {
		t.Errorf("kms_requests_total = %v in all, want %v", got, total)
	}
	if got := m.KMSCalls(); float64(got) != total {
		t.Errorf("KMSCalls() = %v, want %v", got, total)
	}
	if got := s.Sum("s3seal_kms_request_duration_seconds"); got != total {
		t.Errorf("kms_request_duration_seconds count = %v, want %v", got, total)
	}
	if got := s.Sum("s3seal_kms_request_duration_seconds", "operation=Decrypt"); got != 2 {
		t.Errorf("Decrypt timed %v times, want 2", got)
	}
	if h, mi := s.Sum("s3seal_datakey_cache_hits_total"), s.Sum("s3seal_datakey_cache_misses_total"); h != 2 || mi != 1 {
		t.Errorf("cache hits %v misses %v, want 2 and 1", h, mi)
	}
	if s["s3seal_datakey_cache_hits_total"].GetType() != dto.MetricType_COUNTER {
		t.Errorf("cache hits exported as %v", s["s3seal_datakey_cache_hits_total"].GetType())
	}
	if got := s.Sum("s3seal_datakey_cache_entries"); got != 1 {
		t.Errorf("cache entries %v", got)
	}
	// Registering twice in one registry fails rather than double counting.
	if _, err := metrics.New(reg); err == nil {
		t.Error("a second New on one registry did not fail")
	}
}

func TestResult(t *testing.T) {
	cases := map[string]error{
		"ok":                 nil,
		"not_found":          &kms.KMSError{Op: "Decrypt", Kind: kms.ErrKeyNotFound},
		"disabled":           &kms.KMSError{Op: "Decrypt", Kind: kms.ErrKeyDisabled},
		"access_denied":      &kms.KMSError{Op: "Decrypt", Kind: kms.ErrAccessDenied},
		"invalid_ciphertext": &kms.KMSError{Op: "Decrypt", Kind: kms.ErrInvalidCiphertext},
		"unavailable":        &kms.KMSError{Op: "Decrypt", Kind: kms.ErrKMSUnavailable, Cause: context.Canceled},
		"invalid_request":    &kms.KMSError{Op: "Encrypt", Kind: kms.ErrInvalidKMSRequest},
		"error":              errors.New("something else"),
	}
	for want, err := range cases {
		if got := metrics.Result(err); got != want {
			t.Errorf("Result(%v) = %q, want %q", err, got, want)
		}
	}
}

// The hook is called from every request goroutine at once.
func TestConcurrentObservations(t *testing.T) {
	m, _, scrape := serve(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				m.InflightAdd(1)
				m.ObserveCipher(metrics.Decrypt, 10, time.Microsecond)
				m.ObserveRequest("GetObject", 200, time.Millisecond)
				m.InflightAdd(-1)
			}
		})
	}
	wg.Wait()
	s := scrape()
	if got := s.Sum("s3seal_requests_total"); got != 8000 {
		t.Errorf("requests_total = %v", got)
	}
	if got := s.Sum("s3seal_envelope_bytes_total", "direction=decrypt"); got != 80000 {
		t.Errorf("decrypt bytes = %v", got)
	}
	if got := s.Sum("s3seal_inflight_requests"); got != 0 {
		t.Errorf("inflight = %v", got)
	}
}

func TestBenchFamilies(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, err := metrics.NewBench(reg)
	if err != nil {
		t.Fatal(err)
	}
	b.SetResult("envelope", "16MiB", 2e9, 0.125, 10*time.Millisecond, 20*time.Millisecond)
	b.SetResult("direct", "16MiB", 2e6, 512, time.Second, 2*time.Second)
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	s, err := metricstest.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sum("s3seal_bench_throughput_bytes_per_second", "mode=envelope", "size=16MiB"); got != 2e9 {
		t.Errorf("envelope throughput %v", got)
	}
	if got := s.Sum("s3seal_bench_kms_calls_per_mebibyte", "mode=direct", "size=16MiB"); got != 512 {
		t.Errorf("direct calls/MiB %v", got)
	}
	if got := s.Sum("s3seal_bench_object_seconds", "mode=direct", "quantile=0.99"); got != 2 {
		t.Errorf("direct p99 %v", got)
	}
}

// Families is what dashboards may use: exactly the families plus
// the extras, each with the right type.
func TestFamilies(t *testing.T) {
	fams, err := metrics.Families()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]dto.MetricType{}
	for _, f := range fams {
		got[f.Name] = f.Type
		if !strings.HasPrefix(f.Name, "s3seal_") {
			t.Errorf("family %s lacks the s3seal_ prefix", f.Name)
		}
	}
	C, G, H := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	want := map[string]dto.MetricType{
		"s3seal_requests_total":                            C,
		"s3seal_request_duration_seconds":                  H,
		"s3seal_envelope_bytes_total":                      C,
		"s3seal_envelope_seconds_total":                    C,
		"s3seal_kms_requests_total":                        C,
		"s3seal_kms_request_duration_seconds":              H,
		"s3seal_datakey_cache_hits_total":                  C,
		"s3seal_datakey_cache_misses_total":                C,
		"s3seal_datakey_cache_entries":                     G,
		"s3seal_upstream_request_duration_seconds":         H,
		"s3seal_inflight_requests":                         G,
		"s3seal_bench_throughput_bytes_per_second":         G,
		"s3seal_bench_kms_calls_per_mebibyte":              G,
		"s3seal_bench_object_seconds":                      G,
		"s3seal_bench_target_throughput_bytes_per_second":  G,
		"s3seal_bench_target_object_seconds":               G,
		"s3seal_bench_target_hop_cpu_seconds_per_gibibyte": G,
		"s3seal_bench_target_kms_calls_per_object":         G,
		"s3seal_rewrap_objects_total":                      C,
		"s3seal_rewrap_bytes_total":                        C,
		"s3seal_rewrap_listed_objects_total":               C,
		"s3seal_rewrap_listed_bytes_total":                 C,
		"s3seal_access_denied_total":                       C,
		"s3seal_kms_api_requests_total":                    C,
		"s3seal_kms_api_request_duration_seconds":          H,
		"s3seal_build_info":                                G,
		"s3seal_upstream_resumes_total":                    C,
		"s3seal_refused_total":                             C,
	}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("%s: type %v, want %v", name, got[name], typ)
		}
	}
	if len(got) != len(want) {
		t.Errorf("families %v, want exactly %d", got, len(want))
	}
	names := metrics.SeriesNames(fams)
	for _, n := range []string{"s3seal_request_duration_seconds_bucket", "s3seal_kms_request_duration_seconds_count", "s3seal_upstream_request_duration_seconds_sum"} {
		if !names[n] {
			t.Errorf("SeriesNames lacks %s", n)
		}
	}
	if names["s3seal_requests_total_bucket"] {
		t.Error("a counter got histogram suffixes")
	}
}
