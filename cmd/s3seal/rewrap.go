package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/internal/datadir"
	"github.com/s3seal/s3seal/internal/rewrap"
	"github.com/s3seal/s3seal/internal/store"
	"github.com/s3seal/s3seal/metrics"
	"github.com/s3seal/s3seal/proxy"
	"github.com/s3seal/s3seal/sigv4"
)

const rewrapUsage = `Usage: s3seal rewrap --bucket B [--prefix P] [--to-key KEY] [--encrypt-plaintext]
                     [--all-versions] [--concurrency N] [--kms-rate N] [--dry-run] [--json]

Re-encrypts the data keys of the objects in a bucket without moving their
data through s3seal: KMS ReEncrypt of each wrapped key (the data key never
leaves the KMS), written back by a server-side copy of the object onto
itself that keeps its bytes, parts, metadata, tags and storage class.

  --to-key KEY   move objects to this CMK (id, ARN or alias/NAME); it must be
                 S3SEAL_KMS_KEY_ID or in S3SEAL_KMS_DECRYPT_KEY_IDS for serve
                 to read them afterwards. Without it, each object is re-wrapped
                 under the current material of its own CMK (after a rotation).
  --encrypt-plaintext
                 also encrypt, in place, objects not written through s3seal
                 (under --to-key or S3SEAL_KMS_KEY_ID), streamed through
                 s3seal; objects s3seal wrote are then left alone unless
                 --to-key names another CMK.

In a versioned bucket each rewrap adds a version (the old one, under the
old wrapping, stays); --all-versions rewraps the noncurrent versions too by
replaying a key's history and then deleting the old versions (new version
ids and dates; readers may briefly see an older version as current).

Every change is conditional on the object's ETag: an object changed
meanwhile is skipped and reported, never overwritten. A run after an
interruption does only what is left. Configured by the same S3SEAL_*
variables as serve. Exit status 1 when any object failed.

Flags:
`

// rewrapOptions are the flags of s3seal rewrap.
type rewrapOptions struct {
	bucket, prefix, toKey string
	encryptPlaintext      bool
	allVersions           bool
	concurrency           int
	kmsRate               float64
	dryRun, json          bool
	metricsAddr           string
	every                 int
}

func (c cli) rewrapFlags(args []string) (rewrapOptions, int) {
	var o rewrapOptions
	fs := flag.NewFlagSet("rewrap", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), rewrapUsage); fs.PrintDefaults() }
	fs.StringVar(&o.bucket, "bucket", "", "the bucket (required)")
	fs.StringVar(&o.prefix, "prefix", "", "only objects whose keys start with this")
	fs.StringVar(&o.toKey, "to-key", "", "the CMK to move objects to (default: each object's own)")
	fs.BoolVar(&o.encryptPlaintext, "encrypt-plaintext", false, "encrypt objects not written through s3seal")
	fs.BoolVar(&o.allVersions, "all-versions", false, "also rewrap noncurrent versions, by replaying each key's history (see README)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "keys at a time")
	fs.Float64Var(&o.kmsRate, "kms-rate", 50, "KMS requests per second at most, shared with your servers' quota; 0: no limit")
	fs.BoolVar(&o.dryRun, "dry-run", false, "say what would be done, change nothing")
	fs.BoolVar(&o.json, "json", false, "print the summary as JSON")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "127.0.0.1:9465", "serve s3seal_rewrap_* (and KMS) metrics here while running; empty: off")
	fs.IntVar(&o.every, "progress-every", 1000, "when not on a terminal, a progress line every this many objects")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK
		}
		return o, exitUsage
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(c.stderr, "s3seal rewrap: unexpected argument %q\n", fs.Arg(0))
		return o, exitUsage
	case o.bucket == "":
		fmt.Fprintln(c.stderr, "s3seal rewrap: --bucket is required")
		return o, exitUsage
	case o.concurrency < 1 || o.concurrency > 256 || o.kmsRate < 0:
		fmt.Fprintln(c.stderr, "s3seal rewrap: --concurrency must be 1..256 and --kms-rate at least 0")
		return o, exitUsage
	}
	return o, -1
}

