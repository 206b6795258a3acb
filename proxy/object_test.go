package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/internal/store"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/envelope"
)

func TestPutGetRoundTrip(t *testing.T) {
	e := newEnv(t)
	for _, size := range []int{0, 1, 65535, 65536, 65537, 300000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			key := fmt.Sprintf("dir/obj %d+ü", size)
			data := randomBytes(size, uint64(size))
			put := e.put(t, key, data, nil)
			if put.ServerSideEncryption != "aws:kms" {
				t.Errorf("PUT SSE = %q, want aws:kms", put.ServerSideEncryption)
			}
			want := crc32.ChecksumIEEE(data)
			if got := aws.ToString(put.ChecksumCRC32); got != base64.StdEncoding.EncodeToString(crc32Bytes(want)) {
				t.Errorf("PUT checksum = %q, want the plaintext's CRC32", got)
			}
			if put.ChecksumType != "FULL_OBJECT" {
				t.Errorf("PUT checksum type %q", put.ChecksumType)
			}

			o := e.store.get(testBucket, key)
			if o == nil {
				t.Fatal("nothing stored")
			}
			if got, want := int64(len(o.data)), envelope.SegmentSize(int64(size)); got != want {
				t.Errorf("stored %d bytes, want %d", got, want)
			}
			if size >= 16 && bytes.Contains(o.data, data[:16]) {
				t.Error("stored bytes contain plaintext")
			}
			if aws.ToString(put.ETag) != o.etag {
				t.Errorf("PUT ETag %q, store has %q", aws.ToString(put.ETag), o.etag)
			}

			got, out, err := e.get(t, key)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("GET returned %d bytes that differ from the %d put", len(got), len(data))
			}
			// The SDK asks for checksums (checksum mode) and validates
			// the one s3seal kept sealed from the PUT.
			if aws.ToInt64(out.ContentLength) != int64(size) || out.ServerSideEncryption != "aws:kms" ||
				aws.ToString(out.ChecksumCRC32) != aws.ToString(put.ChecksumCRC32) || out.ChecksumType != "FULL_OBJECT" {
				t.Errorf("GET length %d SSE %q checksum %v %q", aws.ToInt64(out.ContentLength), out.ServerSideEncryption, aws.ToString(out.ChecksumCRC32), out.ChecksumType)
			}

			head, err := e.client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("HEAD: %v", err)
			}
			if aws.ToInt64(head.ContentLength) != int64(size) || aws.ToString(head.ETag) != o.etag {
				t.Errorf("HEAD length %d etag %q", aws.ToInt64(head.ContentLength), aws.ToString(head.ETag))
			}
		})
	}

	// What the store received: the proxy's own signature (checked by the
	// fake store) and framing of the ciphertext, no client framing or
	// plaintext checksums.
	for _, r := range e.store.recorded() {
		if r.Method != http.MethodPut {
			continue
		}
		for _, h := range []string{"X-Amz-Checksum-Crc32", "X-Amz-Sdk-Checksum-Algorithm", "Content-Md5"} {
			if r.Header.Get(h) != "" {
				t.Errorf("store received %s on PUT", h)
			}
		}
		if r.Header.Get("X-Amz-Trailer") != "x-amz-checksum-crc32c" || !strings.HasPrefix(r.Header.Get("Content-Encoding"), "aws-chunked") {
			t.Errorf("store received trailer %q, encoding %q", r.Header.Get("X-Amz-Trailer"), r.Header.Get("Content-Encoding"))
		}
		if n := r.Header.Get("X-Amz-Decoded-Content-Length"); r.Complete && strconv.FormatInt(r.BodyLen, 10) != n {
			t.Errorf("store received %d body bytes, framing says %s", r.BodyLen, n)
		}
		if !strings.Contains(r.Header.Get("Authorization"), "Credential="+upstreamAK+"/") {
			t.Errorf("store received Authorization %q", r.Header.Get("Authorization"))
		}
	}
}

