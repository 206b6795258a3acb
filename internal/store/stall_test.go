package store

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestStall: a request that makes no progress for Config.Timeout is cut,
// however it stalls, and says why; one that keeps moving is not, though it
// takes longer in all.
func TestStall(t *testing.T) {
	const timeout = 200 * time.Millisecond
	const step = timeout / 4
	done := make(chan struct{}) // a held handler returns when the test ends,
	defer close(done)           // before its server closes (t.Cleanup)
	parent := t
	hold := func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		put     io.Reader // nil: a GET
		wantErr bool      // from the call; else from reading the body
		stalled bool      // the error, if any, is ErrStalled
	}{
		{"no answer", func(w http.ResponseWriter, r *http.Request) { hold(r) }, nil, true, true},
		{"body stops", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.Write(make([]byte, 10))
			w.(http.Flusher).Flush()
			hold(r)
		}, nil, false, true},
		{"store stops reading the upload", func(w http.ResponseWriter, r *http.Request) {
			io.CopyN(io.Discard, r.Body, 1<<10)
			hold(r)
		}, strings.NewReader(strings.Repeat("x", 64<<20)), true, true},
		{"slow but steady answer", func(w http.ResponseWriter, r *http.Request) {
			for range 10 {
				time.Sleep(step)
				w.Write([]byte("0123456789"))
				w.(http.Flusher).Flush()
			}
		}, nil, false, false},
		{"slow but steady upload", func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
		}, &slowReader{chunks: 10, every: step}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			parent.Cleanup(srv.Close)
			u, _ := url.Parse(srv.URL)
			c, err := New(Config{Endpoint: u, AccessKey: testAK, SecretKey: testSK, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			r := Request{Method: http.MethodGet, Bucket: "b", Key: "k", Header: http.Header{}}
			body, size := io.Reader(strings.NewReader("")), int64(0)
			if tc.put != nil {
				r.Method, body, size = http.MethodPut, tc.put, 64<<20
				if s, ok := tc.put.(*slowReader); ok {
					size = s.size()
				}
			}
			resp, err := c.Stream(context.Background(), r, body, size)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if tc.wantErr {
					t.Fatalf("the call succeeded, want it cut (then reading: %v)", err)
				}
			} else if !tc.wantErr {
				t.Fatalf("the call failed: %v", err)
			}
			switch {
			case tc.stalled && !errors.Is(err, ErrStalled):
				t.Fatalf("got %v, want ErrStalled", err)
			case tc.stalled && tc.wantErr && !errors.Is(err, ErrUnreachable):
				t.Fatalf("got %v, want it wrapped in ErrUnreachable", err)
			case !tc.stalled && err != nil:
				t.Fatalf("a moving transfer was cut: %v", err)
			}
		})
	}
}

// slowReader yields chunks of 10 bytes, one every so often.
type slowReader struct {
	chunks int
	every  time.Duration
}

func (s *slowReader) size() int64 { return int64(s.chunks) * 10 }

func (s *slowReader) Read(p []byte) (int, error) {
	if s.chunks == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.every)
	s.chunks--
	return copy(p, "0123456789"), nil
}
