package doctor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

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

	if failed := r.Status(context.Background()); failed["kms"] != "down" {
		t.Fatalf("status = %v, want kms down", failed)
	}
	fail = false
	now = now.Add(readyTTL / 2)
	if failed := r.Status(context.Background()); len(failed) != 1 || calls != 1 {
		t.Fatalf("within the TTL: status %v after %d calls, want the cached failure after 1", failed, calls)
	}
	now = now.Add(readyTTL)
	if failed := r.Status(context.Background()); len(failed) != 0 || calls != 2 {
		t.Fatalf("after the TTL: status %v after %d calls, want ready after 2", failed, calls)
	}
}

func TestReadyzReportsFailures(t *testing.T) {
	r := newReadiness(probe{name: "upstream", check: func(context.Context) error { return errors.New("connection refused") }})
	rec := httptest.NewRecorder()
	HealthHandler(r, nil, false).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "connection refused") {
		t.Errorf("readyz = %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	HealthHandler(r, nil, false).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("healthz = %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	HealthHandler(r, nil, false).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/metrics without a registry = %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	HealthHandler(r, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("m 1\n")) }), false).
		ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "m 1\n" {
		t.Errorf("/metrics = %d %q", rec.Code, rec.Body.String())
	}
}

// With profiling, every pprof path answers on the health mux (profile and
// trace for as short as they allow); without, none does, and /healthz is
// there either way.
func TestHealthHandlerPprof(t *testing.T) {
	r := newReadiness()
	paths := []struct {
		method, path string
	}{
		{"GET", "/debug/pprof/"}, {"GET", "/debug/pprof/cmdline"}, {"GET", "/debug/pprof/symbol"},
		{"POST", "/debug/pprof/symbol"}, {"GET", "/debug/pprof/profile?seconds=1"},
		{"GET", "/debug/pprof/trace?seconds=0.01"}, {"GET", "/debug/pprof/heap"}, {"GET", "/debug/pprof/goroutine?debug=1"},
		{"GET", "/debug/pprof/allocs"}, {"GET", "/debug/pprof/block"}, {"GET", "/debug/pprof/mutex"},
		{"GET", "/debug/pprof/threadcreate"},
	}
	for _, profiling := range []bool{false, true} {
		h := HealthHandler(r, nil, profiling)
		want := http.StatusNotFound
		if profiling {
			want = http.StatusOK
		}
		for _, p := range paths {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(p.method, p.path, nil))
			if rec.Code != want {
				t.Errorf("profiling %v: %s %s = %d, want %d", profiling, p.method, p.path, rec.Code, want)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("profiling %v: /healthz = %d", profiling, rec.Code)
		}
	}
}

// checkProbes: a start check that passed is not run again unless it is
// Steady; a failure is the doctor's line; a check skipped for want of
// another counts as not ready.
func TestDoctorProbes(t *testing.T) {
	runs := map[string]int{}
	fail := map[string]bool{"kms-key": true}
	check := func(name string, steady bool, needs ...string) Check {
		return Check{Name: name, Title: name + " works", Required: true, Start: true, Steady: steady, Needs: needs,
			Run: func(context.Context, *Session) Outcome {
				runs[name]++
				if fail[name] {
					return Outcome{Message: "KMS down", Fix: "start it", Unavailable: true}
				}
				return Outcome{OK: true}
			}}
	}
	checks := []Check{check("upstream", true), check("kms-key", false), check("kms-allow-list", false, "kms-key")}
	sess := NewSession(Config{})
	r := newReadiness(checkProbes(sess, checks)...)
	now := time.Unix(0, 0)
	r.now = func() time.Time { return now }

	failed := r.Status(context.Background())
	if failed["kms-key"] != "kms-key works: KMS down; fix: start it" || !strings.Contains(failed["kms-allow-list"], "not checked: needs kms-key") || len(failed) != 2 {
		t.Fatalf("status %v", failed)
	}
	fail["kms-key"] = false
	now = now.Add(readyTTL)
	if failed := r.Status(context.Background()); len(failed) != 0 {
		t.Fatalf("after the KMS came back: %v", failed)
	}
	now = now.Add(readyTTL)
	r.Status(context.Background())
	if runs["upstream"] != 3 || runs["kms-key"] != 2 || runs["kms-allow-list"] != 1 {
		t.Errorf("runs %v: want upstream every round, the others until they pass", runs)
	}
}

// CheckAtStart stops on a misconfiguration with the doctor's message, and
// only logs a dependency that does not answer.
func TestCheckAtStart(t *testing.T) {
	mk := func(name string, o Outcome) Check {
		return Check{Name: name, Title: name + " works", Required: true, Start: true,
			Run: func(context.Context, *Session) Outcome { return o }}
	}
	down := Outcome{Message: "no answer", Fix: "wait", Unavailable: true}
	wrong := Outcome{Message: "S3SEAL_KMS_KEY_ID names no CMK", Fix: "set it"}
	ok := Outcome{OK: true}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	if err := CheckAtStart(context.Background(), NewSession(Config{}), []Check{mk("a", ok), mk("b", down)}, logger); err != nil {
		t.Errorf("an unreachable dependency stopped the start: %v", err)
	}
	if !strings.Contains(logs.String(), "b works: no answer; fix: wait") {
		t.Errorf("not logged: %s", logs.String())
	}
	err := CheckAtStart(context.Background(), NewSession(Config{}), []Check{mk("a", down), mk("b", wrong), mk("c", wrong)}, logger)
	if err == nil || !strings.HasPrefix(err.Error(), "b works: S3SEAL_KMS_KEY_ID names no CMK; fix: set it (and 1 more failed check") {
		t.Errorf("misconfiguration: %v", err)
	}
}
