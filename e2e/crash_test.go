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
	"os"
	"path/filepath"
	"strings"
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
// upload is left behind. The embedded store is tried a second time keeping
// its metadata in sidecar files (as on a filesystem without user xattrs).
func TestCrashMidPut(t *testing.T) {
	old, next := plaintext(5<<20+3, 60), plaintext(64<<20, 61)
	forEachUpstream(t, func(t *testing.T, e testEnv) { crashMidPut(t, e, old, next) })
	t.Run("embedded with sidecar metadata", func(t *testing.T) {
		e := embeddedEnv(t)
		sidecar := filepath.Join(e.emb.dataDir, "sidecar")
		// What the store writes at a first start on such a filesystem
		// (internal/embeddedstore metadataMode), and keeps to.
		if err := os.MkdirAll(sidecar, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.emb.dataDir, "store-metadata"), []byte("sidecar\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		crashMidPut(t, e, old, next)
		if ents, err := os.ReadDir(sidecar); err != nil || len(ents) == 0 {
			t.Fatalf("the store wrote no sidecar metadata in %s (%v)", sidecar, err)
		}
	})
}

// crashMidPut is TestCrashMidPut against e.
func crashMidPut(t *testing.T, e testEnv, old, next []byte) {
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
}

// TestCrashMidPart: replica A creates an upload and uploads two parts, and
// is killed with 3 MiB of part 3's body sent. Replica B, running all the
// while (on the embedded store: restarted, since the store died with A and
// came back with A's restart elsewhere), lists the two parts, uploads
// part 3 again and part 4, and completes: the object reads back byte for
// byte.
func TestCrashMidPart(t *testing.T) {
	sizes := []int{6 << 20, 6 << 20, 6 << 20, 1<<20 + 7} // MinIO refuses parts under 5 MiB but the last
	total := 0
	for _, n := range sizes {
		total += n
	}
	plain := plaintext(total, 70)
	parts := splitParts(plain, sizes...)
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		ctx := context.Background()
		a := startS3seal(t, e, e.kmsURL, "")
		b := startReplica(t, a)
		bucket := newBucket(t, e)
		const key = "mp"
		ca := crashClient(t, a)
		id, err := ca.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		etags := map[int]string{}
		for n := 1; n <= 2; n++ {
			p, err := ca.PutObjectPart(ctx, bucket, key, id, n, bytes.NewReader(parts[n-1]), int64(sizes[n-1]), minio.PutObjectPartOptions{})
			if err != nil {
				t.Fatalf("part %d through A: %v", n, err)
			}
			etags[n] = p.ETag
		}
		body := newGatedReader(parts[2], 3<<20)
		done := make(chan error, 1)
		go func() {
			_, err := ca.PutObjectPart(ctx, bucket, key, id, 3, body, int64(sizes[2]), minio.PutObjectPartOptions{})
			done <- err
		}()
		body.await(t)
		crash(t, a)
		close(body.released)
		awaitFailed(t, done, "part 3's upload")
		if e.isEmbedded() {
			a.launch(t)
			b.restart(t)
		}

		cb := crashClient(t, b)
		listed, err := cb.ListObjectParts(ctx, bucket, key, id, 0, 1000)
		if err != nil {
			t.Fatalf("ListParts through B: %v", err)
		}
		if len(listed.ObjectParts) != 2 {
			t.Fatalf("ListParts through B after the kill: %+v, want parts 1 and 2", listed.ObjectParts)
		}
		var complete []minio.CompletePart
		for i, p := range listed.ObjectParts {
			if p.PartNumber != i+1 || p.Size != int64(sizes[i]) || strings.Trim(p.ETag, `"`) != strings.Trim(etags[i+1], `"`) {
				t.Fatalf("ListParts through B lists part %d, %d bytes, ETag %s; A uploaded part %d, %d bytes, ETag %s",
					p.PartNumber, p.Size, p.ETag, i+1, sizes[i], etags[i+1])
			}
			complete = append(complete, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
		}
		for n := 3; n <= 4; n++ {
			p, err := cb.PutObjectPart(ctx, bucket, key, id, n, bytes.NewReader(parts[n-1]), int64(sizes[n-1]), minio.PutObjectPartOptions{})
			if err != nil {
				t.Fatalf("part %d through B: %v", n, err)
			}
			complete = append(complete, minio.CompletePart{PartNumber: n, ETag: p.ETag})
		}
		if _, err := cb.CompleteMultipartUpload(ctx, bucket, key, id, complete, minio.PutObjectOptions{}); err != nil {
			t.Fatalf("completing through B: %v", err)
		}
		checkReadBack(t, e, sdkClient(t, b), bucket, key, plain)
		checkNoUploads(t, e, bucket)
	})
}

// TestCrashMidCopy: kill -9 half way through a CopyObject of a 30 MiB
// source onto an existing object, timed by the same copy done once before
// to another key: a single-part source (one CopyObject at the store) and
// a 6-part one (s3seal copies it part by part into an upload of its own).
// 30 MiB keeps the read-back checks short; the copy still takes long
// enough to be killed in.
// A fresh s3seal reads the destination as it was or as the full copy.
func TestCrashMidCopy(t *testing.T) {
	old, src := plaintext(5<<20+3, 80), plaintext(30<<20, 81)
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		bucket := newBucket(t, e)
		ctx := context.Background()
		c := sdkClient(t, in)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("src-single"), Body: bytes.NewReader(src)}); err != nil {
			t.Fatal(err)
		}
		if err := multipartUpload(t, c, bucket, "src-parts", splitParts(src, 5<<20, 5<<20, 5<<20, 5<<20, 5<<20, 5<<20), nil); err != nil {
			t.Fatal(err)
		}
		for _, source := range []string{"src-single", "src-parts"} {
			t.Run(source, func(t *testing.T) {
				c := sdkClient(t, in)
				copyTo := func(ctx context.Context, key string) error {
					_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), CopySource: aws.String(bucket + "/" + source)})
					return err
				}
				start := time.Now()
				if err := copyTo(ctx, "timing-"+source); err != nil {
					t.Fatalf("the timing copy: %v", err)
				}
				took := time.Since(start)
				key := "dst-" + source
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(old)}); err != nil {
					t.Fatal(err)
				}
				before := storedStateOf(t, e, bucket, key)

				done := make(chan error, 1)
				go func() { done <- copyTo(ctx, key) }()
				time.Sleep(took / 2)
				crash(t, in)
				select { // failed, most likely; or answered just before the kill
				case <-done:
				case <-time.After(60 * time.Second):
					t.Fatal("the copy still runs 60 s after s3seal was killed")
				}
				relaunched := time.Now()
				in.launch(t)
				t.Logf("relaunched in %v", time.Since(relaunched))
				got := checkOldOrNew(t, e, sdkClient(t, in), bucket, key, old, src, before)
				t.Logf("killed %v into a copy that took %v: %s reads as the %s object (checked in %v)", took/2, took, key, got, time.Since(relaunched))
				uploads, err := minio.Core{Client: store(t, e)}.ListMultipartUploads(ctx, bucket, "", "", "", "", 1000)
				if err != nil {
					t.Fatal(err)
				}
				// s3seal could not abort the upload of a part-by-part copy it
				// was killed in: an incomplete upload the bucket's lifecycle
				// rule (AbortIncompleteMultipartUpload) removes.
				t.Logf("uploads left in the store: %d", len(uploads.Uploads))
			})
		}
	})
}