// rewrap runs s3seal rewrap.
func (c cli) rewrap(ctx context.Context, args []string) int {
	o, code := c.rewrapFlags(args)
	if code >= 0 {
		return code
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return c.fail("rewrap", err)
	}
	logger := newLogger(c.stderr, cfg.LogLevel)
	// The job's proxy logs warnings and errors only (a store's answer
	// refused, say), unless at debug: a line per request would bury the
	// progress, and each failure is in the summary anyway.
	proxyLog := newLogger(c.stderr, "warn")
	if cfg.LogLevel == "debug" {
		proxyLog = logger
	}
	job, err := newRewrapJob(ctx, cfg, o, logger, proxyLog)
	if err != nil {
		return c.fail("rewrap", err)
	}
	defer job.close()
	progress := rewrap.NewProgress(c.stderr, o.every, job.metrics)
	sum, runErr := rewrap.Run(ctx, job.config(o, progress))
	progress.Close()
	if job.journal != nil {
		if err := job.journal.Close(sum.Completed && len(sum.Failed) == 0); err != nil {
			logger.Warn("closing the rewrap journal", "err", err)
		}
	}
	c.writeRewrapSummary(o, sum, runErr)
	if runErr != nil || len(sum.Failed) > 0 {
		return exitError
	}
	return exitOK
}

// rewrapJob is what a rewrap runs on: an s3seal proxy on a loopback port
// of its own (with a credential made for the run), the store, and the
// resume journal of a rotation in place.
type rewrapJob struct {
	s3         *minio.Client
	store      *store.Client
	toKeyIDs   []string
	journal    *rewrap.Journal
	metrics    *metrics.Rewrap
	closers    []func()
	metricsURL string
}

func newRewrapJob(ctx context.Context, cfg Config, o rewrapOptions, logger, proxyLog *slog.Logger) (_ *rewrapJob, err error) {
	j := &rewrapJob{}
	defer func() {
		if err != nil {
			j.close()
		}
	}()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		return nil, err
	}
	if j.metrics, err = metrics.NewRewrap(reg); err != nil {
		return nil, err
	}
	keys, err := j.openKeys(ctx, cfg, o, m)
	if err != nil {
		return nil, err
	}
	up, embedded, closeStore, err := commandUpstream(ctx, cfg, logger)
	j.closers = append(j.closers, closeStore)
	if err != nil {
		return nil, err
	}
	if j.store, err = store.New(store.Config{Endpoint: up.url, AccessKey: up.accessKey, SecretKey: up.secretKey, Region: up.region, Timeout: cfg.UpstreamTimeout}); err != nil {
		return nil, err
	}
	if err := j.startProxy(cfg, up, embedded, keys, m, proxyLog); err != nil {
		return nil, err
	}
	if err := j.serveMetrics(o.metricsAddr, reg, logger); err != nil {
		return nil, err
	}
	return j, j.openJournal(cfg, up, o, logger)
}

// openKeys is the key service for the job, rate limited and counted, with
// the allow-list serve has. The target CMK must be in it: serve has to be
// able to read what rewrap writes.
func (j *rewrapJob) openKeys(ctx context.Context, cfg Config, o rewrapOptions, m *metrics.Metrics) (kms.ObjectKeys, error) {
	ks, err := openKeyService(ctx, cfg, slog.New(slog.DiscardHandler), false)
	if err != nil {
		return kms.ObjectKeys{}, err
	}
	allowed := kms.NewAllowList(ks.resolver, cfg.CMKs()...)
	if err := allowed.Resolve(ctx); err != nil {
		return kms.ObjectKeys{}, err
	}
	if o.toKey != "" {
		if _, err := allowed.Choose(ctx, o.toKey); err != nil {
			return kms.ObjectKeys{}, fmt.Errorf("--to-key %s: %w; serve could not read objects moved to it: add it to S3SEAL_KMS_DECRYPT_KEY_IDS (or make it S3SEAL_KMS_KEY_ID) first", o.toKey, err)
		}
		if j.toKeyIDs, err = ks.resolver.ResolveKey(ctx, o.toKey); err != nil {
			return kms.ObjectKeys{}, fmt.Errorf("--to-key %s: %w", o.toKey, err)
		}
	}
	service := kms.WithTimeout(m.InstrumentKeys(ks.service), cfg.KMSTimeout)
	if o.kmsRate > 0 {
		service = kms.RateLimited(service, rate.NewLimiter(rate.Limit(o.kmsRate), max(1, int(o.kmsRate))))
	}
	return kms.ObjectKeys{Keys: service, KeyID: cfg.KMSKeyID, Allowed: allowed}, nil
}

