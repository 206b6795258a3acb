package e2e

import (
	"net/http"
	"testing"
	"time"
)

// kmsFaultTimeout is S3SEAL_KMS_TIMEOUT in the KMS fault tests.
const kmsFaultTimeout = 3 * time.Second

// kmsCall matches requests for one KMS operation (X-Amz-Target
// "TrentService.<op>").
func kmsCall(op string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Header.Get("X-Amz-Target") == "TrentService."+op }
}

// throttle answers op with ThrottlingException, as AWS KMS does beyond its
// request quota.
func throttle(name, op string, times int) faultRule {
	return faultRule{name: name, match: kmsCall(op), times: times, status: http.StatusBadRequest,
		contentType: "application/x-amz-json-1.1",
		body:        `{"__type":"ThrottlingException","message":"Rate exceeded"}`}
}

// TestKMSFaults: s3seal's KMS calls go through a TCP fault proxy and an
// HTTP one that throttles. A throttled call is retried with backoff within
// S3SEAL_KMS_TIMEOUT; a KMS that stays throttled, stalls or is down gives
// 503 ServiceUnavailable with Retry-After within that bound and turns
// /readyz not ready, until it recovers, all by itself.
func TestKMSFaults(t *testing.T) {
	t.Parallel() // it mostly waits (timeouts, readiness): beside the others
	e := minioEnv(t)
	h := newFaultHTTP(t, e.kmsURL)
	f := newFaultTCP(t, h.URL)
	alias := newCMK(t, e.kmsURL)
	in := startS3seal(t, e, f.URL, alias, "S3SEAL_KMS_TIMEOUT="+kmsFaultTimeout.String())
	bucket := newBucket(t, e)
	data := plaintext(256<<10, 5)
	put := func(t *testing.T, key string) rawAnswer {
		t.Helper()
		a, _ := rawRead(t, in, "PUT", "/"+bucket+"/"+key, data, nil)
		return a
	}
	if a := put(t, "first"); a.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	t.Run("slow", func(t *testing.T) {
		f.toxic(t, "latency", "latency", "downstream", `"latency":500`)
		if a := put(t, "slow"); a.status != http.StatusOK {
			t.Fatalf("PUT: %d %s", a.status, a.body)
		}
	})
	t.Run("throttled, then through", func(t *testing.T) {
		h.add(t, throttle("gdk", "GenerateDataKey", 2))
		if a := put(t, "throttled"); a.status != http.StatusOK {
			t.Fatalf("PUT: %d %s", a.status, a.body)
		}
		if n := h.hits("gdk"); n != 2 {
			t.Errorf("%d calls throttled, want 2 (then retried)", n)
		}
		// A replica with an empty data-key cache must Decrypt.
		r := startReplica(t, in)
		h.add(t, throttle("decrypt", "Decrypt", 2))
		wantObject(t, r, bucket, "throttled", data)
		if n := h.hits("decrypt"); n != 2 {
			t.Errorf("%d Decrypt calls throttled, want 2", n)
		}
	})
	outages := []struct {
		name  string
		start func(t *testing.T)
		end   func()
	}{
		{"throttled for good", func(t *testing.T) { h.add(t, throttle("all", "GenerateDataKey", -1)) }, func() { h.remove("all") }},
		{"stalls", func(t *testing.T) { f.toxic(t, "stall", "timeout", "downstream", `"timeout":0`) }, func() { f.clear("stall") }},
		{"down", func(t *testing.T) { f.down() }, func() { f.up(t) }},
	}
	for _, tc := range outages {
		t.Run(tc.name, func(t *testing.T) {
			tc.start(t)
			start := time.Now()
			a := put(t, "outage")
			switch took := time.Since(start); {
			case a.status != http.StatusServiceUnavailable || a.code() != "ServiceUnavailable":
				t.Errorf("PUT: %d %s, want 503 ServiceUnavailable", a.status, a.body)
			case a.header.Get("Retry-After") == "":
				t.Error("503 without Retry-After")
			case took > 3*kmsFaultTimeout:
				t.Errorf("answered after %v with S3SEAL_KMS_TIMEOUT=%v", took, kmsFaultTimeout)
			}
			awaitReadiness(t, in, false)
			tc.end()
			awaitReadiness(t, in, true)
			if a := put(t, "after"); a.status != http.StatusOK {
				t.Fatalf("PUT after the outage: %d %s", a.status, a.body)
			}
		})
	}
}

// awaitReadiness waits up to 30 s (readiness results are cached for 10 s)
// for /readyz to say ready or not ready, as want says.
func awaitReadiness(t *testing.T, in *instance, want bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := readyz(t, in)
		if (code == http.StatusOK) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %d after 30 s: %s", code, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
