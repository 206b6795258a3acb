package main

// `s3seal bench`: envelope encryption against direct KMS encryption, with
// the configured key service, and (--target) the proxy's end-to-end cost.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/metrics"
)

// Benchmark modes.
const (
	modeEnvelope = "envelope"
	modeDirect   = "direct"
)

// directPiece is the piece size of direct mode: the most KMS Encrypt takes.
const directPiece = envelope.MaxEncryptPlaintext

// maxBenchSize bounds --sizes: every worker holds an object's plaintext and
// ciphertext in memory.
const maxBenchSize = 1 << 30

const defaultBenchSizes = "4KiB,64KiB,1MiB,16MiB"

// benchContext is the encryption context of every benchmark call, so the
// calls are recognisable in a KMS audit log.
var benchContext = map[string]string{"s3seal:bench": "1"}

// benchOptions are the parsed flags.
type benchOptions struct {
	sizes       []int64
	duration    time.Duration
	count       int
	concurrency int
	out         string
	metricsAddr string

	target                                     string
	accessKey, secretKey, region               string
	upstream, upstreamAK, upstreamSK, upRegion string
	bucket                                     string
}

func (c cli) benchUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: s3seal bench [flags]

Measures envelope encryption against direct KMS encryption with the key
service configured as for 'serve' (S3SEAL_KMS_PROVIDER, S3SEAL_KMS_KEY_ID,
S3SEAL_KMS_ENDPOINT, S3SEAL_KMS_REGION, S3SEAL_DATA_DIR; AWS credentials from
the SDK's default chain). For each object size and each mode, it encrypts
objects and decrypts them again, verifying the round trip:

  envelope  one GenerateDataKey per object, local chunked AES-256-GCM
            (s3seal's object format); decrypt: one KMS Decrypt, local AES-GCM.
  direct    the object cut into 4096-byte pieces, one KMS Encrypt per piece;
            decrypt: one KMS Decrypt per piece.

MB/s is plaintext megabytes (10^6 bytes) round-tripped per second of wall
time with --concurrency objects in flight; latency is one object's round
trip. With the embedded keyring (the default provider) every "KMS" call is
local, so direct mode has no network round trip and the comparison says
little: point it at a real KMS (S3SEAL_KMS_PROVIDER=aws) for numbers that
mean something.

With --target URL it measures instead PUT and GET of whole objects through a
running s3seal and, side by side in the same run, straight against the same
upstream store: the proxy's cost on your setup. It needs both credentials:
s3seal's (--access-key/--secret-key, else S3SEAL_ACCESS_KEY/S3SEAL_SECRET_KEY,
else S3SEAL_DATA_DIR/credentials.json) and the store's (--upstream,
--upstream-access-key/--upstream-secret-key, else S3SEAL_UPSTREAM_URL,
S3SEAL_UPSTREAM_ACCESS_KEY, S3SEAL_UPSTREAM_SECRET_KEY, else the embedded
store of the s3seal running on S3SEAL_DATA_DIR). Prefer the environment for
secrets: flags show in the process list.

Flags (-name and --name are the same):
`)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Examples:
  S3SEAL_KMS_PROVIDER=aws S3SEAL_KMS_KEY_ID=alias/s3seal s3seal bench --out bench-results
  s3seal bench --sizes 1MiB,64MiB --count 20 --concurrency 8
  s3seal bench --target http://127.0.0.1:8080 --upstream http://127.0.0.1:9000
`)
}

