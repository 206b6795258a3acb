package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/sigv4"
)

// BenchmarkProxy64MiB and BenchmarkProxy1MiB move whole objects three ways
// to a store that only keeps bytes (benchStore), as `s3seal bench --target`
// does against a real one: straight to the store (direct), through a plain
// reverse proxy (pass-through) and through s3seal. Everything runs in this
// process: the hop's own cost is a path's less the direct path's. Each
// side's goroutines carry the pprof label "side" (client, store,
// pass-through, s3seal), so that in a profile
//
//	go test -run '^$' -bench 'Proxy64MiB/^put$/' -cpuprofile cpu.out ./proxy
//	go tool pprof -tagfocus side=s3seal -top cpu.out
//
// shows s3seal's work alone, its upstream connections included, and
// side=pass-through the plain hop's. (Names match unanchored: "put" alone
// would also run put-unsigned and the others.)
//
// Besides ns/op it reports cpu-s/GiB: the process's CPU time (user and
// system, all threads) per GiB moved, the figure the performance goal is
// stated in. "put" is a payload signed with its SHA-256 (what SDKs send
// over http); s3seal alone also takes "put-unsigned" (UNSIGNED-PAYLOAD),
// "put-streaming" (chunk signatures) and "put-trailer" (a CRC trailer).
// "get-range" reads an eighth of the object.
func BenchmarkProxy64MiB(b *testing.B) { benchmarkHops(b, 64<<20) }

func BenchmarkProxy1MiB(b *testing.B) { benchmarkHops(b, 1<<20) }

func benchmarkHops(b *testing.B, size int) {
	// Sub-benchmarks and the connections they dial inherit the label.
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("side", "client")))
	defer pprof.SetGoroutineLabels(context.Background())
	h := newBenchHops(b)
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{5}).Read(data)
	signed := signedPayload(data)
	// What the GETs read: the plaintext as stored directly, and an object
	// s3seal wrote.
	h.put(b, h.direct, "/"+testBucket+"/plain", signed)
	h.put(b, h.s3seal, "/"+testBucket+"/sealed", signed)
	h.check(b, "/"+testBucket+"/sealed", data)

	paths := []struct {
		name, endpoint, getKey string
	}{{"direct", h.direct, "plain"}, {"pass-through", h.passThrough, "plain"}, {"s3seal", h.s3seal, "sealed"}}
	const putPath = "/" + testBucket + "/put"
	for _, p := range paths {
		b.Run("put/"+p.name, func(b *testing.B) {
			h.loop(b, size, func() { h.put(b, p.endpoint, putPath, signed) })
		})
	}
	// The other ways clients protect a body, through s3seal alone.
	for _, m := range []struct {
		name string
		body encoded
	}{
		{"put-unsigned", encoded{body: data, payloadHash: "UNSIGNED-PAYLOAD"}},
		{"put-streaming", streamingPayload(b, h.s3seal+putPath, data)},
		{"put-trailer", trailerPayload(data)},
	} {
		b.Run(m.name+"/s3seal", func(b *testing.B) {
			h.loop(b, size, func() { h.put(b, h.s3seal, putPath, m.body) })
		})
	}
	for _, p := range paths {
		b.Run("get/"+p.name, func(b *testing.B) {
			h.loop(b, size, func() { h.get(b, p.endpoint, "/"+testBucket+"/"+p.getKey, 0, size, size) })
		})
	}
	// An eighth of the object at an eighth in: for 64 MiB the 8 MiB ranges
	// the AWS CLI downloads large objects in.
	for _, p := range paths {
		b.Run("get-range/"+p.name, func(b *testing.B) {
			h.loop(b, size/8, func() { h.get(b, p.endpoint, "/"+testBucket+"/"+p.getKey, size/8, size/8, size) })
		})
	}
}

// encoded is a PUT's body as a client sends it, the headers that describe
// it, and the x-amz-content-sha256 the client signs; "" when header holds
// a signature already (streaming signatures sign the body's chunks).
type encoded struct {
	body        []byte
	header      http.Header
	payloadHash string
}

// signedPayload is data signed with its SHA-256, as SDKs send over http.
func signedPayload(data []byte) encoded {
	sum := sha256.Sum256(data)
	return encoded{body: data, payloadHash: hex.EncodeToString(sum[:])}
}

