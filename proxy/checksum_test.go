package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// rawRead GETs or HEADs key through the proxy with header, and returns the
// status and the checksum headers of the answer.
func (e *env) rawRead(t *testing.T, method, key string, header http.Header) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(e.signedRequest(t, method, "/"+testBucket+"/"+key, nil, 0, header))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Amz-Checksum-Crc32") + " " + resp.Header.Get("X-Amz-Checksum-Type")
}

var checksumOn = http.Header{"X-Amz-Checksum-Mode": {"ENABLED"}}

// TestChecksumReads: a PUT's checksum comes back on GET and HEAD with
// checksum mode only, and never on a range.
func TestChecksumReads(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(200000, 5)
	e.put(t, "k", data, nil)
	want := crc32Base64(data) + " FULL_OBJECT"
	tests := []struct {
		name   string
		method string
		header http.Header
		want   string
	}{
		{"GET checksum mode", http.MethodGet, checksumOn, want},
		{"HEAD checksum mode", http.MethodHead, checksumOn, want},
		{"GET checksum mode, lower case", http.MethodGet, http.Header{"X-Amz-Checksum-Mode": {"enabled"}}, want},
		{"GET", http.MethodGet, nil, " "},
		{"HEAD", http.MethodHead, nil, " "},
		{"GET range", http.MethodGet, http.Header{"X-Amz-Checksum-Mode": {"ENABLED"}, "Range": {"bytes=0-99"}}, " "},
		{"HEAD range", http.MethodHead, http.Header{"X-Amz-Checksum-Mode": {"ENABLED"}, "Range": {"bytes=0-99"}}, " "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, got := e.rawRead(t, tt.method, "k", tt.header)
			if status/100 != 2 || got != tt.want {
				t.Errorf("%d %q, want %q", status, got, tt.want)
			}
		})
	}
}

// TestChecksumTampering: a store that changes, swaps or drops the sealed
// checksum makes the checksum answer fail or go missing, never wrong;
// reads without checksum mode are not affected by a checksum they do not
// ask for.
func TestChecksumTampering(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(1000, 6)
	e.put(t, "k", data, nil)
	e.put(t, "other", randomBytes(1000, 7), nil) // its own data key
	orig := e.store.get(testBucket, "k").header.Clone()
	other := e.store.get(testBucket, "other").header.Get("X-Amz-Meta-S3seal-S")
	flipped := func() string {
		b, _ := base64.StdEncoding.DecodeString(orig.Get("X-Amz-Meta-S3seal-S"))
		b[5] ^= 1 // in the value
		return base64.StdEncoding.EncodeToString(b)
	}()
	tests := []struct {
		name     string
		change   func(h http.Header)
		withheld bool // no checksum, reads still work
		broken   bool // metadata no longer parses: every read fails
	}{
		{"value flipped", func(h http.Header) { h.Set("X-Amz-Meta-S3seal-S", flipped) }, false, false},
		{"another object's", func(h http.Header) { h.Set("X-Amz-Meta-S3seal-S", other) }, false, false},
		{"dropped, version 3 kept", func(h http.Header) { h.Del("X-Amz-Meta-S3seal-S") }, false, true},
		{"dropped, version 1", func(h http.Header) { h.Del("X-Amz-Meta-S3seal-S"); h.Set("X-Amz-Meta-S3seal-V", "1") }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := orig.Clone()
			tt.change(h)
			o := e.store.get(testBucket, "k")
			e.store.mu.Lock()
			o.header = h
			e.store.mu.Unlock()
			defer func() {
				e.store.mu.Lock()
				o.header = orig.Clone()
				e.store.mu.Unlock()
			}()
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				status, got := e.rawRead(t, method, "k", checksumOn)
				switch {
				case tt.withheld && (status != 200 || got != " "):
					t.Errorf("%s: %d %q, want no checksum", method, status, got)
				case !tt.withheld && status != http.StatusBadGateway:
					t.Errorf("%s: %d %q, want 502", method, status, got)
				}
				status, _ = e.rawRead(t, method, "k", nil)
				if (status == 200) == tt.broken {
					t.Errorf("%s without checksum mode: %d", method, status)
				}
			}
			out, err := attributes(e.client, "k", only(types.ObjectAttributesChecksum))
			switch {
			case tt.withheld && (err != nil || out.Checksum != nil):
				t.Errorf("attributes: %v %v, want no checksum", err, out)
			case !tt.withheld && err == nil:
				t.Errorf("attributes: %q, want an error", checksumOf(out.Checksum))
			}
		})
	}
}

// TestChecksumKeptOnlyFromHeader: a trailer's checksum, which arrives after
// the body, is verified and answered on the PUT but not kept; the SDK's
// header checksum is kept for each algorithm; a copy keeps its source's.
func TestChecksumKeptOnlyFromHeader(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(70000, 8)
	for _, algo := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmSha1} {
		t.Run(string(algo), func(t *testing.T) {
			key := "algo-" + string(algo)
			put, err := e.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key),
				Body: bytes.NewReader(data), ChecksumAlgorithm: algo})
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key),
				ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(out.Body) // the SDK validates as it reads
			out.Body.Close()
			sent := aws.ToString(put.ChecksumCRC32C) + aws.ToString(put.ChecksumCRC64NVME) + aws.ToString(put.ChecksumSHA256) + aws.ToString(put.ChecksumSHA1)
			back := aws.ToString(out.ChecksumCRC32C) + aws.ToString(out.ChecksumCRC64NVME) + aws.ToString(out.ChecksumSHA256) + aws.ToString(out.ChecksumSHA1)
			if err != nil || !bytes.Equal(got, data) || sent == "" || back != sent {
				t.Errorf("GET %v, checksum %q, PUT's %q", err, back, sent)
			}
			cp := key + "-copy"
			if _, err := e.copy(t, &s3.CopyObjectInput{Bucket: aws.String(testBucket), Key: aws.String(cp),
				CopySource: aws.String(testBucket + "/" + key)}); err != nil {
				t.Fatal(err)
			}
			a, err := attributes(e.client, cp, only(types.ObjectAttributesChecksum))
			if err != nil || checksumOf(a.Checksum) != string(algo)+"="+sent+" FULL_OBJECT" {
				t.Errorf("copy's checksum %q %v", checksumOf(a.Checksum), err)
			}
		})
	}

	// A trailer: STREAMING-UNSIGNED-PAYLOAD-TRAILER, as SDKs send over TLS.
	body := "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + crc32Base64([]byte("hello")) + "\r\n\r\n"
	req := e.signedRequest(t, http.MethodPut, "/"+testBucket+"/trailer", bytes.NewReader([]byte(body)), int64(len(body)), http.Header{
		"X-Amz-Content-Sha256":         {"STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
		"Content-Encoding":             {"aws-chunked"},
		"X-Amz-Decoded-Content-Length": {"5"},
		"X-Amz-Trailer":                {"x-amz-checksum-crc32"},
	})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Checksum-Crc32") != crc32Base64([]byte("hello")) {
		t.Fatalf("trailer PUT: %d %q", resp.StatusCode, resp.Header.Get("X-Amz-Checksum-Crc32"))
	}
	if status, got := e.rawRead(t, http.MethodGet, "trailer", checksumOn); status != 200 || got != " " {
		t.Errorf("trailer object: %d %q, want no checksum", status, got)
	}
}