func crc32Bytes(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func TestRanges(t *testing.T) {
	e := newEnv(t)
	const size = 300000
	data := randomBytes(size, 7)
	e.put(t, "r", data, nil)
	e.put(t, "small", []byte("hello, s3seal"), nil)
	e.put(t, "empty", nil, nil)

	tests := []struct {
		key, rng   string
		off, n     int64 // want plaintext [off, off+n)
		status     int
		whole      bool // served whole, 200
		objectSize int64
	}{
		{key: "r", rng: "bytes=0-0", off: 0, n: 1},
		{key: "r", rng: "bytes=299999-299999", off: 299999, n: 1},
		{key: "r", rng: "bytes=-1", off: 299999, n: 1},
		{key: "r", rng: "bytes=-70000", off: size - 70000, n: 70000},
		{key: "r", rng: "bytes=65530-65545", off: 65530, n: 16},
		{key: "r", rng: "bytes=65536-131072", off: 65536, n: 65537},
		{key: "r", rng: "bytes=100000-", off: 100000, n: size - 100000},
		{key: "r", rng: "bytes=0-", off: 0, n: size},
		{key: "r", rng: "bytes=200000-999999999", off: 200000, n: 100000},
		{key: "r", rng: "bytes=-999999", off: 0, n: size},
		{key: "r", rng: "bytes=0-1,5-6", whole: true},
		{key: "r", rng: "bytes=9-2", whole: true},
		{key: "r", rng: "lines=1-2", whole: true},
		{key: "r", rng: "bytes=300000-", status: 416, objectSize: size},
		{key: "r", rng: "bytes=-0", status: 416, objectSize: size},
		{key: "small", rng: "bytes=7-", off: 7, n: 6},
		{key: "empty", rng: "bytes=0-0", status: 416, objectSize: 0},
	}
	for _, tc := range tests {
		t.Run(tc.key+" "+tc.rng, func(t *testing.T) {
			plain := data
			switch tc.key {
			case "small":
				plain = []byte("hello, s3seal")
			case "empty":
				plain = nil
			}
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				req := e.signedRequest(t, method, "/"+testBucket+"/"+tc.key, nil, 0, http.Header{"Range": {tc.rng}})
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("%s body: %v", method, err)
				}
				switch {
				case tc.status == 416:
					if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", tc.objectSize) {
						t.Errorf("%s: status %d Content-Range %q", method, resp.StatusCode, resp.Header.Get("Content-Range"))
					}
					if method == http.MethodGet && !strings.Contains(string(body), "<Code>InvalidRange</Code>") {
						t.Errorf("416 body %q", body)
					}
				case tc.whole:
					if resp.StatusCode != 200 || resp.ContentLength != int64(len(plain)) || (method == http.MethodGet && !bytes.Equal(body, plain)) {
						t.Errorf("%s: status %d, %d bytes, want the whole object", method, resp.StatusCode, len(body))
					}
				default:
					wantCR := fmt.Sprintf("bytes %d-%d/%d", tc.off, tc.off+tc.n-1, len(plain))
					if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != wantCR || resp.ContentLength != tc.n {
						t.Errorf("%s: status %d Content-Range %q length %d, want 206 %q %d", method, resp.StatusCode, resp.Header.Get("Content-Range"), resp.ContentLength, wantCR, tc.n)
					}
					if method == http.MethodGet && !bytes.Equal(body, plain[tc.off:tc.off+tc.n]) {
						t.Errorf("GET returned %d wrong bytes", len(body))
					}
				}
			}
		})
	}

	// Both requests of a ranged read are pinned to one object version.
	var pinned int
	for _, r := range e.store.recorded() {
		if r.Method == http.MethodGet && r.Header.Get("Range") != "" && r.Header.Get("Range") != "bytes=0-31" {
			if r.Header.Get("If-Match") == "" {
				t.Errorf("span request %q without If-Match", r.Header.Get("Range"))
			}
			pinned++
		}
	}
	if pinned == 0 {
		t.Error("no span requests seen")
	}
}

