package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
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
		{name: "resets beyond budget", cuts: 4, budget: 3, resumes: 3, wantErr: io.ErrUnexpectedEOF},
		{name: "no budget", cuts: 1, budget: 0, wantErr: io.ErrUnexpectedEOF},
		{name: "object replaced", cuts: 1, budget: 3, changed: true, resumes: 1, wantErr: ErrChanged},
		{name: "no ETag to pin to", cuts: 1, budget: 3, etag: "-", wantErr: io.ErrUnexpectedEOF},
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
			etag := map[string]string{"": s.etag, "-": ""}[tc.etag]
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
