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

// TestStall: a request is cut when the store makes no progress for
// Config.Timeout while s3seal waits on it, however the store stalls, and
// says why (ErrStalled, ErrUnreachable). Time that is not the store's — a
// client slow to send or to read, an answer held unread — never counts,
// nor does a long transfer that keeps moving, nor a copy's long answer.
func TestStall(t *testing.T) {
	const timeout = 400 * time.Millisecond // wide: a loaded machine under -race
	done := make(chan struct{})            // a held handler returns when the test ends,
	defer close(done)                      // before its server closes (t.Cleanup)
	parent := t
	hold := func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
	answerIn := func(d time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			time.Sleep(d)
			w.Write([]byte("answer"))
		}
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		req     Request
		body    io.Reader // nil: none
		pause   time.Duration
		stalled bool // the call or the body read fails with ErrStalled
	}{
		{"no answer", func(w http.ResponseWriter, r *http.Request) { hold(r) }, Request{}, nil, 0, true},
		{"body stops", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.Write(make([]byte, 10))
			w.(http.Flusher).Flush()
			hold(r)
		}, Request{}, nil, 0, true},
		{"store stops reading the upload", func(w http.ResponseWriter, r *http.Request) {
			io.CopyN(io.Discard, r.Body, 1<<10)
			hold(r)
		}, Request{}, strings.NewReader(strings.Repeat("x", 64<<20)), 0, true},
		{"a document's answer takes too long", answerIn(2 * timeout), Request{Body: []byte("<doc/>")}, nil, 0, true},
		{"a copy's answer takes long", answerIn(2 * timeout), Request{Body: []byte("<doc/>"), SlowAnswer: true}, nil, 0, false},
		{"slow but steady answer", func(w http.ResponseWriter, r *http.Request) {
			for range 10 {
				time.Sleep(timeout / 4)
				w.Write([]byte("0123456789"))
				w.(http.Flusher).Flush()
			}
		}, Request{}, nil, 0, false},
		{"a client slow to send", answerIn(0), Request{}, &slowReader{chunks: 4, every: 2 * timeout}, 0, false},
		{"a client slow to read, the answer held", func(w http.ResponseWriter, r *http.Request) {
			for range 3 {
				w.Write(make([]byte, 1<<20))
			}
		}, Request{}, nil, 2 * timeout, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			parent.Cleanup(srv.Close)
			u, _ := url.Parse(srv.URL)
			c, err := New(Config{Endpoint: u, AccessKey: testAK, SecretKey: testSK, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			err = stallCall(c, tc.req, tc.body, tc.pause)
			switch {
			case tc.stalled && (!errors.Is(err, ErrStalled) || !errors.Is(err, ErrUnreachable)):
				t.Fatalf("got %v, want ErrStalled and ErrUnreachable", err)
			case !tc.stalled && err != nil:
				t.Fatalf("cut: %v", err)
			}
		})
	}
}

// stallCall sends r (a GET, a PUT with body, or a POST of r.Body) and reads
// the answer, pausing before each read.
func stallCall(c *Client, r Request, body io.Reader, pause time.Duration) error {
	r.Method, r.Bucket, r.Key, r.Header = http.MethodGet, "b", "k", http.Header{}
	var resp *http.Response
	var err error
	switch {
	case r.Body != nil:
		r.Method = http.MethodPost
		resp, err = c.Do(context.Background(), r)
	case body != nil:
		size := int64(64 << 20)
		if s, ok := body.(*slowReader); ok {
			size = s.size()
		}
		r.Method = http.MethodPut
		resp, err = c.Stream(context.Background(), r, body, size)
	default:
		resp, err = c.Stream(context.Background(), r, http.NoBody, 0)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 1<<20)
	for {
		time.Sleep(pause)
		if _, err := resp.Body.Read(buf); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
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
