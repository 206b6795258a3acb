package bench

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCPUPerGiB(t *testing.T) {
	for _, tc := range []struct {
		cpu   time.Duration
		bytes int64
		want  float64
		ok    bool
	}{
		{time.Second, gib, 1, true},
		{1500 * time.Millisecond, 512 << 20, 3, true},
		{time.Millisecond, 4096 * 1000, 0.262144, true}, // 1 µs per 4 KiB object
		{-time.Second, 2 * gib, -0.5, true},             // a difference can come out negative
		{time.Second, 0, 0, false},
	} {
		got, ok := cpuPerGiB(tc.cpu, tc.bytes)
		if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("cpuPerGiB(%v, %d) = %v, %v; want %v, %v", tc.cpu, tc.bytes, got, ok, tc.want, tc.ok)
		}
	}
}

// The meter sees CPU this process burns, on every thread, and not time it
// sleeps. (Only that it is measured: how much is no unit test's business.)
func TestCPUMeter(t *testing.T) {
	if _, ok := processCPU(); !ok {
		t.Skip("no process CPU time on this platform")
	}
	stop := cpuMeter(processCPU)
	done := make(chan struct{})
	go func() {
		defer close(done)
		x := 1.0
		for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
			x = math.Sqrt(x + 1)
		}
		_ = x
	}()
	<-done
	cpu, ok := stop()
	if !ok || cpu <= 0 {
		t.Errorf("50 ms of busy work measured as %v (ok %v)", cpu, ok)
	}
	stop = cpuMeter(processCPU)
	time.Sleep(20 * time.Millisecond)
	if cpu, _ := stop(); cpu >= 20*time.Millisecond {
		t.Errorf("20 ms of sleep measured as %v of CPU", cpu)
	}
}

func f(v float64) *float64 { return &v }

// A hop's CPU time becomes seconds per GiB and milliseconds per request
// of the cell; a cell of no requests has neither.
func TestSetHopCPU(t *testing.T) {
	for _, tc := range []struct {
		size           int64
		requests       int
		cpu            time.Duration
		perGiB, perReq *float64
	}{
		{4096, 10000, 3 * time.Second, f(78.643), f(0.3)},
		{64 << 20, 16, 2 * time.Second, f(2), f(125)},
		{4096, 1000, 0, f(0), f(0)}, // fewer than a tick: measured, as zero
		{4096, 0, time.Second, nil, nil},
	} {
		tr := TargetResult{Size: tc.size, Requests: tc.requests}
		setHopCPU(&tr, tc.cpu)
		if !sameFloat(tr.HopCPUSPerGiB, tc.perGiB) || !sameFloat(tr.HopCPUMsPerRequest, tc.perReq) {
			t.Errorf("%d × %d bytes in %v: %v s/GiB, %v ms/request; want %v, %v", tc.requests, tc.size, tc.cpu,
				deref(tr.HopCPUSPerGiB), deref(tr.HopCPUMsPerRequest), deref(tc.perGiB), deref(tc.perReq))
		}
	}
}

