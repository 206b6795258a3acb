package proxy

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"github.com/s3seal/s3seal/internal/store"
)

// Observer is told what the proxy does, for metrics; *metrics.Metrics
// implements it. Its methods are called on every request's goroutine (and
// the transport's), so they must be safe for concurrent use and cheap.
type Observer interface {
	// ObserveRequest: one answered request. status is the HTTP status sent,
	// 0 when the response was aborted after it had started.
	ObserveRequest(op string, status int, d time.Duration)
	// ObserveUpstream: one request to the store, on behalf of a client
	// request of operation op, from sending to the response headers.
	ObserveUpstream(op string, d time.Duration)
	// ObserveCipher: plaintext bytes encrypted or decrypted for one request
	// (direction "encrypt" or "decrypt") and the time the cipher itself
	// took, not counting waits on the client or the store.
	ObserveCipher(direction string, bytes int64, d time.Duration)
	// InflightAdd: +1 when a request starts, -1 when it ends.
	InflightAdd(n int)
	// ObserveDenied: a request of operation op refused because its
	// principal lacks a grant (Config.Principals).
	ObserveDenied(op string)
	// ObserveResume: a read of the store, for a request of operation op,
	// broke and was asked for again from where it broke; ok says whether
	// the store answered (store.Client.Resume).
	ObserveResume(op string, ok bool)
}

type nopObserver struct{}

func (nopObserver) ObserveRequest(string, int, time.Duration)  {}
func (nopObserver) ObserveUpstream(string, time.Duration)      {}
func (nopObserver) ObserveCipher(string, int64, time.Duration) {}
func (nopObserver) InflightAdd(int)                            {}
func (nopObserver) ObserveDenied(string)                       {}
func (nopObserver) ObserveResume(string, bool)                 {}

// Cipher directions, as ObserveCipher names them.
const (
	dirEncrypt = "encrypt"
	dirDecrypt = "decrypt"
)

// obsKey carries a request's operation, cipher clocks and the budget its
// store reads share for resuming (resume.go) in its context, so that
// upstream.do, the cipher sites and the reads deep in the handlers can
// report and share without every caller passing them along.
type obsKey struct{}

type observation struct {
	op      string
	clocks  *cipherClocks
	resumes *store.Resumes
}

func withObservation(ctx context.Context, op string, clocks *cipherClocks) context.Context {
	return context.WithValue(ctx, obsKey{}, observation{op: op, clocks: clocks, resumes: store.NewResumes(maxResumes)})
}

func opFrom(ctx context.Context) string {
	if o, ok := ctx.Value(obsKey{}).(observation); ok {
		return o.op
	}
	return "Unknown"
}

// cipherClocks are one request's clocks, one per direction (UploadPartCopy
// decrypts and encrypts). Clocks are made on the request's goroutine only.
type cipherClocks struct {
	encrypt, decrypt *cipherClock
}

// clockFor returns the request's clock for direction; a context without
// clocks (none of the proxy's) gets one that nobody reads.
func clockFor(ctx context.Context, direction string) *cipherClock {
	o, ok := ctx.Value(obsKey{}).(observation)
	if !ok {
		return &cipherClock{direction: direction}
	}
	slot := &o.clocks.decrypt
	if direction == dirEncrypt {
		slot = &o.clocks.encrypt
	}
	if *slot == nil {
		*slot = &cipherClock{direction: direction}
	}
	return *slot
}

func (cs *cipherClocks) report(obs Observer) {
	for _, c := range []*cipherClock{cs.encrypt, cs.decrypt} {
		if c != nil {
			c.report(obs)
		}
	}
}

// cipherClock measures one request's envelope cipher: the time inside the
// cipher reader's Read and WriteTo, less the time those spent inside their
// source's Read and their destination's Write. The PUT body is read on the
// transport's goroutine, hence the atomics.
type cipherClock struct {
	direction string
	busy      atomic.Int64 // ns inside the cipher reader
	wait      atomic.Int64 // ns of those inside its source or destination
	in, out   atomic.Int64 // bytes read from the source, bytes the cipher yielded
}

// source wraps what the cipher reads: the client's body (encrypt) or the
// store's (decrypt).
func (c *cipherClock) source(r io.Reader) io.Reader {
	return &timedReader{r: r, spent: &c.wait, n: &c.in}
}

// cipher wraps the EncryptReader, DecryptReader or RangeReader itself.
func (c *cipherClock) cipher(r io.Reader) io.Reader {
	return &clockCipher{timedReader: timedReader{r: r, spent: &c.busy, n: &c.out}, c: c}
}

// report hands the totals to obs: plaintext bytes are what went in when
// encrypting and what came out when decrypting.
func (c *cipherClock) report(obs Observer) {
	n := c.in.Load()
	if c.direction == dirDecrypt {
		n = c.out.Load()
	}
	d := time.Duration(c.busy.Load() - c.wait.Load())
	if n == 0 && d <= 0 {
		return
	}
	obs.ObserveCipher(c.direction, n, max(d, 0))
}

// timedReader adds the time its reads take to spent, and the bytes they
// yield to n.
type timedReader struct {
	r        io.Reader
	spent, n *atomic.Int64
}

func (t *timedReader) Read(p []byte) (int, error) {
	start := time.Now()
	n, err := t.r.Read(p)
	t.spent.Add(int64(time.Since(start)))
	t.n.Add(int64(n))
	return n, err
}

type clockCipher struct {
	timedReader
	c *cipherClock
}

// WriteTo keeps the readers' fast path (no extra copy) for io.Copy; the
// destination's writes count as waiting.
func (k *clockCipher) WriteTo(w io.Writer) (int64, error) {
	wt, ok := k.r.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{k})
	}
	start := time.Now()
	n, err := wt.WriteTo(&clockDest{w: w, c: k.c})
	k.c.busy.Add(int64(time.Since(start)))
	k.c.out.Add(n)
	return n, err
}

type clockDest struct {
	w io.Writer
	c *cipherClock
}

func (d *clockDest) Write(p []byte) (int, error) {
	start := time.Now()
	n, err := d.w.Write(p)
	d.c.wait.Add(int64(time.Since(start)))
	return n, err
}
