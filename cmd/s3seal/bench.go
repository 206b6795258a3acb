package main

// `s3seal bench`: its flags and configuration; internal/bench runs it.

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/s3seal/s3seal/internal/datadir"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3seal/s3seal/internal/bench"
	"github.com/s3seal/s3seal/internal/embeddedstore"
	"github.com/s3seal/s3seal/internal/tlsport"
	"github.com/s3seal/s3seal/metrics"
)

const defaultBenchSizes = "4KiB,64KiB,1MiB,16MiB"

// benchOptions are the parsed flags.
type benchOptions struct {
	run         bench.Options
	metricsAddr string
	target      bench.Target // as the flags give it; resolveTarget fills in the rest
}

// chartSubtitles name the key service under bench.svg's title, by provider.
var chartSubtitles = map[string]string{
	providerKeyring: "key service: embedded keyring (no network round trip: comparison not meaningful)",
	providerAWS:     "key service: AWS KMS API; encrypt + decrypt round trip, plaintext MB/s",
}

// keyringNote is said before a run against the embedded keyring.
const keyringNote = "note: the KMS is the embedded keyring: every \"KMS\" call is a local function call with no\n" +
	"network round trip, so direct mode costs only local AES-GCM and the envelope/direct comparison\n" +
	"is not meaningful. Set S3SEAL_KMS_PROVIDER=aws (and S3SEAL_KMS_KEY_ID, S3SEAL_KMS_ENDPOINT) to\n" +
	"measure against a real KMS.\n"

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
upstream store and through a plain pass-through hop in front of it (a
reverse proxy, no encryption, that the bench runs as a process of its own on
127.0.0.1 and stops at the end): the proxy's cost on your setup, and how much
of it any hop costs. With s3seal's metrics (--target-metrics) it also shows
the CPU s3seal's process spent per GiB and per request (and the
pass-through's process) and s3seal's KMS calls in each cell, read from its
own counters. With --count n each cell is n requests: the PUTs write n
objects, and the GETs read each of them once, after an unmeasured warm-up
round on every path.

--target needs both credentials: s3seal's (--access-key/--secret-key, else
S3SEAL_ACCESS_KEY/S3SEAL_SECRET_KEY, else S3SEAL_DATA_DIR/credentials.json)
and the store's (--upstream, --upstream-access-key/--upstream-secret-key,
else S3SEAL_UPSTREAM_URL, S3SEAL_UPSTREAM_ACCESS_KEY,
S3SEAL_UPSTREAM_SECRET_KEY, else the embedded store of the s3seal running on
S3SEAL_DATA_DIR). Prefer the environment for secrets: flags show in the
process list.

Flags (-name and --name are the same):
`)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Examples:
  S3SEAL_KMS_PROVIDER=aws S3SEAL_KMS_KEY_ID=alias/s3seal s3seal bench --out bench-results
  s3seal bench --sizes 1MiB,64MiB --count 20 --concurrency 8
  s3seal bench --target http://127.0.0.1:8080 --upstream http://127.0.0.1:9000 \
    --target-metrics http://127.0.0.1:9464/metrics
`)
}

// bench runs `s3seal bench`.
func (c cli) bench(ctx context.Context, args []string) int {
	o, code, ok := c.parseBenchFlags(args)
	if !ok {
		return code
	}
	reg := prometheus.NewRegistry()
	gauges, err := metrics.NewBench(reg)
	if err != nil {
		return c.fail("bench", err)
	}
	m, err := metrics.New(reg)
	if err != nil {
		return c.fail("bench", err)
	}
	o.run.Stdout, o.run.Progress, o.run.Gauges = c.stdout, c.stderr, gauges
	metricsURL, stop, err := c.serveBenchMetrics(o.metricsAddr, reg)
	if err != nil {
		return c.fail("bench", err)
	}
	defer stop()
	if o.target.Proxy.URL != "" {
		err = c.benchTarget(ctx, o)
	} else {
		err = c.benchKMS(ctx, o, m)
	}
	if err != nil {
		return c.fail("bench", err)
	}
	if metricsURL != "" {
		fmt.Fprintf(c.stderr, "s3seal bench: done; serving the results on %s until interrupted\n", metricsURL)
		<-ctx.Done()
	}
	return exitOK
}

// parseBenchFlags reads the flags; when ok is false the command ends at
// once with code (--help, or a usage error it has explained).
func (c cli) parseBenchFlags(args []string) (o benchOptions, code int, ok bool) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	sizes := defineBenchFlags(fs, &o)
	fs.Usage = func() { c.benchUsage(fs.Output(), fs) }
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return o, exitOK, false
	} else if err != nil {
		return o, exitUsage, false
	}
	if err := checkBenchFlags(fs, &o, sizes); err != nil {
		fmt.Fprintf(c.stderr, "s3seal bench: %v\n", err)
		return o, exitUsage, false
	}
	return o, exitOK, true
}