// bench runs `s3seal bench`.
func (c cli) bench(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	var o benchOptions
	sizes := fs.String("sizes", defaultBenchSizes, "comma-separated object `sizes`, each a whole number of bytes with an optional unit B, KiB, MiB, GiB (also K, M, G; KB, MB, GB are powers of 1000); at most 1GiB")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "how long to run each mode at each size (a `duration` such as 500ms, 10s); every run does at least one object")
	fs.IntVar(&o.count, "count", 0, "objects per mode and size instead of --duration (`n` > 0)")
	fs.IntVar(&o.concurrency, "concurrency", 4, "objects in flight at once in each mode (`n` > 0)")
	fs.StringVar(&o.out, "out", "", "write the results to `dir`: bench.json and bench.svg (bench-target.json and bench-target.svg with --target); created if missing")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve the results as Prometheus metrics on http://`host:port`/metrics (s3seal_bench_*, and s3seal_kms_* for the benchmark's own KMS calls) and keep serving after the run until interrupted")
	fs.StringVar(&o.target, "target", "", "end-to-end mode: the `url` of a running s3seal; measures PUT and GET through it and straight to --upstream")
	fs.StringVar(&o.accessKey, "access-key", "", "--target: the `key` clients sign with at s3seal (default S3SEAL_ACCESS_KEY, else the data dir's generated credential)")
	fs.StringVar(&o.secretKey, "secret-key", "", "--target: the `secret` for --access-key (default S3SEAL_SECRET_KEY)")
	fs.StringVar(&o.region, "region", "", "--target: the `region` s3seal's clients sign for (default S3SEAL_REGION, us-east-1)")
	fs.StringVar(&o.upstream, "upstream", "", "--target: the `url` of the store s3seal forwards to (default S3SEAL_UPSTREAM_URL)")
	fs.StringVar(&o.upstreamAK, "upstream-access-key", "", "--target: the store's access `key` (default S3SEAL_UPSTREAM_ACCESS_KEY)")
	fs.StringVar(&o.upstreamSK, "upstream-secret-key", "", "--target: the store's `secret` key (default S3SEAL_UPSTREAM_SECRET_KEY)")
	fs.StringVar(&o.upRegion, "upstream-region", "", "--target: the store's `region` (default S3SEAL_UPSTREAM_REGION, us-east-1)")
	fs.StringVar(&o.bucket, "bucket", "s3seal-bench", "--target: the `bucket` to write test objects to; created if missing; the objects are deleted afterwards")
	fs.Usage = func() { c.benchUsage(fs.Output(), fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "s3seal bench: unexpected argument %q (s3seal bench --help)\n", fs.Arg(0))
		return exitUsage
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	var err error
	if o.sizes, err = parseSizes(*sizes); err != nil {
		fmt.Fprintf(c.stderr, "s3seal bench: --sizes: %v\n", err)
		return exitUsage
	}
	switch {
	case o.count < 0:
		err = errors.New("--count must be more than 0")
	case o.count > 0 && durationSet:
		err = errors.New("--count and --duration exclude each other")
	case o.count == 0 && o.duration <= 0:
		err = errors.New("--duration must be more than 0")
	case o.concurrency < 1:
		err = errors.New("--concurrency must be more than 0")
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "s3seal bench: %v\n", err)
		return exitUsage
	}

	reg := prometheus.NewRegistry()
	bm, err := metrics.NewBench(reg)
	if err != nil {
		return c.fail("bench", err)
	}
	m, err := metrics.New(reg)
	if err != nil {
		return c.fail("bench", err)
	}
	var metricsSrv *http.Server
	var metricsURL string
	if o.metricsAddr != "" {
		ln, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			return c.fail("bench", fmt.Errorf("--metrics-addr: %w", err))
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler(reg))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go metricsSrv.Serve(ln)
		defer metricsSrv.Close()
		metricsURL = "http://" + displayAddr(ln.Addr()) + "/metrics"
		fmt.Fprintf(c.stderr, "s3seal bench: metrics at %s\n", metricsURL)
	}

	if o.target != "" {
		err = c.benchTarget(ctx, o, bm)
	} else {
		err = c.benchKMS(ctx, o, bm, m)
	}
	if err != nil {
		return c.fail("bench", err)
	}
	if metricsSrv != nil {
		fmt.Fprintf(c.stderr, "s3seal bench: done; serving the results on %s until interrupted\n", metricsURL)
		<-ctx.Done()
	}
	return exitOK
}

// benchResult is one (mode, size) cell, as bench.json has it.
type benchResult struct {
	Mode           string  `json:"mode"`
	Size           int64   `json:"size"`
	MBPerS         float64 `json:"mb_per_s"`
	KMSCalls       int64   `json:"kms_calls"`
	KMSCallsPerMiB float64 `json:"kms_calls_per_mib"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`

	objects int
}

