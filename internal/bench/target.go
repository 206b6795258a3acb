package bench

// The end-to-end benchmark: whole-object PUT and GET straight against a
// store, through a plain pass-through hop in front of it, and through a
// running s3seal in front of it, side by side.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Paths of the end-to-end benchmark, and its operations.
const (
	pathDirect      = "direct"       // straight to the store
	pathPassThrough = "pass-through" // through a plain reverse proxy in a process of its own (passthrough.go, hopprocess.go)
	pathS3seal      = "s3seal"       // through the running s3seal
)

var (
	paths      = []string{pathDirect, pathPassThrough, pathS3seal}
	operations = []string{"put", "get"}
)

// Endpoint is one side of the comparison.
type Endpoint struct {
	URL, AccessKey, SecretKey string
	Region                    string // "" is us-east-1
}

// Target is what the end-to-end benchmark measures.
type Target struct {
	Proxy  Endpoint // the running s3seal
	Store  Endpoint // the store it forwards to
	Bucket string   // created on the store if missing; the test objects are deleted afterwards
	// Metrics is the running s3seal's /metrics URL, where its CPU time and
	// KMS calls are read; "" (or unreachable, or another s3seal's) leaves
	// them out.
	Metrics string
}

// targetRun is one end-to-end run.
type targetRun struct {
	o       Options
	bucket  string
	clients map[string]*s3.Client // by path
	id      string                // random, in every key, so that runs do not meet
	plain   []byte                // random, as long as the largest size; read-only
	prog    *progress
	hop     *hopProcess

	metricsURL  string          // s3seal's /metrics; "" once it cannot be used
	scraper     *http.Client    // for metricsURL
	notMeasured string          // what of s3seal's costs is missing and why, if anything is
	runStart    *s3sealCounters // s3seal's counters before the warm-up, when read

	mu      sync.Mutex
	keys    map[string][]string // by path: what the PUTs at the current size wrote
	gets    int                 // GETs issued in the current cell
	written []string            // every key written, to delete afterwards
}

// RunTarget measures PUT and GET of each size straight to the store,
// through a pass-through hop and through s3seal, then prints the table and
// writes bench-target.json and bench-target.svg. What it wrote to the store
// it deletes again, and the hop it stops.
func RunTarget(ctx context.Context, o Options, t Target) error {
	r, err := newTargetRun(ctx, o, t)
	if err != nil {
		return err
	}
	defer r.close(ctx)
	fmt.Fprintf(o.Stdout, "s3seal bench: PUT and GET straight to %s, through a pass-through hop on %s (process %d) and through s3seal at %s, bucket %s\n",
		t.Store.URL, r.hop.addr, r.hop.pid(), t.Proxy.URL, t.Bucket)
	results, err := r.run(ctx)
	if err != nil {
		return err
	}
	for _, tr := range results {
		o.Gauges.SetTargetCost(tr.Path, tr.Operation, FormatSize(tr.Size), tr.HopCPUSPerGiB, tr.KMSCallsPerObject)
	}
	writeTargetTable(o.Stdout, results, r.notMeasured)
	if summary := r.runKMS(ctx); summary != "" {
		fmt.Fprintln(o.Stdout, summary)
	}
	return save(o, "bench-target", results, targetChart)
}

