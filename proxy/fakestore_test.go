package proxy

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/sigv4"
)

const (
	upstreamAK     = "UPSTREAMAK"
	upstreamSecret = "upstream-secret-key"
)

type staticCreds map[string]string

func (c staticCreds) Secret(ak string) (string, bool) { s, ok := c[ak]; return s, ok }

// fakeStore is a tiny in-memory S3 for the proxy to talk to. It checks the
// proxy's SigV4 signature with the upstream credential (so signing bugs
// fail tests), stores only complete bodies, and records every request.
type fakeStore struct {
	t        *testing.T
	verifier *sigv4.Verifier

	mu       sync.Mutex
	buckets  map[string]bool
	objects  map[string]*fakeObject // "bucket/key"
	requests []recorded
}

type fakeObject struct {
	data     []byte
	header   http.Header // Content-Type and x-amz-meta-*
	etag     string      // quoted
	modified time.Time
}

type recorded struct {
	Method, Path, Query string
	Header              http.Header
}

func newFakeStore(t *testing.T) (*fakeStore, *httptest.Server) {
	s := &fakeStore{
		t:        t,
		verifier: &sigv4.Verifier{Credentials: staticCreds{upstreamAK: upstreamSecret}, Region: "us-east-1"},
		buckets:  map[string]bool{},
		objects:  map[string]*fakeObject{},
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// put stores an object directly, as someone bypassing s3seal would.
func (s *fakeStore) put(bucket, key string, data []byte, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := md5.Sum(data)
	if header == nil {
		header = http.Header{}
	}
	s.buckets[bucket] = true
	s.objects[bucket+"/"+key] = &fakeObject{data: data, header: header, etag: `"` + hex.EncodeToString(sum[:]) + `"`, modified: time.Now().UTC()}
}

func (s *fakeStore) get(bucket, key string) *fakeObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objects[bucket+"/"+key]
}

func (s *fakeStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

func (s *fakeStore) recorded() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.requests...)
}

func (s *fakeStore) fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>fake</Message></Error>`, code)
}

func (s *fakeStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone()})
	s.mu.Unlock()
	req, err := s.verifier.Verify(r)
	if err != nil {
		s.t.Errorf("fake store: %s %s: upstream signature: %v", r.Method, r.URL, err)
		s.fail(w, http.StatusForbidden, "SignatureDoesNotMatch")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	switch {
	case bucket == "":
		s.listBuckets(w)
	case key == "":
		s.bucketOp(w, r, req, bucket)
	default:
		s.objectOp(w, r, req, bucket, key)
	}
}

func (s *fakeStore) listBuckets(w http.ResponseWriter) {
	s.mu.Lock()
	var names []string
	for b := range s.buckets {
		names = append(names, b)
	}
	s.mu.Unlock()
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>o</ID></Owner><Buckets>`)
	for _, n := range names {
		fmt.Fprintf(&b, `<Bucket><Name>%s</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket>`, n)
	}
	b.WriteString(`</Buckets></ListAllMyBucketsResult>`)
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, b.String())
}

