package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/bench"
	"github.com/s3seal/s3seal/internal/metricstest"
	"github.com/s3seal/s3seal/internal/testkms"
	"github.com/s3seal/s3seal/internal/testlog"
)

func TestBenchUsage(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"bench", "--help"}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	help := errOut.String()
	for _, flag := range []string{"sizes", "duration", "count", "concurrency", "out", "metrics-addr", "target",
		"access-key", "secret-key", "region", "upstream", "upstream-access-key", "upstream-secret-key", "upstream-region", "target-metrics", "bucket"} {
		if !regexp.MustCompile(`(?m)^  -` + flag + ` `).MatchString(help) {
			t.Errorf("--help does not explain -%s", flag)
		}
	}
	for _, word := range []string{"envelope", "direct", "4096-byte", "keyring", "S3SEAL_KMS_PROVIDER", "S3SEAL_UPSTREAM_URL"} {
		if !strings.Contains(help, word) {
			t.Errorf("--help does not mention %s", word)
		}
	}
	for _, args := range [][]string{
		{"--count", "3", "--duration", "1s"},
		{"--sizes", "0"},
		{"--sizes", "4 parsecs"},
		{"--concurrency", "0"},
		{"--count", "-1"},
		{"extra"},
	} {
		errOut.Reset()
		if code := run(ctx, append([]string{"bench"}, args...), nil, &out, &errOut); code != exitUsage {
			t.Errorf("bench %v: exit %d, want %d (%s)", args, code, exitUsage, errOut.String())
		}
	}
	out.Reset()
	run(ctx, []string{"help"}, nil, &out, &errOut)
	if !strings.Contains(out.String(), "s3seal bench") {
		t.Error("s3seal help does not list bench")
	}
}

// runBench runs `s3seal bench args...` and returns its exit code, stdout and
// stderr. With --metrics-addr it scrapes the results once the run is done
// and then interrupts it, as a person would.
func runBench(t *testing.T, environ []string, args ...string) (int, string, string, metricstest.Scrape) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testlog.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"bench"}, args...), environ, &out, &errOut) }()
	if !slices.Contains(args, "--metrics-addr") {
		select {
		case code := <-done:
			return code, out.String(), errOut.String(), nil
		case <-time.After(2 * time.Minute):
			t.Fatalf("bench did not finish in 2 minutes; stderr:\n%s", errOut.String())
		}
	}
	re := regexp.MustCompile(`serving the results on (http://\S+/metrics)`)
	deadline := time.Now().Add(2 * time.Minute)
	for !re.MatchString(errOut.String()) {
		select {
		case code := <-done:
			return code, out.String(), errOut.String(), nil
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("bench did not finish in 2 minutes; stderr:\n%s", errOut.String())
		}
	}
	scrape, err := metricstest.Get(re.FindStringSubmatch(errOut.String())[1])
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	return <-done, out.String(), errOut.String(), scrape
}