func TestUserMetadata(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String("m"), Body: strings.NewReader("x"),
		Metadata: map[string]string{"color": "blue"}, ContentType: aws.String("text/plain"),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := e.get(t, "m")
	if err != nil {
		t.Fatal(err)
	}
	if out.Metadata["color"] != "blue" || aws.ToString(out.ContentType) != "text/plain" {
		t.Errorf("metadata %v content type %q", out.Metadata, aws.ToString(out.ContentType))
	}
	head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("m")})
	if err != nil {
		t.Fatal(err)
	}
	for _, md := range []map[string]string{out.Metadata, head.Metadata} {
		for k := range md {
			if envelope.IsReserved(k) {
				t.Errorf("client sees s3seal metadata %q", k)
			}
		}
	}

	for _, name := range []string{"s3seal-v", "S3SEAL-k", "s3seal-anything"} {
		_, err = e.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(testBucket), Key: aws.String("reserved"), Body: strings.NewReader("x"),
			Metadata: map[string]string{name: "1"},
		})
		if code, status := apiError(t, err); code != "InvalidArgument" || status != 400 {
			t.Errorf("reserved %q: %s %d", name, code, status)
		}
	}
	if e.store.get(testBucket, "reserved") != nil {
		t.Error("object with reserved metadata was stored")
	}
}

func TestTamperedObjects(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(300000, 3)
	e.put(t, "t", data, nil)
	orig := append([]byte(nil), e.store.get(testBucket, "t").data...)
	reset := func() {
		o := e.store.get(testBucket, "t")
		e.store.mu.Lock()
		o.data = append([]byte(nil), orig...)
		e.store.mu.Unlock()
	}
	flip := func(at int) {
		e.store.mu.Lock()
		e.store.objects[testBucket+"/t"].data[at] ^= 1
		e.store.mu.Unlock()
	}

	// Damage in the first chunk, even in its last byte or its tag, which
	// are decrypted before anything is answered: a proper S3 error before
	// any byte, of the whole object or of a range that starts there.
	lastByte, lastTag := envelope.HeaderSize+envelope.ChunkSize-1, envelope.HeaderSize+envelope.ChunkSize+envelope.TagSize-1
	for _, at := range []int{100, lastByte, lastTag} {
		flip(at)
		_, _, err := e.get(t, "t")
		if code, status := apiError(t, err); code != codeStoredObjectCorrupt || status != 502 {
			t.Errorf("first chunk flipped at %d: %s %d", at, code, status)
		}
		_, err = e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("t"), Range: aws.String("bytes=10-100000")})
		if code, status := apiError(t, err); code != codeStoredObjectCorrupt || status != 502 {
			t.Errorf("first chunk flipped at %d, range: %s %d", at, code, status)
		}
		reset()
	}

	// Damage further on: the response is cut off; the bytes before it are
	// a true prefix, never wrong bytes.
	flip(200000)
	got, _, err := e.get(t, "t")
	if err == nil {
		t.Fatal("GET of a damaged object read cleanly")
	}
	if !bytes.HasPrefix(data, got) {
		t.Fatal("GET of a damaged object returned wrong bytes")
	}
	// A range over the damaged chunk fails, one before it still works.
	req := e.signedRequest(t, http.MethodGet, "/"+testBucket+"/t", nil, 0, http.Header{"Range": {"bytes=199000-201000"}})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("range over a damaged chunk: status %d", resp.StatusCode)
	}
	reset()

	// Truncated by the store, to a size that does not invert (refused
	// up front) and to one that does (cut off at the end).
	for _, cut := range []int{1, 17} {
		e.store.mu.Lock()
		e.store.objects[testBucket+"/t"].data = orig[:len(orig)-cut]
		e.store.mu.Unlock()
		got, _, err = e.get(t, "t")
		if err == nil || !bytes.HasPrefix(data, got) {
			t.Errorf("truncated by %d: err %v, %d bytes", cut, err, len(got))
		}
		reset()
	}
	e.store.mu.Lock()
	e.store.objects[testBucket+"/t"].data = orig[:envelope.SegmentSize(4*envelope.ChunkSize)+5] // in a gap
	e.store.mu.Unlock()
	_, _, err = e.get(t, "t")
	if code, status := apiError(t, err); code != codeStoredObjectCorrupt || status != 502 {
		t.Errorf("truncated to an impossible size: %s %d", code, status)
	}
	reset()

	// Moved to another key by someone else: the key service refuses the
	// binding.
	o := e.store.get(testBucket, "t")
	e.store.put(testBucket, "moved", o.data, o.header.Clone())
	_, _, err = e.get(t, "moved")
	if code, status := apiError(t, err); code != codeStoredObjectCorrupt || status != 502 {
		t.Errorf("moved: %s %d", code, status)
	}

	// Unknown format version in the metadata.
	h := o.header.Clone()
	h.Set("X-Amz-Meta-S3seal-V", "9")
	e.store.put(testBucket, "v9", o.data, h)
	_, _, err = e.get(t, "v9")
	if code, status := apiError(t, err); code != "UnsupportedObjectFormat" || status != 500 {
		t.Errorf("version 9: %s %d", code, status)
	}
}

