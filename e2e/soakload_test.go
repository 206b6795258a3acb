package e2e

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// soakWorkload is a bounded run of concurrent S3 clients doing a weighted
// mix of operations against one bucket, every read checked byte for byte.
// Each client owns its own key space (prefix cNN/), so every key has one
// writer and a read knows which content it must see; the content of an
// object is a keystream of its identity (key@version, carried in the
// object's metadata), so nothing is held in memory to check it.
type soakWorkload struct {
	Clients       int           // concurrent clients (64)
	KeysPerClient int           // keys each client writes (8)
	Duration      time.Duration // how long the mix runs
	MaxSize       int64         // the largest single PUT (64 MiB)
	Bucket        string
	AccessKey     string
	SecretKey     string
	// Retries is minio-go's MaxRetries: 1 means no retry (the soak test,
	// where any error is a failure), more lets the SDK retry as it does
	// for users (the scale-out run, through injected faults).
	Retries int
}

// soakOp names an operation kind of the mix.
type soakOp string

const (
	opPut       soakOp = "PUT"
	opMultipart soakOp = "MULTIPART"
	opGet       soakOp = "GET"
	opRange     soakOp = "GET range"
	opHead      soakOp = "HEAD"
	opList      soakOp = "LIST"
	opCopy      soakOp = "COPY"
	opDelete    soakOp = "DELETE"
	opVerify    soakOp = "final read"
)

// soakMix is the weighted mix: mostly reads and small writes, as an
// object store sees; the weights are relative.
var soakMix = []struct {
	op     soakOp
	weight int
}{
	{opPut, 24}, {opMultipart, 2}, {opGet, 24}, {opRange, 14},
	{opHead, 12}, {opList, 8}, {opCopy, 8}, {opDelete, 8},
}

// soakReport is what a run measured.
type soakReport struct {
	Mix    time.Duration // how long the mix ran
	Verify time.Duration // how long the final reads took
	Ops    map[soakOp]*soakOpStats
	Errors []soakError // every failed operation, wrong content included
}

// soakOpStats counts one operation kind.
type soakOpStats struct {
	Count, Bytes, Errors, Wrong int64
	Total, Max                  time.Duration
}

// soakError is one failed operation: an error from the client, or content
// that was not what the client last wrote (Wrong).
type soakError struct {
	Start time.Time // when the operation began
	At    time.Time // when it ended
	Op    soakOp
	Key   string
	Wrong bool
	Err   error
}

// errWrong marks a read that returned other content than the key's
// acceptable states: wrong bytes, size or identity, a lost write.
var errWrong = errors.New("wrong content")

// objState is what a key may hold: absent, or the content identity id of
// size bytes.
type objState struct {
	present bool
	id      string
	size    int64
}

// soakClient is one client of a run: its S3 client, its keys, and for
// each key the states a read may see — one after an acknowledged write,
// more after a failed one (it may or may not have happened).
type soakClient struct {
	w      *soakWorkload
	mc     *minio.Client
	rng    *rand.Rand
	prefix string
	keys   []string
	states map[string][]objState
	// hist is each key's last writes (operation, outcome, timing): what
	// a wrong read reports, to tell a write lost from one landing late.
	hist map[string][]string
	ver  int
	rep  *soakReport // this client's own; merged at the end
}

// Run runs the mix for w.Duration (or until ctx ends), client i talking to
// endpoints[i%len(endpoints)], then reads every key back once (opVerify:
// no acknowledged write lost), and returns the merged report.
func (w *soakWorkload) Run(ctx context.Context, endpoints []string) (soakReport, error) {
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		return soakReport{}, fmt.Errorf("transport: %w", err)
	}
	tr.MaxIdleConnsPerHost = w.Clients
	// Idle connections to s3seal end with the run, so what s3seal holds
	// afterwards is its own (the leak check).
	defer tr.CloseIdleConnections()
	clients := make([]*soakClient, w.Clients)
	for i := range clients {
		if clients[i], err = w.newClient(i, endpoints[i%len(endpoints)], tr); err != nil {
			return soakReport{}, err
		}
	}
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, w.Duration)
	defer cancel()
	rep := soakReport{Ops: map[soakOp]*soakOpStats{}}
	each(clients, func(c *soakClient) { c.loop(runCtx) })
	rep.Mix = time.Since(start)
	each(clients, func(c *soakClient) { c.verifyAll(ctx) })
	rep.Verify = time.Since(start) - rep.Mix
	for _, c := range clients {
		rep.merge(c.rep)
	}
	sort.Slice(rep.Errors, func(i, j int) bool { return rep.Errors[i].At.Before(rep.Errors[j].At) })
	return rep, nil
}