// defineBenchFlags binds the flags to o and returns --sizes, which
// checkBenchFlags parses.
func defineBenchFlags(fs *flag.FlagSet, o *benchOptions) *string {
	sizes := fs.String("sizes", defaultBenchSizes, "comma-separated object `sizes`, each a whole number of bytes with an optional unit B, KiB, MiB, GiB (also K, M, G; KB, MB, GB are powers of 1000); at most 1GiB")
	fs.DurationVar(&o.run.Duration, "duration", 3*time.Second, "how long to run each mode at each size (a `duration` such as 500ms, 10s); every run does at least one object")
	fs.IntVar(&o.run.Count, "count", 0, "objects per mode and size instead of --duration (`n` > 0); with --target, requests per cell: n PUTs, then n GETs reading each object once")
	fs.IntVar(&o.run.Concurrency, "concurrency", 4, "objects in flight at once in each mode (`n` > 0)")
	fs.StringVar(&o.run.Out, "out", "", "write the results to `dir`: bench.json and bench.svg (bench-target.json and bench-target.svg with --target); created if missing")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve the results as Prometheus metrics on http://`host:port`/metrics (s3seal_bench_*, and s3seal_kms_* for the benchmark's own KMS calls) and keep serving after the run until interrupted")
	p, s := &o.target.Proxy, &o.target.Store
	fs.StringVar(&p.URL, "target", "", "end-to-end mode: the `url` of a running s3seal; measures PUT and GET through it and straight to --upstream")
	fs.StringVar(&p.AccessKey, "access-key", "", "--target: the `key` clients sign with at s3seal (default S3SEAL_ACCESS_KEY, else the data dir's generated credential)")
	fs.StringVar(&p.SecretKey, "secret-key", "", "--target: the `secret` for --access-key (default S3SEAL_SECRET_KEY)")
	fs.StringVar(&p.Region, "region", "", "--target: the `region` s3seal's clients sign for (default S3SEAL_REGION, us-east-1)")
	fs.StringVar(&s.URL, "upstream", "", "--target: the `url` of the store s3seal forwards to (default S3SEAL_UPSTREAM_URL)")
	fs.StringVar(&s.AccessKey, "upstream-access-key", "", "--target: the store's access `key` (default S3SEAL_UPSTREAM_ACCESS_KEY)")
	fs.StringVar(&s.SecretKey, "upstream-secret-key", "", "--target: the store's `secret` key (default S3SEAL_UPSTREAM_SECRET_KEY)")
	fs.StringVar(&s.Region, "upstream-region", "", "--target: the store's `region` (default S3SEAL_UPSTREAM_REGION, us-east-1)")
	fs.StringVar(&o.target.Metrics, "target-metrics", "", "--target: the `url` of the running s3seal's /metrics, for its CPU time and KMS calls (default from S3SEAL_METRICS_ADDR: http://127.0.0.1:9464/metrics)")
	fs.StringVar(&o.target.Bucket, "bucket", "s3seal-bench", "--target: the `bucket` to write test objects to; created if missing; the objects are deleted afterwards")
	return sizes
}

// checkBenchFlags parses --sizes into o and checks the flags against each
// other.
func checkBenchFlags(fs *flag.FlagSet, o *benchOptions, sizes *string) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (s3seal bench --help)", fs.Arg(0))
	}
	var err error
	if o.run.Sizes, err = bench.ParseSizes(*sizes); err != nil {
		return fmt.Errorf("--sizes: %w", err)
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	r := o.run
	switch {
	case r.Count < 0:
		return errors.New("--count must be more than 0")
	case r.Count > 0 && durationSet:
		return errors.New("--count and --duration exclude each other")
	case r.Count == 0 && r.Duration <= 0:
		return errors.New("--duration must be more than 0")
	case r.Concurrency < 1:
		return errors.New("--concurrency must be more than 0")
	}
	return nil
}