// startProxy serves the job's own s3seal on a loopback port. It serves
// plaintext objects as stored, to encrypt them; the port and the
// credential are the job's alone.
func (j *rewrapJob) startProxy(cfg Config, up upstreamStore, embedded bool, keys kms.ObjectKeys, m *metrics.Metrics, logger *slog.Logger) error {
	cred := datadir.NewCredential()
	p, err := proxy.New(proxy.Config{
		Upstream: up.url, UpstreamAccessKey: up.accessKey, UpstreamSecretKey: up.secretKey, UpstreamRegion: up.region,
		UpstreamTimeout:          cfg.UpstreamTimeout,
		Auth:                     &sigv4.Verifier{Credentials: sigv4.StaticCredentials{cred.AccessKey: cred.SecretKey}, Region: cfg.Region},
		Keys:                     keys,
		AllowPlaintextReads:      true,
		StoreMarksMultipartETags: embedded,
		Logger:                   logger,
		Observer:                 m,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: readHeaderTimeout}
	go srv.Serve(ln)
	j.closers = append(j.closers, func() { srv.Close() })
	j.s3, err = minio.New(ln.Addr().String(), &minio.Options{Creds: credentials.NewStaticV4(cred.AccessKey, cred.SecretKey, ""), Region: cfg.Region})
	return err
}

// serveMetrics serves the job's registry on addr ("" for none).
func (j *rewrapJob) serveMetrics(addr string, reg *prometheus.Registry, logger *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr: %w (another rewrap running? give it another address, or empty for none)", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	go srv.Serve(ln)
	j.closers = append(j.closers, func() { srv.Close() })
	j.metricsURL = "http://" + ln.Addr().String() + "/metrics"
	logger.Info("rewrap metrics", "url", j.metricsURL)
	return nil
}

// openJournal opens the journal (rewrap.Journal) that a rotation in place
// and a replay of versions need, in the data dir, named after the store,
// bucket and prefix.
func (j *rewrapJob) openJournal(cfg Config, up upstreamStore, o rewrapOptions, logger *slog.Logger) error {
	rotation := o.toKey == "" && !o.encryptPlaintext
	if o.dryRun || !rotation && !o.allVersions {
		return nil
	}
	// The journal goes in the data dir, which only serve creates.
	if err := datadir.Check(cfg.DataDir, "create it for rewrap's journal (mkdir -m 700 "+cfg.DataDir+")"); err != nil {
		return err
	}
	dir := filepath.Join(cfg.DataDir, "rewrap")
	if err := datadir.Ensure(dir); err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(up.url.String() + "\x00" + o.bucket + "\x00" + o.prefix))
	journal, err := rewrap.OpenJournal(filepath.Join(dir, o.bucket+"-"+hex.EncodeToString(sum[:8])+".journal"))
	if err != nil {
		return err
	}
	j.journal = journal
	if n := journal.Resumed(); n > 0 {
		logger.Info("resuming an interrupted rotation in place", "already_rewrapped", n)
	}
	return nil
}

func (j *rewrapJob) config(o rewrapOptions, obs rewrap.Observer) rewrap.Config {
	return rewrap.Config{S3: j.s3, Store: j.store, Bucket: o.bucket, Prefix: o.prefix, ToKey: o.toKey, ToKeyIDs: j.toKeyIDs,
		EncryptPlaintext: o.encryptPlaintext, AllVersions: o.allVersions, Concurrency: o.concurrency, DryRun: o.dryRun, Journal: j.journal, Observe: obs}
}

func (j *rewrapJob) close() {
	for i := len(j.closers) - 1; i >= 0; i-- {
		j.closers[i]()
	}
	j.closers = nil
}

// writeRewrapSummary prints what a run did: JSON on stdout with --json,
// else a few lines.
func (c cli) writeRewrapSummary(o rewrapOptions, sum rewrap.Summary, runErr error) {
	if o.json {
		out := struct {
			rewrap.Summary
			Error string `json:"error,omitempty"`
		}{Summary: sum}
		if runErr != nil {
			out.Error = runErr.Error()
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return
	}
	writeRewrapText(c.stdout, o, sum)
	if runErr != nil {
		fmt.Fprintf(c.stdout, "stopped early: %v (run it again to do what is left)\n", runErr)
	}
}

func writeRewrapText(w io.Writer, o rewrapOptions, sum rewrap.Summary) {
	verb := map[bool]string{false: "", true: "would be "}[sum.DryRun]
	fmt.Fprintf(w, "s3seal rewrap s3://%s/%s: %d %srewrapped, %d %sencrypted, %d up to date, %d skipped, %d failed (%s in %s)\n",
		o.bucket, o.prefix, sum.Counts[string(rewrap.Rewrapped)], verb, sum.Counts[string(rewrap.Encrypted)], verb,
		sum.Counts[string(rewrap.UpToDate)], len(sum.Skipped), len(sum.Failed), humanize.IBytes(uint64(sum.Bytes)), sum.Elapsed.Round(1e7))
	for _, group := range []struct {
		name string
		rs   []rewrap.Result
	}{{"skipped", sum.Skipped}, {"failed", sum.Failed}} {
		for _, r := range group.rs {
			fmt.Fprintf(w, "  %s  %s: %s\n", group.name, r.Key, strings.TrimSpace(r.Reason))
		}
	}
}
