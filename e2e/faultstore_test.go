package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// storeFaultTimeout is S3SEAL_UPSTREAM_TIMEOUT in the fault tests: short, so
// a stall ends soon, and long enough for a loaded machine.
const storeFaultTimeout = 3 * time.Second

// TestStoreNetworkFaults: s3seal in front of MinIO through a toxiproxy that
// slows, throttles, cuts and stalls the connections. Reads survive slow
// networks and broken connections (resuming where the answer broke, a few
// times); what cannot be served is a 503 or a cut connection, never a
// short or wrong body; a write whose upload breaks leaves the previous
// object in place.
func TestStoreNetworkFaults(t *testing.T) {
	t.Parallel() // it mostly waits (timeouts, slow transfers): beside the others
	e := minioEnv(t)
	f := newFaultTCP(t, e.storeURL)
	faulty := testEnv{name: e.name, kmsURL: e.kmsURL, storeURL: f.URL, storeAK: e.storeAK, storeSK: e.storeSK}
	in := startS3seal(t, faulty, e.kmsURL, "", "S3SEAL_UPSTREAM_TIMEOUT="+storeFaultTimeout.String())
	bucket := newBucket(t, e)
	c := sdkClient(t, in)
	old, obj := plaintext(3<<20, 1), plaintext(8<<20, 2)
	putObject(t, c, bucket, "old", old)
	putObject(t, c, bucket, "obj", obj)

	tests := []struct {
		name    string
		toxic   string // type, stream, attributes
		stream  string
		attrs   string
		check   func(t *testing.T)
		resumes float64 // at least this many resumed reads
	}{
		{"latency", "latency", "downstream", `"latency":100,"jitter":20`, func(t *testing.T) { wantObject(t, in, bucket, "obj", obj) }, 0},
		{"slow network", "bandwidth", "downstream", `"rate":4096`, func(t *testing.T) { wantObject(t, in, bucket, "obj", obj) }, 0},
		{"connections cut mid-body", "limit_data", "downstream", `"bytes":3145728`, func(t *testing.T) { wantObject(t, in, bucket, "obj", obj) }, 2},
		{"connections cut too often", "limit_data", "downstream", `"bytes":1048576`, func(t *testing.T) { wantCutRead(t, in, bucket, "obj", obj) }, 3},
		{"store stalls", "timeout", "downstream", `"timeout":0`, func(t *testing.T) { wantUnavailable(t, in, "GET", bucket, "obj", nil) }, 0},
		{"upload cut", "limit_data", "upstream", `"bytes":2097152`, func(t *testing.T) { wantPutFails(t, in, bucket, "old") }, 0},
		{"upload reset", "reset_peer", "upstream", `"timeout":200`, func(t *testing.T) { wantPutFails(t, in, bucket, "old") }, 0},
		{"upload stalls", "timeout", "upstream", `"timeout":0`, func(t *testing.T) { wantPutFails(t, in, bucket, "old") }, 0},
		{"part upload cut", "limit_data", "upstream", `"bytes":2097152`, func(t *testing.T) { wantPartFails(t, in, c, bucket) }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := metricSum(t, in, "s3seal_upstream_resumes_total")
			f.toxic(t, tc.name, tc.toxic, tc.stream, tc.attrs)
			tc.check(t)
			f.clear(tc.name)
			if got := metricSum(t, in, "s3seal_upstream_resumes_total") - before; got < tc.resumes {
				t.Errorf("%v reads resumed, want at least %v", got, tc.resumes)
			}
			// Whatever happened, the store is usable again, with both objects whole.
			wantObject(t, in, bucket, "old", old)
		})
	}
}

func putObject(t *testing.T, c *s3.Client, bucket, key string, data []byte) {
	t.Helper()
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("PUT %s: %v", key, err)
	}
}