// checkBenchJSON decodes DIR/bench.json strictly: exactly the issue's
// fields, nothing else.
func checkBenchJSON(t *testing.T, dir string) []bench.Result {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string][]map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatalf("bench.json: %v", err)
	}
	if len(generic) != 1 || generic["results"] == nil {
		t.Fatalf("bench.json top level: %v, want only \"results\"", generic)
	}
	wantKeys := []string{"kms_calls", "kms_calls_per_mib", "mb_per_s", "mode", "p50_ms", "p99_ms", "size"}
	for _, r := range generic["results"] {
		var keys []string
		for k, v := range r {
			keys = append(keys, k)
			if _, isNum := v.(float64); !isNum && k != "mode" {
				t.Errorf("bench.json %s = %v (%T), want a number", k, v, v)
			}
		}
		slices.Sort(keys)
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("bench.json result keys %v, want %v", keys, wantKeys)
		}
		if m := r["mode"]; m != "envelope" && m != "direct" {
			t.Errorf("mode %v", m)
		}
	}
	var f struct {
		Results []bench.Result `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	return f.Results
}

// svgSeries parses an SVG strictly (encoding/xml) and returns, per
// data-series, the number of points of its polyline, and all text shown.
func svgSeries(t *testing.T, path string) (map[string]int, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	dec.Strict = true
	series := map[string]int{}
	var text strings.Builder
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", path, err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Space + " " + el.Name.Local
			}
			if el.Name.Local == "polyline" {
				var name, points string
				for _, a := range el.Attr {
					switch a.Name.Local {
					case "data-series":
						name = a.Value
					case "points":
						points = a.Value
					}
				}
				series[name] = len(strings.Fields(points))
			}
		case xml.CharData:
			text.Write(el)
			text.WriteByte(' ')
		}
	}
	if root != "http://www.w3.org/2000/svg svg" {
		t.Errorf("%s: root element %q, want an SVG document", path, root)
	}
	return series, text.String()
}

// A short run against the embedded keyring: table, note, files, metrics,
// and KMS call counts that follow from the modes' definitions.
func TestBenchKeyring(t *testing.T) {
	dataDir, out := t.TempDir(), filepath.Join(t.TempDir(), "results")
	// bench uses serve's keyring, and starts none of its own.
	code, _, stderr, _ := runBench(t, zeroConfigEnv(dataDir), "--count", "1")
	if want := "S3SEAL_DATA_DIR=" + dataDir + " has no keyring.json (no key was ever made there): set S3SEAL_DATA_DIR to the data dir of your s3seal serve, or start s3seal serve once to create it"; code != exitError || !strings.Contains(stderr, want) {
		t.Fatalf("bench without a keyring: exit %d, %s; want %q", code, stderr, want)
	}
	keysJSON(t, dataDir, "create", "-alias", defaultKeyAlias)
	code, stdout, stderr, scrape := runBench(t, zeroConfigEnv(dataDir),
		"--sizes", "64KiB,4KiB", "--count", "3", "--concurrency", "2", "--out", out, "--metrics-addr", "127.0.0.1:0")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "embedded keyring") || !strings.Contains(stdout, "not meaningful") {
		t.Errorf("no plain note that the keyring makes the comparison meaningless:\n%s", stdout)
	}
	for _, h := range []string{"MB/s", "KMS calls/MiB", "p50 ms", "p99 ms", "envelope/direct"} {
		if !strings.Contains(stdout, h) {
			t.Errorf("table lacks %q:\n%s", h, stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^\s+4KiB\s+envelope\s+3\s`).MatchString(stdout) {
		t.Errorf("no 4KiB envelope row with 3 objects:\n%s", stdout)
	}
	if !strings.Contains(stderr, "bench: direct 64KiB: 3 objects") {
		t.Errorf("no progress line per finished cell (stderr is not a terminal):\n%s", stderr)
	}

	results := checkBenchJSON(t, out)
	if len(results) != 4 {
		t.Fatalf("%d results, want 4", len(results))
	}
	wantCalls := map[[2]any]int64{
		{"envelope", int64(4096)}: 3 * 2, {"envelope", int64(65536)}: 3 * 2, // GenerateDataKey + Decrypt
		{"direct", int64(4096)}: 3 * 2, {"direct", int64(65536)}: 3 * 2 * 16, // per 4096-byte piece
	}
	for _, r := range results {
		if want := wantCalls[[2]any{r.Mode, r.Size}]; r.KMSCalls != want {
			t.Errorf("%s %d: %d KMS calls, want %d", r.Mode, r.Size, r.KMSCalls, want)
		}
		if perMiB := float64(r.KMSCalls) / (3 * float64(r.Size) / (1 << 20)); r.KMSCallsPerMiB != perMiB {
			t.Errorf("%s %d: %v calls/MiB, want %v", r.Mode, r.Size, r.KMSCallsPerMiB, perMiB)
		}
		if r.MBPerS <= 0 || r.P50Ms <= 0 || r.P99Ms < r.P50Ms {
			t.Errorf("%s %d: %+v", r.Mode, r.Size, r)
		}
	}
	if results[0].Size != 4096 || results[0].Mode != "envelope" || results[1].Mode != "direct" {
		t.Errorf("results not in size, then mode order: %+v", results)
	}

	series, text := svgSeries(t, filepath.Join(out, "bench.svg"))
	if series["envelope"] != 2 || series["direct"] != 2 || len(series) != 2 {
		t.Errorf("chart series %v, want envelope and direct with 2 points each", series)
	}
	for _, s := range []string{"4KiB", "64KiB", "object size", "MB/s", "log scale", "envelope", "direct", "keyring"} {
		if !strings.Contains(text, s) {
			t.Errorf("chart text lacks %q", s)
		}
	}

	if scrape == nil {
		t.Fatal("no scrape")
	}
	if got := scrape.Sum("s3seal_bench_kms_calls_per_mebibyte", "mode=direct", "size=64KiB"); got != 512 {
		t.Errorf("bench_kms_calls_per_mebibyte{direct,64KiB} = %v, want 512", got)
	}
	for _, mode := range []string{"envelope", "direct"} {
		for _, size := range []string{"4KiB", "64KiB"} {
			if got := scrape.Sum("s3seal_bench_throughput_bytes_per_second", "mode="+mode, "size="+size); got <= 0 {
				t.Errorf("bench_throughput_bytes_per_second{%s,%s} = %v", mode, size, got)
			}
		}
	}
	if got := scrape.Sum("s3seal_kms_requests_total", "operation=Encrypt", "result=ok"); got != 3+3*16+1 {
		t.Errorf("kms_requests_total{Encrypt,ok} = %v, want the direct pieces plus the preflight", got)
	}
}