// each runs f for every client at once and waits for them all.
func each(clients []*soakClient, f func(c *soakClient)) {
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(c)
		}()
	}
	wg.Wait()
}

// newClient makes client i with a minio-go client of endpoint and a seeded
// random source (a failing run can be told apart, not replayed: the
// timing of 64 clients is not).
func (w *soakWorkload) newClient(i int, endpoint string, tr http.RoundTripper) (*soakClient, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	mc, err := minio.New(u.Host, &minio.Options{
		Creds: miniocreds.NewStaticV4(w.AccessKey, w.SecretKey, ""), Region: region,
		Transport: tr, MaxRetries: w.Retries, BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("minio client: %w", err)
	}
	c := &soakClient{
		w: w, mc: mc, rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
		prefix: fmt.Sprintf("c%02d/", i), states: map[string][]objState{}, hist: map[string][]string{},
		rep: &soakReport{Ops: map[soakOp]*soakOpStats{}},
	}
	for k := range w.KeysPerClient {
		key := fmt.Sprintf("%sk%02d", c.prefix, k)
		c.keys = append(c.keys, key)
		c.states[key] = []objState{{}}
	}
	return c, nil
}

// loop does one operation after another until ctx ends.
func (c *soakClient) loop(ctx context.Context) {
	total := 0
	for _, m := range soakMix {
		total += m.weight
	}
	for ctx.Err() == nil {
		n := c.rng.IntN(total)
		for _, m := range soakMix {
			if n -= m.weight; n < 0 {
				c.do(ctx, m.op)
				break
			}
		}
	}
}

// do runs one operation and records it; an operation the end of the run
// cut short is not counted.
func (c *soakClient) do(ctx context.Context, op soakOp) {
	key := c.keys[c.rng.IntN(len(c.keys))]
	start := time.Now()
	n, err := c.run(ctx, op, key)
	if op == opPut || op == opMultipart || op == opCopy || op == opDelete {
		c.remember(key, op, start, err)
	}
	if err != nil && ctx.Err() != nil && !errors.Is(err, errWrong) {
		return
	}
	c.rep.record(op, key, start, n, err)
}

// remember adds a write to key's history, which keeps the last 6.
func (c *soakClient) remember(key string, op soakOp, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "failed: " + err.Error()
	}
	h := append(c.hist[key], fmt.Sprintf("%s %s at %s, %s, now %+v", op, outcome, start.Format("15:04:05.000"),
		time.Since(start).Round(time.Millisecond), c.states[key]))
	c.hist[key] = h[max(0, len(h)-6):]
}

// history is key's last writes, for an error message.
func (c *soakClient) history(key string) string {
	return "; last writes of " + key + ": [" + strings.Join(c.hist[key], " | ") + "]"
}

// run dispatches op on key and returns the body bytes it moved.
func (c *soakClient) run(ctx context.Context, op soakOp, key string) (int64, error) {
	switch op {
	case opPut:
		return c.put(ctx, key, c.putSize())
	case opMultipart:
		return c.multipart(ctx, key)
	case opGet, opVerify:
		return c.get(ctx, key)
	case opRange:
		return c.getRange(ctx, key)
	case opHead:
		return 0, c.head(ctx, key)
	case opList:
		return 0, c.list(ctx)
	case opCopy:
		return c.copy(ctx, key)
	case opDelete:
		return 0, c.delete(ctx, key)
	}
	return 0, fmt.Errorf("unknown operation %q", op)
}

// verifyAll reads every key once after the mix: each must hold what it
// was last acknowledged to hold.
func (c *soakClient) verifyAll(ctx context.Context) {
	for _, key := range c.keys {
		start := time.Now()
		n, err := c.run(ctx, opVerify, key)
		c.rep.record(opVerify, key, start, n, err)
	}
}