func TestObjectWithoutMetadata(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprint("allow=", allow), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.AllowPlaintextReads = allow })
			e.store.put(testBucket, "plain", []byte("plaintext written directly"), http.Header{"Content-Type": {"text/plain"}})
			e.store.put(testBucket, "empty", nil, nil)
			got, _, err := e.get(t, "plain")
			if !allow {
				if code, status := apiError(t, err); code != "AccessDenied" || status != 403 {
					t.Errorf("plaintext object: %s %d", code, status)
				}
				_, err = e.client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("plain")})
				if _, status := apiError(t, err); status != 403 {
					t.Errorf("HEAD plaintext object: %d", status)
				}
				return
			}
			if err != nil || string(got) != "plaintext written directly" {
				t.Fatalf("plaintext read: %q %v", got, err)
			}
			out, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("plain"), Range: aws.String("bytes=10-14")})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if string(b) != "written" && string(b) != "writt" {
				t.Errorf("plaintext range: %q", b)
			}
			got, _, err = e.get(t, "empty")
			if err != nil || len(got) != 0 {
				t.Errorf("empty plaintext object: %q %v", got, err)
			}
		})
	}
}

// failingKeys fails GenerateDataKey and Decrypt with err once failing is set.
type failingKeys struct {
	kms.KeyService
	err     error
	failing *atomic.Bool
}

func (f failingKeys) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	if f.failing.Load() {
		return kms.DataKey{}, f.err
	}
	return f.KeyService.GenerateDataKey(ctx, keyID, encCtx)
}

func (f failingKeys) Decrypt(ctx context.Context, keyID string, ciphertext []byte, encCtx map[string]string) ([]byte, error) {
	if f.failing.Load() {
		return nil, f.err
	}
	return f.KeyService.Decrypt(ctx, keyID, ciphertext, encCtx)
}

func TestKeyServiceFailures(t *testing.T) {
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{&kms.KMSError{Op: "GenerateDataKey", Kind: kms.ErrKMSUnavailable, Cause: errors.New("dial tcp: refused")}, "ServiceUnavailable", 503},
		{fmt.Errorf("wrapped: %w", kms.ErrKeyDisabled), "KMS.DisabledException", 400},
		{kms.ErrKeyNotFound, "KMS.NotFoundException", 400},
		{kms.ErrAccessDenied, "AccessDenied", 403},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			failing := new(atomic.Bool)
			e := newEnv(t, func(c *Config) {
				// No cache: every read asks the key service.
				c.Keys.Keys = failingKeys{KeyService: c.Keys.Keys.(*kms.Cache).KeyService, err: tc.err, failing: failing}
			})
			e.put(t, "existing", []byte("readable before the failure"), nil)
			failing.Store(true)
			puts := storedPuts(e.store)
			_, err := e.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Body: strings.NewReader("data")})
			if code, status := apiError(t, err); code != tc.code || status != tc.status {
				t.Errorf("PUT: %s %d, want %s %d", code, status, tc.code, tc.status)
			}
			if storedPuts(e.store) != puts || e.store.get(testBucket, "k") != nil {
				t.Error("the store received a PUT despite the key-service failure")
			}
			_, _, err = e.get(t, "existing")
			if code, status := apiError(t, err); code != tc.code || status != tc.status {
				t.Errorf("GET: %s %d, want %s %d", code, status, tc.code, tc.status)
			}
		})
	}

	t.Run("disabled key in the keyring", func(t *testing.T) {
		e := newEnv(t)
		if err := e.keyring.DisableKey(e.keyID); err != nil {
			t.Fatal(err)
		}
		_, err := e.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Body: strings.NewReader("data")})
		if code, status := apiError(t, err); code != "KMS.DisabledException" || status != 400 {
			t.Errorf("PUT: %s %d", code, status)
		}
	})
}