// A short run against a KMS-API server (local-kms): the aws provider, no
// keyring note, the same call counts.
func TestBenchLocalKMS(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	endpoint := testkms.Endpoint(t)
	keyID := testkms.CreateKey(t, endpoint)
	out := t.TempDir()
	environ := append(zeroConfigEnv(t.TempDir()), "S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID="+keyID,
		"S3SEAL_KMS_ENDPOINT="+endpoint, "S3SEAL_KMS_REGION="+testkms.Region)
	code, stdout, stderr, _ := runBench(t, environ, "--sizes", "4KiB,16KiB", "--count", "2", "--concurrency", "2", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "not meaningful") || !strings.Contains(stdout, "aws kms "+endpoint+", key "+keyID) {
		t.Errorf("stdout:\n%s", stdout)
	}
	results := checkBenchJSON(t, out)
	for _, r := range results {
		want := int64(2 * 2)
		if r.Mode == "direct" {
			want = 2 * 2 * r.Size / 4096
		}
		if r.KMSCalls != want {
			t.Errorf("%s %d: %d KMS calls, want %d", r.Mode, r.Size, r.KMSCalls, want)
		}
	}
	series, text := svgSeries(t, filepath.Join(out, "bench.svg"))
	if series["envelope"] != 2 || series["direct"] != 2 || strings.Contains(text, "not meaningful") {
		t.Errorf("chart series %v; text %q", series, text)
	}

	// A CMK that does not exist fails at once, with the KMS's reason.
	bad := append(zeroConfigEnv(t.TempDir()), "S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID=alias/missing",
		"S3SEAL_KMS_ENDPOINT="+endpoint, "S3SEAL_KMS_REGION="+testkms.Region)
	code, _, stderr, _ = runBench(t, bad, "--sizes", "4KiB", "--count", "1")
	if code != exitError || !strings.Contains(stderr, "key service "+endpoint+": CMK alias/missing not found (NotFoundException)") {
		t.Errorf("missing key: exit %d, stderr %s", code, stderr)
	}
}