// putSize draws a PUT size skewed to small objects: half under 64 KiB,
// most under 1 MiB, a few up to MaxSize.
func (c *soakClient) putSize() int64 {
	r := c.rng.IntN(100)
	switch {
	case r < 50:
		return c.rng.Int64N(64 << 10)
	case r < 85:
		return 64<<10 + c.rng.Int64N(960<<10)
	case r < 97:
		return 1<<20 + c.rng.Int64N(7<<20)
	}
	return min(8<<20+c.rng.Int64N(56<<20), c.w.MaxSize)
}

// nextID is a fresh content identity for key.
func (c *soakClient) nextID(key string) string {
	c.ver++
	return fmt.Sprintf("%s@%d", key, c.ver)
}

// wrote records the outcome of a write of st to key: with no error the
// key holds st; after an error it may hold st or what it held.
func (c *soakClient) wrote(key string, st objState, err error) {
	if err == nil {
		c.states[key] = []objState{st}
		return
	}
	c.states[key] = append(c.states[key], st)
}

// known is key's state when it has only one.
func (c *soakClient) known(key string) (objState, bool) {
	s := c.states[key]
	return s[0], len(s) == 1
}

// record adds one operation to the report.
func (r *soakReport) record(op soakOp, key string, start time.Time, n int64, err error) {
	s := r.Ops[op]
	if s == nil {
		s = &soakOpStats{}
		r.Ops[op] = s
	}
	d := time.Since(start)
	s.Count++
	s.Bytes += n
	s.Total += d
	s.Max = max(s.Max, d)
	if err != nil {
		wrong := errors.Is(err, errWrong)
		if wrong {
			s.Wrong++
		} else {
			s.Errors++
		}
		r.Errors = append(r.Errors, soakError{Start: start, At: time.Now(), Op: op, Key: key, Wrong: wrong, Err: err})
	}
}

// merge adds o's counts to r.
func (r *soakReport) merge(o *soakReport) {
	for op, s := range o.Ops {
		t := r.Ops[op]
		if t == nil {
			t = &soakOpStats{}
			r.Ops[op] = t
		}
		t.Count += s.Count
		t.Bytes += s.Bytes
		t.Errors += s.Errors
		t.Wrong += s.Wrong
		t.Total += s.Total
		t.Max = max(t.Max, s.Max)
	}
	r.Errors = append(r.Errors, o.Errors...)
}

// totals are the errors and wrong reads of every kind.
func (r soakReport) totals() (errs, wrong int64) {
	for _, s := range r.Ops {
		errs += s.Errors
		wrong += s.Wrong
	}
	return errs, wrong
}

// table is the report as a text table: per kind, operations, ops/s and
// MiB/s over the mix (the final reads over their own time), mean and max
// latency, errors, wrong reads.
func (r soakReport) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %9s %9s %9s %9s %9s %7s %6s\n", "op", "count", "ops/s", "MiB/s", "mean ms", "max ms", "errors", "wrong")
	var sum soakOpStats
	for _, m := range soakMix {
		s := r.row(&b, m.op, r.Mix)
		sum.Count, sum.Bytes, sum.Errors, sum.Wrong = sum.Count+s.Count, sum.Bytes+s.Bytes, sum.Errors+s.Errors, sum.Wrong+s.Wrong
	}
	secs := r.Mix.Seconds()
	fmt.Fprintf(&b, "%-10s %9d %9.1f %9.1f %9s %9s %7d %6d\n", "mix", sum.Count, float64(sum.Count)/secs,
		float64(sum.Bytes)/secs/(1<<20), "", "", sum.Errors, sum.Wrong)
	r.row(&b, opVerify, r.Verify)
	return b.String()
}

// row writes op's line of the table, its rates over d, and returns its
// counts.
func (r soakReport) row(b *strings.Builder, op soakOp, d time.Duration) soakOpStats {
	s := r.Ops[op]
	if s == nil {
		s = &soakOpStats{}
	}
	mean := 0.0
	if s.Count > 0 {
		mean = float64(s.Total.Milliseconds()) / float64(s.Count)
	}
	secs := d.Seconds()
	fmt.Fprintf(b, "%-10s %9d %9.1f %9.1f %9.1f %9d %7d %6d\n", op, s.Count, float64(s.Count)/secs,
		float64(s.Bytes)/secs/(1<<20), mean, s.Max.Milliseconds(), s.Errors, s.Wrong)
	return *s
}

