package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sync/errgroup"

	"github.com/s3seal/s3seal/envelope"
)

// rssLimit is what s3seal may use at its peak while the AWS CLI moves a
// 1 GiB object through it with 10 concurrent requests.
const rssLimit = 128 << 20

// TestPeakRSS measures the peak resident set size (VmHWM) of an s3seal
// process while the AWS CLI uploads a 1 GiB file (multipart, 8 MiB parts,
// 10 at a time) and downloads it again (10 parallel ranged GETs), and fails
// above 128 MiB. It is a measurement, not a unit test: it runs only with
// S3SEAL_TEST_MEMCHECK set (memcheck), which scripts/test sets in a step of
// its own.
func TestPeakRSS(t *testing.T) {
	memcheck(t)
	forEachUpstream(t, peakRSSOnce)
}

// memcheck skips a memory measurement unless S3SEAL_TEST_MEMCHECK is 1 (the
// measurements scripts/test runs) or full (the same at full size, where a
// case has a smaller stand-in in the default run), and reports whether it
// is full.
func memcheck(t *testing.T) (full bool) {
	t.Helper()
	switch os.Getenv("S3SEAL_TEST_MEMCHECK") {
	case "1":
		return false
	case "full":
		return true
	}
	t.Skip("a memory measurement: runs in its own scripts/test step (S3SEAL_TEST_MEMCHECK=1 or full)")
	return false
}

func peakRSSOnce(t *testing.T, e testEnv) {
	in := startS3seal(t, e, e.kmsURL, "")
	dir := t.TempDir()
	const size = 1 << 30
	src := filepath.Join(dir, "1g.bin")
	want := writeRandomFile(t, src, size)
	bucket := newBucket(t, e)
	aws := func(args ...string) string {
		return run(t, clientEnv(in), "/usr/bin/aws", append([]string{"--endpoint-url", in.URL}, args...)...)
	}
	before := peakRSS(t, in.pid())

	aws("s3", "cp", "--no-progress", src, "s3://"+bucket+"/1g.bin")
	afterUp := peakRSS(t, in.pid())
	os.Remove(src)
	if head := aws("s3api", "head-object", "--bucket", bucket, "--key", "1g.bin"); !strings.Contains(head, fmt.Sprintf(`"ContentLength": %d`, size)) {
		t.Fatalf("head-object:\n%s", head)
	}

	down := filepath.Join(dir, "1g-down.bin")
	aws("s3", "cp", "--no-progress", "s3://"+bucket+"/1g.bin", down)
	afterDown := peakRSS(t, in.pid())
	if got := fileSHA256(t, down); got != want {
		t.Fatalf("the 1 GiB download differs from the upload")
	}
	os.Remove(down)

	const m = 1 << 20
	report := fmt.Sprintf("s3seal peak RSS (VmHWM) with the AWS CLI moving 1 GiB through it against %s: %.1f MiB after start, %.1f MiB after the upload, %.1f MiB after the download (limit %d MiB)",
		e.name, float64(before)/m, float64(afterUp)/m, float64(afterDown)/m, rssLimit/m)
	if e.isEmbedded() {
		// The store is a process of its own, outside the limit.
		for _, pid := range childPIDs(t, in.pid()) {
			report += fmt.Sprintf("; the embedded store's process (pid %d): %.1f MiB", pid, float64(peakRSS(t, pid))/m)
		}
	}
	t.Log(report)
	if afterDown > rssLimit {
		t.Fatalf("peak RSS %.1f MiB is above %d MiB", float64(afterDown)/m, rssLimit/m)
	}
}

