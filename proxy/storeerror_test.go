package proxy

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
)

// scriptedStore answers every request with one status and body, but a
// HEAD of the bucket (s3seal asking whether it exists) with bucketStatus.
type scriptedStore struct {
	status, bucketStatus int
	body                 string
	bucketHeads          atomic.Int32
}

func (s *scriptedStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead && r.URL.Path == "/"+testBucket {
		s.bucketHeads.Add(1)
		w.WriteHeader(s.bucketStatus)
		return
	}
	w.Header().Set("X-Amz-Request-Id", "STOREID")
	if s.body != "" {
		w.Header().Set("Content-Type", "application/xml")
	}
	w.WriteHeader(s.status)
	w.Write([]byte(s.body))
}

// errorDoc is an S3 error document's common elements.
type errorDoc struct {
	Code, Message, Resource, RequestId, HostId string
}

// Every error relayed from the store is a complete S3 error document:
// bodiless ones get a code (a specific one only where the store says the
// bucket exists), S3's message, the resource and s3seal's ids; a store's
// document keeps its elements and gets what it lacks.
func TestRelayedErrorsComplete(t *testing.T) {
	const generic404 = "The store answered 404 Not Found without saying more."
	tests := []struct {
		name           string
		method, path   string
		status, bucket int // the store's answer, and its answer to a HEAD of the bucket
		body           string
		want           errorDoc // RequestId and HostId: the answer's headers
	}{
		{"GET of a missing key, no body", "GET", "/bkt/missing", 404, 200, "",
			errorDoc{Code: "NoSuchKey", Message: "The specified key does not exist.", Resource: "/bkt/missing"}},
		{"GET in a missing bucket, no body", "GET", "/bkt/missing", 404, 404, "",
			errorDoc{Code: "NoSuchBucket", Message: "The specified bucket does not exist", Resource: "/bkt/missing"}},
		{"GET, no body, bucket unknown", "GET", "/bkt/missing", 404, 403, "",
			errorDoc{Code: "NotFound", Message: generic404, Resource: "/bkt/missing"}},
		{"GET of a version, no body", "GET", "/bkt/k?versionId=v1", 404, 200, "",
			errorDoc{Code: "NoSuchVersion", Message: "The specified version does not exist.", Resource: "/bkt/k"}},
		{"GET of a part, no body", "GET", "/bkt/k?partNumber=1", 404, 200, "",
			errorDoc{Code: "NoSuchKey", Message: "The specified key does not exist.", Resource: "/bkt/k"}},
		{"part number beyond the parts, no body", "GET", "/bkt/k?partNumber=3", 416, 200, "",
			errorDoc{Code: "InvalidPartNumber", Message: "The requested partnumber is not satisfiable", Resource: "/bkt/k"}},
		{"bucket policy not set, no body", "GET", "/bkt?policy", 404, 200, "",
			errorDoc{Code: "NoSuchBucketPolicy", Message: "The bucket policy does not exist", Resource: "/bkt"}},
		{"retention read: 404 says nothing certain", "GET", "/bkt/k?retention", 404, 200, "",
			errorDoc{Code: "NotFound", Message: generic404, Resource: "/bkt/k"}},
		{"denied, no body", "GET", "/bkt/k", 403, 200, "",
			errorDoc{Code: "AccessDenied", Message: "Access Denied", Resource: "/bkt/k"}},
		{"unavailable, no body", "GET", "/bkt/k", 503, 200, "",
			errorDoc{Code: "ServiceUnavailable", Message: "Please reduce your request rate.", Resource: "/bkt/k"}},
		{"throttled, no body", "GET", "/bkt/k", 429, 200, "",
			errorDoc{Code: "SlowDown", Message: "Please reduce your request rate.", Resource: "/bkt/k"}},
		{"conflict, no body", "DELETE", "/bkt", 409, 200, "",
			errorDoc{Code: "Conflict", Message: "The store answered 409 Conflict without saying more.", Resource: "/bkt"}},
		{"document without Message or Resource (versitygw's)", "GET", "/bkt/missing", 404, 200,
			`<Error><Code>NoSuchKey</Code><RequestId>STOREID</RequestId></Error>`,
			errorDoc{Code: "NoSuchKey", Message: "The specified key does not exist.", Resource: "/bkt/missing"}},
		{"document with its own Message and Resource", "GET", "/bkt/missing", 404, 200,
			`<Error><Code>NoSuchKey</Code><Message>gone</Message><Resource>/bkt/missing</Resource></Error>`,
			errorDoc{Code: "NoSuchKey", Message: "gone", Resource: "/bkt/missing"}},
		{"unknown code without a message", "GET", "/bkt/k", 400, 200, `<Error><Code>WeirdThing</Code></Error>`,
			errorDoc{Code: "WeirdThing", Message: "The store answered 400 WeirdThing with no message.", Resource: "/bkt/k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := scriptedEnv(t, &scriptedStore{status: tt.status, bucketStatus: tt.bucket, body: tt.body})
			status, body, h := e.sendResp(t, e.signedRequest(t, tt.method, tt.path, nil, 0, nil))
			var got errorDoc
			if err := xml.Unmarshal([]byte(body), &got); err != nil || status != tt.status {
				t.Fatalf("%d %s (%v), want %d and an error document", status, body, err, tt.status)
			}
			want := tt.want
			want.RequestId, want.HostId = h.Get("X-Amz-Request-Id"), h.Get("X-Amz-Id-2")
			if got != want || want.RequestId == "" || want.HostId == "" {
				t.Errorf("document %+v\nwant %+v", got, want)
			}
			if ct := h.Get("Content-Type"); ct != "application/xml" {
				t.Errorf("Content-Type %q, want application/xml", ct)
			}
		})
	}
}

