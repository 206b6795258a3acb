package proxy

// Attacks found by a security review of the trust change, kept as tests.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/s3seal/s3seal/internal/store"
)

// scripted puts a handler between the proxy and its adversary: when answer
// returns true it has answered the request itself.
func scripted(t *testing.T, e *env, answer func(w http.ResponseWriter, r *http.Request) bool) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !answer(w, r) {
			e.liar.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	st, err := store.New(store.Config{Endpoint: u, AccessKey: upstreamAK, SecretKey: upstreamSecret})
	if err != nil {
		t.Fatal(err)
	}
	e.proxy.store = st
}

// presigned presigns method path (its query signed along) for the client.
func (e *env) presigned(t *testing.T, method, path string) string {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, err := http.NewRequest(method, e.srv.URL+path+sep+"X-Amz-Expires=900", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: clientAK, SecretAccessKey: clientSecret}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestStoreRedirectRefused: a store's redirect never reaches a client, who
// would follow it to bytes of the store's choosing, or send it the body.
func TestStoreRedirectRefused(t *testing.T) {
	e := newEnv(t)
	e.put(t, "obj", []byte("the true object"), nil)
	var got atomic.Value
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			got.Store(string(b))
		}
		io.WriteString(w, "bytes of the store's choosing")
	}))
	defer evil.Close()
	scripted(t, e, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/bkt/obj" && r.URL.Path != "/bkt/new" {
			return false
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Location", evil.URL+"/x")
		w.WriteHeader(http.StatusTemporaryRedirect)
		return true
	})
	if data, _, err := e.get(t, "obj"); err == nil {
		t.Errorf("SDK GetObject returned %q", data)
	}
	resp, err := http.Get(e.presigned(t, "GET", "/bkt/obj"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.drain(t, 1)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Location") != "" {
		t.Errorf("presigned GET: %d %q", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("PUT", e.presigned(t, "PUT", "/bkt/new"), strings.NewReader("SECRET PLAINTEXT"))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e.drain(t, 1)
	if v, _ := got.Load().(string); v != "" {
		t.Errorf("the store's chosen host received %q", v)
	}
}

// peakHeap samples HeapAlloc while f runs and returns its peak growth.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > base && m.HeapAlloc-base > peak.Load() {
				peak.Store(m.HeapAlloc - base)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak.Load()
}

// TestXMLRelayBounded: no XML answer grows the relay's state with what the
// store sends: text split into many sections, deep nesting.
func TestXMLRelayBounded(t *testing.T) {
	cdata := "<![CDATA[" + strings.Repeat("1", 512<<10) + "]]>" // each under the token bound
	for _, tc := range []struct {
		name, path       string
		head, unit, tail string
		n                int
	}{
		{"a listing <Size> of 64 MiB", "/bkt?list-type=2",
			`<ListBucketResult><Contents><Key>a</Key><ETag>"x"</ETag><Size>`, cdata, `</Size></Contents></ListBucketResult>`, 128},
		{"a configuration value of 64 MiB", "/bkt?tagging",
			`<Tagging><TagSet><Tag><Key>k</Key><Value>`, cdata, `</Value></Tag></TagSet></Tagging>`, 128},
		{"2M nested elements", "/bkt?list-type=2", `<ListBucketResult>`, strings.Repeat("<a>", 4096), ``, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			scripted(t, e, func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet || r.URL.Path != "/bkt" {
					return false
				}
				w.Header().Set("Content-Type", "application/xml")
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+tc.head)
				for range tc.n {
					if _, err := io.WriteString(w, tc.unit); err != nil {
						return true
					}
				}
				io.WriteString(w, tc.tail)
				return true
			})
			peak := peakHeap(func() {
				// Refused outright, or cut off once under way.
				if resp, err := http.DefaultClient.Do(e.wireRequest(t, "GET", tc.path, nil, modeSigned, false, nil)); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				e.drain(t, 1)
			})
			if peak > 32<<20 {
				t.Errorf("one answer made the heap grow by %d MiB", peak>>20)
			}
		})
	}
}