// streamingPayload is data with a chunk signature on every 64 KiB
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), as minio-go sends over http, signed
// once for a PUT to target: replaying it is allowed for 15 minutes, and
// keeps the client's signing out of the loop.
func streamingPayload(b *testing.B, target string, data []byte) encoded {
	req, err := http.NewRequest(http.MethodPut, target, bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	req = signer.StreamingSignV4(req, clientAK, clientSecret, "", "us-east-1", int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
	body, err := io.ReadAll(req.Body)
	if err != nil {
		b.Fatal(err)
	}
	return encoded{body: body, header: req.Header}
}

// trailerPayload is data in 64 KiB aws-chunked chunks with a CRC32
// trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER), as SDKs send over https.
func trailerPayload(data []byte) encoded {
	h := http.Header{}
	h.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	h.Set("Content-Encoding", "aws-chunked")
	h.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	return encoded{body: awsChunked(data, 64<<10, "x-amz-checksum-crc32:"+crc32Sum(data)), header: h,
		payloadHash: "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}
}

// benchHops is a benchStore behind the three paths.
type benchHops struct {
	direct, passThrough, s3seal string // base URLs
	client                      *http.Client
	buf                         []byte // the client's read buffer
}

func newBenchHops(b *testing.B) *benchHops {
	b.Helper()
	store := httptest.NewServer(labelled("store", &benchStore{objects: map[string]*benchObject{}}))
	b.Cleanup(store.Close)
	storeURL, _ := url.Parse(store.URL)

	// The pass-through as `s3seal bench --target` runs it
	// (internal/bench/passthrough.go).
	tr := benchTransport()
	b.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.Out.URL.Scheme, pr.Out.URL.Host = storeURL.Scheme, storeURL.Host },
		Transport:  tr,
		BufferPool: &benchBufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}},
	}
	pass := httptest.NewServer(labelled("pass-through", rp))
	b.Cleanup(pass.Close)

	kr, err := keyring.Open(filepath.Join(b.TempDir(), "keyring.json"))
	if err != nil {
		b.Fatal(err)
	}
	key, err := kr.CreateKey("proxy benchmarks")
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(Config{
		Upstream:          storeURL,
		UpstreamAccessKey: upstreamAK, UpstreamSecretKey: upstreamSecret,
		Auth:                     &sigv4.Verifier{Credentials: staticCreds{clientAK: clientSecret}, Region: "us-east-1"},
		Keys:                     kms.ObjectKeys{Keys: kms.NewCache(kr, 100, time.Minute), KeyID: key.ID, Allowed: kms.NewAllowList(kr, key.ID)},
		Logger:                   slog.New(slog.NewJSONHandler(io.Discard, nil)),
		StoreMarksMultipartETags: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	seal := httptest.NewServer(labelled("s3seal", p))
	b.Cleanup(seal.Close)

	ctr := benchTransport()
	b.Cleanup(ctr.CloseIdleConnections)
	return &benchHops{direct: store.URL, passThrough: pass.URL, s3seal: seal.URL,
		client: &http.Client{Transport: ctr}, buf: make([]byte, 64<<10)}
}

// labelled runs h under the pprof label side=name; the upstream
// connections it dials inherit it.
func labelled(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pprof.Do(r.Context(), pprof.Labels("side", name), func(context.Context) { h.ServeHTTP(w, r) })
	})
}

func benchTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 512, 256
	tr.DisableCompression = true
	return tr
}

// loop runs op as b.Loop says and reports the process's CPU per GiB moved.
func (h *benchHops) loop(b *testing.B, size int, op func()) {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	op() // unmeasured: connections made, the store's buffer grown
	start := processCPU(b)
	for b.Loop() {
		op()
	}
	cpu := processCPU(b) - start
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*float64(size)/(1<<30)), "cpu-s/GiB")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// put PUTs e to path at endpoint.
func (h *benchHops) put(b *testing.B, endpoint, path string, e encoded) {
	var req *http.Request
	if e.payloadHash == "" {
		var err error
		if req, err = http.NewRequest(http.MethodPut, endpoint+path, bytes.NewReader(e.body)); err != nil {
			b.Fatal(err)
		}
		req.Header = e.header.Clone()
		req.ContentLength = int64(len(e.body))
	} else {
		req = h.request(b, http.MethodPut, endpoint+path, bytes.NewReader(e.body), int64(len(e.body)), e.header, e.payloadHash)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		b.Fatalf("PUT %s: %s %s", path, resp.Status, msg)
	}
	io.Copy(io.Discard, resp.Body)
}

// get GETs path at endpoint, bytes [off, off+n) of it unless n is the
// object's size, and reads them 64 KiB at a time as `s3seal bench
// --target` does.
func (h *benchHops) get(b *testing.B, endpoint, path string, off, n, size int) {
	var header http.Header
	status := http.StatusOK
	if n != size {
		header = http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, off+n-1)}}
		status = http.StatusPartialContent
	}
	resp, err := h.client.Do(h.request(b, http.MethodGet, endpoint+path, nil, 0, header, "UNSIGNED-PAYLOAD"))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, h.buf)
	if resp.StatusCode != status || err != nil || got != int64(n) {
		b.Fatalf("GET %s: %s, %d bytes, %v", path, resp.Status, got, err)
	}
}