func sameFloat(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

const s3sealScrape = `# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.34
# TYPE s3seal_inflight_requests gauge
s3seal_inflight_requests 0
# TYPE s3seal_kms_requests_total counter
s3seal_kms_requests_total{operation="GenerateDataKey",result="ok"} 10
s3seal_kms_requests_total{operation="Decrypt",result="ok"} 4
s3seal_kms_requests_total{operation="Decrypt",result="unavailable"} 1
# TYPE s3seal_requests_total counter
s3seal_requests_total{operation="PutObject",status="200"} 10
s3seal_requests_total{operation="PutObject",status="aborted"} 1
s3seal_requests_total{operation="GetObject",status="200"} 5
# TYPE s3seal_upstream_request_duration_seconds histogram
s3seal_upstream_request_duration_seconds_bucket{operation="GetObject",le="+Inf"} 15
s3seal_upstream_request_duration_seconds_sum{operation="GetObject"} 0.5
s3seal_upstream_request_duration_seconds_count{operation="GetObject"} 15
s3seal_upstream_request_duration_seconds_bucket{operation="PutObject",le="+Inf"} 11
s3seal_upstream_request_duration_seconds_sum{operation="PutObject"} 0.7
s3seal_upstream_request_duration_seconds_count{operation="PutObject"} 11
`

func TestS3sealCounters(t *testing.T) {
	c, err := parseS3sealCounters(strings.NewReader(s3sealScrape))
	if err != nil {
		t.Fatal(err)
	}
	if !c.hasCPU || c.cpuSeconds != 12.34 || c.kmsCalls != 15 || c.upstream != 26 || c.requests["PutObject"] != 11 || c.requests["GetObject"] != 5 {
		t.Errorf("%+v", c)
	}

	// A fresh s3seal exports no request or KMS series yet; without the
	// process collector there is no CPU.
	fresh, err := parseS3sealCounters(strings.NewReader("# TYPE s3seal_inflight_requests gauge\ns3seal_inflight_requests 0\n"))
	if err != nil || fresh.hasCPU || fresh.kmsCalls != 0 || fresh.upstream != 0 || len(fresh.requests) != 0 {
		t.Errorf("fresh: %+v, %v", fresh, err)
	}
	// Another program's metrics are refused.
	if _, err := parseS3sealCounters(strings.NewReader("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\n")); err == nil {
		t.Error("metrics without s3seal's families accepted")
	}

	// The cost of a cell: the differences, once the requests sent are all
	// counted.
	after := s3sealCounters{cpuSeconds: 13.5, hasCPU: true, kmsCalls: 18, upstream: 29, requests: map[string]float64{"PutObject": 14, "GetObject": 5}}
	cost, err := costBetween(c, after, "PutObject", 3)
	if err != nil || math.Abs(cost.cpuSeconds-1.16) > 1e-9 || !cost.hasCPU || cost.kmsCalls != 3 || cost.upstream != 3 {
		t.Errorf("cost %+v, %v", cost, err)
	}
	if _, err := costBetween(c, after, "PutObject", 4); !errors.Is(err, errNotTarget) {
		t.Errorf("3 PUTs counted of 4 sent: %v, want errNotTarget", err)
	}
	if cost, _ := costBetween(fresh, after, "PutObject", 3); cost.hasCPU {
		t.Error("CPU from a reading without it")
	}

	// The whole run's sentence.
	if got, want := runKMSSummary(c, s3sealCounters{kmsCalls: 16, requests: map[string]float64{"PutObject": 10015, "GetObject": 10009}}),
		"s3seal's KMS calls over the whole run, warm-up included: 1, for 10,004 PUTs and 10,004 GETs through it."; got != want {
		t.Errorf("run summary %q, want %q", got, want)
	}

	// And over HTTP.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s3sealScrape) }))
	defer srv.Close()
	if got, err := scrapeS3seal(t.Context(), srv.Client(), srv.URL+"/metrics"); err != nil || got.kmsCalls != 15 {
		t.Errorf("scrape: %+v, %v", got, err)
	}
}

// The pass-through hop forwards a request as the client sent it — Host
// (the store's, as signed), path, query, headers, body — adds no
// forwarding headers, answers with the store's answer, listens on
// 127.0.0.1 only, and is gone after close.
func TestPassThrough(t *testing.T) {
	type seen struct {
		host, uri, auth, xff string
		body                 []byte
	}
	got := make(chan seen, 1)
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Host, r.RequestURI, r.Header.Get("Authorization"), r.Header.Get("X-Forwarded-For"), body}
		w.Header().Set("ETag", `"abc"`)
		io.WriteString(w, "stored")
	}))
	defer store.Close()
	storeURL, _ := url.Parse(store.URL)
	var errLog bytes.Buffer
	hop, err := startPassThrough(storeURL, &errLog)
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(hop.addr); host != "127.0.0.1" {
		t.Errorf("the hop listens on %s, want 127.0.0.1 only", hop.addr)
	}

	// The client signs for the store's name (here a made-up one) and
	// connects to the hop.
	req, _ := http.NewRequest(http.MethodPut, "https://store.example:9000/bucket/a%20key?x-id=PutObject", strings.NewReader("payload"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AK/...")
	resp, err := viaClient{inner: http.DefaultClient, addr: hop.addr}.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(answer) != "stored" || resp.Header.Get("ETag") != `"abc"` {
		t.Errorf("answer %d %q %v", resp.StatusCode, answer, resp.Header)
	}
	s := <-got
	if s.host != "store.example:9000" || s.uri != "/bucket/a%20key?x-id=PutObject" || s.auth != req.Header.Get("Authorization") ||
		s.xff != "" || string(s.body) != "payload" {
		t.Errorf("the store saw %+v", s)
	}
	if req.URL.Host != "store.example:9000" || req.URL.Scheme != "https" {
		t.Errorf("the caller's request was changed: %v", req.URL)
	}

	hop.close()
	if c, err := net.DialTimeout("tcp", hop.addr, time.Second); err == nil {
		c.Close()
		t.Error("the hop still listens after close")
	}
	if errLog.Len() > 0 {
		t.Errorf("hop errors: %s", errLog.String())
	}
}

func TestWriteTargetTable(t *testing.T) {
	i3 := func(v int64) *int64 { return &v }
	results := []TargetResult{
		{Path: pathDirect, Operation: "put", Size: 1 << 20, Requests: 40, MBPerS: 200, P50Ms: 20, P99Ms: 30, BenchCPUSPerGiB: f(2)},
		{Path: pathPassThrough, Operation: "put", Size: 1 << 20, Requests: 38, MBPerS: 160, P50Ms: 25, P99Ms: 40,
			HopCPUSPerGiB: f(1.25), HopCPUMsPerRequest: f(1.22)},
		{Path: pathS3seal, Operation: "put", Size: 1 << 20, Requests: 30, MBPerS: 120, P50Ms: 33.3, P99Ms: 50,
			HopCPUSPerGiB: f(2.5), HopCPUMsPerRequest: f(2.44), KMSCalls: i3(30), KMSCallsPerObject: f(1), StoreRequestsPerObject: f(1)},
		{Path: pathDirect, Operation: "get", Size: 1 << 20, Requests: 50, MBPerS: 400, P50Ms: 10, P99Ms: 12},
		{Path: pathPassThrough, Operation: "get", Size: 1 << 20, Requests: 50, MBPerS: 300, P50Ms: 12, P99Ms: 14,
			HopCPUSPerGiB: f(0), HopCPUMsPerRequest: f(0)},
		{Path: pathS3seal, Operation: "get", Size: 1 << 20, Requests: 12000, MBPerS: 270, P50Ms: 13, P99Ms: 15,
			HopCPUSPerGiB: f(1), HopCPUMsPerRequest: f(0.977), KMSCalls: i3(0), KMSCallsPerObject: f(0), StoreRequestsPerObject: f(3)},
	}
	var b strings.Builder
	writeTargetTable(&b, results, "")
	out := b.String()
	for _, re := range []string{
		`(?m)^\s+size\s+op\s+path\s+requests\s+MB/s\s+p50 ms\s+p99 ms\s+CPU s/GiB\s+CPU ms/request\s+KMS calls\s+KMS calls/object\s+store requests/object\s+` +
			`MB/s ÷ direct\s+MB/s ÷ pass-through\s+p50 ÷ pass-through\s+CPU ÷ pass-through\s*$`,
		`(?m)^\s+1MiB\s+put\s+direct\s+40\s+200\s+20\.0\s+30\.0\s*$`,
		`(?m)^\s+1MiB\s+put\s+pass-through\s+38\s+160\s+25\.0\s+40\.0\s+1\.25\s+1\.22\s+0\.80×\s*$`,
		`(?m)^\s+1MiB\s+put\s+s3seal\s+30\s+120\s+33\.3\s+50\.0\s+2\.50\s+2\.44\s+30\s+1\.00\s+1\.00\s+0\.60×\s+0\.75×\s+1\.33×\s+2\.00×\s*$`,
		// A pass-through CPU of zero (less than a tick in a short cell) is
		// shown, and no CPU ratio is made from it; zero KMS calls are shown.
		`(?m)^\s+1MiB\s+get\s+pass-through\s+50\s+300\s+12\.0\s+14\.0\s+0\s+0\s+0\.75×\s*$`,
		`(?m)^\s+1MiB\s+get\s+s3seal\s+12000\s+270\s+13\.0\s+15\.0\s+1\.00\s+0\.977\s+0\s+0\s+3\.00\s+0\.68×\s+0\.90×\s+1\.08×\s*$`,
		`CPU s/GiB, CPU ms/request: the hop's process's CPU seconds`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("table does not match %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, " \n") {
		t.Errorf("trailing blanks:\n%q", out)
	}
	if strings.Contains(out, "Not measured") {
		t.Errorf("says something was not measured:\n%s", out)
	}
	b.Reset()
	writeTargetTable(&b, results[:3], "s3seal's CPU (its metrics have no process_cpu_seconds_total)")
	if !strings.Contains(b.String(), "Not measured: s3seal's CPU (its metrics have no process_cpu_seconds_total).\n") {
		t.Errorf("no reason for the empty columns:\n%s", b.String())
	}
}

// oneByteReader returns at most a byte per Read.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

func TestVerifyBody(t *testing.T) {
	want := []byte("the object's bytes")
	buf := make([]byte, 4)
	for _, tc := range []struct {
		name string
		rd   io.Reader
		err  string // "" is none
	}{
		{"same", bytes.NewReader(want), ""},
		{"same, a byte at a time", oneByteReader{bytes.NewReader(want)}, ""},
		{"other bytes", strings.NewReader("the object's BYTES"), "differs from what was written, at byte 12"},
		{"short", strings.NewReader("the object"), "10 bytes returned, want 18"},
		{"long", strings.NewReader("the object's bytes, and more"), "differs from what was written, at byte 16"},
		{"empty", strings.NewReader(""), "0 bytes returned, want 18"},
		{"failing", io.MultiReader(strings.NewReader("the "), errReader{}), "cut off"},
	} {
		err := verifyBody(tc.rd, want, buf)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
	if err := verifyBody(strings.NewReader(""), nil, buf); err != nil {
		t.Errorf("empty object: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("cut off") }