// TestPresignedQueryChecksum: a checksum a presigned URL signed in its query
// is checked like a header.
func TestPresignedQueryChecksum(t *testing.T) {
	e := newEnv(t)
	intended := []byte("the body the URL's signer pinned")
	u := e.presigned(t, "PUT", "/bkt/pinned?X-Amz-Checksum-Crc32="+url.QueryEscape(crc32Sum(intended)))
	req, _ := http.NewRequest("PUT", u, strings.NewReader("another body entirely"))
	if status, code, _ := e.send(t, req); status != http.StatusBadRequest || code != "BadDigest" {
		t.Errorf("another body under a signed checksum: %d %s", status, code)
	}
	req, _ = http.NewRequest("PUT", u, strings.NewReader(string(intended)))
	if status, _, body := e.send(t, req); status != http.StatusOK {
		t.Errorf("the pinned body: %d %s", status, body)
	}
}

// TestStoreAnswersWhole: answers are checked whole, not by their first
// element: a Complete that answers with bytes of its own, trailing content
// after a document, a document that is not the one asked for.
func TestStoreAnswersWhole(t *testing.T) {
	e := newEnv(t)
	e.put(t, "victim", randomBytes(5000, 9), nil)
	cipher := e.store.get(testBucket, "victim").data
	// Started before the store turns strange: CreateMultipartUpload reads
	// the bucket's tags (its default CMK), which the script garbles.
	id := create(t, e.client, "mp", nil)
	etag, err := uploadPart(e.client, "mp", id, 1, []byte("part one"))
	if err != nil {
		t.Fatal(err)
	}
	scripted(t, e, func(w http.ResponseWriter, r *http.Request) bool {
		switch q := r.URL.Query(); {
		case r.Method == http.MethodPost && q.Has("uploadId"):
			io.Copy(io.Discard, r.Body)
			w.Write(cipher)
		case r.Method == http.MethodPut && q.Has("tagging"):
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "<a/>\x00\x01\xfe\xff not XML")
		case r.Method == http.MethodGet && q.Has("tagging"):
			io.WriteString(w, "<Tagging><TagSet/></Tagging>text after the root<Other>a second root</Other>")
		default:
			return false
		}
		return true
	})
	doc := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>` + etag + `</ETag></Part></CompleteMultipartUpload>`
	if status, _, body := e.send(t, e.wireRequest(t, "POST", "/bkt/mp?uploadId="+id, []byte(doc), modeSigned, false, nil)); status != http.StatusBadGateway {
		t.Errorf("Complete answered with stored ciphertext: %d, %d bytes", status, len(body))
	}
	// (PutBucketTagging reads the tags first, to keep s3seal's: the
	// garbled read already refuses it, as 503.)
	if status, _, body := e.send(t, e.wireRequest(t, "PUT", "/bkt?tagging", []byte(taggingDoc), modeSigned, false, nil)); status != http.StatusBadGateway && status != http.StatusServiceUnavailable {
		t.Errorf("PutBucketTagging answered with junk: %d %q", status, body)
	}
	// Cut off once the second root shows, or refused: never complete.
	if resp, err := http.DefaultClient.Do(e.wireRequest(t, "GET", "/bkt?tagging", nil, modeSigned, false, nil)); err == nil {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && strings.Contains(string(body), "second root") {
			t.Errorf("GetBucketTagging relayed a second root complete: %d %q", resp.StatusCode, body)
		}
	}
	e.drain(t, 1)
}

// TestDocumentsNarrowed: what a request document may ask for is what s3seal
// serves, and its type is s3seal's to say.
func TestDocumentsNarrowed(t *testing.T) {
	e := newEnv(t)
	e.put(t, "obj", []byte("an object"), nil)
	restore := `<RestoreRequest><Type>SELECT</Type><Tier>Standard</Tier><SelectParameters><Expression>SELECT 1</Expression></SelectParameters>` +
		`<OutputLocation><S3><BucketName>bkt</BucketName></S3></OutputLocation></RestoreRequest>`
	del := `<Delete><Object><Key>nothing</Key></Object></Delete>`
	for _, tc := range []struct {
		path, body string
		header     http.Header
		status     int
	}{
		{"/bkt/obj?restore", restore, nil, http.StatusNotImplemented},
		{"/bkt?delete", del, http.Header{"Content-Type": {"multipart/form-data; boundary=B"}}, http.StatusNotImplemented},
	} {
		before := len(e.store.recorded())
		if status, code, body := e.send(t, e.wireRequest(t, "POST", tc.path, []byte(tc.body), modeSigned, false, tc.header)); status != tc.status {
			t.Errorf("POST %s: %d %s %s", tc.path, status, code, body)
		}
		e.store.quiesce()
		if n := len(e.store.recorded()) - before; n > 0 {
			t.Errorf("POST %s reached the store", tc.path)
		}
	}
	before := len(e.store.recorded())
	e.send(t, e.wireRequest(t, "POST", "/bkt?delete", []byte(del), modeSigned, false, http.Header{"Content-Type": {"text/html"}}))
	writes, _ := e.store.writesSince(before)
	if len(writes) != 1 || writes[0].Header.Get("Content-Type") != "application/xml" {
		t.Errorf("DeleteObjects reached the store as %v", writes)
	}
}

// TestInternalRequestFailures: when a request s3seal makes for itself (a
// part copy, a part size, a stored range, a copy's completion) fails, the
// client gets 503, which SDKs retry, and never the store's answer to a
// request it did not make; an upload s3seal started is aborted.
func TestInternalRequestFailures(t *testing.T) {
	const secret = "INTERNAL-DETAIL"
	storeError := func(w http.ResponseWriter, status int) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<Error><Code>AccessDenied</Code><Message>%s</Message></Error>", secret)
	}
	data := randomBytes(3*64*kib+500, 31)
	copyHeader := http.Header{"X-Amz-Copy-Source": {testBucket + "/mp"}}
	tests := []struct {
		name   string
		method string
		path   string
		header http.Header
		fail   func(w http.ResponseWriter, r *http.Request) bool
	}{
		{"a part copy refused", "PUT", "/bkt/dst", copyHeader, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Header.Get("X-Amz-Copy-Source") == "" || r.URL.Query().Get("partNumber") != "2" {
				return false
			}
			storeError(w, http.StatusForbidden)
			return true
		}},
		{"a copy's completion answered with a late error", "PUT", "/bkt/dst", copyHeader, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPost || !r.URL.Query().Has("uploadId") {
				return false
			}
			io.Copy(io.Discard, r.Body)
			storeError(w, http.StatusOK)
			return true
		}},
		{"a part size refused", "GET", "/bkt/mp", http.Header{"Range": {"bytes=70000-140000"}}, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodHead || !r.URL.Query().Has("partNumber") {
				return false
			}
			storeError(w, http.StatusServiceUnavailable)
			return true
		}},
		{"a stored range answered for another range", "GET", "/bkt/mp", http.Header{"Range": {"bytes=70000-140000"}}, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || r.Header.Get("Range") == "" || r.Header.Get("If-Match") == "" {
				return false
			}
			w.Header().Set("Content-Range", "bytes 0-9/999999")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(make([]byte, 10))
			return true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.multipartPut(t, "mp", splitParts(data, 64*kib, 128*kib, 500))
			e.proxy.layouts = newLayoutCache() // learnt anew, through the script
			scripted(t, e, tt.fail)
			status, _, body := e.send(t, e.wireRequest(t, tt.method, tt.path, nil, modeSigned, false, tt.header))
			e.drain(t, 1)
			if status != http.StatusServiceUnavailable || bytes.Contains(body, []byte(secret)) {
				t.Errorf("answered %d %s, want 503 without the store's message", status, body)
			}
			if e.store.uploadCount() != 0 {
				t.Error("an upload was left behind")
			}
		})
	}
}
