package main

// `s3seal doctor`: the configuration serve would run with, checked against
// the real store and KMS. The checks live in internal/doctor; this parses
// the flags, builds the key service and the store as serve does, and
// prints the results.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"

	"github.com/s3seal/s3seal/internal/datadir"
	"github.com/s3seal/s3seal/internal/doctor"
	"github.com/s3seal/s3seal/internal/embeddedstore"
)

// doctorOptions are the parsed flags.
type doctorOptions struct {
	bucket string
	json   bool
}

func doctorUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: s3seal doctor [--bucket B] [--json]

Checks the configuration serve would run with (the same S3SEAL_* variables)
against the real store and KMS, and prints one line per check: ✓, or ✗ with
what breaks and how to fix it. The exit status is 0 only when every required
check passes (1 otherwise).

Without --bucket only the checks that write nothing run: the store answers
and accepts s3seal's credential, the clocks agree, the KMS key resolves and
is enabled, GenerateDataKey, Decrypt and ReEncrypt are allowed, and the
decrypt allow-list resolves. With --bucket B the doctor also writes probe
objects under `+doctor.Probe+` in bucket B (a two-part upload of 5 MiB, a few
small objects) to check what s3seal needs of the store: multipart ETags
ending in -N, part reads with part counts, Range, If-Match, CopyObject with
REPLACE, UploadPartCopy with a range, 2 KB of user metadata, sub-resources
routed. It deletes them and aborts its uploads whatever happens.

With S3SEAL_UPSTREAM_URL unset the store is the embedded one in
S3SEAL_DATA_DIR: a running s3seal's, or started for the duration of the run.
serve runs the checks that write nothing at every start.

Flags (-name and --name are the same):
`)
	fs.PrintDefaults()
}

// parseDoctorFlags parses args; code is the exit code when done is true.
func parseDoctorFlags(args []string, stderr io.Writer) (o doctorOptions, code int, done bool) {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bucket, "bucket", "", "a `bucket` the doctor may write probe objects to (and delete them from); without it, the checks that write are skipped")
	fs.BoolVar(&o.json, "json", false, `print a JSON document {"ok":bool,"checks":[{"name","required","status","message","fix"}]} instead of lines`)
	fs.Usage = func() { doctorUsage(fs.Output(), fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK, true
		}
		return o, exitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "s3seal doctor: unexpected argument %q (s3seal doctor --help)\n", fs.Arg(0))
		return o, exitUsage, true
	}
	return o, 0, false
}

// doctor runs `s3seal doctor`.
func (c cli) doctor(ctx context.Context, args []string) int {
	o, code, done := parseDoctorFlags(args, c.stderr)
	if done {
		return code
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return c.fail("doctor", err)
	}
	logger := newLogger(c.stderr, "warn")
	keys, err := openKeyService(ctx, cfg, logger, false)
	if err != nil {
		return c.fail("doctor", err)
	}
	up, embedded, closeStore, err := commandUpstream(ctx, cfg, logger)
	if err != nil {
		return c.fail("doctor", err)
	}
	defer closeStore()
	sess := doctor.NewSession(doctor.Config{Store: up.doctorStore(embedded), KMS: keys.doctorKMS(cfg), Bucket: o.bucket})
	var progress func(doctor.Result)
	if !o.json {
		writeDoctorHeader(c.stdout, up, embedded, keys.describe, o.bucket)
		progress = func(r doctor.Result) { fmt.Fprintln(c.stdout, r.Line()) }
	}
	rep := sess.RunAll(ctx, doctor.Checks(), progress)
	if o.json {
		err = writeDoctorJSON(c.stdout, rep)
	} else {
		err = writeDoctorSummary(c.stdout, rep)
	}
	if err != nil {
		return c.fail("doctor", err)
	}
	if rep.Cleanup != nil {
		fmt.Fprintf(c.stderr, "s3seal doctor: %v\n", rep.Cleanup)
	}
	if !rep.OK {
		return exitError
	}
	return exitOK
}

// commandUpstream is the store serve would use, for the commands that work
// on it beside serve (doctor, rewrap): the configured one, or the embedded
// store in the data dir — a running s3seal's, or one started for the run
// (closed by the returned function).
func commandUpstream(ctx context.Context, cfg Config, logger *slog.Logger) (_ upstreamStore, embedded bool, closeStore func(), _ error) {
	none := func() {}
	up, ok, err := configuredUpstream(cfg)
	if err != nil || ok {
		return up, false, none, err
	}
	// The embedded store lives in the data dir, which only serve creates.
	if err := datadir.Check(cfg.DataDir, ""); err != nil {
		return upstreamStore{}, true, none, err
	}
	store, err := startEmbeddedStore(ctx, cfg, logger)
	if errors.Is(err, embeddedstore.ErrLocked) {
		// An s3seal runs on this data dir: check its store.
		info, err := embeddedstore.Discover(absPath(cfg.DataDir))
		if err != nil {
			return upstreamStore{}, true, none, err
		}
		u, err := url.Parse(info.URL)
		if err != nil {
			return upstreamStore{}, true, none, fmt.Errorf("embedded store: %w", err)
		}
		return upstreamStore{url: u, accessKey: info.AccessKey, secretKey: info.SecretKey, region: info.Region}, true, none, nil
	}
	if err != nil {
		return upstreamStore{}, true, none, err
	}
	return embeddedUpstream(store), true, func() { store.Close() }, nil
}

func writeDoctorHeader(w io.Writer, up upstreamStore, embedded bool, kms, bucket string) {
	store := up.url.Redacted()
	if embedded {
		store = "embedded store at " + store
	}
	probes := "none (no --bucket: the checks that write are skipped)"
	if bucket != "" {
		probes = "in bucket " + bucket + ", deleted afterwards"
	}
	fmt.Fprintf(w, "s3seal doctor\n  store   %s\n  kms     %s\n  probes  %s\n\n", store, kms, probes)
}

// writeDoctorSummary ends the lines with what they add up to.
func writeDoctorSummary(w io.Writer, rep doctor.Report) error {
	failed, required := 0, 0
	for _, r := range rep.Checks {
		if r.Required {
			required++
			if r.Status == doctor.Fail {
				failed++
			}
		}
	}
	var msg string
	switch {
	case failed > 0:
		msg = fmt.Sprintf("%d required check%s failed: each ✗ above says what breaks and how to fix it.", failed, plural(failed))
	case rep.WritesSkipped:
		msg = "The checks that write nothing passed."
	default:
		msg = fmt.Sprintf("All %d required checks passed.", required)
	}
	if rep.WritesSkipped {
		msg += "\nThe checks that write were skipped, so the store's S3 behaviour is not checked and the exit status\n" +
			"covers the other checks only: run s3seal doctor --bucket B with a bucket it may write probe objects\n" +
			"to (it deletes them)."
	}
	_, err := fmt.Fprintf(w, "\n%s\n", msg)
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// writeDoctorJSON prints the report as a JSON document for scripts.
func writeDoctorJSON(w io.Writer, rep doctor.Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if rep.Checks == nil {
		rep.Checks = []doctor.Result{}
	}
	return enc.Encode(rep)
}