// benchKMS runs the envelope-versus-direct benchmark.
func (c cli) benchKMS(ctx context.Context, o benchOptions, bm *metrics.Bench, m *metrics.Metrics) error {
	cfg, err := loadConfig(c.environ)
	if err != nil {
		return err
	}
	logger := newLogger(c.stderr, "warn")
	keys, err := openKeyService(ctx, cfg, logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "s3seal bench: %s\n", keys.describe)
	if cfg.KMSProvider == providerKeyring {
		note := "note: the KMS is the embedded keyring: every \"KMS\" call is a local function call with no\n" +
			"network round trip, so direct mode costs only local AES-GCM and the envelope/direct comparison\n" +
			"is not meaningful. Set S3SEAL_KMS_PROVIDER=aws (and S3SEAL_KMS_KEY_ID, S3SEAL_KMS_ENDPOINT) to\n" +
			"measure against a real KMS.\n"
		fmt.Fprint(c.stdout, note)
		if !sameWriter(c.stdout, c.stderr) {
			fmt.Fprint(c.stderr, note)
		}
	}
	counter := &countingKeys{KeyService: m.InstrumentKeys(keys.service)}
	b := &kmsBench{ks: counter, keyID: keys.keyID}
	if err := b.preflight(ctx); err != nil {
		return err
	}
	b.plain = make([]byte, slices.Max(o.sizes))
	rand.Read(b.plain)

	modes := []string{modeEnvelope, modeDirect}
	prog := newProgress(c.stderr, len(o.sizes)*len(modes), o.count, o.duration)
	var results []benchResult
	for _, size := range o.sizes {
		for _, mode := range modes {
			calls0 := counter.calls.Load()
			prog.start(fmt.Sprintf("%-8s %s", mode, formatSize(size)))
			op := b.envelope
			if mode == modeDirect {
				op = b.direct
			}
			lat, elapsed, err := runCell(ctx, o, prog, func(ctx context.Context, w *benchWorker) error { return op(ctx, w, size) })
			if err != nil {
				prog.finish("")
				return fmt.Errorf("%s %s: %w", mode, formatSize(size), err)
			}
			calls := counter.calls.Load() - calls0
			r := summarize(mode, size, lat, elapsed, calls)
			results = append(results, r)
			bm.SetResult(mode, formatSize(size), r.MBPerS*1e6, r.KMSCallsPerMiB, msDuration(r.P50Ms), msDuration(r.P99Ms))
			prog.finish(fmt.Sprintf("%s %s: %d objects, %.1f MB/s", mode, formatSize(size), r.objects, r.MBPerS))
		}
	}
	prog.close()
	writeBenchTable(c.stdout, results)
	if o.out != "" {
		if err := writeBenchFiles(o.out, results, cfg.KMSProvider); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "\nwrote %s and %s\n", filepath.Join(o.out, "bench.json"), filepath.Join(o.out, "bench.svg"))
	}
	return nil
}

func sameWriter(a, b io.Writer) bool {
	fa, ok1 := a.(*os.File)
	fb, ok2 := b.(*os.File)
	if !ok1 || !ok2 {
		return false
	}
	sa, err1 := fa.Stat()
	sb, err2 := fb.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// summarize turns a cell's latencies into its result.
func summarize(mode string, size int64, lat []time.Duration, elapsed time.Duration, calls int64) benchResult {
	n := len(lat)
	bytes := float64(size) * float64(n)
	r := benchResult{Mode: mode, Size: size, KMSCalls: calls, objects: n}
	if elapsed > 0 {
		r.MBPerS = round3(bytes / elapsed.Seconds() / 1e6)
	}
	if bytes > 0 {
		r.KMSCallsPerMiB = round3(float64(calls) / (bytes / (1 << 20)))
	}
	r.P50Ms = round3(float64(percentile(lat, 0.50)) / float64(time.Millisecond))
	r.P99Ms = round3(float64(percentile(lat, 0.99)) / float64(time.Millisecond))
	return r
}

// round3 keeps three significant decimals below 1 and three places above,
// enough for a table and stable in JSON.
func round3(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	mag := math.Pow(10, 3-math.Max(0, math.Ceil(math.Log10(math.Abs(v)))))
	if math.Abs(v) >= 1 {
		mag = 1000
	}
	return math.Round(v*mag) / mag
}

// percentile is the nearest-rank q-quantile; lat is sorted in place.
func percentile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	i := int(math.Ceil(q*float64(len(lat)))) - 1
	return lat[min(max(i, 0), len(lat)-1)]
}

// countingKeys counts the calls that reach the key service.
type countingKeys struct {
	envelope.KeyService
	calls atomic.Int64
}

func (k *countingKeys) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (envelope.DataKey, error) {
	k.calls.Add(1)
	return k.KeyService.GenerateDataKey(ctx, keyID, encCtx)
}

func (k *countingKeys) Decrypt(ctx context.Context, keyID string, ct []byte, encCtx map[string]string) ([]byte, error) {
	k.calls.Add(1)
	return k.KeyService.Decrypt(ctx, keyID, ct, encCtx)
}

