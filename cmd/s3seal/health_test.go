package main

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

func TestJudgeListBuckets(t *testing.T) {
	tests := []struct {
		status int
		body   string
		ready  bool
	}{
		{200, "<ListAllMyBucketsResult/>", true},
		{403, "<Error><Code>AccessDenied</Code></Error>", true},
		{403, "<Error><Code>InvalidAccessKeyId</Code></Error>", false},
		{403, "<Error><Code>SignatureDoesNotMatch</Code></Error>", false},
		{400, "<Error><Code>AuthorizationHeaderMalformed</Code></Error>", false},
		{405, "", true},
		{500, "<Error><Code>InternalError</Code></Error>", false},
		{503, "", false},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Body: io.NopCloser(strings.NewReader(tt.body))}
		if err := judgeListBuckets(resp); (err == nil) != tt.ready {
			t.Errorf("%d %s: err %v, want ready=%v", tt.status, tt.body, err, tt.ready)
		}
	}
}

func TestReadinessCachesResults(t *testing.T) {
	calls := 0
	fail := true
	r := newReadiness(probe{name: "kms", check: func(context.Context) error {
		calls++
		if fail {
			return errors.New("down")
		}
		return nil
	}})
	now := time.Unix(0, 0)
	r.now = func() time.Time { return now }

	if failed := r.status(context.Background()); failed["kms"] != "down" {
		t.Fatalf("status = %v, want kms down", failed)
	}
	fail = false
	now = now.Add(readyTTL / 2)
	if failed := r.status(context.Background()); len(failed) != 1 || calls != 1 {
		t.Fatalf("within the TTL: status %v after %d calls, want the cached failure after 1", failed, calls)
	}
	now = now.Add(readyTTL)
	if failed := r.status(context.Background()); len(failed) != 0 || calls != 2 {
		t.Fatalf("after the TTL: status %v after %d calls, want ready after 2", failed, calls)
	}
}

func TestReadyzReportsFailures(t *testing.T) {
	r := newReadiness(probe{name: "upstream", check: func(context.Context) error { return errors.New("connection refused") }})
	rec := httptest.NewRecorder()
	healthHandler(r, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "connection refused") {
		t.Errorf("readyz = %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	healthHandler(r, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("healthz = %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	healthHandler(r, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/metrics without a registry = %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	healthHandler(r, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("m 1\n")) })).
		ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "m 1\n" {
		t.Errorf("/metrics = %d %q", rec.Code, rec.Body.String())
	}
}

// The upstream probe signs its request: a store that checks the
// Authorization header sees a SigV4 one for the configured access key.
func TestUpstreamProbeSigns(t *testing.T) {
	var authz string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz = r.Header.Get("Authorization")
		w.Write([]byte("<ListAllMyBucketsResult/>"))
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := upstreamProbe(srv.Client(), u, credential{"AKID", "secret"}, "eu-west-1")
	if err := p.check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(authz, "AWS4-HMAC-SHA256 Credential=AKID/") || !strings.Contains(authz, "/eu-west-1/s3/aws4_request") {
		t.Errorf("Authorization = %q", authz)
	}
}