// peakRSS is a process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// childPIDs are the process ids of pid's children.
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		for _, field := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(field); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// writeRandomFile writes size pseudo-random bytes to path, 1 MiB at a time,
// and returns their SHA-256.
func writeRandomFile(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var seed [32]byte
	copy(seed[:], randHex(16))
	rng := rand.NewChaCha8(seed)
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		b := buf[:min(int64(len(buf)), left)]
		rng.Read(b)
		h.Write(b)
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// largeTransfer is one case of TestPeakRSSLarge: objects objects of size
// bytes each, all PUT at once, then all read back at once, with s3seal's
// peak RSS limited to limit.
type largeTransfer struct {
	name    string
	objects int
	size    int64
	limit   int64
}

// TestPeakRSSLarge measures the peak RSS (VmHWM) of a fresh s3seal process
// per case while minio-go sends single PutObject requests (not multipart:
// a streaming-signed aws-chunked body, as over plain HTTP) and reads the
// objects back, verifying every byte: one 5 GiB object (S3's largest single
// PUT), and 64 objects of 256 MiB at once. The targets are issue #14's. It
// runs against MinIO only: the figure is s3seal's, and one store shows it.
//
// The 64 × 256 MiB case takes 4.5 to 7 minutes on the project's shared
// 2-core machine, too long for every scripts/test run, so
// S3SEAL_TEST_MEMCHECK=1 moves 64 × 64 MiB instead, under the same limit:
// what s3seal holds per request does not grow with the object (the 5 GiB
// case shows it), so the stand-in keeps 64 requests in flight and measures
// the same peak. S3SEAL_TEST_MEMCHECK=full runs the 256 MiB case.
func TestPeakRSSLarge(t *testing.T) {
	full := memcheck(t)
	e := minioEnv(t)
	concurrent := largeTransfer{name: "64x64MiB", objects: 64, size: 64 << 20, limit: 256 << 20}
	if full {
		concurrent.name, concurrent.size = "64x256MiB", 256<<20
	}
	for _, c := range []largeTransfer{
		{name: "5GiB", objects: 1, size: 5 << 30, limit: 64 << 20},
		concurrent,
	} {
		t.Run(c.name, func(t *testing.T) { peakRSSLarge(t, e, c) })
	}
}

// peakRSSLarge runs one case in a fresh s3seal, so VmHWM is the case's own.
func peakRSSLarge(t *testing.T, e testEnv, c largeTransfer) {
	in := startS3seal(t, e, e.kmsURL, "")
	mc := minioClientFor(t, in)
	bucket := newBucket(t, e)
	keys := make([]string, c.objects)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/%s/%02d", c.name, randHex(4), i)
	}
	// MinIO keeps them on local disk: gone after the case, passed or not.
	t.Cleanup(func() { removeObjects(t, e, bucket, keys) })
	ctx := context.Background()
	before := peakRSS(t, in.pid())

	start := time.Now()
	forAll(t, keys, func(key string) error { return putGenerated(ctx, mc, bucket, key, c.size) })
	putTime := time.Since(start)
	afterPut := peakRSS(t, in.pid())
	for _, key := range keys {
		checkSinglePut(t, e, bucket, key, c.size)
	}

	start = time.Now()
	forAll(t, keys, func(key string) error { return getVerified(ctx, mc, bucket, key, c.size) })
	getTime := time.Since(start)
	afterGet := peakRSS(t, in.pid())

	const m = 1 << 20
	t.Logf("s3seal peak RSS (VmHWM) with minio-go moving %d × %d MiB through it at once in single PUTs, then GETs, against %s: "+
		"%.1f MiB after start, %.1f MiB after the PUTs (%s), %.1f MiB after the GETs (%s) (limit %d MiB); this test process's own peak so far: %.1f MiB",
		c.objects, c.size/m, e.name, float64(before)/m, float64(afterPut)/m, putTime.Round(time.Second),
		float64(afterGet)/m, getTime.Round(time.Second), c.limit/m, float64(peakRSS(t, os.Getpid()))/m)
	if afterGet > c.limit {
		t.Fatalf("peak RSS %.1f MiB is above %d MiB", float64(afterGet)/m, c.limit/m)
	}
}

// checkSinglePut asserts that the store holds key as one segment of size
// plaintext bytes: what s3seal writes for a single PutObject, so the
// measurement saw no multipart upload.
func checkSinglePut(t *testing.T, e testEnv, bucket, key string, size int64) {
	t.Helper()
	info, err := store(t, e).StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("stat %s in the store: %v", key, err)
	}
	if want := envelope.SegmentSize(size); info.Size != want || etagParts(info.ETag) != 1 {
		t.Fatalf("the store holds %s as %d bytes, ETag %s; a single PUT of %d bytes is one segment of %d", key, info.Size, info.ETag, size, want)
	}
}

// minioClientFor is a minio-go client of in. Over plain HTTP it signs every
// 64 KiB chunk of a PutObject body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
func minioClientFor(t *testing.T, in *instance) *minio.Client {
	t.Helper()
	u, err := url.Parse(in.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(in.AccessKey, in.SecretKey, ""), Region: region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// forAll runs f for every key at once and fails the test on the first error.
func forAll(t *testing.T, keys []string, f func(key string) error) {
	t.Helper()
	var g errgroup.Group
	for _, key := range keys {
		g.Go(func() error { return f(key) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// generated is key's body: a ChaCha8 stream keyed by the name, so a body of
// any size is made as it is sent and checked as it comes back, never held.
func generated(key string) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte(key)))
}

// putGenerated stores size bytes of key's generated body in one PutObject.
func putGenerated(ctx context.Context, c *minio.Client, bucket, key string, size int64) error {
	body := io.LimitReader(generated(key), size)
	if _, err := c.PutObject(ctx, bucket, key, body, size, minio.PutObjectOptions{DisableMultipart: true}); err != nil {
		return fmt.Errorf("PUT %s: %w", key, err)
	}
	return nil
}

// getVerified reads key in one GET and checks it is size bytes of key's
// generated body.
func getVerified(ctx context.Context, c *minio.Client, bucket, key string, size int64) error {
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("GET %s: %w", key, err)
	}
	defer obj.Close()
	check := &sameAs{want: generated(key)}
	if _, err := io.CopyBuffer(check, obj, make([]byte, 64<<10)); err != nil {
		return fmt.Errorf("GET %s: %w", key, err)
	}
	if check.n != size {
		return fmt.Errorf("GET %s: %d bytes, want %d", key, check.n, size)
	}
	return nil
}

// sameAs is a writer that checks what is written against want's stream,
// byte for byte.
type sameAs struct {
	want *rand.ChaCha8
	buf  []byte
	n    int64 // bytes checked
}

func (s *sameAs) Write(p []byte) (int, error) {
	if cap(s.buf) < len(p) {
		s.buf = make([]byte, len(p))
	}
	want := s.buf[:len(p)]
	s.want.Read(want)
	if !bytes.Equal(p, want) {
		i := 0
		for p[i] == want[i] {
			i++
		}
		return 0, fmt.Errorf("byte %d differs from what was written", s.n+int64(i))
	}
	s.n += int64(len(p))
	return len(p), nil
}

// removeObjects deletes keys straight from the store.
func removeObjects(t *testing.T, e testEnv, bucket string, keys []string) {
	t.Helper()
	st := store(t, e)
	for _, key := range keys {
		if err := st.RemoveObject(context.Background(), bucket, key, minio.RemoveObjectOptions{}); err != nil {
			t.Errorf("removing %s: %v", key, err)
		}
	}
}