func (s *fakeStore) bucketOp(w http.ResponseWriter, r *http.Request, req *sigv4.Request, bucket string) {
	s.mu.Lock()
	exists := s.buckets[bucket]
	s.mu.Unlock()
	q := r.URL.Query()
	switch r.Method {
	case http.MethodPut:
		if _, err := io.ReadAll(req.Body); err != nil {
			s.fail(w, http.StatusBadRequest, "IncompleteBody")
			return
		}
		s.mu.Lock()
		s.buckets[bucket] = true
		s.mu.Unlock()
		return
	case http.MethodDelete:
		s.mu.Lock()
		defer s.mu.Unlock()
		for k := range s.objects {
			if strings.HasPrefix(k, bucket+"/") {
				s.fail(w, http.StatusConflict, "BucketNotEmpty")
				return
			}
		}
		delete(s.buckets, bucket)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !exists {
		s.fail(w, http.StatusNotFound, "NoSuchBucket")
		return
	}
	switch {
	case r.Method == http.MethodHead:
	case r.Method == http.MethodPost && q.Has("delete"):
		var del struct {
			Object []struct{ Key string }
		}
		body, err := io.ReadAll(req.Body)
		if err != nil || xml.Unmarshal(body, &del) != nil {
			s.fail(w, http.StatusBadRequest, "MalformedXML")
			return
		}
		if r.Header.Get("Content-Md5") == "" && r.Header.Get("X-Amz-Checksum-Crc32") == "" && r.Header.Get("X-Amz-Checksum-Crc64nvme") == "" {
			s.fail(w, http.StatusBadRequest, "MissingContentMD5")
			return
		}
		var out strings.Builder
		out.WriteString(`<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
		s.mu.Lock()
		for _, o := range del.Object {
			delete(s.objects, bucket+"/"+o.Key)
			fmt.Fprintf(&out, "<Deleted><Key>%s</Key></Deleted>", xmlEscape(o.Key))
		}
		s.mu.Unlock()
		out.WriteString(`</DeleteResult>`)
		io.WriteString(w, out.String())
	case r.Method == http.MethodGet && (q.Has("versions") || len(q) == 0 || q.Has("list-type") || q.Has("prefix")):
		s.list(w, bucket, q)
	default:
		s.fail(w, http.StatusNotImplemented, "NotImplemented")
	}
}

func (s *fakeStore) list(w http.ResponseWriter, bucket string, q map[string][]string) {
	s.mu.Lock()
	var keys []string
	for k := range s.objects {
		if strings.HasPrefix(k, bucket+"/") {
			keys = append(keys, strings.TrimPrefix(k, bucket+"/"))
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	_, versions := q["versions"]
	root, row := "ListBucketResult", "Contents"
	if versions {
		root, row = "ListVersionsResult", "Version"
	}
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<%s xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>%s</Name><Prefix></Prefix><KeyCount>%d</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>`, root, bucket, len(keys))
	for _, k := range keys {
		o := s.objects[bucket+"/"+k]
		fmt.Fprintf(&b, "\n  <%s><Key>%s</Key>", row, xmlEscape(k))
		if versions {
			b.WriteString("<VersionId>null</VersionId><IsLatest>true</IsLatest>")
		}
		fmt.Fprintf(&b, "<LastModified>%s</LastModified><ETag>%s</ETag><Size>%d</Size><StorageClass>STANDARD</StorageClass></%s>",
			o.modified.Format("2006-01-02T15:04:05.000Z"), xmlEscape(o.etag), len(o.data), row)
	}
	s.mu.Unlock()
	fmt.Fprintf(&b, "\n</%s>", root)
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, b.String())
}

func (s *fakeStore) objectOp(w http.ResponseWriter, r *http.Request, req *sigv4.Request, bucket, key string) {
	s.mu.Lock()
	exists := s.buckets[bucket]
	o := s.objects[bucket+"/"+key]
	s.mu.Unlock()
	if !exists {
		s.fail(w, http.StatusNotFound, "NoSuchBucket")
		return
	}
	switch r.Method {
	case http.MethodPut:
		if r.Header.Get("X-Amz-Content-Sha256") != "UNSIGNED-PAYLOAD" {
			s.t.Errorf("fake store: PUT with x-amz-content-sha256 %q", r.Header.Get("X-Amz-Content-Sha256"))
		}
		data, err := io.ReadAll(req.Body)
		if err != nil {
			return // the proxy aborted the body: store nothing
		}
		if r.Header.Get("If-None-Match") == "*" && o != nil {
			s.fail(w, http.StatusPreconditionFailed, "PreconditionFailed")
			return
		}
		h := http.Header{}
		for k, v := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") || k == "Content-Type" {
				h[k] = v
			}
		}
		s.put(bucket, key, data, h)
		w.Header().Set("ETag", s.get(bucket, key).etag)
	case http.MethodDelete:
		s.mu.Lock()
		delete(s.objects, bucket+"/"+key)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet, http.MethodHead:
		if o == nil {
			s.fail(w, http.StatusNotFound, "NoSuchKey")
			return
		}
		if im := r.Header.Get("If-Match"); im != "" && im != o.etag {
			s.fail(w, http.StatusPreconditionFailed, "PreconditionFailed")
			return
		}
		if inm := r.Header.Get("If-None-Match"); inm != "" && inm == o.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h := w.Header()
		for k, v := range o.header {
			h[k] = v
		}
		h.Set("ETag", o.etag)
		h.Set("Last-Modified", o.modified.Format(http.TimeFormat))
		h.Set("Accept-Ranges", "bytes")
		if o.header.Get("X-Amz-Meta-S3seal-V") != "" {
			h.Set("X-Amz-Checksum-Crc32", "AAAAAA==") // of the ciphertext: must not reach clients
		}
		data, status := o.data, http.StatusOK
		if rg := r.Header.Get("Range"); rg != "" {
			a, b, ok := parseFakeRange(rg, int64(len(o.data)))
			if !ok {
				h.Set("Content-Range", fmt.Sprintf("bytes */%d", len(o.data)))
				s.fail(w, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
				return
			}
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, len(o.data)))
			data, status = o.data[a:b+1], http.StatusPartialContent
		}
		h.Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(status)
		if r.Method == http.MethodGet {
			w.Write(data)
		}
	default:
		s.fail(w, http.StatusNotImplemented, "NotImplemented")
	}
}

// parseFakeRange handles the bytes=a-b and bytes=a- forms the proxy sends.
func parseFakeRange(h string, size int64) (int64, int64, bool) {
	spec := strings.TrimPrefix(h, "bytes=")
	first, last, _ := strings.Cut(spec, "-")
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a >= size {
		return 0, 0, false
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil {
			return 0, 0, false
		}
		b = min(b, size-1)
	}
	return a, b, true
}