// newTargetRun makes the bucket, starts the pass-through hop and makes a
// client per path.
func newTargetRun(ctx context.Context, o Options, t Target) (*targetRun, error) {
	r := &targetRun{o: o, bucket: t.Bucket, clients: map[string]*s3.Client{},
		metricsURL: t.Metrics, scraper: &http.Client{Timeout: 10 * time.Second}}
	if t.Metrics == "" {
		r.notMeasured = "s3seal's CPU and KMS calls (no --target-metrics)"
	}
	direct, err := s3Client(ctx, t.Store, "")
	if err != nil {
		return nil, err
	}
	if err := ensureBucket(ctx, direct, t.Bucket); err != nil {
		return nil, fmt.Errorf("bucket %s: %w", t.Bucket, err)
	}
	if r.hop, err = startHopProcess(t.Store.URL, o.Progress); err != nil {
		return nil, err
	}
	r.clients[pathDirect] = direct
	// The pass-through path's clients sign for the store, as the direct
	// path's do, and connect to the hop (passthrough.go says why).
	if r.clients[pathPassThrough], err = s3Client(ctx, t.Store, r.hop.addr); err == nil {
		r.clients[pathS3seal], err = s3Client(ctx, t.Proxy, "")
	}
	if err != nil {
		r.hop.close()
		return nil, err
	}
	r.id = randomHex(4)
	r.plain = make([]byte, slices.Max(o.Sizes))
	rand.Read(r.plain)
	r.prog = newProgress(o, len(o.Sizes)*len(paths)*len(operations))
	return r, nil
}

// s3Client is an SDK client for one side; with via, it signs for ep but
// connects to via (host:port, plain HTTP) instead. Checksums are computed
// only where S3 requires them, so every path pays the same client cost and
// the differences are the hops'.
func s3Client(ctx context.Context, ep Endpoint, via string) (*s3.Client, error) {
	region := ep.Region
	if region == "" {
		region = "us-east-1"
	}
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ep.AccessKey, ep.SecretKey, "")),
		config.WithRetryMaxAttempts(1),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(ep.URL)
		o.UsePathStyle = true
		if via != "" {
			o.HTTPClient = viaClient{inner: o.HTTPClient, addr: via}
		}
	}), nil
}

// ensureBucket creates bucket on the store unless it exists.
func ensureBucket(ctx context.Context, c *s3.Client, bucket string) error {
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		return nil
	}
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *s3types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return explainS3Error(err)
	}
	return nil
}

// explainS3Error keeps an SDK error's code and message, which say more
// than its wrapping.
func explainS3Error(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %s", apiErr.ErrorCode(), apiErr.ErrorMessage())
	}
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// run measures every cell, one after another so that the CPU each one
// takes is its own: by size, then PUT before GET (the GETs read what the
// PUTs wrote), then path.
func (r *targetRun) run(ctx context.Context) ([]TargetResult, error) {
	if r.metricsURL != "" {
		if c, err := scrapeS3seal(ctx, r.scraper, r.metricsURL); err == nil {
			r.runStart = &c
		} else {
			r.stopWatching(err)
		}
	}
	if err := r.warmUp(ctx); err != nil {
		return nil, err
	}
	var results []TargetResult
	for _, size := range r.o.Sizes {
		r.keys = map[string][]string{}
		for _, op := range operations {
			for _, path := range paths {
				res, err := r.cell(ctx, path, op, size)
				if err != nil {
					return nil, err
				}
				results = append(results, res)
			}
		}
	}
	return results, nil
}

// warmUp sends every path a round of PUTs and then GETs of the smallest
// size, --concurrency of each, unmeasured, so that no cell pays first-use
// costs (connections, the SDK's and the runtime's lazy set-up, s3seal's)
// that the others do not: the first cells are direct ones, and the
// pass-through's CPU is measured against theirs.
func (r *targetRun) warmUp(ctx context.Context) error {
	o := r.o
	o.Count, o.Duration = o.Concurrency, 0
	size := slices.Min(o.Sizes)
	r.keys = map[string][]string{}
	for _, path := range paths {
		for _, op := range operations {
			r.gets = 0
			j := r.put(path, size)
			if op == "get" {
				j = r.get(path, size)
			}
			if _, _, err := runCell(ctx, o, &progress{w: io.Discard}, j); err != nil {
				return fmt.Errorf("warm-up: %s %s %s: %w", path, op, FormatSize(size), explainS3Error(err))
			}
		}
	}
	return nil
}