func (k *countingKeys) Encrypt(ctx context.Context, keyID string, pt []byte, encCtx map[string]string) (envelope.Wrapped, error) {
	k.calls.Add(1)
	return k.KeyService.Encrypt(ctx, keyID, pt, encCtx)
}

// kmsBench holds what both modes share.
type kmsBench struct {
	ks    envelope.KeyService
	keyID string
	plain []byte // random, as long as the largest size; read-only
}

// benchWorker is one worker's reusable buffers.
type benchWorker struct {
	ct, pt bytes.Buffer
	blobs  []envelope.Wrapped
}

// preflight makes one call of each kind the modes need, so a wrong key or
// missing permission fails at once with its real error, not mid-run.
func (b *kmsBench) preflight(ctx context.Context) error {
	dk, err := b.ks.GenerateDataKey(ctx, b.keyID, benchContext)
	if err != nil {
		return err
	}
	clear(dk.Plaintext)
	w, err := b.ks.Encrypt(ctx, b.keyID, []byte("s3seal bench"), benchContext)
	if err != nil {
		return fmt.Errorf("direct mode needs kms:Encrypt: %w", err)
	}
	if _, err := b.ks.Decrypt(ctx, w.KeyID, w.Ciphertext, benchContext); err != nil {
		return err
	}
	return nil
}

// envelope round-trips one object the way s3seal stores it.
func (b *kmsBench) envelope(ctx context.Context, w *benchWorker, size int64) error {
	plain := b.plain[:size]
	dk, err := b.ks.GenerateDataKey(ctx, b.keyID, benchContext)
	if err != nil {
		return err
	}
	enc, err := envelope.NewEncryptReader(bytes.NewReader(plain), dk.Plaintext, 1, size)
	if err != nil {
		clear(dk.Plaintext)
		return err
	}
	w.ct.Reset()
	w.ct.Grow(int(envelope.SegmentSize(size)))
	_, err = enc.WriteTo(&w.ct)
	clear(dk.Plaintext)
	if err != nil {
		return err
	}
	key, err := b.ks.Decrypt(ctx, dk.KeyID, dk.Ciphertext, benchContext)
	if err != nil {
		return err
	}
	defer clear(key)
	w.pt.Reset()
	w.pt.Grow(int(size))
	if _, err := envelope.NewDecryptReader(bytes.NewReader(w.ct.Bytes()), key, 1).WriteTo(&w.pt); err != nil {
		return err
	}
	if !bytes.Equal(w.pt.Bytes(), plain) {
		return errors.New("envelope round trip returned other bytes")
	}
	return nil
}

// direct round-trips one object through the KMS in 4096-byte pieces.
func (b *kmsBench) direct(ctx context.Context, w *benchWorker, size int64) error {
	plain := b.plain[:size]
	w.blobs = w.blobs[:0]
	for off := int64(0); off < size; off += directPiece {
		wr, err := b.ks.Encrypt(ctx, b.keyID, plain[off:min(off+directPiece, size)], benchContext)
		if err != nil {
			return err
		}
		w.blobs = append(w.blobs, wr)
	}
	for i, wr := range w.blobs {
		pt, err := b.ks.Decrypt(ctx, wr.KeyID, wr.Ciphertext, benchContext)
		if err != nil {
			return err
		}
		off := int64(i) * directPiece
		if !bytes.Equal(pt, plain[off:min(off+directPiece, size)]) {
			return errors.New("direct round trip returned other bytes")
		}
	}
	return nil
}

// runCell runs op on o.concurrency workers, o.count times in all or, without
// a count, for o.duration (at least once), and returns each op's latency and
// the wall time until the last op ended. The first error stops the cell.
func runCell(ctx context.Context, o benchOptions, prog *progress, op func(context.Context, *benchWorker) error) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		lat     []time.Duration
		firstEr error
		issued  atomic.Int64
	)
	start := time.Now()
	next := func() bool {
		if ctx.Err() != nil {
			return false
		}
		n := issued.Add(1)
		if o.count > 0 {
			return n <= int64(o.count)
		}
		return n == 1 || time.Since(start) < o.duration
	}
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			w := &benchWorker{}
			for next() {
				t0 := time.Now()
				err := op(ctx, w)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				lat = append(lat, d)
				mu.Unlock()
				prog.add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstEr == nil && ctx.Err() != nil {
		firstEr = ctx.Err()
	}
	return lat, elapsed, firstEr
}