// The store's elements are kept, in order; Message goes after Code and
// Resource before the ids, as S3 puts them.
func TestRelayedErrorKeepsElements(t *testing.T) {
	e, _ := scriptedEnv(t, &scriptedStore{status: 404, bucketStatus: 200,
		body: `<?xml version="1.0"?><Error><Code>NoSuchKey</Code><Key>a&amp;b</Key><RequestId>STORE</RequestId><HostId>STOREHOST</HostId></Error>`})
	_, body, h := e.sendResp(t, e.signedRequest(t, "GET", "/bkt/k", nil, 0, nil))
	want := xml.Header + `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a&amp;b</Key>` +
		`<Resource>/bkt/k</Resource><RequestId>` + h.Get("X-Amz-Request-Id") + `</RequestId><HostId>` + h.Get("X-Amz-Id-2") + `</HostId></Error>`
	if body != want {
		t.Fatalf("got  %s\nwant %s", body, want)
	}
}

// A HEAD's error has no body, as S3's, but its headers name the request
// and its type; a 304 is no error and gets neither.
func TestRelayedHeadErrors(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		header      http.Header
		contentType string
	}{
		{"404", 404, nil, "application/xml"},
		{"403", 403, nil, "application/xml"},
		{"304", 304, http.Header{"If-None-Match": {`"x"`}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scriptedStore{status: tt.status, bucketStatus: 200}
			e, _ := scriptedEnv(t, s)
			status, body, h := e.sendResp(t, e.signedRequest(t, "HEAD", "/bkt/missing", nil, 0, tt.header))
			if status != tt.status || body != "" || h.Get("Content-Type") != tt.contentType {
				t.Errorf("%d, body %q, Content-Type %q; want %d, no body, %q", status, body, h.Get("Content-Type"), tt.status, tt.contentType)
			}
			if h.Get("X-Amz-Request-Id") == "" || h.Get("X-Amz-Request-Id") == "STOREID" || h.Get("X-Amz-Id-2") == "" {
				t.Errorf("ids %q %q: want s3seal's", h.Get("X-Amz-Request-Id"), h.Get("X-Amz-Id-2"))
			}
			if n := s.bucketHeads.Load(); n != 0 {
				t.Errorf("%d HEADs of the bucket for an answer without a body", n)
			}
		})
	}
}

// scriptedEnv is an env whose proxy talks to s instead of the fake store.
func scriptedEnv(t *testing.T, s *scriptedStore) (*env, *httptest.Server) {
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return newEnv(t, func(c *Config) { c.Upstream = u }), srv
}

// A code derived from a status alone: an error document in a success
// answer is an InternalError (never "OK"), and a bare 429 is S3's
// SlowDown, which the SDKs back off on (none retries "TooManyRequests").
func TestErrorCodeOfStatus(t *testing.T) {
	for status, want := range map[int]string{200: "InternalError", 429: "SlowDown", 409: "Conflict", 500: "InternalError", 599: "InternalError", 499: "InvalidRequest"} {
		if got := (&Proxy{}).errorCode(nil, status); got != want {
			t.Errorf("errorCode(%d) = %q, want %q", status, got, want)
		}
	}
}
