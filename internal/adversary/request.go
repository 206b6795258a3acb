package adversary

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/s3seal/s3seal/internal/store"
)

// keptParams are the query parameters IgnoreSubresources keeps: they select
// the object, version, upload and part, or shape a listing.
var keptParams = map[string]bool{
	"versionId": true, "uploadId": true, "partNumber": true, "uploads": true,
	"versions": true, "list-type": true, "prefix": true, "delimiter": true,
	"marker": true, "max-keys": true, "continuation-token": true,
	"start-after": true, "fetch-owner": true, "encoding-type": true,
	"key-marker": true, "version-id-marker": true, "upload-id-marker": true,
	"max-uploads": true, "max-parts": true, "part-number-marker": true,
}

// hopByHop are connection-level headers (RFC 9110 §7.6.1), never forwarded.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// clientOnly are the client's authentication and framing: the Store signs
// and frames its own request.
var clientOnly = []string{
	"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token",
	"Host", "Content-Length", "Expect", "Accept-Encoding",
}

// conditions are what IgnoreIfMatch drops.
var conditions = []string{
	"If-Match", "If-None-Match", "X-Amz-Copy-Source-If-Match",
	"X-Amz-Copy-Source-If-None-Match", "X-Amz-Copy-Source-If-Modified-Since",
	"X-Amz-Copy-Source-If-Unmodified-Since",
}

// rememberETag notes that the Store showed an object's ETag real as lied,
// so that conditions naming lied reach the real store as real: a store
// whose ETags say something else is still consistent about them.
func (s *Store) rememberETag(lied, real string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.etags == nil {
		s.etags = map[string]string{}
	}
	s.etags[lied] = real
}

// realETags translates ETags the Store made up in conditions back.
func (s *Store) realETags(h http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range conditions[:4] {
		if real, ok := s.etags[h.Get(k)]; ok {
			h.Set(k, real)
		}
	}
}

// outgoing builds the request for the real store, with the request-side
// lies applied.
func (s *Store) outgoing(r *http.Request, bucket, key string, lies []Lie) store.Request {
	path, query, header := r.URL.Path, r.URL.Query(), forwardHeader(r.Header)
	s.realETags(header)
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	for _, l := range lies {
		switch l.Kind {
		case IgnoreSubresources:
			for k := range query {
				if !keptParams[k] {
					query.Del(k)
				}
			}
		case IgnoreIfMatch:
			deleteAll(header, conditions)
		case IgnoreRange:
			deleteAll(header, []string{"Range", "X-Amz-Copy-Source-Range"})
		case IgnorePartNumber:
			if read {
				query.Del("partNumber")
			}
		case OtherObject:
			if read && key != "" {
				path = "/" + bucket + "/" + l.Key
			}
		}
	}
	if r.Header.Get("X-Amz-Content-Sha256") == streamingUnsignedTrailer {
		// Framed without signatures: the body passes as it is, framing and
		// trailer included, so the store sees it as the client sent it.
		header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
	}
	bucket, key = splitPath(path)
	return store.Request{Method: r.Method, Bucket: bucket, Key: key, Query: query, Header: header}
}

const streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

// forwardHeader is a client's header without its connection's and its
// authentication's: the Store signs its own request.
func forwardHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			out.Del(strings.TrimSpace(name))
		}
	}
	deleteAll(out, hopByHop)
	deleteAll(out, clientOnly)
	return out
}

func deleteAll(h http.Header, names []string) {
	for _, n := range names {
		h.Del(n)
	}
}

// countBody wraps r's body so that rec counts its bytes as they flow. done
// is closed once the transport has closed the body (at once if there is
// none).
func (s *Store) countBody(r *http.Request, rec *Record) (io.ReadCloser, <-chan struct{}) {
	done := make(chan struct{})
	if r.ContentLength == 0 {
		close(done)
		return nil, done
	}
	return &countingBody{s: s, rec: rec, r: r.Body, want: r.ContentLength, done: done}, done
}

type countingBody struct {
	s    *Store
	rec  *Record
	r    io.Reader
	want int64 // declared length, -1 if chunked
	n    int64 // read by the transport's one writing goroutine only
	once sync.Once
	done chan struct{}
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	b.s.mu.Lock()
	b.rec.BodyBytes = b.n
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		b.rec.Complete = false
	case b.want >= 0:
		b.rec.Complete = b.n == b.want
	case err != nil: // clean end of a chunked body
		b.rec.Complete = true
	}
	b.s.mu.Unlock()
	return n, err
}

// Close only signals: the server owns the client's body.
func (b *countingBody) Close() error {
	b.once.Do(func() { close(b.done) })
	return nil
}
