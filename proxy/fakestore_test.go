package proxy

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	t        testing.TB
	verifier *sigv4.Verifier

	mu       sync.Mutex
	buckets  map[string]bool
	tags     map[string][]byte      // bucket tagging documents
	objects  map[string]*fakeObject // "bucket/key"
	uploads  map[string]*fakeUpload // by upload id
	requests []recorded
	// noPartReads makes the store ignore partNumber on reads, as a store
	// without that feature would.
	noPartReads bool
	inflight    atomic.Int32
}

// quiesce waits until the store has finished every request it got, and no
// new one arrived for a moment: requests a proxy cut short may still be in
// its handlers after the proxy answered.
func (s *fakeStore) quiesce() {
	stable, last := 0, -1
	for deadline := time.Now().Add(5 * time.Second); stable < 3 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
		n := len(s.recorded())
		if s.inflight.Load() == 0 && n == last {
			stable++
		} else {
			stable = 0
		}
		last = n
	}
}

type fakeUpload struct {
	bucket, key string
	header      http.Header
	parts       map[int]fakePart
}

type fakePart struct {
	data []byte
	etag string
}

type fakeObject struct {
	data     []byte
	header   http.Header // Content-Type and x-amz-meta-*
	etag     string      // quoted
	modified time.Time
	parts    []int64           // stored part sizes of a multipart object
	sub      map[string][]byte // documents of sub-resources (tagging, acl)
}

type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte // the body as the store decoded it (its first MiB); as sent if unverified
	BodyLen             int64  // its length
	Complete            bool   // the whole declared body arrived
}

// captureBody keeps what a request body delivers.
type captureBody struct {
	r   io.ReadCloser
	buf []byte
	n   int64
	eof bool
}

func (c *captureBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if room := 1<<20 - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(n, room)]...)
	}
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

func (c *captureBody) Close() error { return c.r.Close() }

func newFakeStore(t testing.TB) (*fakeStore, *httptest.Server) {
	s := &fakeStore{
		t:        t,
		verifier: &sigv4.Verifier{Credentials: staticCreds{upstreamAK: upstreamSecret}, Region: "us-east-1"},
		buckets:  map[string]bool{},
		tags:     map[string][]byte{},
		objects:  map[string]*fakeObject{},
		uploads:  map[string]*fakeUpload{},
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

// putParts stores a multipart object directly: its ETag is S3's, the MD5 of
// the parts' MD5s with "-N".
func (s *fakeStore) putParts(bucket, key string, parts [][]byte, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buckets[bucket] = true
	s.objects[bucket+"/"+key] = multipartObject(parts, header)
}

func multipartObject(parts [][]byte, header http.Header) *fakeObject {
	var all, sums []byte
	var sizes []int64
	for _, p := range parts {
		sum := md5.Sum(p)
		sums = append(sums, sum[:]...)
		all = append(all, p...)
		sizes = append(sizes, int64(len(p)))
	}
	sum := md5.Sum(sums)
	return &fakeObject{data: all, header: header, parts: sizes, modified: time.Now().UTC(),
		etag: fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(sum[:]), len(parts))}
}

// storedParts splits a stored multipart object into its parts.
func (o *fakeObject) storedParts() [][]byte {
	var out [][]byte
	off := int64(0)
	for _, n := range o.parts {
		out = append(out, o.data[off:off+n])
		off += n
	}
	return out
}

func (s *fakeStore) uploadCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
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
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	body := &captureBody{r: r.Body}
	r.Body = body
	s.mu.Lock()
	idx := len(s.requests)
	s.requests = append(s.requests, recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone()})
	s.mu.Unlock()
	decoded := &captureBody{r: http.NoBody}
	verified := false
	defer func() {
		io.Copy(io.Discard, decoded)
		io.Copy(io.Discard, body)
		s.mu.Lock()
		rec := &s.requests[idx]
		rec.Body, rec.BodyLen = decoded.buf, decoded.n
		if !verified { // what crossed the wire, as it came
			rec.Body, rec.BodyLen = body.buf, body.n
		}
		rec.Complete = body.eof && (r.ContentLength < 0 || body.n == r.ContentLength)
		s.mu.Unlock()
	}()
	req, err := s.verifier.Verify(r)
	if err != nil {
		s.t.Errorf("fake store: %s %s: upstream signature: %v", r.Method, r.URL, err)
		s.fail(w, http.StatusForbidden, "SignatureDoesNotMatch")
		return
	}
	// What the verifier yields is the body as a store keeps it: framing
	// removed, trailer checked.
	verified = true
	decoded.r = req.Body
	req.Body = decoded
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
	if q.Has("tagging") && exists {
		s.bucketTagging(w, r, req, bucket)
		return
	}
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
	case r.Method == http.MethodGet && q.Has("uploads"):
		s.listUploads(w, bucket)
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