// keystream is the content of identity id from byte off on: AES-256-CTR
// under SHA-256(id), so any range can be made without the bytes before it.
type keystream struct {
	id     string
	off    int64
	stream cipher.Stream
}

func newKeystream(id string, off int64) *keystream {
	k := &keystream{id: id}
	k.seek(off)
	return k
}

func (k *keystream) seek(off int64) {
	key := sha256.Sum256([]byte(k.id))
	block, _ := aes.NewCipher(key[:]) // a 32-byte key never fails
	var iv [16]byte
	binary.BigEndian.PutUint64(iv[8:], uint64(off/16))
	k.stream = cipher.NewCTR(block, iv[:])
	var skip [16]byte
	k.stream.XORKeyStream(skip[:off%16], skip[:off%16])
	k.off = off
}

func (k *keystream) Read(p []byte) (int, error) {
	clear(p)
	k.stream.XORKeyStream(p, p)
	k.off += int64(len(p))
	return len(p), nil
}

// body is size bytes of id's content from off, seekable so that minio-go
// can retry a request that sends it.
type body struct {
	ks        *keystream
	start     int64
	pos, size int64
}

func newBody(id string, off, size int64) *body {
	return &body{ks: newKeystream(id, off), start: off, size: size}
}

func (b *body) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), b.size-b.pos)]
	n, _ := b.ks.Read(p)
	b.pos += int64(n)
	return n, nil
}

func (b *body) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += b.pos
	case io.SeekEnd:
		offset += b.size
	}
	if offset < 0 || offset > b.size {
		return 0, fmt.Errorf("seek to %d of %d", offset, b.size)
	}
	b.pos = offset
	b.ks.seek(b.start + offset)
	return offset, nil
}

// checkReader reads r to its end and checks it is exactly size bytes of
// id's content from off; it returns the bytes read.
func checkReader(r io.Reader, id string, off, size int64) (int64, error) {
	want := newKeystream(id, off)
	got := make([]byte, 64<<10)
	exp := make([]byte, 64<<10)
	var n int64
	for {
		m, err := r.Read(got)
		if m > 0 {
			want.Read(exp[:m])
			if !bytes.Equal(got[:m], exp[:m]) {
				return n, fmt.Errorf("%w: %s differs from byte %d on", errWrong, id, off+n)
			}
			n += int64(m)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	if n != size {
		return n, fmt.Errorf("%w: %s: %d bytes, want %d", errWrong, id, n, size)
	}
	return n, nil
}

// TestSoakContent checks the soak's content and its checker, without
// servers: any range of an identity's keystream is that slice of the
// whole, a seeked body sends what it would from there, and the checker
// refuses a flipped byte, a short body, a long one and another identity.
func TestSoakContent(t *testing.T) {
	whole := make([]byte, 1000)
	newKeystream("k@1", 0).Read(whole)
	for _, off := range []int64{0, 1, 15, 16, 17, 500, 999} {
		part := make([]byte, len(whole)-int(off))
		newKeystream("k@1", off).Read(part)
		if !bytes.Equal(part, whole[off:]) {
			t.Fatalf("the keystream from %d is not the whole's slice", off)
		}
		b := newBody("k@1", 0, 1000)
		b.Seek(off, io.SeekStart)
		if got, _ := io.ReadAll(b); !bytes.Equal(got, whole[off:]) {
			t.Fatalf("a body seeked to %d sends other bytes", off)
		}
	}
	flipped := bytes.Clone(whole)
	flipped[700] ^= 1
	for _, c := range []struct {
		name string
		got  []byte
		id   string
		ok   bool
	}{
		{"same", whole, "k@1", true},
		{"flipped", flipped, "k@1", false},
		{"short", whole[:999], "k@1", false},
		{"long", append(bytes.Clone(whole), 0), "k@1", false},
		{"other identity", whole, "k@2", false},
	} {
		_, err := checkReader(bytes.NewReader(c.got), c.id, 0, 1000)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, errWrong)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