func TestBadSignature(t *testing.T) {
	e := newEnv(t)
	bad := newClient(t, e.srv.URL, "not-the-secret")
	_, err := bad.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Body: strings.NewReader("data")})
	if code, status := apiError(t, err); code != "SignatureDoesNotMatch" || status != 403 {
		t.Errorf("PUT: %s %d", code, status)
	}
	if n := len(e.store.recorded()); n != 0 {
		t.Errorf("store received %d requests", n)
	}

	// Unsigned requests get an S3 XML error with a request id.
	resp, err := http.Get(e.srv.URL + "/" + testBucket + "/k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Amz-Request-Id")
	if resp.StatusCode != 403 || id == "" || !strings.Contains(string(body), "<RequestId>"+id+"</RequestId>") || !strings.Contains(string(body), "<Code>") {
		t.Errorf("anonymous GET: %d %q id %q", resp.StatusCode, body, id)
	}
}

// cutReader yields n bytes of data, then fails like a client going away.
type cutReader struct {
	data []byte
	n    int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n == 0 {
		return 0, errors.New("client went away")
	}
	k := copy(p, c.data[:min(len(p), c.n)])
	c.data, c.n = c.data[k:], c.n-k
	return k, nil
}

func TestBrokenBodiesStoreNothing(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(200000, 9)

	// The client goes away mid-body.
	req := e.signedRequest(t, http.MethodPut, "/"+testBucket+"/cut", &cutReader{data: data, n: 150000}, int64(len(data)), nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Error("a cut body was accepted")
	}
	e.drain(t, 1)

	// The body is complete but its Content-MD5 is wrong: the proxy only
	// learns it at the end, after sending most of the ciphertext.
	req = e.signedRequest(t, http.MethodPut, "/"+testBucket+"/badmd5", bytes.NewReader(data), int64(len(data)),
		http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(make([]byte, 16))}})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "<Code>BadDigest</Code>") {
		t.Errorf("bad Content-MD5: %d %s", resp.StatusCode, body)
	}
	e.drain(t, 1)

	if e.store.count() != 0 {
		t.Errorf("store holds %d objects", e.store.count())
	}
	// The store's handler runs on its own goroutine and may record the
	// aborted request after the proxy is done with it.
	for deadline := time.Now().Add(5 * time.Second); storedPuts(e.store) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if storedPuts(e.store) == 0 {
		t.Error("the bad-digest PUT never reached the store; the test proves nothing")
	}

	// Without a length the proxy cannot size the ciphertext.
	req = e.signedRequest(t, http.MethodPut, "/"+testBucket+"/nolen", io.NopCloser(strings.NewReader("abc")), -1, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Errorf("PUT without length: %d", resp.StatusCode)
	}
}

