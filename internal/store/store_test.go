package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/s3seal/s3seal/sigv4"
)

const testAK, testSK = "AKIDSTORE", "store-secret"

// received is a request as the test store decoded it.
type received struct {
	method, path string
	query        url.Values
	header       http.Header
	body         []byte
	bodyErr      error
}

// testStore checks every request's signature with sigv4 (as a real store
// would), records it, and answers with answer.
type testStore struct {
	mu     sync.Mutex
	got    []received
	answer func(w http.ResponseWriter, r *http.Request, body []byte)
}

func (s *testStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v := &sigv4.Verifier{Credentials: sigv4.StaticCredentials{testAK: testSK}, Region: "us-east-1"}
	req, err := v.Verify(r)
	if err != nil {
		http.Error(w, "bad signature: "+err.Error(), http.StatusForbidden)
		return
	}
	body, berr := io.ReadAll(req.Body)
	s.mu.Lock()
	s.got = append(s.got, received{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), body, berr})
	s.mu.Unlock()
	if s.answer != nil {
		s.answer(w, r, body)
	}
}

// last is the last request the store has finished receiving (a handler may
// still be reading a body the client cut off when the client returns).
func (s *testStore) last(t *testing.T) received {
	t.Helper()
	for range 200 {
		s.mu.Lock()
		n := len(s.got)
		s.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		t.Fatal("the store received nothing")
	}
	return s.got[len(s.got)-1]
}

// lateReader yields nothing until answered is closed, then reads r after
// 100 ms more, noting whether a read was still in progress, or began,
// once putReturned is set.
type lateReader struct {
	answered    chan struct{}
	r           io.Reader
	putReturned atomic.Bool
	afterPut    atomic.Bool
}

func (l *lateReader) Read(p []byte) (int, error) {
	if l.putReturned.Load() {
		l.afterPut.Store(true)
	}
	<-l.answered
	time.Sleep(100 * time.Millisecond)
	n, err := l.r.Read(p)
	if l.putReturned.Load() {
		l.afterPut.Store(true)
	}
	return n, err
}

func newTestClient(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body []byte)) (*Client, *testStore) {
	t.Helper()
	s := &testStore{answer: answer}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	c, err := New(Config{Endpoint: u, AccessKey: testAK, SecretKey: testSK})
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// Do signs what it sends (keys of any spelling), sends a document as it
// is, never framed, and follows no redirect.
func TestDo(t *testing.T) {
	c, s := newTestClient(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Query().Has("redirect") {
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}
	})
	h := http.Header{"X-Amz-Content-Sha256": {streamingTrail}} // must not make a document framed
	resp, err := c.Do(t.Context(), Request{Method: "PUT", Bucket: "bkt", Key: "dir/a b+c%d é", Query: url.Values{"tagging": {""}}, Header: h, Body: []byte("<Tagging/>")})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("Do: %v %v", resp, err)
	}
	resp.Body.Close()
	got := s.last(t)
	if got.path != "/bkt/dir/a b+c%d é" || string(got.body) != "<Tagging/>" || got.header.Get("X-Amz-Content-Sha256") != unsignedPayload {
		t.Errorf("store received %s %q (%s)", got.path, got.body, got.header.Get("X-Amz-Content-Sha256"))
	}
	resp, err = c.Do(t.Context(), Request{Method: "GET", Bucket: "bkt", Query: url.Values{"redirect": {""}}})
	if err != nil || resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("a redirect was followed: %v %v", resp, err)
	}
	resp.Body.Close()
}

// Put frames the body with a CRC32C trailer the store checks; a success
// comes back only once every byte arrived, and a source that fails never
// yields the final chunk.
func TestPut(t *testing.T) {
	data := bytes.Repeat([]byte("s3seal!\n"), 1<<17) // 1 MiB
	const errDoc = `<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>`
	tests := []struct {
		name    string
		src     io.Reader
		early   int // the store answers this status after 100 bytes, then drains the body slowly
		wantErr bool
	}{
		{"whole body", bytes.NewReader(data), 0, false},
		{"source fails", io.MultiReader(bytes.NewReader(data[:1000]), iotest.ErrReader(errors.New("client gone"))), 0, true},
		{"source ends early", bytes.NewReader(data[:1000]), 0, true},
		{"store answers 200 early", bytes.NewReader(data), http.StatusOK, true},
		{"store answers 404 early", bytes.NewReader(data), http.StatusNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := newTestClient(t, nil)
			var late *lateReader
			if tt.early != 0 {
				// The store answers after the first bytes, while the
				// transport is in a read of the rest that ends 100 ms later.
				answered := make(chan struct{})
				half := len(data) / 2 // whole chunks, so they are sent
				late = &lateReader{answered: answered, r: bytes.NewReader(data[half:])}
				tt.src = io.MultiReader(bytes.NewReader(data[:half]), late)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.ReadFull(r.Body, make([]byte, 100))
					http.NewResponseController(w).EnableFullDuplex()
					if tt.early != http.StatusOK {
						// A whole answer, as S3 sends its errors: chunked, it
						// would end only with the handler, once the body
						// was drained, and Put would return only then.
						w.Header().Set("Content-Length", strconv.Itoa(len(errDoc)))
					}
					w.WriteHeader(tt.early)
					if tt.early != http.StatusOK {
						io.WriteString(w, errDoc)
					}
					w.(http.Flusher).Flush()
					close(answered)
					for buf := make([]byte, 4096); ; time.Sleep(time.Millisecond) {
						if _, err := r.Body.Read(buf); err != nil {
							return
						}
					}
				}))
				defer srv.Close()
				u, _ := url.Parse(srv.URL)
				c, _ = New(Config{Endpoint: u, AccessKey: testAK, SecretKey: testSK})
			}
			resp, err := c.Put(t.Context(), Request{Bucket: "bkt", Key: "obj"}, tt.src, int64(len(data)))
			if late != nil {
				late.putReturned.Store(true)
				time.Sleep(200 * time.Millisecond) // for any later read to happen
				if late.afterPut.Load() {
					t.Error("the source was read after Put returned")
				}
			}
			if tt.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("Put succeeded (status %d)", resp.StatusCode)
				}
				if tt.early == 0 {
					if got := s.last(t); got.bodyErr == nil {
						t.Errorf("the store decoded a whole body of %d bytes", len(got.body))
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			defer resp.Body.Close()
			if tt.early != 0 {
				// The answer outlives the connection the fence made the
				// transport close.
				if b, err := io.ReadAll(resp.Body); resp.StatusCode != tt.early || string(b) != errDoc || err != nil {
					t.Errorf("answer %d %q (%v), want %d %q", resp.StatusCode, b, err, tt.early, errDoc)
				}
				return
			}
			got := s.last(t)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got.body, data) || got.bodyErr != nil || got.header.Get("X-Amz-Content-Sha256") != streamingTrail {
				t.Errorf("answered %d; store decoded %d bytes (%v), sha256 header %q", resp.StatusCode, len(got.body), got.bodyErr, got.header.Get("X-Amz-Content-Sha256"))
			}
		})
	}
}

