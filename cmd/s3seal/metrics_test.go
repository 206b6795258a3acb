package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/metricstest"
)

// Real traffic through a zero-configuration s3seal, then a scrape of
// /metrics: the counters moved by what the traffic did.
func TestMetricsAfterTraffic(t *testing.T) {
	ctx := context.Background()
	s, client := startZeroConfigClient(t, t.TempDir())

	scrape := func() metricstest.Scrape { return scrapeMetrics(t, s) }
	before := scrape()
	for _, fam := range []string{
		"s3seal_envelope_bytes_total", "s3seal_envelope_seconds_total", "s3seal_inflight_requests",
		"s3seal_datakey_cache_hits_total", "s3seal_datakey_cache_misses_total",
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if !before.Has(fam) {
			t.Errorf("/metrics lacks %s before traffic", fam)
		}
	}

	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("metrics")}); err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 1000, 200000}
	total := 0
	for i, n := range sizes {
		body := bytes.Repeat([]byte{byte(i + 1)}, n)
		total += n
		key := "obj" + string(rune('a'+i))
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("metrics"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second read is a data-key cache hit
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("metrics"), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if !bytes.Equal(got, body) {
				t.Fatalf("%s: got %d bytes, want %d", key, len(got), n)
			}
		}
	}
	after := scrape()
	delta := func(fam string, labels ...string) float64 {
		return after.Sum(fam, labels...) - before.Sum(fam, labels...)
	}
	objects := float64(len(sizes))

	// Key service and cache: these need only the KMS wrapper and the cache
	// counters, which serve wires itself.
	if got := delta("s3seal_kms_requests_total", "operation=GenerateDataKey", "result=ok"); got != objects {
		t.Errorf("GenerateDataKey calls: %v, want one per PUT (%v)", got, objects)
	}
	if got := delta("s3seal_kms_requests_total", "operation=Decrypt", "result=ok"); got != objects {
		t.Errorf("KMS Decrypt calls: %v, want one per object (%v): the second GET hits the cache", got, objects)
	}
	if got := delta("s3seal_kms_request_duration_seconds", "operation=GenerateDataKey"); got != objects {
		t.Errorf("GenerateDataKey timings: %v, want %v", got, objects)
	}
	if h, m := delta("s3seal_datakey_cache_hits_total"), delta("s3seal_datakey_cache_misses_total"); h != objects || m != objects {
		t.Errorf("cache hits %v misses %v, want %v each", h, m, objects)
	}

	// Requests, upstream latency and cipher bytes come from the proxy's
	// Observer hook.
	if got := delta("s3seal_requests_total", "operation=PutObject", "status=200"); got != objects {
		t.Errorf("requests_total{PutObject,200} = %v, want %v", got, objects)
	}
	if got := delta("s3seal_requests_total", "operation=GetObject", "status=200"); got != 2*objects {
		t.Errorf("requests_total{GetObject,200} = %v, want %v", got, 2*objects)
	}
	if got := delta("s3seal_request_duration_seconds", "operation=GetObject"); got != 2*objects {
		t.Errorf("request_duration_seconds{GetObject} count = %v, want %v", got, 2*objects)
	}
	// One write each, and one read of the bucket's default CMK, which is
	// remembered for a few seconds (proxy/bucketcmk.go).
	if got := delta("s3seal_upstream_request_duration_seconds", "operation=PutObject"); got != objects+1 {
		t.Errorf("upstream_request_duration_seconds{PutObject} count = %v, want %v", got, objects+1)
	}
	if got := delta("s3seal_envelope_bytes_total", "direction=encrypt"); got != float64(total) {
		t.Errorf("envelope_bytes_total{encrypt} = %v, want the %d bytes put", got, total)
	}
	if got := delta("s3seal_envelope_bytes_total", "direction=decrypt"); got != float64(2*total) {
		t.Errorf("envelope_bytes_total{decrypt} = %v, want the %d bytes read", got, 2*total)
	}
	if got := delta("s3seal_envelope_seconds_total", "direction=encrypt"); got <= 0 {
		t.Errorf("envelope_seconds_total{encrypt} did not move: %v", got)
	}
	if got := after.Sum("s3seal_inflight_requests"); got != 0 {
		t.Errorf("inflight_requests = %v after all requests finished", got)
	}
}