func TestNotImplemented(t *testing.T) {
	e := newEnv(t)
	e.put(t, "src", []byte("source"), nil)
	for _, tc := range []struct{ method, path string }{
		{"POST", "/" + testBucket + "/src?select&select-type=2"},
		{"GET", "/" + testBucket + "/src?torrent"},
		{"PUT", "/" + testBucket + "/src?partNumber=1"},
	} {
		resp, err := http.DefaultClient.Do(e.signedRequest(t, tc.method, tc.path, nil, 0, nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 501 || !strings.Contains(string(body), "NotImplemented") {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	if n := storedPuts(e.store); n != 1 {
		t.Errorf("%d PUTs reached the store, want 1", n)
	}
}

// TestUpstreamStalls: a store that takes a request and never answers
// makes s3seal answer 503 with Retry-After once UpstreamTimeout passes,
// for a read and for a write, rather than hold the client without end.
func TestUpstreamStalls(t *testing.T) {
	done := make(chan struct{})
	defer close(done) // before the server closes (t.Cleanup)
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(stalled.Close)
	u, _ := url.Parse(stalled.URL)
	e := newEnv(t, func(c *Config) { c.Upstream, c.UpstreamTimeout = u, 100*time.Millisecond })
	for _, tc := range []struct {
		method string
		body   string
	}{{http.MethodGet, ""}, {http.MethodPut, "data"}} {
		req := e.signedRequest(t, tc.method, "/"+testBucket+"/k", strings.NewReader(tc.body), int64(len(tc.body)), nil)
		status, body, h := e.sendResp(t, req)
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "ServiceUnavailable") || h.Get("Retry-After") == "" {
			t.Errorf("%s: %d, Retry-After %q, %s", tc.method, status, h.Get("Retry-After"), body)
		}
	}
}

// TestUpstreamStallsMidBody: a store that stops sending an object's body
// is asked for the rest, a few times (resume.go); when it keeps stalling,
// the client gets a 503 if nothing went to it yet, and a cut connection
// after, never a complete-looking body or a "tampered" answer.
func TestUpstreamStallsMidBody(t *testing.T) {
	done := make(chan struct{})
	defer close(done) // before the servers close (t.Cleanup)
	data := randomBytes(300*kib, 9)
	for _, tc := range []struct {
		name    string
		query   string
		rng     string
		sent    int // stored bytes each answer has before it stalls
		stalls  int // answers that stall (the others are whole)
		status  int // what the client gets
		cut     bool
		resumes int
	}{
		{"every answer, before the first chunk", "", "", 100, 9, http.StatusServiceUnavailable, false, maxResumes},
		{"every answer, after the first chunk", "", "", 70 * kib, 9, http.StatusOK, true, maxResumes},
		{"once, after the first chunk", "", "", 70 * kib, 1, http.StatusOK, false, 1},
		{"once, a part", "?partNumber=1", "", 70 * kib, 1, http.StatusPartialContent, false, 1},
		{"once, a range", "", "bytes=0-307199", 70 * kib, 1, http.StatusPartialContent, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &recordingObserver{cipher: map[string]int64{}, cipherD: map[string]time.Duration{}}
			e := newEnv(t, func(c *Config) { c.Observer = obs })
			e.put(t, "obj", data, nil)
			var gets atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := httptest.NewRecorder()
				e.liar.ServeHTTP(rec, r)
				maps.Copy(w.Header(), rec.Header())
				w.WriteHeader(rec.Code)
				if r.Method != http.MethodGet || tc.sent >= rec.Body.Len() || gets.Add(1) > int32(tc.stalls) {
					w.Write(rec.Body.Bytes())
					return
				}
				w.Write(rec.Body.Bytes()[:min(tc.sent, rec.Body.Len())])
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-done:
				}
			}))
			t.Cleanup(srv.Close)
			u, _ := url.Parse(srv.URL)
			st, err := store.New(store.Config{Endpoint: u, AccessKey: upstreamAK, SecretKey: upstreamSecret, Timeout: 500 * time.Millisecond}) // wide: a loaded machine under -race
			if err != nil {
				t.Fatal(err)
			}
			e.proxy.store = st
			var h http.Header
			if tc.rng != "" {
				h = http.Header{"Range": {tc.rng}}
			}
			resp, err := e.srv.Client().Do(e.signedRequest(t, http.MethodGet, "/"+testBucket+"/obj"+tc.query, nil, 0, h))
			if err != nil {
				t.Fatal(err)
			}
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode != tc.status:
				t.Errorf("answered %d %s, want %d", resp.StatusCode, body, tc.status)
			case tc.status == http.StatusServiceUnavailable && !strings.Contains(string(body), "ServiceUnavailable"):
				t.Errorf("answered %s, want ServiceUnavailable", body)
			case tc.cut && (readErr == nil || len(body) >= len(data)):
				t.Errorf("%d bytes, %v: want a cut body", len(body), readErr)
			case tc.status != http.StatusServiceUnavailable && !tc.cut && (readErr != nil || !bytes.Equal(body, data)):
				t.Errorf("%d bytes, %v: want the object", len(body), readErr)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.resumes) != tc.resumes {
				t.Errorf("resumes %q, want %d", obs.resumes, tc.resumes)
			}
		})
	}
}

