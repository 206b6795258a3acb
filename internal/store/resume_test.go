package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cuttingStore serves one object, honouring Range and If-Match, and breaks
// its first cuts answers after cutAfter body bytes (a reset connection).
type cuttingStore struct {
	obj      []byte
	etag     string
	cuts     atomic.Int32 // answers still to break
	cutAfter int
	clean    bool // end a broken answer cleanly (chunked, short) instead
	ranges   []string
}

func (s *cuttingStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := r.Header.Get("If-Match"); m != "" && m != s.etag {
		w.WriteHeader(http.StatusPreconditionFailed)
		return
	}
	body, status := s.obj, http.StatusOK
	w.Header().Set("ETag", s.etag)
	if rg := r.Header.Get("Range"); rg != "" {
		s.ranges = append(s.ranges, rg)
		var a, b int
		fmt.Sscanf(rg, "bytes=%d-%d", &a, &b)
		body, status = s.obj[a:b+1], http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, len(s.obj)))
	}
	if s.cuts.Add(-1) < 0 {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		w.Write(body)
		return
	}
	if !s.clean {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	w.Write(body[:min(s.cutAfter, len(body))])
	w.(http.Flusher).Flush()
	if !s.clean {
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}
}

// TestResume: a broken answer is resumed from the first byte not read,
// pinned to the object's ETag, within the request's budget; what cannot be
// resumed ends the read with the failure, never with a short success.
func TestResume(t *testing.T) {
	obj := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	tests := []struct {
		name     string
		cuts     int32
		clean    bool
		budget   int
		etag     string // "": the object's
		changed  bool   // the object is replaced before the read resumes
		cancel   bool   // the caller gives up before the read
		wantErr  error  // nil: the whole span arrives
		resumes  int    // attempts reported
		wantFrom []string
	}{
		{name: "no break", budget: 3},
		{name: "one reset", cuts: 1, budget: 3, resumes: 1, wantFrom: []string{"bytes=1000-65535"}},
		{name: "a clean early end", cuts: 1, clean: true, budget: 3, resumes: 1},
		{name: "resets within budget", cuts: 3, budget: 3, resumes: 3,
			wantFrom: []string{"bytes=1000-65535", "bytes=2000-65535", "bytes=3000-65535"}},
		{name: "resets beyond budget", cuts: 4, budget: 3, resumes: 3, wantErr: ErrUnreachable},
		{name: "no budget", cuts: 1, budget: 0, wantErr: ErrUnreachable},
		{name: "object replaced", cuts: 1, budget: 3, changed: true, resumes: 1, wantErr: ErrChanged},
		{name: "no ETag to pin to", cuts: 1, budget: 3, etag: "-", wantErr: ErrUnreachable},
		// A weak ETag vouches for equivalent content, not the same bytes:
		// no pin at all (If-Match compares strongly, so it never matches).
		{name: "a weak ETag", cuts: 1, budget: 3, etag: "weak", wantErr: ErrUnreachable},
		{name: "caller gone", cuts: 1, budget: 3, cancel: true, wantErr: errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &cuttingStore{obj: obj, etag: `"abc"`, cutAfter: 1000, clean: tc.clean}
			s.cuts.Store(tc.cuts)
			srv := httptest.NewServer(s)
			defer srv.Close()
			u, _ := url.Parse(srv.URL)
			c, err := New(Config{Endpoint: u, AccessKey: "a", SecretKey: "b", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := Object{Bucket: "b", Key: "k"}
			resp, err := c.Do(ctx, o.Request(http.MethodGet, nil, nil))
			if err != nil {
				t.Fatal(err)
			}
			if tc.etag == "weak" {
				s.etag = `W/"abc"`
			}
			etag := map[string]string{"": s.etag, "-": "", "weak": s.etag}[tc.etag]
			var attempts int
			body := c.Resume(ctx, o, etag, 0, int64(len(obj)), resp.Body, NewResumes(tc.budget), func(bool) { attempts++ })
			defer body.Close()
			if tc.changed {
				s.etag = `"new"`
			}
			got, err := readAll(body, tc.cancel, cancel)
			switch {
			case tc.wantErr == nil && (err != nil || !bytes.Equal(got, obj)):
				t.Fatalf("read %d of %d bytes, err %v", len(got), len(obj), err)
			case tc.wantErr == errAny && err == nil:
				t.Fatal("the read succeeded")
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			case tc.wantErr != nil && !bytes.Equal(got, obj[:len(got)]):
				t.Fatal("the bytes read before the failure are not the object's")
			}
			if attempts != tc.resumes {
				t.Errorf("%d resumes reported, want %d", attempts, tc.resumes)
			}
			if tc.wantFrom != nil && strings.Join(s.ranges, " ") != strings.Join(tc.wantFrom, " ") {
				t.Errorf("resumed with ranges %q, want %q", s.ranges, tc.wantFrom)
			}
		})
	}
}

// errAny: any failure will do (the caller's cancellation races the
// broken connection).
var errAny = errors.New("any error")

// readAll reads r to its end; with cancelFirst, the caller's context is
// cancelled after the first read.
func readAll(r io.Reader, cancelFirst bool, cancel func()) ([]byte, error) {
	var out []byte
	buf := make([]byte, 512)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if cancelFirst {
			cancel()
			cancelFirst = false
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// endingStore serves one object whose first answer breaks after cutAfter
// bytes as first says ("cut": the connection closed short of the
// Content-Length; "reset"; "stall"; "early": a chunked answer that ends
// cleanly), and answers the resumed (ranged) requests with status resumed,
// or, when 0, breaks them the same way.
type endingStore struct {
	obj      []byte
	etag     string
	first    string
	resumed  int
	cutAfter int
	done     chan struct{}
}

func (s *endingStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ETag", s.etag)
	body, status := s.obj, http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		if s.resumed != 0 {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(s.resumed)
			w.Write([]byte("<Error><Code>Nope</Code></Error>" + strings.Repeat(" ", 256<<10)))
			return
		}
		var a, b int
		fmt.Sscanf(rg, "bytes=%d-%d", &a, &b)
		body, status = s.obj[a:b+1], http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, len(s.obj)))
	}
	if s.first != "early" {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	w.Write(body[:min(s.cutAfter, len(body))])
	w.(http.Flusher).Flush()
	switch s.first {
	case "cut", "reset":
		conn, _, _ := http.NewResponseController(w).Hijack()
		if tc, ok := conn.(*net.TCPConn); ok && s.first == "reset" {
			tc.SetLinger(0)
		}
		conn.Close()
	case "stall":
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
	}
}

// countingTransport counts the answers whose bodies are not closed yet.
type countingTransport struct {
	rt   http.RoundTripper
	open atomic.Int32
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err == nil {
		t.open.Add(1)
		resp.Body = &countedBody{ReadCloser: resp.Body, t: t}
	}
	return resp, err
}

type countedBody struct {
	io.ReadCloser
	t    *countingTransport
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.t.open.Add(-1) })
	return b.ReadCloser.Close()
}