// rawRead sends a signed request with no retries and reads the answer's
// body to its end, or to the error that cut it (status 0: no answer).
func rawRead(t *testing.T, in *instance, method, path string, body []byte, header http.Header) (rawAnswer, error) {
	t.Helper()
	resp, err := http.DefaultClient.Do(signed(t, in, method, path, body, body, header))
	if err != nil {
		return rawAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// wantObject: a GET through s3seal answers data, whole.
func wantObject(t *testing.T, in *instance, bucket, key string, data []byte) {
	t.Helper()
	a, err := rawRead(t, in, "GET", "/"+bucket+"/"+key, nil, nil)
	if err != nil || a.status != http.StatusOK || !bytes.Equal(a.body, data) {
		t.Fatalf("GET %s: %d, %d of %d bytes, %v (equal: %v)", key, a.status, len(a.body), len(data), err, bytes.Equal(a.body, data))
	}
}

// wantCutRead: the answer starts, then the connection is cut; what came is
// the object's start, and never all of it.
func wantCutRead(t *testing.T, in *instance, bucket, key string, data []byte) {
	t.Helper()
	a, err := rawRead(t, in, "GET", "/"+bucket+"/"+key, nil, nil)
	switch {
	case a.status != http.StatusOK && a.status != http.StatusServiceUnavailable:
		t.Fatalf("GET %s: %d %s", key, a.status, a.body)
	case a.status == http.StatusOK && (err == nil || len(a.body) >= len(data)):
		t.Fatalf("GET %s: %d bytes, %v: want a cut answer", key, len(a.body), err)
	case !bytes.Equal(a.body, data[:min(len(a.body), len(data))]):
		t.Fatalf("GET %s: the bytes before the cut are not the object's", key)
	}
}

// wantUnavailable: the request gets 503 ServiceUnavailable with
// Retry-After, within the stall bound and some slack.
func wantUnavailable(t *testing.T, in *instance, method, bucket, key string, body []byte) {
	t.Helper()
	start := time.Now()
	a, _ := rawRead(t, in, method, "/"+bucket+"/"+key, body, nil)
	took := time.Since(start)
	switch {
	case a.status != http.StatusServiceUnavailable || a.code() != "ServiceUnavailable":
		t.Fatalf("%s %s: %d %s, want 503 ServiceUnavailable", method, key, a.status, a.body)
	case a.header.Get("Retry-After") == "":
		t.Errorf("%s %s: 503 without Retry-After", method, key)
	case took > 4*storeFaultTimeout:
		t.Errorf("%s %s: answered after %v, with S3SEAL_UPSTREAM_TIMEOUT=%v", method, key, took, storeFaultTimeout)
	}
}

// wantPutFails: a PUT whose upload to the store breaks fails (the caller
// then checks that key still holds what it held).
func wantPutFails(t *testing.T, in *instance, bucket, key string) {
	t.Helper()
	a, err := rawRead(t, in, "PUT", "/"+bucket+"/"+key, plaintext(8<<20, 9), nil)
	if err == nil && a.status == http.StatusOK {
		t.Fatalf("PUT %s succeeded through a broken connection", key)
	}
	if a.status != 0 && a.status < 500 {
		t.Errorf("PUT %s: %d %s, want a 5xx", key, a.status, a.body)
	}
	if a.status == http.StatusServiceUnavailable && !strings.Contains(string(a.body), "ServiceUnavailable") {
		t.Errorf("PUT %s: 503 %s", key, a.body)
	}
}

// wantPartFails: an UploadPart whose upload to the store breaks fails and
// leaves no part behind.
func wantPartFails(t *testing.T, in *instance, c *s3.Client, bucket string) {
	t.Helper()
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp"), UploadId: up.UploadId})
	a, err := rawRead(t, in, "PUT", "/"+bucket+"/mp?partNumber=1&uploadId="+url.QueryEscape(*up.UploadId), plaintext(6<<20, 8), nil)
	if err == nil && a.status == http.StatusOK {
		t.Fatal("UploadPart succeeded through a broken connection")
	}
	parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String("mp"), UploadId: up.UploadId})
	if err != nil || len(parts.Parts) != 0 {
		t.Fatalf("after a failed UploadPart: %v parts, %v", parts, err)
	}
}