// TestMaxInflight: beyond MaxInflight requests, one more is answered 503
// SlowDown at once, and served again once a slot is free.
func TestMaxInflight(t *testing.T) {
	arrived, gate := make(chan struct{}, 8), make(chan struct{})
	held := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-gate
		http.Error(w, "<Error><Code>NoSuchKey</Code></Error>", http.StatusNotFound)
	}))
	t.Cleanup(held.Close)
	u, _ := url.Parse(held.URL)
	e := newEnv(t, func(c *Config) { c.Upstream, c.MaxInflight = u, 1 })
	get := func() (int, string, http.Header) {
		return e.sendResp(t, e.signedRequest(t, http.MethodGet, "/"+testBucket+"/k", nil, 0, nil))
	}
	first := make(chan int, 1)
	req := e.signedRequest(t, http.MethodGet, "/"+testBucket+"/k", nil, 0, nil)
	go func() { // no t.Fatal off the test's goroutine
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-arrived // the first request holds the only slot
	if status, body, h := get(); status != http.StatusServiceUnavailable || !strings.Contains(body, "SlowDown") || h.Get("Retry-After") == "" {
		t.Errorf("a request beyond the limit: %d, Retry-After %q, %s", status, h.Get("Retry-After"), body)
	}
	// Slots are taken once a request is authenticated: an unsigned one is
	// refused for that, and never holds one.
	unsigned, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/"+testBucket+"/k", nil)
	if status, body, _ := e.sendResp(t, unsigned); status != http.StatusForbidden {
		t.Errorf("an unsigned request beyond the limit: %d %s", status, body)
	}
	close(gate)
	if status := <-first; status != http.StatusNotFound {
		t.Errorf("the request in flight: %d, want the store's 404", status)
	}
	if status, body, _ := get(); status != http.StatusNotFound {
		t.Errorf("once the slot is free: %d %s", status, body)
	}
}

func TestUpstreamUnreachable(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Upstream = &url.URL{Scheme: "http", Host: "127.0.0.1:1"} // nothing listens there
	})
	_, _, err := e.get(t, "x")
	if code, status := apiError(t, err); code != "ServiceUnavailable" || status != 503 {
		t.Errorf("GET: %s %d", code, status)
	}
	_, err = e.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Body: strings.NewReader("data")})
	if code, status := apiError(t, err); code != "ServiceUnavailable" || status != 503 {
		t.Errorf("PUT: %s %d", code, status)
	}
}

// TestKeyUsageFailures: a CMK that is not a symmetric encryption key
// (InvalidKeyUsageException) is s3seal's misconfiguration, on a PUT and
// on a GET alike: 500, not a damaged object (502) the client would give up.
func TestKeyUsageFailures(t *testing.T) {
	// As envelope/awskms classifies InvalidKeyUsageException for each op.
	putErr := &kms.KMSError{Op: "GenerateDataKey", Kind: kms.ErrInvalidKMSRequest, Code: "InvalidKeyUsageException", Reason: kms.ReasonKeyUsage}
	getErr := &kms.KMSError{Op: "Decrypt", Kind: kms.ErrInvalidKMSRequest, Code: "InvalidKeyUsageException", Reason: kms.ReasonKeyUsage}
	for _, tc := range []struct {
		name   string
		err    error
		code   string
		status int
	}{
		{"PUT", putErr, "InternalError", 500},
		{"GET", getErr, "InternalError", 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failing := new(atomic.Bool)
			e := newEnv(t, func(c *Config) {
				c.Keys.Keys = failingKeys{KeyService: c.Keys.Keys.(*kms.Cache).KeyService, err: tc.err, failing: failing}
			})
			e.put(t, "existing", []byte("readable before the failure"), nil)
			failing.Store(true)
			var err error
			if tc.name == "PUT" {
				_, err = e.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Body: strings.NewReader("data")})
			} else {
				_, _, err = e.get(t, "existing")
			}
			if code, status := apiError(t, err); code != tc.code || status != tc.status {
				t.Errorf("%s: %s %d, want %s %d", tc.name, code, status, tc.code, tc.status)
			}
		})
	}
}