// --target against an in-process s3seal and its embedded store: the three
// paths measured side by side, the s3seal path really through the proxy and
// the pass-through path not, s3seal's KMS calls from its own counters, CPU
// figures where they belong, the hop gone afterwards, and nothing left
// behind.
func TestBenchTarget(t *testing.T) {
	dataDir := t.TempDir()
	s := startZeroConfig(t, dataDir)
	out := t.TempDir()
	before, err := metricstest.Get(s.healthURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	// Zero-config: s3seal's credential and the embedded store come from
	// the data dir of the running s3seal, as a new user would have them.
	environ := []string{"S3SEAL_DATA_DIR=" + dataDir}
	code, stdout, stderr, _ := runBench(t, environ, "--target", s.endpoint(), "--target-metrics", s.healthURL()+"/metrics",
		"--sizes", "1KiB,100KiB", "--count", "3", "--concurrency", "2", "--out", out, "--bucket", "bench-target")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, h := range []string{"MB/s", "p50 ms", "CPU s/GiB", "CPU ms/request", "KMS calls", "KMS calls/object", "store requests/object", "MB/s ÷ direct",
		"MB/s ÷ pass-through", "p50 ÷ pass-through", "CPU ÷ pass-through"} {
		if !strings.Contains(stdout, h) {
			t.Errorf("table lacks %q:\n%s", h, stdout)
		}
	}
	for _, path := range []string{"direct", "pass-through", "s3seal"} {
		for _, op := range []string{"put", "get"} {
			if !regexp.MustCompile(`(?m)^\s+100KiB\s+` + op + `\s+` + path + `\s+3\s`).MatchString(stdout) {
				t.Errorf("no 100KiB %s %s row of 3 requests:\n%s", op, path, stdout)
			}
		}
	}
	if strings.Contains(stdout, "Not measured") {
		t.Errorf("s3seal's costs not measured:\n%s", stdout)
	}
	// 2 sizes × 3 PUTs and GETs, and the warm-up's 2 of each: one data key
	// per PUT, a Decrypt for no more than each GET.
	if m := regexp.MustCompile(`s3seal's KMS calls over the whole run, warm-up included: (\d+), for 8 PUTs and 8 GETs through it\.`).
		FindStringSubmatch(stdout); m == nil {
		t.Errorf("no whole-run KMS sentence:\n%s", stdout)
	} else if n, _ := strconv.Atoi(m[1]); n < 8 || n > 16 {
		t.Errorf("%d KMS calls over the run, want 8 to 16", n)
	}
	hop := regexp.MustCompile(`pass-through hop on (127\.0\.0\.1:\d+) \(process (\d+)\)`).FindStringSubmatch(stdout)
	if hop == nil {
		t.Fatalf("no pass-through address on 127.0.0.1 and process:\n%s", stdout)
	}
	if c, err := net.DialTimeout("tcp", hop[1], time.Second); err == nil {
		c.Close()
		t.Errorf("the pass-through hop on %s still listens after the run", hop[1])
	}
	if pid, _ := strconv.Atoi(hop[2]); pid == os.Getpid() || processExists(pid) {
		t.Errorf("the pass-through hop's process %s: the benchmark's own, or still there after the run", hop[2])
	}

	raw, err := os.ReadFile(filepath.Join(out, "bench-target.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Results []bench.TargetResult }
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Results) != 12 {
		t.Fatalf("%d results, want 12 (2 sizes × put, get × direct, pass-through, s3seal)", len(f.Results))
	}
	for _, r := range f.Results {
		if r.Requests != 3 || r.MBPerS <= 0 || r.P99Ms < r.P50Ms || r.BenchCPUSPerGiB == nil {
			t.Errorf("%+v", r)
		}
		// The hop's CPU on the hops' paths only; KMS calls on s3seal's only,
		// as s3seal counted them: one GenerateDataKey per PUT, and no more
		// than one Decrypt per GET (none when the data key is cached).
		if hasHop := r.Path != "direct"; (r.HopCPUSPerGiB != nil) != hasHop || (r.HopCPUMsPerRequest != nil) != hasHop {
			t.Errorf("%s %s %d: hop CPU %v s/GiB, %v ms/request", r.Path, r.Operation, r.Size, r.HopCPUSPerGiB, r.HopCPUMsPerRequest)
		}
		if r.HopCPUSPerGiB != nil && *r.HopCPUSPerGiB < 0 {
			t.Errorf("%s %s %d: negative CPU %v", r.Path, r.Operation, r.Size, *r.HopCPUSPerGiB)
		}
		switch {
		case r.Path != "s3seal":
			if r.KMSCalls != nil || r.KMSCallsPerObject != nil || r.StoreRequests != nil {
				t.Errorf("%s %s %d: KMS calls or store requests on a path without s3seal", r.Path, r.Operation, r.Size)
			}
		case r.StoreRequests == nil || *r.StoreRequests != 3 || *r.StoreRequestsPerObject != 1:
			// The embedded store ends multipart ETags in -N, so a GET needs
			// no part-count probe.
			t.Errorf("s3seal %s %d: store requests %v, want 3, one per request", r.Operation, r.Size, r.StoreRequests)
		case r.KMSCalls == nil || r.KMSCallsPerObject == nil:
			t.Errorf("s3seal %s %d: no KMS calls", r.Operation, r.Size)
		case r.Operation == "put" && (*r.KMSCalls != 3 || *r.KMSCallsPerObject != 1):
			t.Errorf("s3seal put %d: %d KMS calls (%v per object), want 3 (1)", r.Size, *r.KMSCalls, *r.KMSCallsPerObject)
		case r.Operation == "get" && *r.KMSCalls > 3:
			t.Errorf("s3seal get %d: %d KMS calls, want at most one per GET", r.Size, *r.KMSCalls)
		}
	}
	series, _ := svgSeries(t, filepath.Join(out, "bench-target.svg"))
	for _, path := range []string{"s3seal", "pass-through", "direct"} {
		for _, op := range []string{"put", "get"} {
			if name := path + " " + op; series[name] != 2 {
				t.Errorf("chart series %q has %d points, want 2 (%v)", name, series[name], series)
			}
		}
	}

	// The s3seal path went through the proxy, and the others did not: one
	// data key per PUT through it, and only its requests counted (2 sizes
	// × 3, and the warm-up's --concurrency).
	after, err := metricstest.Get(s.healthURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	gdk := "s3seal_kms_requests_total"
	if got := after.Sum(gdk, "operation=GenerateDataKey") - before.Sum(gdk, "operation=GenerateDataKey"); got != 2*3+2 {
		t.Errorf("s3seal made %v data keys, want one per PUT through it (8)", got)
	}
	reqs := "s3seal_requests_total"
	if got := after.Sum(reqs, "operation=PutObject") - before.Sum(reqs, "operation=PutObject"); got != 2*3+2 {
		t.Errorf("s3seal answered %v PUTs, want those of its own path only (8)", got)
	}
	// And everything written was deleted.
	store := s3Client(t, s.upstream.url.String(), s.upstream.accessKey, s.upstream.secretKey)
	list, err := store.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("bench-target")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 0 {
		t.Errorf("%d objects left behind, e.g. %s", len(list.Contents), aws.ToString(list.Contents[0].Key))
	}

	// With s3seal's metrics out of reach the run still measures the paths
	// and says why s3seal's costs are missing.
	code, stdout, stderr, _ = runBench(t, environ, "--target", s.endpoint(), "--target-metrics", "http://127.0.0.1:1/metrics",
		"--sizes", "1KiB", "--count", "1", "--bucket", "bench-target")
	if code != exitOK || !strings.Contains(stdout, "Not measured: s3seal's CPU and KMS calls (its metrics at http://127.0.0.1:1/metrics: ") {
		t.Errorf("unreachable metrics: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// Without the store's credential it says what is missing.
	code, _, stderr, _ = runBench(t, environ, "--target", s.endpoint(), "--upstream", s.upstream.url.String())
	if code != exitError || !strings.Contains(stderr, "no upstream credential") {
		t.Errorf("missing upstream credential: exit %d, stderr %s", code, stderr)
	}
	// With no s3seal running on the data dir, it says so.
	code, _, stderr, _ = runBench(t, []string{"S3SEAL_DATA_DIR=" + t.TempDir()}, "--target", s.endpoint())
	if code != exitError || !strings.Contains(stderr, "no embedded store is running") {
		t.Errorf("no embedded store: exit %d, stderr %s", code, stderr)
	}
}

// --target-metrics defaults to the /metrics of S3SEAL_METRICS_ADDR, as
// serve would listen on it.
func TestBenchMetricsURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:9464": "http://127.0.0.1:9464/metrics",
		"0.0.0.0:9464":   "http://127.0.0.1:9464/metrics",
		"[::]:9464":      "http://127.0.0.1:9464/metrics",
		":9464":          "http://127.0.0.1:9464/metrics",
		"[::1]:9464":     "http://[::1]:9464/metrics",
		"metrics:9464":   "http://metrics:9464/metrics",
		"127.0.0.1:0":    "",
		"nonsense":       "",
	} {
		if got := metricsURL(addr); got != want {
			t.Errorf("metricsURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

// processExists reports whether a process pid is there (signal 0 checks
// without sending anything).
func processExists(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}