// TestResumeEnds: a read that cannot resume ends with an error the caller
// can classify: a broken connection is ErrUnreachable, never an early end
// of the stored bytes (io.ErrUnexpectedEOF, which decryption takes for a
// truncated, so tampered, object); an answer that ends cleanly too early
// stays one; a resume the store refuses is that refusal (a 416 is not
// "unreachable" because the first answer had stalled), and its answer is
// closed, never left holding a connection.
func TestResumeEnds(t *testing.T) {
	obj := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	tests := []struct {
		name    string
		first   string
		resumed int
		budget  int
		etag    string // "-": none
		is      []error
		isNot   []error
	}{
		{"cut, beyond budget", "cut", 0, 2, "", []error{ErrUnreachable}, []error{io.ErrUnexpectedEOF}},
		{"reset, no budget", "reset", 0, 0, "", []error{ErrUnreachable}, []error{io.ErrUnexpectedEOF}},
		{"cut, no ETag", "cut", 0, 3, "-", []error{ErrUnreachable}, []error{io.ErrUnexpectedEOF}},
		{"stall, beyond budget", "stall", 0, 1, "", []error{ErrUnreachable, ErrStalled}, []error{io.ErrUnexpectedEOF}},
		{"clean early end, beyond budget", "early", 0, 2, "", []error{io.ErrUnexpectedEOF}, []error{ErrUnreachable}},
		{"stall, then 416", "stall", http.StatusRequestedRangeNotSatisfiable, 3, "", []error{ErrRangeNotSatisfiable}, []error{ErrUnreachable}},
		{"cut, then 412", "cut", http.StatusPreconditionFailed, 3, "", []error{ErrChanged}, []error{io.ErrUnexpectedEOF}},
		{"cut, then 500", "cut", http.StatusInternalServerError, 3, "", []error{ErrUnexpectedAnswer}, []error{io.ErrUnexpectedEOF}},
		{"reset, then 404", "reset", http.StatusNotFound, 3, "", []error{ErrUnexpectedAnswer}, []error{io.ErrUnexpectedEOF}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &endingStore{obj: obj, etag: `"abc"`, first: tc.first, resumed: tc.resumed, cutAfter: 1000, done: make(chan struct{})}
			srv := httptest.NewServer(s)
			defer srv.Close()
			defer close(s.done)
			c, rt, o, resp := getThrough(t, srv, 300*time.Millisecond)
			etag := map[string]string{"": s.etag, "-": ""}[tc.etag]
			body := c.Resume(context.Background(), o, etag, 0, int64(len(obj)), resp.Body, NewResumes(tc.budget), nil)
			got, err := readAll(body, false, nil)
			body.Close()
			if err == nil || !bytes.Equal(got, obj[:len(got)]) {
				t.Fatalf("read %d bytes, err %v: want a failure after the object's bytes", len(got), err)
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("err %v, want it to be %v", err, want)
				}
			}
			for _, not := range tc.isNot {
				if errors.Is(err, not) {
					t.Errorf("err %v is %v", err, not)
				}
			}
			var f *Failure
			if errors.As(err, &f) {
				t.Errorf("err %v holds a store answer nobody will relay or close", err)
			}
			if n := rt.open.Load(); n != 0 {
				t.Errorf("%d store answers left open", n)
			}
		})
	}
}