// serveBenchMetrics serves reg on http://addr/metrics, when addr is set,
// until stop; url is "" when it serves nothing.
func (c cli) serveBenchMetrics(addr string, reg *prometheus.Registry) (url string, stop func(), err error) {
	if addr == "" {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	url = "http://" + tlsport.ReachableAddr(ln.Addr()) + "/metrics"
	fmt.Fprintf(c.stderr, "s3seal bench: metrics at %s\n", url)
	return url, func() { srv.Close() }, nil
}

// benchKMS runs the envelope-versus-direct benchmark with the key service
// configured as for serve.
func (c cli) benchKMS(ctx context.Context, o benchOptions, m *metrics.Metrics) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	keys, err := openKeyService(ctx, cfg, newLogger(c.stderr, "warn"), false)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "s3seal bench: %s\n", keys.describe)
	if cfg.KMSProvider == providerKeyring {
		fmt.Fprint(c.stdout, keyringNote)
		if !sameWriter(c.stdout, c.stderr) {
			fmt.Fprint(c.stderr, keyringNote)
		}
	}
	return bench.RunKMS(ctx, o.run, bench.KMS{Keys: keys.service, KeyID: keys.keyID, Metrics: m,
		ChartSubtitle: chartSubtitles[cfg.KMSProvider]})
}

// sameWriter reports whether a and b are the same file, so the keyring
// note is not said twice on one terminal.
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

// benchTarget runs the end-to-end benchmark.
func (c cli) benchTarget(ctx context.Context, o benchOptions) error {
	t, err := c.resolveTarget(o.target)
	if err != nil {
		return err
	}
	return bench.RunTarget(ctx, o.run, t)
}

// resolveTarget fills in what the flags left unset from the serve
// environment, then s3seal's credential from the data dir and the store
// from the embedded store the running s3seal published there.
func (c cli) resolveTarget(t bench.Target) (bench.Target, error) {
	cfg, err := c.parseConfig()
	if err != nil {
		return t, err
	}
	t.Proxy = orEndpoint(t.Proxy, bench.Endpoint{AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, Region: cfg.Region})
	if t.Proxy.AccessKey == "" && t.Proxy.SecretKey == "" {
		if doc, err := datadir.ReadCredentials(filepath.Join(cfg.DataDir, datadir.CredentialsFile)); err == nil && len(doc.Credentials) > 0 {
			t.Proxy.AccessKey, t.Proxy.SecretKey = doc.Credentials[0].AccessKey, doc.Credentials[0].SecretKey
		}
	}
	if t.Metrics == "" {
		t.Metrics = metricsURL(cfg.MetricsAddr)
	}
	t.Store = orEndpoint(t.Store, bench.Endpoint{URL: cfg.UpstreamURL, AccessKey: cfg.UpstreamAccessKey, SecretKey: cfg.UpstreamSecretKey, Region: cfg.UpstreamRegion})
	if t.Store.URL == "" {
		info, err := embeddedstore.Discover(absPath(cfg.DataDir))
		if err != nil {
			return t, fmt.Errorf("no --upstream and S3SEAL_UPSTREAM_URL unset, so the embedded store: %w", err)
		}
		t.Store = bench.Endpoint{URL: info.URL, AccessKey: info.AccessKey, SecretKey: info.SecretKey, Region: info.Region}
	}
	return t, checkTarget(t)
}

// metricsURL is the /metrics URL of an s3seal listening on addr
// (S3SEAL_METRICS_ADDR); "" when addr names no fixed port. An unspecified
// host is reached on 127.0.0.1.
func metricsURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/metrics"
}

// orEndpoint is e with each unset field taken from def.
func orEndpoint(e, def bench.Endpoint) bench.Endpoint {
	return bench.Endpoint{URL: cmp.Or(e.URL, def.URL), AccessKey: cmp.Or(e.AccessKey, def.AccessKey),
		SecretKey: cmp.Or(e.SecretKey, def.SecretKey), Region: cmp.Or(e.Region, def.Region)}
}

// checkTarget says everything that is missing or wrong at once.
func checkTarget(t bench.Target) error {
	var errs []error
	for _, e := range []struct {
		name string
		ep   bench.Endpoint
	}{{"--target", t.Proxy}, {"--upstream (S3SEAL_UPSTREAM_URL)", t.Store}} {
		u, perr := url.Parse(e.ep.URL)
		if e.ep.URL == "" || perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q: want an http or https URL", e.name, e.ep.URL))
		}
	}
	if t.Proxy.AccessKey == "" || t.Proxy.SecretKey == "" {
		errs = append(errs, errors.New("no s3seal credential: set --access-key/--secret-key or S3SEAL_ACCESS_KEY/S3SEAL_SECRET_KEY"))
	}
	if t.Store.AccessKey == "" || t.Store.SecretKey == "" {
		errs = append(errs, errors.New("no upstream credential: set --upstream-access-key/--upstream-secret-key or S3SEAL_UPSTREAM_ACCESS_KEY/S3SEAL_UPSTREAM_SECRET_KEY"))
	}
	return errors.Join(errs...)
}
