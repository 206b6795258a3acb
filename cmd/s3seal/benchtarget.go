package main

// `s3seal bench --target URL`: PUT and GET through a running s3seal and
// straight against its upstream store, side by side.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/embeddedstore"
	"github.com/s3seal/s3seal/metrics"
)

// Paths of the end-to-end benchmark.
const (
	pathS3seal = "s3seal"
	pathDirect = "direct"
)

// targetResult is one (path, operation, size) cell, as bench-target.json has it.
type targetResult struct {
	Path      string  `json:"path"`      // s3seal or direct
	Operation string  `json:"operation"` // put or get
	Size      int64   `json:"size"`
	Requests  int     `json:"requests"`
	MBPerS    float64 `json:"mb_per_s"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// targetEndpoint is one side of the comparison.
type targetEndpoint struct {
	url, accessKey, secretKey, region string
}

// resolveTarget fills in credentials from the flags, then the serve
// environment, then (for s3seal's) the data dir's generated credential.
func (c cli) resolveTarget(o benchOptions) (proxy, store targetEndpoint, err error) {
	cfg, err := parseConfig(c.environ)
	if err != nil {
		return proxy, store, err
	}
	pick := func(flag, env string) string {
		if flag != "" {
			return flag
		}
		return env
	}
	proxy = targetEndpoint{url: o.target, accessKey: pick(o.accessKey, cfg.AccessKey), secretKey: pick(o.secretKey, cfg.SecretKey), region: pick(o.region, cfg.Region)}
	if proxy.accessKey == "" && proxy.secretKey == "" {
		if doc, err := readCredentials(filepath.Join(cfg.DataDir, credentialsFile)); err == nil && len(doc.Credentials) > 0 {
			proxy.accessKey, proxy.secretKey = doc.Credentials[0].AccessKey, doc.Credentials[0].SecretKey
		}
	}
	store = targetEndpoint{url: pick(o.upstream, cfg.UpstreamURL), accessKey: pick(o.upstreamAK, cfg.UpstreamAccessKey), secretKey: pick(o.upstreamSK, cfg.UpstreamSecretKey), region: pick(o.upRegion, cfg.UpstreamRegion)}
	var errs []error
	if store.url == "" {
		// Zero-config s3seal: its embedded store, as the running s3seal
		// published it in the data dir.
		info, err := embeddedstore.Discover(absPath(cfg.DataDir))
		if err != nil {
			return proxy, store, fmt.Errorf("no --upstream and S3SEAL_UPSTREAM_URL unset, so the embedded store: %w", err)
		}
		store = targetEndpoint{url: info.URL, accessKey: info.AccessKey, secretKey: info.SecretKey, region: info.Region}
	}
	for _, e := range []struct {
		name string
		ep   targetEndpoint
	}{{"--target", proxy}, {"--upstream (S3SEAL_UPSTREAM_URL)", store}} {
		u, perr := url.Parse(e.ep.url)
		if e.ep.url == "" || perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q: want an http or https URL", e.name, e.ep.url))
		}
	}
	if proxy.accessKey == "" || proxy.secretKey == "" {
		errs = append(errs, errors.New("no s3seal credential: set --access-key/--secret-key or S3SEAL_ACCESS_KEY/S3SEAL_SECRET_KEY"))
	}
	if store.accessKey == "" || store.secretKey == "" {
		errs = append(errs, errors.New("no upstream credential: set --upstream-access-key/--upstream-secret-key or S3SEAL_UPSTREAM_ACCESS_KEY/S3SEAL_UPSTREAM_SECRET_KEY"))
	}
	return proxy, store, errors.Join(errs...)
}

// benchS3Client is an SDK client for one side. Checksums are computed only
// where S3 requires them, so both sides pay the same client cost and the
// difference is the proxy's.
func benchS3Client(ctx context.Context, ep targetEndpoint, concurrency int) (*s3.Client, error) {
	region := ep.region
	if region == "" {
		region = "us-east-1"
	}
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ep.accessKey, ep.secretKey, "")),
		config.WithRetryMaxAttempts(1),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(ep.url)
		o.UsePathStyle = true
	}), nil
}

// benchTarget runs the end-to-end benchmark.
func (c cli) benchTarget(ctx context.Context, o benchOptions, bm *metrics.Bench) error {
	proxyEP, storeEP, err := c.resolveTarget(o)
	if err != nil {
		return err
	}
	proxyClient, err := benchS3Client(ctx, proxyEP, o.concurrency)
	if err != nil {
		return err
	}
	storeClient, err := benchS3Client(ctx, storeEP, o.concurrency)
	if err != nil {
		return err
	}
	if err := ensureBucket(ctx, storeClient, o.bucket); err != nil {
		return fmt.Errorf("bucket %s: %w", o.bucket, err)
	}
	fmt.Fprintf(c.stdout, "s3seal bench: %s through s3seal at %s and straight to %s, bucket %s\n",
		"PUT and GET", proxyEP.url, storeEP.url, o.bucket)

	run := randomHex(4)
	plain := make([]byte, slices.Max(o.sizes))
	rand.Read(plain)
	clients := map[string]*s3.Client{pathS3seal: proxyClient, pathDirect: storeClient}
	paths := []string{pathS3seal, pathDirect}
	prog := newProgress(c.stderr, len(o.sizes)*len(paths)*2, o.count, o.duration)

	var (
		results []targetResult
		written []string
	)
	defer func() {
		// Delete what was written, through the store directly (a delete
		// passes through s3seal unchanged anyway).
		cctx := context.WithoutCancel(ctx)
		for _, k := range written {
			storeClient.DeleteObject(cctx, &s3.DeleteObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(k)})
		}
	}()
	for _, size := range o.sizes {
		body := plain[:size]
		keys := map[string][]string{}
		for _, op := range []string{"put", "get"} {
			for _, path := range paths {
				client := clients[path]
				prog.start(fmt.Sprintf("%s %-6s %-3s %s", "target", path, op, formatSize(size)))
				var mu sync.Mutex
				var seq int
				var fn func(ctx context.Context, w *benchWorker) error
				if op == "put" {
					fn = func(ctx context.Context, w *benchWorker) error {
						mu.Lock()
						key := fmt.Sprintf("s3seal-bench/%s/%s/%s/%06d", run, path, formatSize(size), seq)
						seq++
						keys[path] = append(keys[path], key)
						written = append(written, key)
						mu.Unlock()
						_, err := client.PutObject(ctx, &s3.PutObjectInput{
							Bucket: aws.String(o.bucket), Key: aws.String(key),
							Body: bytes.NewReader(body), ContentLength: aws.Int64(size),
						})
						return err
					}
				} else {
					fn = func(ctx context.Context, w *benchWorker) error {
						mu.Lock()
						key := keys[path][seq%len(keys[path])]
						seq++
						mu.Unlock()
						out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(key)})
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
				lat, elapsed, err := runCell(ctx, o, prog, fn)
				if err != nil {
					prog.finish("")
					return fmt.Errorf("%s %s %s: %w", path, op, formatSize(size), explainS3Error(err))
				}
				r := summarize(path, size, lat, elapsed, 0)
				tr := targetResult{Path: path, Operation: op, Size: size, Requests: r.objects, MBPerS: r.MBPerS, P50Ms: r.P50Ms, P99Ms: r.P99Ms}
				results = append(results, tr)
				bm.SetTargetResult(path, op, formatSize(size), tr.MBPerS*1e6, msDuration(tr.P50Ms), msDuration(tr.P99Ms))
				prog.finish(fmt.Sprintf("%s %s %s: %d requests, %.1f MB/s", path, op, formatSize(size), tr.Requests, tr.MBPerS))
			}
		}
	}
	prog.close()
	writeTargetTable(c.stdout, results)
	if o.out != "" {
		if err := writeTargetFiles(o.out, results); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "\nwrote %s and %s\n", filepath.Join(o.out, "bench-target.json"), filepath.Join(o.out, "bench-target.svg"))
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

func findTarget(results []targetResult, path, op string, size int64) (targetResult, bool) {
	for _, r := range results {
		if r.Path == path && r.Operation == op && r.Size == size {
			return r, true
		}
	}
	return targetResult{}, false
}

// writeTargetTable prints s3seal and direct side by side per size and
// operation.
func writeTargetTable(w io.Writer, results []targetResult) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\top\ts3seal MB/s\tdirect MB/s\ts3seal/direct\ts3seal p50 ms\tp99 ms\tdirect p50 ms\tp99 ms\t")
	var sizes []int64
	for _, r := range results {
		if !slices.Contains(sizes, r.Size) {
			sizes = append(sizes, r.Size)
		}
	}
	for _, size := range sizes {
		for _, op := range []string{"put", "get"} {
			s, ok1 := findTarget(results, pathS3seal, op, size)
			d, ok2 := findTarget(results, pathDirect, op, size)
			if !ok1 || !ok2 {
				continue
			}
			ratio := ""
			if d.MBPerS > 0 {
				ratio = strconv.FormatFloat(s.MBPerS/d.MBPerS, 'f', 2, 64) + "×"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", formatSize(size), op,
				formatNumber(s.MBPerS), formatNumber(d.MBPerS), ratio,
				formatNumber(s.P50Ms), formatNumber(s.P99Ms), formatNumber(d.P50Ms), formatNumber(d.P99Ms))
		}
	}
	tw.Flush()
}

// writeTargetFiles writes DIR/bench-target.json and DIR/bench-target.svg.
func writeTargetFiles(dir string, results []targetResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		Results []targetResult `json:"results"`
	}{results}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-target.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench-target.svg"), targetChart(results), 0o644)
}

// targetChart draws PUT and GET throughput by size, through s3seal (solid)
// and direct (dashed).
func targetChart(results []targetResult) []byte {
	var sizes []int64
	for _, r := range results {
		if !slices.Contains(sizes, r.Size) {
			sizes = append(sizes, r.Size)
		}
	}
	slices.Sort(sizes)
	ch := chart{
		title:    "s3seal bench --target: through s3seal vs straight to the store",
		subtitle: "whole-object PUT and GET, MB/s of object bytes",
		xLabel:   "object size (log scale)",
		yLabel:   "throughput, MB/s (log scale)",
		sizes:    sizes,
	}
	for _, s := range []struct {
		path, op, color string
		dashed          bool
	}{
		{pathS3seal, "put", "#1f77b4", false}, {pathDirect, "put", "#1f77b4", true},
		{pathS3seal, "get", "#2ca02c", false}, {pathDirect, "get", "#2ca02c", true},
	} {
		vals := make([]float64, len(sizes))
		for i, size := range sizes {
			if r, ok := findTarget(results, s.path, s.op, size); ok {
				vals[i] = r.MBPerS
			}
		}
		ch.series = append(ch.series, chartSeries{name: s.path + " " + s.op, color: s.color, dashed: s.dashed, values: vals})
	}
	return ch.svg()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}