// TestResumeClosedMeanwhile: a read may be closed from another goroutine
// while it resumes (a copy's source, which the transport reads on its own
// goroutine after the store refused the copy's PUT): the answer the resume
// gets is closed, not left holding a connection, and the read ends.
func TestResumeClosedMeanwhile(t *testing.T) {
	obj := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	asked, release := make(chan struct{}), make(chan struct{})
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"abc"`)
		if n.Add(1) == 1 {
			w.Header().Set("Content-Length", strconv.Itoa(len(obj)))
			w.Write(obj[:1000])
			w.(http.Flusher).Flush()
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
			return
		}
		close(asked)
		<-release
		var a, b int
		fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, len(obj)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(obj[a : b+1])
	}))
	defer srv.Close()
	c, rt, o, resp := getThrough(t, srv, 5*time.Second)
	body := c.Resume(context.Background(), o, `"abc"`, 0, int64(len(obj)), resp.Body, NewResumes(3), nil)
	done := make(chan error)
	go func() {
		_, err := io.Copy(io.Discard, body)
		done <- err
	}()
	<-asked
	body.Close()
	close(release)
	if err := <-done; err == nil {
		t.Error("a read closed meanwhile read on to the end")
	}
	if n := rt.open.Load(); n != 0 {
		t.Errorf("%d store answers left open", n)
	}
}

// getThrough GETs object b/k from srv with a Client whose transport counts
// the answers left open.
func getThrough(t *testing.T, srv *httptest.Server, timeout time.Duration) (*Client, *countingTransport, Object, *http.Response) {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	rt := &countingTransport{rt: &http.Transport{DisableCompression: true}}
	c, err := New(Config{Endpoint: u, AccessKey: "a", SecretKey: "b", Timeout: timeout, Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	o := Object{Bucket: "b", Key: "k"}
	resp, err := c.Do(context.Background(), o.Request(http.MethodGet, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	return c, rt, o, resp
}