// storeError is an S3 error document as a store sends it.
func storeError(code, msg string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>` + msg + `</Message></Error>`
}

// TestStoreErrorAnswers: a store that answers 503 SlowDown or 500 has its
// answer relayed (503 with Retry-After), nothing written in its name; a
// client with ordinary retries gets through, a write the store acted on
// but whose answer was lost included.
func TestStoreErrorAnswers(t *testing.T) {
	e := minioEnv(t)
	f := newFaultHTTP(t, e.storeURL)
	faulty := testEnv{name: e.name, kmsURL: e.kmsURL, storeURL: f.URL, storeAK: e.storeAK, storeSK: e.storeSK}
	in := startS3seal(t, faulty, e.kmsURL, "")
	bucket := newBucket(t, e)
	c := sdkClient(t, in)
	old, obj := plaintext(1<<20, 3), plaintext(6<<20, 4)
	putObject(t, c, bucket, "obj", old)
	slowDown := func(name, method string, times int, after bool) faultRule {
		return faultRule{name: name, times: times, after: after, status: http.StatusServiceUnavailable,
			contentType: "application/xml", body: storeError("SlowDown", "Please reduce your request rate."),
			match: func(r *http.Request) bool { return r.Method == method && strings.HasSuffix(r.URL.Path, "/obj") }}
	}
	internal := func(name, method string, after bool) faultRule {
		r := slowDown(name, method, 1, after)
		r.status, r.body = http.StatusInternalServerError, storeError("InternalError", "We encountered an internal error. Please try again.")
		return r
	}
	tests := []struct {
		name  string
		rule  faultRule
		check func(t *testing.T)
	}{
		{"SlowDown relayed", slowDown("get", "GET", 1, false), func(t *testing.T) {
			a, _ := rawRead(t, in, "GET", "/"+bucket+"/obj", nil, nil)
			if a.status != http.StatusServiceUnavailable || a.code() != "SlowDown" || a.header.Get("Retry-After") == "" {
				t.Fatalf("GET: %d %v %s, want 503 SlowDown with Retry-After", a.status, a.header, a.body)
			}
		}},
		{"SlowDown on a PUT writes nothing", slowDown("put", "PUT", 1, false), func(t *testing.T) {
			a, _ := rawRead(t, in, "PUT", "/"+bucket+"/obj", obj, nil)
			if a.status != http.StatusServiceUnavailable || a.code() != "SlowDown" {
				t.Fatalf("PUT: %d %s, want 503 SlowDown", a.status, a.body)
			}
			wantObject(t, in, bucket, "obj", old)
		}},
		{"client retries through SlowDown", slowDown("get2", "GET", 2, false), func(t *testing.T) {
			if got, err := readThrough(c, bucket, "obj"); err != nil || !bytes.Equal(got, old) {
				t.Fatalf("GET with retries: %d bytes, %v", len(got), err)
			}
		}},
		{"a PUT's answer lost, retried", internal("put-lost", "PUT", true), func(t *testing.T) {
			putObject(t, c, bucket, "obj", obj)
			wantObject(t, in, bucket, "obj", obj)
			putObject(t, c, bucket, "obj", old)
		}},
		{"a HEAD's 500", internal("head", "HEAD", false), func(t *testing.T) {
			a, _ := rawRead(t, in, "HEAD", "/"+bucket+"/obj", nil, nil)
			if a.status != http.StatusInternalServerError {
				t.Fatalf("HEAD: %d, want 500", a.status)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.add(t, tc.rule)
			tc.check(t)
			if f.hits(tc.rule.name) == 0 {
				t.Errorf("the fault %q never applied", tc.rule.name)
			}
			f.remove(tc.rule.name)
			wantObject(t, in, bucket, "obj", old)
		})
	}
}