// check reads path through s3seal and compares it with want.
func (h *benchHops) check(b *testing.B, path string, want []byte) {
	resp, err := h.client.Do(h.request(b, http.MethodGet, h.s3seal+path, nil, 0, nil, "UNSIGNED-PAYLOAD"))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	// Compared as read: a copy of 64 MiB would weigh in the profile.
	off := 0
	for {
		n, err := resp.Body.Read(h.buf)
		if n > len(want)-off || !bytes.Equal(h.buf[:n], want[off:off+n]) {
			b.Fatalf("GET %s through s3seal: %s, the body differs at byte %d", path, resp.Status, off)
		}
		off += n
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if off != len(want) {
		b.Fatalf("GET %s through s3seal: %d bytes, want %d", path, off, len(want))
	}
}

// request is a request with header, signed with the client credential
// (the store and the pass-through check no signature).
func (h *benchHops) request(b *testing.B, method, target string, body io.Reader, size int64, header http.Header, payloadHash string) *http.Request {
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.Fatal(err)
	}
	req.ContentLength = size
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: clientAK, SecretAccessKey: clientSecret}, req, payloadHash, "s3", "us-east-1", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return req
}

type benchBufferPool struct{ p sync.Pool }

func (p *benchBufferPool) Get() []byte  { return *(p.p.Get().(*[]byte)) }
func (p *benchBufferPool) Put(s []byte) { p.p.Put(&s) }

// benchStore is the least a store does: it keeps each object's bytes and
// headers in memory, decoding the aws-chunked framing s3seal sends, and
// serves them back. It checks nothing (no signature, no checksum) and
// reuses an object's buffer when the object is written again, so that a
// profile shows the hops' work, not a store's. The benchmarks send one
// request at a time.
type benchStore struct {
	mu      sync.Mutex
	objects map[string]*benchObject
}

type benchObject struct {
	data   []byte
	header http.Header
}

func (s *benchStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Query().Has("tagging"): // the bucket's default CMK: none
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, `<Tagging><TagSet></TagSet></Tagging>`)
	case r.Method == http.MethodPut:
		s.put(w, r)
	case r.Method == http.MethodGet:
		s.get(w, r)
	default:
		http.Error(w, "not in the benchmark", http.StatusNotImplemented)
	}
}

func (s *benchStore) put(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	o := s.objects[r.URL.Path]
	if o == nil {
		o = &benchObject{}
		s.objects[r.URL.Path] = o
	}
	s.mu.Unlock()
	o.header = http.Header{}
	for k, vs := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") || k == "Content-Type" {
			o.header[k] = vs
		}
	}
	size := r.ContentLength
	if v := r.Header.Get("X-Amz-Decoded-Content-Length"); v != "" {
		size, _ = strconv.ParseInt(v, 10, 64)
	}
	o.data = slices.Grow(o.data[:0], int(size)) // once, not chunk by chunk
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Encoding"), "aws-chunked") {
		o.data, err = readAWSChunked(o.data[:0], r.Body)
	} else {
		o.data, err = readFull(o.data[:0], r.Body, r.ContentLength)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("ETag", `"bench"`)
}

func (s *benchStore) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	o := s.objects[r.URL.Path]
	s.mu.Unlock()
	if o == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	h := w.Header()
	for k, vs := range o.header {
		h[k] = vs
	}
	h.Set("ETag", `"bench"`)
	h.Set("Last-Modified", "Tue, 01 Dec 2026 00:00:00 GMT")
	data, status := o.data, http.StatusOK
	if v := r.Header.Get("Range"); v != "" {
		var first, last int
		if _, err := fmt.Sscanf(v, "bytes=%d-%d", &first, &last); err != nil || last >= len(data) || first > last {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		data, status = data[first:last+1], http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(o.data)))
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	w.Write(data)
}

// readFull appends n bytes of r to dst.
func readFull(dst []byte, r io.Reader, n int64) ([]byte, error) {
	at := len(dst)
	dst = growTo(dst, at+int(n))
	_, err := io.ReadFull(r, dst[at:])
	return dst, err
}

// readAWSChunked appends the data of an aws-chunked body to dst.
func readAWSChunked(dst []byte, body io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, fmt.Errorf("chunk header: %w", err)
		}
		hexSize, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(hexSize), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("chunk size: %w", err)
		}
		if n == 0 {
			_, err := io.Copy(io.Discard, br) // the trailer
			return dst, err
		}
		if dst, err = readFull(dst, br, n); err != nil {
			return nil, err
		}
		if crlf, err := br.ReadSlice('\n'); err != nil || len(crlf) != 2 {
			return nil, errors.New("chunk data not followed by CRLF")
		}
	}
}

// growTo is b resliced to n bytes, grown as append grows.
func growTo(b []byte, n int) []byte {
	return slices.Grow(b, n-len(b))[:n]
}