// cell measures one operation on one path at one size and publishes the
// result.
func (r *targetRun) cell(ctx context.Context, path, op string, size int64) (TargetResult, error) {
	r.prog.start(fmt.Sprintf("%s %-12s %-3s %s", "target", path, op, FormatSize(size)))
	r.gets = 0
	request := r.put(path, size)
	if op == "get" {
		request = r.get(path, size)
	}
	var before s3sealCounters
	watch := path == pathS3seal && r.metricsURL != ""
	if watch {
		var err error
		if before, err = scrapeS3seal(ctx, r.scraper, r.metricsURL); err != nil {
			r.stopWatching(err)
			watch = false
		}
	}
	cpu, hopCPU := cpuMeter(processCPU), cpuMeter(r.hop.cpu)
	lat, elapsed, err := runCell(ctx, r.o, r.prog, request)
	benchCPU, cpuOK := cpu()
	passCPU, passOK := hopCPU()
	if err != nil {
		r.prog.finish("")
		return TargetResult{}, fmt.Errorf("%s %s %s: %w", path, op, FormatSize(size), explainS3Error(err))
	}
	s := measure(size, lat, elapsed)
	tr := TargetResult{Path: path, Operation: op, Size: size, Requests: s.objects, MBPerS: s.mbPerS, P50Ms: s.p50Ms, P99Ms: s.p99Ms}
	if v, ok := cpuPerGiB(benchCPU, tr.bytes()); ok && cpuOK {
		tr.BenchCPUSPerGiB = ptr(round3(v))
	}
	if path == pathPassThrough && passOK {
		setHopCPU(&tr, passCPU)
	}
	if watch {
		r.s3sealCost(ctx, &tr, before)
	}
	r.o.Gauges.SetTargetResult(path, op, FormatSize(size), tr.MBPerS*1e6, msDuration(tr.P50Ms), msDuration(tr.P99Ms))
	r.prog.finish(fmt.Sprintf("%s %s %s: %d requests, %.1f MB/s", path, op, FormatSize(size), tr.Requests, tr.MBPerS))
	return tr, nil
}

// s3sealCost reads s3seal's counters again after a cell of the s3seal path
// and sets tr's s3seal CPU and KMS calls from the difference with before.
// s3seal counts a request just after its response has gone, so a reading
// that does not count them all yet is repeated for up to a second.
func (r *targetRun) s3sealCost(ctx context.Context, tr *TargetResult, before s3sealCounters) {
	var cost s3sealCost
	for tries := 0; ; tries++ {
		after, err := scrapeS3seal(ctx, r.scraper, r.metricsURL)
		if err == nil {
			cost, err = costBetween(before, after, s3sealOperations[tr.Operation], tr.Requests)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, errNotTarget) || tries == 40 || ctx.Err() != nil {
			r.stopWatching(err)
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	tr.KMSCalls = ptr(int64(math.Round(cost.kmsCalls)))
	tr.KMSCallsPerObject = ptr(round3(cost.kmsCalls / float64(tr.Requests)))
	tr.StoreRequests = ptr(int64(math.Round(cost.upstream)))
	tr.StoreRequestsPerObject = ptr(round3(cost.upstream / float64(tr.Requests)))
	if cost.hasCPU {
		setHopCPU(tr, time.Duration(cost.cpuSeconds*float64(time.Second)))
	} else {
		r.notMeasured = "s3seal's CPU (its metrics have no " + famCPU + ")"
	}
}

// setHopCPU sets tr's hop CPU figures from the CPU time the hop's process
// spent in the cell.
func setHopCPU(tr *TargetResult, cpu time.Duration) {
	if v, ok := cpuPerGiB(cpu, tr.bytes()); ok {
		tr.HopCPUSPerGiB = ptr(round3(v))
	}
	if tr.Requests > 0 {
		tr.HopCPUMsPerRequest = ptr(round3(cpu.Seconds() * 1000 / float64(tr.Requests)))
	}
}

// runKMS says how many KMS calls s3seal made over the whole run, warm-up
// included (a bucket key made for the warm-up's PUTs serves the cells'
// too), for how many PUTs and GETs through it; "" when its metrics could
// not be read throughout.
func (r *targetRun) runKMS(ctx context.Context) string {
	if r.runStart == nil || r.metricsURL == "" {
		return ""
	}
	end, err := scrapeS3seal(ctx, r.scraper, r.metricsURL)
	if err != nil {
		return ""
	}
	return runKMSSummary(*r.runStart, end)
}

// runKMSSummary is runKMS's sentence from the readings before and after
// the run.
func runKMSSummary(before, after s3sealCounters) string {
	count := func(v float64) string { return formatCount(int64(math.Round(v))) }
	d := func(op string) string { return count(after.requests[op] - before.requests[op]) }
	return fmt.Sprintf("s3seal's KMS calls over the whole run, warm-up included: %s, for %s PUTs and %s GETs through it.",
		count(after.kmsCalls-before.kmsCalls), d(s3sealOperations["put"]), d(s3sealOperations["get"]))
}

// stopWatching gives up reading s3seal's metrics for the rest of the run:
// the table says why its columns are empty.
func (r *targetRun) stopWatching(err error) {
	r.notMeasured = fmt.Sprintf("s3seal's CPU and KMS calls (its metrics at %s: %v)", r.metricsURL, err)
	r.metricsURL = ""
}

func ptr[T any](v T) *T { return &v }

// put writes a new object of size bytes on path.
func (r *targetRun) put(path string, size int64) job {
	client, body := r.clients[path], r.plain[:size]
	return func(ctx context.Context, w *worker) error {
		key := r.newKey(path, size)
		_, err := client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(r.bucket), Key: aws.String(key),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(size),
		})
		return err
	}
}