// bucketTagging serves a bucket's ?tagging as S3 does.
func (s *fakeStore) bucketTagging(w http.ResponseWriter, r *http.Request, req *sigv4.Request, bucket string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		doc, ok := s.tags[bucket]
		if !ok {
			s.fail(w, http.StatusNotFound, "NoSuchTagSet")
			return
		}
		w.Write(doc)
	case http.MethodPut:
		doc, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		s.tags[bucket] = doc
	case http.MethodDelete:
		delete(s.tags, bucket)
		w.WriteHeader(http.StatusNoContent)
	}
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
	q := r.URL.Query()
	switch {
	case q.Has("tagging") || q.Has("acl"):
		s.objectSubresource(w, r, req, bucket, key, o)
		return
	case r.Method == http.MethodPost && q.Has("uploads"):
		s.createUpload(w, r, bucket, key)
		return
	case q.Has("uploadId"):
		s.uploadOp(w, r, req, bucket, key, q)
		return
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		s.copyObject(w, r, bucket, key)
		return
	}
	switch r.Method {
	case http.MethodPut:
		if v := r.Header.Get("X-Amz-Content-Sha256"); v != "UNSIGNED-PAYLOAD" && v != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
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
		if pn := q.Get("partNumber"); pn != "" && !s.noPartReads {
			k, _ := strconv.Atoi(pn)
			if len(o.parts) > 0 {
				if k < 1 || k > len(o.parts) {
					s.fail(w, http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber")
					return
				}
				var off int64
				for _, n := range o.parts[:k-1] {
					off += n
				}
				data, status = o.data[off:off+o.parts[k-1]], http.StatusPartialContent
				h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(o.parts)))
				h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+o.parts[k-1]-1, len(o.data)))
			} else if k != 1 {
				s.fail(w, http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber")
				return
			}
		} else if rg := r.Header.Get("Range"); rg != "" {
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

// objectSubresource serves an object's ?tagging and ?acl: the document is
// kept beside the object, never in place of it.
func (s *fakeStore) objectSubresource(w http.ResponseWriter, r *http.Request, req *sigv4.Request, bucket, key string, o *fakeObject) {
	if o == nil {
		s.fail(w, http.StatusNotFound, "NoSuchKey")
		return
	}
	sub := "tagging"
	if r.URL.Query().Has("acl") {
		sub = "acl"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.sub == nil {
		o.sub = map[string][]byte{}
	}
	switch r.Method {
	case http.MethodPut:
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		o.sub[sub] = body
	case http.MethodDelete:
		delete(o.sub, sub)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		doc, ok := o.sub[sub]
		if !ok {
			doc = []byte(map[string]string{"tagging": "<Tagging><TagSet></TagSet></Tagging>",
				"acl": "<AccessControlPolicy><Owner><ID>o</ID></Owner><AccessControlList></AccessControlList></AccessControlPolicy>"}[sub])
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Write(doc)
	default:
		s.fail(w, http.StatusMethodNotAllowed, "MethodNotAllowed")
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

func (s *fakeStore) createUpload(w http.ResponseWriter, r *http.Request, bucket, key string) {
	if r.Header.Get("X-Amz-Checksum-Algorithm") != "" {
		s.t.Errorf("fake store: CreateMultipartUpload with a checksum algorithm")
	}
	h := http.Header{}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") || k == "Content-Type" {
			h[k] = v
		}
	}
	// Long ids, as MinIO's and AWS's are.
	id := hex.EncodeToString(md5.New().Sum([]byte(fmt.Sprint(time.Now().UnixNano(), key)))) + strings.Repeat("x", 40)
	s.mu.Lock()
	s.uploads[id] = &fakeUpload{bucket: bucket, key: key, header: h, parts: map[int]fakePart{}}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`,
		bucket, xmlEscape(key), id)
}

func (s *fakeStore) uploadOp(w http.ResponseWriter, r *http.Request, req *sigv4.Request, bucket, key string, q map[string][]string) {
	id := q["uploadId"][0]
	s.mu.Lock()
	u := s.uploads[id]
	s.mu.Unlock()
	if u == nil || u.bucket != bucket || u.key != key {
		s.fail(w, http.StatusNotFound, "NoSuchUpload")
		return
	}
	switch r.Method {
	case http.MethodPut:
		k, err := strconv.Atoi(q["partNumber"][0])
		if err != nil || k < 1 || k > 10000 {
			s.fail(w, http.StatusBadRequest, "InvalidArgument")
			return
		}
		var data []byte
		if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
			o := s.copySource(w, r, src)
			if o == nil {
				return
			}
			data = o.data
			if rg := r.Header.Get("X-Amz-Copy-Source-Range"); rg != "" {
				a, b, ok := parseFakeRange(rg, int64(len(o.data)))
				if !ok {
					s.fail(w, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
					return
				}
				data = o.data[a : b+1]
			}
		} else if data, err = io.ReadAll(req.Body); err != nil {
			return // aborted: store nothing
		}
		sum := md5.Sum(data)
		etag := `"` + hex.EncodeToString(sum[:]) + `"`
		s.mu.Lock()
		u.parts[k] = fakePart{data: data, etag: etag}
		s.mu.Unlock()
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			fmt.Fprintf(w, `<CopyPartResult><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>%s</ETag></CopyPartResult>`, xmlEscape(etag))
			return
		}
		w.Header().Set("ETag", etag)
	case http.MethodDelete:
		s.mu.Lock()
		delete(s.uploads, id)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		s.listParts(w, u, id, q)
	case http.MethodPost:
		var body struct {
			Part []struct {
				PartNumber int
				ETag       string
			}
		}
		raw, err := io.ReadAll(req.Body)
		if err != nil || xml.Unmarshal(raw, &body) != nil || len(body.Part) == 0 {
			s.fail(w, http.StatusBadRequest, "MalformedXML")
			return
		}
		s.mu.Lock()
		var parts [][]byte
		for i, p := range body.Part {
			got, ok := u.parts[p.PartNumber]
			if !ok || got.etag != p.ETag || (i > 0 && p.PartNumber <= body.Part[i-1].PartNumber) {
				s.mu.Unlock()
				s.fail(w, http.StatusBadRequest, "InvalidPart")
				return
			}
			parts = append(parts, got.data)
		}
		o := multipartObject(parts, u.header)
		s.objects[bucket+"/"+key] = o
		delete(s.uploads, id)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>http://store/%s/%s</Location><Bucket>%s</Bucket><Key>%s</Key><ETag>%s</ETag></CompleteMultipartUploadResult>`,
			bucket, xmlEscape(key), bucket, xmlEscape(key), xmlEscape(o.etag))
	default:
		s.fail(w, http.StatusNotImplemented, "NotImplemented")
	}
}

func (s *fakeStore) listParts(w http.ResponseWriter, u *fakeUpload, id string, q map[string][]string) {
	maxParts := 1000
	if v, ok := q["max-parts"]; ok {
		maxParts, _ = strconv.Atoi(v[0])
	}
	marker := 0
	if v, ok := q["part-number-marker"]; ok {
		marker, _ = strconv.Atoi(v[0])
	}
	s.mu.Lock()
	var nums []int
	for k := range u.parts {
		if k > marker {
			nums = append(nums, k)
		}
	}
	sort.Ints(nums)
	truncated := len(nums) > maxParts
	if truncated {
		nums = nums[:maxParts]
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId><PartNumberMarker>%d</PartNumberMarker>`,
		u.bucket, xmlEscape(u.key), id, marker)
	next := marker
	for _, k := range nums {
		p := u.parts[k]
		fmt.Fprintf(&b, "\n  <Part><PartNumber>%d</PartNumber><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>%s</ETag><Size>%d</Size></Part>", k, xmlEscape(p.etag), len(p.data))
		next = k
	}
	s.mu.Unlock()
	fmt.Fprintf(&b, "<NextPartNumberMarker>%d</NextPartNumberMarker><MaxParts>%d</MaxParts><IsTruncated>%t</IsTruncated></ListPartsResult>", next, maxParts, truncated)
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, b.String())
}

func (s *fakeStore) listUploads(w http.ResponseWriter, bucket string) {
	s.mu.Lock()
	var ids []string
	for id, u := range s.uploads {
		if u.bucket == bucket {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>%s</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>`, bucket)
	for _, id := range ids {
		fmt.Fprintf(&b, "<Upload><Key>%s</Key><UploadId>%s</UploadId><Initiated>2024-01-01T00:00:00.000Z</Initiated></Upload>", xmlEscape(s.uploads[id].key), id)
	}
	s.mu.Unlock()
	b.WriteString("<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>")
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, b.String())
}

