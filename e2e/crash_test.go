package e2e

// kill -9 of s3seal in the middle of a write: a PUT's body, a part's body,
// a copy. The store must be left with the object as it was or as written,
// never a part of it, and what it holds must still decrypt. On the embedded
// store the store process dies with s3seal (as in an OOM kill of the
// container), and starts again from its files.

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// gatedReader hands out b up to gate bytes, then says so on reached, waits
// for release and fails: a client whose body is cut at a byte it chose.
type gatedReader struct {
	b                 []byte
	off, gate         int
	reached, released chan struct{}
	once              sync.Once
}

func newGatedReader(b []byte, gate int) *gatedReader {
	return &gatedReader{b: b, gate: gate, reached: make(chan struct{}), released: make(chan struct{})}
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if r.off >= r.gate {
		r.once.Do(func() { close(r.reached) })
		<-r.released
		return 0, errors.New("the client went away with s3seal")
	}
	n := copy(p[:min(len(p), r.gate-r.off)], r.b[r.off:])
	r.off += n
	return n, nil
}

// await waits up to 60 s until the client has read gate bytes, then lets
// s3seal pass them on to the store for a moment.
func (r *gatedReader) await(t *testing.T) {
	t.Helper()
	select {
	case <-r.reached:
	case <-time.After(60 * time.Second):
		t.Fatalf("the client read %d of the %d bytes before the kill in 60 s", r.off, r.gate)
	}
	time.Sleep(300 * time.Millisecond)
}

// crash kills in with SIGKILL and reaps it. On the embedded store its
// store process (the one child s3seal has) is killed first, so that it
// dies mid-write too instead of shutting down on s3seal's death signal.
func crash(t *testing.T, in *instance) {
	t.Helper()
	if in.emb != nil {
		for _, pid := range childPIDs(t, in.pid()) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("killing the embedded store (pid %d): %v", pid, err)
			}
		}
	}
	in.stopWith(t, syscall.SIGKILL)
}

// crashClient is a minio-go client of in that does not retry: a request
// cut by the kill fails.
func crashClient(t *testing.T, in *instance) minio.Core {
	t.Helper()
	u, err := url.Parse(in.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(in.AccessKey, in.SecretKey, ""), Region: region, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return minio.Core{Client: c}
}

// awaitFailed waits up to 30 s for a request cut by a kill to fail.
func awaitFailed(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("%s succeeded although s3seal was killed in its middle", what)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still runs 30 s after s3seal was killed", what)
	}
}

// checkOldOrNew checks that bucket/key is, through s3seal, either old or
// new byte for byte, with the HEAD and listed size to match, stored as
// ciphertext of the format's size that decrypts; when it is old, the store
// holds exactly the bytes it held before. It returns which it is.
func checkOldOrNew(t *testing.T, e testEnv, c *s3.Client, bucket, key string, old, new []byte, before storedState) string {
	t.Helper()
	got, err := readThrough(c, bucket, key)
	switch {
	case err != nil:
		t.Fatalf("GET %s after the kill: %v", key, err)
	case bytes.Equal(got, old):
		checkReadBack(t, e, c, bucket, key, old)
		if now := storedStateOf(t, e, bucket, key); now != before {
			t.Fatalf("%s reads as before, but the store holds ETag %s, %d bytes; was ETag %s, %d bytes", key, now.etag, now.size, before.etag, before.size)
		}
		return "old"
	case bytes.Equal(got, new):
		checkReadBack(t, e, c, bucket, key, new)
		return "new"
	}
	t.Fatalf("GET %s after the kill: %d bytes, neither the old object (%d bytes) nor the new one (%d bytes)", key, len(got), len(old), len(new))
	return ""
}

// checkNoUploads checks that no multipart upload is left in bucket.
func checkNoUploads(t *testing.T, e testEnv, bucket string) {
	t.Helper()
	uploads, err := minio.Core{Client: store(t, e)}.ListMultipartUploads(context.Background(), bucket, "", "", "", "", 1000)
	if err != nil {
		t.Fatalf("ListMultipartUploads in the store: %v", err)
	}
	if n := len(uploads.Uploads); n > 0 {
		t.Errorf("the store has %d uploads in progress", n)
	}
}

// TestCrashMidPut: kill -9 while minio-go streams a 64 MiB PUT over an
// existing object, early in the body and with its last MiB still unsent.
// A fresh s3seal (on the embedded store: with the store restarted from its
// files) reads the old object byte for byte, stored as it was, and no
// upload is left behind.
func TestCrashMidPut(t *testing.T) {
	old, next := plaintext(5<<20+3, 60), plaintext(64<<20, 61)
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		bucket := newBucket(t, e)
		for _, tc := range []struct {
			name string
			at   int // the body bytes the client sends before the kill
		}{
			{"at 8 MiB", 8 << 20},
			{"1 MiB before the end", len(next) - 1<<20},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				key := "obj-" + randHex(4)
				if _, err := sdkClient(t, in).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(old)}); err != nil {
					t.Fatal(err)
				}
				before := storedStateOf(t, e, bucket, key)
				body := newGatedReader(next, tc.at)
				done := make(chan error, 1)
				go func() {
					_, err := crashClient(t, in).PutObject(ctx, bucket, key, body, int64(len(next)), "", "", minio.PutObjectOptions{DisableMultipart: true})
					done <- err
				}()
				body.await(t)
				crash(t, in)
				close(body.released)
				awaitFailed(t, done, "the PUT")

				in.launch(t)
				// The client never sent the whole body: only the old object can be there.
				if got := checkOldOrNew(t, e, sdkClient(t, in), bucket, key, old, next, before); got != "old" {
					t.Fatalf("after the kill at %d of %d bytes, %s reads as the %s object", tc.at, len(next), key, got)
				}
				checkNoUploads(t, e, bucket)
			})
		}
	})
}
