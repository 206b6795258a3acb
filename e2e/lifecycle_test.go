package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/internal/testkms"
)

// apiCode returns the S3 error code and HTTP status of an SDK error.
func apiCode(err error) (string, int) {
	var ae smithy.APIError
	var re interface{ HTTPStatusCode() int }
	code, status := "", 0
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// TestDisabledKey disables the CMK in the KMS: new PUTs fail with a clear
// 4xx and write nothing, reads of existing objects fail the same way (the
// data-key cache is off here), and everything works again once the key is
// enabled.
func TestDisabledKey(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		ctx := context.Background()
		in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_DATAKEY_CACHE_SIZE=0")
		c := sdkClient(t, in)
		bucket := newBucket(t, e)
		plain := plaintext(100000, 4)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("before"), Body: bytes.NewReader(plain)}); err != nil {
			t.Fatal(err)
		}
		kc := testkms.Client(t, e.kmsURL)
		desc, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(in.KeyAlias)})
		if err != nil {
			t.Fatal(err)
		}
		keyID := desc.KeyMetadata.KeyId
		if _, err := kc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: keyID}); err != nil {
			t.Fatal(err)
		}
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("after"), Body: bytes.NewReader(plain)})
		if code, status := apiCode(err); code != "KMS.DisabledException" || status != http.StatusBadRequest {
			t.Fatalf("PUT with the CMK disabled: %v (code %q, status %d), want 400 KMS.DisabledException", err, code, status)
		}
		if _, err := store(t, e).StatObject(ctx, bucket, "after", minio.StatObjectOptions{}); err == nil {
			t.Fatal("a PUT refused for a disabled key left an object upstream")
		}
		// local-kms answers AccessDeniedException here where AWS answers
		// DisabledException; s3seal reports both as a disabled key.
		_, err = readThrough(c, bucket, "before")
		if code, status := apiCode(err); code != "KMS.DisabledException" || status != http.StatusBadRequest {
			t.Fatalf("GET with the CMK disabled: %v (code %q, status %d), want 400 KMS.DisabledException", err, code, status)
		}
		if _, err := kc.EnableKey(ctx, &kms.EnableKeyInput{KeyId: keyID}); err != nil {
			t.Fatal(err)
		}
		if got, err := readThrough(c, bucket, "before"); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("GET after re-enabling the key: %v", err)
		}
	})
}

// TestConditionalAndOverrides: conditional GETs answer as S3 does, on the
// stored object's ETag and date, and response-* overrides reach the client.
func TestConditionalAndOverrides(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		ctx := context.Background()
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		bucket := newBucket(t, e)
		plain := plaintext(70000, 8)
		put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("cond"),
			Body: bytes.NewReader(plain), ContentType: aws.String("application/octet-stream")})
		if err != nil {
			t.Fatal(err)
		}
		etag := aws.ToString(put.ETag)
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("cond")})
		if err != nil {
			t.Fatal(err)
		}
		// A future If-Modified-Since is invalid (RFC 9110) and stores ignore
		// it, and a store may keep a finer date than the second it reports
		// (versitygw does): ask about the second after the object's date,
		// once that second is past.
		since := aws.ToTime(head.LastModified).Add(time.Second)
		time.Sleep(time.Until(since.Add(100 * time.Millisecond)))

		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("cond"),
			IfMatch: aws.String(etag), ResponseContentType: aws.String("text/x-override"),
			ResponseContentDisposition: aws.String(`attachment; filename="x.bin"`)})
		if err != nil {
			t.Fatalf("GET If-Match with overrides: %v", err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("body: %v", err)
		}
		if aws.ToString(out.ContentType) != "text/x-override" || !strings.Contains(aws.ToString(out.ContentDisposition), "x.bin") {
			t.Fatalf("overrides not applied: Content-Type %q, Content-Disposition %q", aws.ToString(out.ContentType), aws.ToString(out.ContentDisposition))
		}

		tests := []struct {
			name   string
			in     s3.GetObjectInput
			status int
		}{
			{"If-None-Match the ETag", s3.GetObjectInput{IfNoneMatch: aws.String(etag)}, http.StatusNotModified},
			{"If-Match another ETag", s3.GetObjectInput{IfMatch: aws.String(`"0123456789abcdef0123456789abcdef"`)}, http.StatusPreconditionFailed},
			{"If-Modified-Since after its date", s3.GetObjectInput{IfModifiedSince: aws.Time(since)}, http.StatusNotModified},
			{"If-Unmodified-Since yesterday", s3.GetObjectInput{IfUnmodifiedSince: aws.Time(time.Now().Add(-24 * time.Hour))}, http.StatusPreconditionFailed},
		}
		for _, tt := range tests {
			in := tt.in
			in.Bucket, in.Key = aws.String(bucket), aws.String("cond")
			_, err := c.GetObject(ctx, &in)
			if _, status := apiCode(err); status != tt.status {
				t.Errorf("%s: %v, want status %d", tt.name, err, tt.status)
			}
		}
	})
}

// TestGracefulShutdown sends SIGTERM while a download is under way: s3seal
// stops taking new connections but finishes the download, then exits.
func TestGracefulShutdown(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		ctx := context.Background()
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		bucket := newBucket(t, e)
		plain := plaintext(24<<20, 2)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("big"), Body: bytes.NewReader(plain)}); err != nil {
			t.Fatal(err)
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("big")})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(out.Body, head); err != nil {
			t.Fatal(err)
		}
		if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// New connections are refused once the listener is closed.
		deadline := time.Now().Add(5 * time.Second)
		for {
			fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
			resp, err := fresh.Get(in.URL + "/")
			if err != nil {
				break
			}
			resp.Body.Close()
			if time.Now().After(deadline) {
				t.Fatal("s3seal still accepts new connections 5 s after SIGTERM")
			}
			time.Sleep(50 * time.Millisecond)
		}
		rest, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatalf("the download under way was cut by the shutdown: %v", err)
		}
		if !bytes.Equal(append(head, rest...), plain) {
			t.Fatal("the download under way differs")
		}
		done := make(chan error, 1)
		go func() { done <- in.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("s3seal exited with %v after SIGTERM", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("s3seal did not exit after draining")
		}
	})
}