// copySource finds a copy's source object and checks its conditions, or
// answers the failure and returns nil.
func (s *fakeStore) copySource(w http.ResponseWriter, r *http.Request, src string) *fakeObject {
	path, _, _ := strings.Cut(src, "?")
	path, _ = url.PathUnescape(strings.TrimPrefix(path, "/"))
	o := func() *fakeObject { s.mu.Lock(); defer s.mu.Unlock(); return s.objects[path] }()
	if o == nil {
		s.fail(w, http.StatusNotFound, "NoSuchKey")
		return nil
	}
	if im := r.Header.Get("X-Amz-Copy-Source-If-Match"); im != "" && im != o.etag {
		s.fail(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return nil
	}
	return o
}

// copyObject copies server-side. Like MinIO and AWS, the copy of a
// multipart object is a single-part object with an MD5 ETag.
func (s *fakeStore) copyObject(w http.ResponseWriter, r *http.Request, bucket, key string) {
	o := s.copySource(w, r, r.Header.Get("X-Amz-Copy-Source"))
	if o == nil {
		return
	}
	h := http.Header{}
	from := o.header
	if strings.EqualFold(r.Header.Get("X-Amz-Metadata-Directive"), "REPLACE") {
		from = r.Header
	}
	for k, v := range from {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") || k == "Content-Type" {
			h[k] = v
		}
	}
	s.put(bucket, key, append([]byte(nil), o.data...), h)
	n := s.get(bucket, key)
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<CopyObjectResult><LastModified>%s</LastModified><ETag>%s</ETag></CopyObjectResult>`,
		n.modified.Format("2006-01-02T15:04:05.000Z"), xmlEscape(n.etag))
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
