package bench

// The key-service benchmark: each object encrypted and decrypted again,
// envelope (s3seal's way) against direct (KMS Encrypt per 4096 bytes).

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/metrics"
)

// Modes of the key-service benchmark.
const (
	modeEnvelope = "envelope"
	modeDirect   = "direct"
)

// directPiece is the piece size of direct mode: the most KMS Encrypt takes.
const directPiece = kms.MaxEncryptPlaintext

// encContext is the encryption context of every benchmark call, so the
// calls are recognisable in a KMS audit log.
var encContext = map[string]string{"s3seal:bench": "1"}

// KMS is what the key-service benchmark measures.
type KMS struct {
	Keys  kms.KeyService // as configured, not yet instrumented
	KeyID string         // the CMK
	// Metrics instruments Keys; each result's KMS calls are the calls it
	// counted during that cell.
	Metrics       *metrics.Metrics
	ChartSubtitle string // names the key service under the chart's title
}

// kmsBench holds what both modes share.
type kmsBench struct {
	ks    kms.KeyService
	calls func() int64 // key-service calls so far
	keyID string
	plain []byte // random, as long as the largest size; read-only
}

// RunKMS round-trips objects of each size both ways, verifying every byte,
// then prints the table and writes bench.json and bench.svg.
func RunKMS(ctx context.Context, o Options, k KMS) error {
	b := &kmsBench{ks: k.Metrics.InstrumentKeys(k.Keys), calls: k.Metrics.KMSCalls, keyID: k.KeyID}
	if err := b.preflight(ctx); err != nil {
		return err
	}
	b.plain = make([]byte, slices.Max(o.Sizes))
	rand.Read(b.plain)
	results, err := b.run(ctx, o)
	if err != nil {
		return err
	}
	writeKMSTable(o.Stdout, results)
	return save(o, "bench", results, func(r []Result) []byte { return kmsChart(r, k.ChartSubtitle) })
}

// preflight makes one call of each kind the modes need, so a wrong key or
// missing permission fails at once with its real error, not mid-run.
func (b *kmsBench) preflight(ctx context.Context) error {
	dk, err := b.ks.GenerateDataKey(ctx, b.keyID, encContext)
	if err != nil {
		return err
	}
	clear(dk.Plaintext)
	w, err := b.ks.Encrypt(ctx, b.keyID, []byte("s3seal bench"), encContext)
	if err != nil {
		return fmt.Errorf("direct mode needs kms:Encrypt: %w", err)
	}
	if _, err := b.ks.Decrypt(ctx, w.KeyID, w.Ciphertext, encContext); err != nil {
		return err
	}
	return nil
}

// run measures every (size, mode) cell, by size, then mode.
func (b *kmsBench) run(ctx context.Context, o Options) ([]Result, error) {
	modes := []string{modeEnvelope, modeDirect}
	prog := newProgress(o, len(o.Sizes)*len(modes))
	var results []Result
	for _, size := range o.Sizes {
		for _, mode := range modes {
			r, err := b.cell(ctx, o, prog, mode, size)
			if err != nil {
				return nil, err
			}
			results = append(results, r)
		}
	}
	return results, nil
}

// cell measures one mode at one size and publishes the result.
func (b *kmsBench) cell(ctx context.Context, o Options, prog *progress, mode string, size int64) (Result, error) {
	calls0 := b.calls()
	prog.start(fmt.Sprintf("%-8s %s", mode, FormatSize(size)))
	roundTrip := b.envelope
	if mode == modeDirect {
		roundTrip = b.direct
	}
	lat, elapsed, err := runCell(ctx, o, prog, func(ctx context.Context, w *worker) error { return roundTrip(ctx, w, size) })
	if err != nil {
		prog.finish("")
		return Result{}, fmt.Errorf("%s %s: %w", mode, FormatSize(size), err)
	}
	r := kmsResult(mode, size, measure(size, lat, elapsed), b.calls()-calls0)
	o.Gauges.SetResult(mode, FormatSize(size), r.MBPerS*1e6, r.KMSCallsPerMiB, msDuration(r.P50Ms), msDuration(r.P99Ms))
	prog.finish(fmt.Sprintf("%s %s: %d objects, %.1f MB/s", mode, FormatSize(size), r.objects, r.MBPerS))
	return r, nil
}

// kmsResult is a cell's result: what it measured and the key-service calls
// it made.
func kmsResult(mode string, size int64, s stats, calls int64) Result {
	r := Result{Mode: mode, Size: size, MBPerS: s.mbPerS, KMSCalls: calls, P50Ms: s.p50Ms, P99Ms: s.p99Ms, objects: s.objects}
	if bytes := float64(size) * float64(s.objects); bytes > 0 {
		r.KMSCallsPerMiB = round3(float64(calls) / (bytes / (1 << 20)))
	}
	return r
}

func findResult(results []Result, mode string, size int64) (Result, bool) {
	return find(results, func(r Result) bool { return r.Mode == mode && r.Size == size })
}

// envelope round-trips one object the way s3seal stores it.
func (b *kmsBench) envelope(ctx context.Context, w *worker, size int64) error {
	plain := b.plain[:size]
	dk, err := b.ks.GenerateDataKey(ctx, b.keyID, encContext)
	if err != nil {
		return err
	}
	err = seal(&w.ct, plain, dk.Plaintext)
	clear(dk.Plaintext)
	if err != nil {
		return err
	}
	key, err := b.ks.Decrypt(ctx, dk.KeyID, dk.Ciphertext, encContext)
	if err != nil {
		return err
	}
	defer clear(key)
	w.pt.Reset()
	w.pt.Grow(int(size))
	if _, err := envelope.NewDecryptReader(bytes.NewReader(w.ct.Bytes()), key, envelope.FramingV1, 1).WriteTo(&w.pt); err != nil {
		return err
	}
	if !bytes.Equal(w.pt.Bytes(), plain) {
		return errors.New("envelope round trip returned other bytes")
	}
	return nil
}

// seal encrypts plain under key into ct, as one object.
func seal(ct *bytes.Buffer, plain, key []byte) error {
	size := int64(len(plain))
	enc, err := envelope.NewEncryptReader(bytes.NewReader(plain), key, 1, size)
	if err != nil {
		return err
	}
	ct.Reset()
	ct.Grow(int(envelope.SegmentSize(size)))
	_, err = enc.WriteTo(ct)
	return err
}

// direct round-trips one object through the KMS in 4096-byte pieces.
func (b *kmsBench) direct(ctx context.Context, w *worker, size int64) error {
	plain := b.plain[:size]
	w.blobs = w.blobs[:0]
	for off := int64(0); off < size; off += directPiece {
		wr, err := b.ks.Encrypt(ctx, b.keyID, plain[off:min(off+directPiece, size)], encContext)
		if err != nil {
			return err
		}
		w.blobs = append(w.blobs, wr)
	}
	for i, wr := range w.blobs {
		pt, err := b.ks.Decrypt(ctx, wr.KeyID, wr.Ciphertext, encContext)
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