// get reads back, in turn, the objects the PUTs on path wrote, and checks
// their bytes.
func (r *targetRun) get(path string, size int64) job {
	client, body := r.clients[path], r.plain[:size]
	return func(ctx context.Context, w *worker) error {
		key := r.nextKey(path)
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key)})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		if w.buf == nil {
			w.buf = make([]byte, 64<<10)
		}
		if err := verifyBody(out.Body, body, w.buf); err != nil {
			return fmt.Errorf("GET %s: %w", key, err)
		}
		return nil
	}
}

// verifyBody reads rd to its end through buf and checks that it is want.
// It compares as it reads, holding no copy of the object, so the client
// costs the same per byte at every size and on every path, whatever the
// number of requests: the CPU the clients take is subtracted from the
// pass-through's, and must not depend on how a cell went.
func verifyBody(rd io.Reader, want, buf []byte) error {
	var off int
	for {
		n, err := rd.Read(buf)
		if n > 0 {
			if n > len(want)-off || !bytes.Equal(buf[:n], want[off:off+n]) {
				return fmt.Errorf("the body differs from what was written, at byte %d", off)
			}
			off += n
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if off != len(want) {
		return fmt.Errorf("%d bytes returned, want %d", off, len(want))
	}
	return nil
}

// newKey names the next object a PUT on path writes, and remembers it.
func (r *targetRun) newKey(path string, size int64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := fmt.Sprintf("s3seal-bench/%s/%s/%s/%06d", r.id, path, FormatSize(size), len(r.keys[path]))
	r.keys[path] = append(r.keys[path], key)
	r.written = append(r.written, key)
	return key
}

// nextKey is the object the next GET on path reads.
func (r *targetRun) nextKey(path string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := r.keys[path][r.gets%len(r.keys[path])]
	r.gets++
	return key
}

// close deletes what was written, through the store directly (a delete
// passes through s3seal unchanged anyway), even when ctx was cancelled,
// and stops the pass-through hop.
func (r *targetRun) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for _, k := range r.written {
		r.clients[pathDirect].DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(k)})
	}
	r.hop.close()
}

func findTarget(results []TargetResult, path, op string, size int64) (TargetResult, bool) {
	return find(results, func(r TargetResult) bool { return r.Path == path && r.Operation == op && r.Size == size })
}
