package bench

// The end-to-end benchmark: whole-object PUT and GET through a running
// s3seal and straight against its store, side by side.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Paths of the end-to-end benchmark, and its operations.
const (
	pathS3seal = "s3seal"
	pathDirect = "direct"
)

var (
	paths      = []string{pathS3seal, pathDirect}
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
}

// targetRun is one end-to-end run.
type targetRun struct {
	o       Options
	bucket  string
	clients map[string]*s3.Client // by path
	id      string                // random, in every key, so that runs do not meet
	plain   []byte                // random, as long as the largest size; read-only
	prog    *progress

	mu      sync.Mutex
	keys    map[string][]string // by path: what the PUTs at the current size wrote
	gets    int                 // GETs issued in the current cell
	written []string            // every key written, to delete afterwards
}

// RunTarget measures PUT and GET of each size through s3seal and straight
// to the store, then prints the table and writes bench-target.json and
// bench-target.svg. What it wrote to the store it deletes again.
func RunTarget(ctx context.Context, o Options, t Target) error {
	r, err := newTargetRun(ctx, o, t)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "s3seal bench: %s through s3seal at %s and straight to %s, bucket %s\n",
		"PUT and GET", t.Proxy.URL, t.Store.URL, t.Bucket)
	defer r.cleanup(ctx)
	results, err := r.run(ctx)
	if err != nil {
		return err
	}
	writeTargetTable(o.Stdout, results)
	return save(o, "bench-target", results, targetChart)
}

// newTargetRun makes both clients and the bucket.
func newTargetRun(ctx context.Context, o Options, t Target) (*targetRun, error) {
	r := &targetRun{o: o, bucket: t.Bucket, clients: map[string]*s3.Client{}}
	endpoints := map[string]Endpoint{pathS3seal: t.Proxy, pathDirect: t.Store}
	for _, path := range paths {
		c, err := s3Client(ctx, endpoints[path])
		if err != nil {
			return nil, err
		}
		r.clients[path] = c
	}
	if err := ensureBucket(ctx, r.clients[pathDirect], t.Bucket); err != nil {
		return nil, fmt.Errorf("bucket %s: %w", t.Bucket, err)
	}
	r.id = randomHex(4)
	r.plain = make([]byte, slices.Max(o.Sizes))
	rand.Read(r.plain)
	r.prog = newProgress(o, len(o.Sizes)*len(paths)*len(operations))
	return r, nil
}

// s3Client is an SDK client for one side. Checksums are computed only
// where S3 requires them, so both sides pay the same client cost and the
// difference is the proxy's.
func s3Client(ctx context.Context, ep Endpoint) (*s3.Client, error) {
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

// run measures every cell: by size, then PUT before GET (the GETs read
// what the PUTs wrote), then path.
func (r *targetRun) run(ctx context.Context) ([]TargetResult, error) {
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

// cell measures one operation on one path at one size and publishes the
// result.
func (r *targetRun) cell(ctx context.Context, path, op string, size int64) (TargetResult, error) {
	r.prog.start(fmt.Sprintf("%s %-6s %-3s %s", "target", path, op, FormatSize(size)))
	r.gets = 0
	request := r.put(path, size)
	if op == "get" {
		request = r.get(path, size)
	}
	lat, elapsed, err := runCell(ctx, r.o, r.prog, request)
	if err != nil {
		r.prog.finish("")
		return TargetResult{}, fmt.Errorf("%s %s %s: %w", path, op, FormatSize(size), explainS3Error(err))
	}
	s := measure(size, lat, elapsed)
	tr := TargetResult{Path: path, Operation: op, Size: size, Requests: s.objects, MBPerS: s.mbPerS, P50Ms: s.p50Ms, P99Ms: s.p99Ms}
	r.o.Gauges.SetTargetResult(path, op, FormatSize(size), tr.MBPerS*1e6, msDuration(tr.P50Ms), msDuration(tr.P99Ms))
	r.prog.finish(fmt.Sprintf("%s %s %s: %d requests, %.1f MB/s", path, op, FormatSize(size), tr.Requests, tr.MBPerS))
	return tr, nil
}

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
		w.pt.Reset()
		if _, err := io.Copy(&w.pt, out.Body); err != nil {
			return err
		}
		if !bytes.Equal(w.pt.Bytes(), body) {
			return fmt.Errorf("GET %s returned %d other bytes", key, w.pt.Len())
		}
		return nil
	}
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

// cleanup deletes what was written, through the store directly (a delete
// passes through s3seal unchanged anyway), even when ctx was cancelled.
func (r *targetRun) cleanup(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for _, k := range r.written {
		r.clients[pathDirect].DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(k)})
	}
}

func findTarget(results []TargetResult, path, op string, size int64) (TargetResult, bool) {
	return find(results, func(r TargetResult) bool { return r.Path == path && r.Operation == op && r.Size == size })
}
