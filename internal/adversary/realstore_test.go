package adversary

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/s3seal/s3seal/sigv4"
)

const (
	testAK = "ADVERSARYAK"
	testSK = "adversary-secret-key"
	bucket = "bkt"
	oddKey = "dir/sp ace+plus%25ü"
)

type object struct {
	data  string
	etag  string
	parts []int // part sizes of a multipart object
	meta  http.Header
}

func testObjects() map[string]*object {
	return map[string]*object{
		"a": {data: "object a: 0123456789abcdef", etag: `"etag-a"`,
			meta: http.Header{"Content-Type": {"text/plain"}, "X-Amz-Meta-Owner": {"a"}, "X-Amz-Meta-A-Only": {"1"}}},
		"b": {data: "object b is another object", etag: `"etag-b"`,
			meta: http.Header{"Content-Type": {"application/x-b"}, "X-Amz-Meta-Owner": {"b"}}},
		"mp":   {data: "AAAAABBBBBCCC", etag: `"etag-mp-3"`, parts: []int{5, 5, 3}},
		oddKey: {data: "odd key", etag: `"etag-odd"`},
	}
}

// seen is a request as the real store received it.
type seen struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
	BodyErr                bool
}

// realStore is a tiny S3 for one bucket: it checks the adversary's
// signature (so signing bugs fail tests), serves objects with Range and
// partNumber, lists them, stores PUT bodies that arrive whole, and answers
// anything else with a small XML document carrying an ETag and a Size.
type realStore struct {
	t *testing.T
	v *sigv4.Verifier

	mu      sync.Mutex
	objects map[string]*object
	seen    []seen
}

func (s *realStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *realStore) nth(i int) seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[i]
}

func (s *realStore) last() seen { return s.nth(s.count() - 1) }

func (s *realStore) object(key string) *object {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objects[key]
}

func (s *realStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := s.v.Verify(r)
	if err != nil {
		s.t.Errorf("real store: %s %s: %v", r.Method, r.URL, err)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(req.Body)
	s.mu.Lock()
	s.seen = append(s.seen, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body), err != nil})
	s.mu.Unlock()
	if err != nil {
		return // aborted: store nothing
	}
	_, key := splitPath(r.URL.Path)
	q := r.URL.Query()
	switch {
	case key == "" && r.Method == http.MethodGet:
		s.list(w)
	case key != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && only(q, "partNumber", "versionId"):
		s.read(w, r, s.object(key))
	case key != "" && r.Method == http.MethodPut && only(q, "versionId", "x-id") && r.Header.Get("X-Amz-Copy-Source") == "":
		s.mu.Lock()
		s.objects[key] = &object{data: string(body), etag: `"etag-put"`}
		s.mu.Unlock()
		w.Header().Set("ETag", `"etag-put"`)
	default:
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Result><ETag>&#34;etag-c-2&#34;</ETag><Size>5</Size></Result>`)
	}
}

// only: q has no parameters but these (sub-resources make other requests).
func only(q url.Values, names ...string) bool {
	for k := range q {
		if !slices.Contains(names, k) {
			return false
		}
	}
	return true
}

func (s *realStore) read(w http.ResponseWriter, r *http.Request, o *object) {
	switch {
	case o == nil:
		xmlError(w, http.StatusNotFound, "NoSuchKey")
		return
	case r.Header.Get("If-Match") != "" && r.Header.Get("If-Match") != o.etag:
		xmlError(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return
	}
	h := w.Header()
	for k, v := range o.meta {
		h[k] = v
	}
	h.Set("ETag", o.etag)
	first, last, status := 0, len(o.data)-1, http.StatusOK
	if pn := r.URL.Query().Get("partNumber"); pn != "" && len(o.parts) > 0 {
		k, _ := strconv.Atoi(pn)
		for _, n := range o.parts[:k-1] {
			first += n
		}
		last, status = first+o.parts[k-1]-1, http.StatusPartialContent
		h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(o.parts)))
	} else if rg := r.Header.Get("Range"); rg != "" {
		fmt.Sscanf(rg, "bytes=%d-%d", &first, &last)
		status = http.StatusPartialContent
	}
	if status == http.StatusPartialContent {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(o.data)))
	}
	h.Set("Content-Length", strconv.Itoa(last-first+1))
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		io.WriteString(w, o.data[first:last+1])
	}
}

func (s *realStore) list(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := slices.Sorted(maps.Keys(s.objects))
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name>`)
	for _, k := range keys {
		o := s.objects[k]
		fmt.Fprintf(&b, "\n<Contents><Key>%s</Key><ETag>%s</ETag><Size>%d</Size></Contents>",
			k, strings.ReplaceAll(o.etag, `"`, "&quot;"), len(o.data))
	}
	b.WriteString("</ListBucketResult>")
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, b.String())
}

func xmlError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code></Error>`, code)
}

// rig is an adversary in front of a real store, both on 127.0.0.1.
type rig struct {
	real   *realStore
	adv    *Store
	url    string
	client *http.Client
	served chan struct{} // a token per request the adversary finished
}

func newRig(t *testing.T) *rig {
	real := &realStore{t: t, objects: testObjects(),
		v: &sigv4.Verifier{Credentials: sigv4.StaticCredentials{testAK: testSK}, Region: "us-east-1"}}
	realSrv := httptest.NewServer(real)
	t.Cleanup(realSrv.Close)
	u, _ := url.Parse(realSrv.URL)
	adv, err := New(u, testAK, testSK, "")
	if err != nil {
		t.Fatal(err)
	}
	g := &rig{real: real, adv: adv, served: make(chan struct{}, 1000),
		client: &http.Client{Transport: &http.Transport{DisableCompression: true}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { g.served <- struct{}{} }()
		g.adv.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.client.CloseIdleConnections)
	g.url = srv.URL
	return g
}

// req is a request to the adversary in bucket bkt; key "" is the bucket.
type req struct {
	method, key, query string
	header             map[string]string
	body               string
}

// result is an answer; Date and Content-Length are taken out of header.
type result struct {
	status int
	header http.Header
	length int64
	body   string
	cut    bool // the body ended early
}

func (g *rig) do(t *testing.T, q req) result {
	t.Helper()
	path := "/" + bucket
	if q.key != "" {
		path += "/" + q.key
	}
	u := g.url + s3utils.EncodePath(path)
	if q.query != "" {
		u += "?" + q.query
	}
	r, err := http.NewRequest(q.method, u, strings.NewReader(q.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	resp, err := g.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	resp.Header.Del("Date")
	resp.Header.Del("Content-Length")
	return result{resp.StatusCode, resp.Header, resp.ContentLength, string(body), err != nil}
}

func (r result) clone() result { r.header = r.header.Clone(); return r }

func (s seen) clone() seen { s.Header = s.Header.Clone(); return s }