// GetRange and HeadPart believe an answer only for what was asked:
// pinned to the ETag, for the range asked.
func TestPinnedReads(t *testing.T) {
	stored := []byte("0123456789abcdefghij")
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   string
		err    error
	}{
		{"the range", func(w http.ResponseWriter) {
			w.Header().Set("Content-Range", "bytes 5-9/20")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(stored[5:10])
		}, "56789", nil},
		{"the whole object (Range ignored)", func(w http.ResponseWriter) { w.Write(stored) }, "56789", nil},
		{"another range", func(w http.ResponseWriter) {
			w.Header().Set("Content-Range", "bytes 0-4/20")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(stored[:5])
		}, "", ErrUnexpectedAnswer},
		{"a short whole object", func(w http.ResponseWriter) { w.Write(stored[:3]) }, "", io.ErrUnexpectedEOF},
		{"changed", func(w http.ResponseWriter) { w.WriteHeader(http.StatusPreconditionFailed) }, "", ErrChanged},
		{"not satisfiable", func(w http.ResponseWriter) { w.WriteHeader(http.StatusRequestedRangeNotSatisfiable) }, "", ErrRangeNotSatisfiable},
	}
	o := Object{Bucket: "bkt", Key: "obj", VersionID: "v1", Header: http.Header{"X-Amz-Request-Payer": {"requester"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := newTestClient(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { tt.answer(w) })
			r, err := c.GetRange(t.Context(), o, `"etag"`, 5, 5)
			if !errors.Is(err, tt.err) {
				t.Fatalf("GetRange: %v, want %v", err, tt.err)
			}
			if err == nil {
				got, _ := io.ReadAll(r)
				r.Close()
				if string(got) != tt.want {
					t.Errorf("read %q, want %q", got, tt.want)
				}
			}
			req := s.last(t)
			if req.header.Get("If-Match") != `"etag"` || req.header.Get("Range") != "bytes=5-9" ||
				req.query.Get("versionId") != "v1" || req.header.Get("X-Amz-Request-Payer") != "requester" {
				t.Errorf("store received %v %v", req.query, req.header)
			}
		})
	}
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.WriteHeader(http.StatusNotFound)
	})
	var f *Failure
	if _, err := c.HeadPart(t.Context(), o, `"etag"`, 2); !errors.As(err, &f) || f.Resp.StatusCode != http.StatusNotFound {
		t.Errorf("HeadPart of a missing object: %v", err)
	}
}

// UploadPartCopy names its source pinned, and takes only a CopyPartResult
// as a success.
func TestUploadPartCopy(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		err    error
	}{
		{"copied", 200, `<CopyPartResult><ETag>"p1"</ETag></CopyPartResult>`, nil},
		{"late error", 200, `<Error><Code>InternalError</Code></Error>`, ErrUnexpectedAnswer},
		{"source changed", 412, ``, ErrChanged},
	}
	dst := Object{Bucket: "bkt", Key: "dst"}
	src := Object{Bucket: "bkt", Key: "src x", VersionID: "v2", Header: http.Header{"X-Amz-Expected-Bucket-Owner": {"123"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := newTestClient(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			etag, err := c.UploadPartCopy(t.Context(), dst, "up1", 3, src, `"s"`, 100, 199)
			if !errors.Is(err, tt.err) || (err == nil && etag != `"p1"`) {
				t.Fatalf("UploadPartCopy: %q %v, want %v", etag, err, tt.err)
			}
			h := s.last(t).header
			if h.Get("X-Amz-Copy-Source") != "/bkt/src%20x?versionId=v2" || h.Get("X-Amz-Copy-Source-If-Match") != `"s"` ||
				h.Get("X-Amz-Copy-Source-Range") != "bytes=100-199" || h.Get("X-Amz-Source-Expected-Bucket-Owner") != "123" {
				t.Errorf("store received %v", h)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(srv.URL)
	srv.Close()
	c, err := New(Config{Endpoint: u, AccessKey: testAK, SecretKey: testSK})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), Request{Method: "GET"}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Do against nothing: %v", err)
	}
	for _, bad := range []Config{{}, {Endpoint: &url.URL{Scheme: "ftp", Host: "x"}, AccessKey: "a", SecretKey: "b"},
		{Endpoint: u}, {Endpoint: &url.URL{Scheme: "http", Host: "x", RawQuery: "a=b"}, AccessKey: "a", SecretKey: "b"}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}
