package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// The fault proxies of the reliability tests (faultstore_test.go,
// faultkms_test.go): s3seal talks to its store or its KMS through one, and
// a test makes the network or the dependency misbehave.

// faultTCP is a TCP proxy on 127.0.0.1 (Shopify's toxiproxy, as a library)
// between s3seal and a dependency; a test adds toxics to it: latency,
// bandwidth, a connection reset or cut after so many bytes, a stall. It can
// also stop listening and start again, as a dependency that is down.
type faultTCP struct {
	p   *toxiproxy.Proxy
	URL string // http://127.0.0.1:port, while it listens and after
}

// newFaultTCP starts a fault proxy in front of upstream (an http:// URL).
func newFaultTCP(t *testing.T, upstream string) *faultTCP {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "s3seal-e2e", "127.0.0.1:0", u.Host)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &faultTCP{p: p, URL: "http://" + p.Listen}
}

// toxic adds a toxic (toxiproxy's names: latency, bandwidth, limit_data,
// reset_peer, timeout, slicer, slow_close) to one direction: "downstream"
// is what the dependency sends s3seal, "upstream" what s3seal sends it. It
// applies to open connections too, and is removed when the test ends.
func (f *faultTCP) toxic(t *testing.T, name, typ, stream string, attrs string) {
	t.Helper()
	doc := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"attributes":{%s}}`, name, typ, stream, attrs)
	if _, err := f.p.Toxics.AddToxicJson(strings.NewReader(doc)); err != nil {
		t.Fatalf("toxic %s: %v", name, err)
	}
	t.Cleanup(func() { f.clear(name) })
}

// clear removes a toxic now, if it is there.
func (f *faultTCP) clear(name string) {
	_ = f.p.Toxics.RemoveToxic(context.Background(), name)
}

// down stops listening and closes every connection: the dependency is
// gone. up listens again on the same address.
func (f *faultTCP) down() { f.p.Stop() }

func (f *faultTCP) up(t *testing.T) {
	t.Helper()
	if err := f.p.Start(); err != nil {
		t.Fatalf("fault proxy up again on %s: %v", f.URL, err)
	}
}

// faultHTTP is an HTTP reverse proxy on 127.0.0.1 in front of a dependency
// that answers chosen requests with an error of its own: a store's 503
// SlowDown or 500, a KMS's ThrottlingException. Requests go through
// unchanged, Host included, so the dependency's signature checks pass.
type faultHTTP struct {
	URL string

	mu    sync.Mutex
	rules []*faultRule
	calls map[string]int // requests seen, by faultRule.name of those matched and "" for all
}

// faultRule answers the requests it matches with status and body, times
// times (-1: until removed); with after, only once the dependency has acted
// on the request, whose answer is then lost.
type faultRule struct {
	name        string
	match       func(*http.Request) bool
	times       int
	after       bool
	status      int
	contentType string
	body        string
}

func newFaultHTTP(t *testing.T, upstream string) *faultHTTP {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultHTTP{calls: map[string]int{}}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // signed by s3seal as it sent it
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rule := f.take(r)
		switch {
		case rule == nil:
			rp.ServeHTTP(w, r)
			return
		case rule.after:
			rp.ServeHTTP(&discardingWriter{header: http.Header{}}, r)
		}
		w.Header().Set("Content-Type", rule.contentType)
		w.WriteHeader(rule.status)
		w.Write([]byte(rule.body))
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// add puts a rule in force until the test ends (or its times run out).
func (f *faultHTTP) add(t *testing.T, r faultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &r)
	t.Cleanup(func() { f.remove(r.name) })
}

func (f *faultHTTP) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.rules {
		if r.name == name {
			f.rules = append(f.rules[:i], f.rules[i+1:]...)
			return
		}
	}
}

// take counts r and returns the first rule in force that matches it.
func (f *faultHTTP) take(r *http.Request) *faultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[""]++
	for _, rule := range f.rules {
		if rule.times != 0 && rule.match(r) {
			rule.times--
			f.calls[rule.name]++
			return rule
		}
	}
	return nil
}

// hits is how many requests rule name answered ("" for all requests seen).
func (f *faultHTTP) hits(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

// discardingWriter takes an answer that is to be lost.
type discardingWriter struct{ header http.Header }

func (d *discardingWriter) Header() http.Header         { return d.header }
func (d *discardingWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardingWriter) WriteHeader(int)             {}
