package e2e

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// rssLimit is what s3seal may use at its peak while the AWS CLI moves a
// 1 GiB object through it with 10 concurrent requests.
const rssLimit = 128 << 20

// TestPeakRSS measures the peak resident set size (VmHWM) of an s3seal
// process while the AWS CLI uploads a 1 GiB file (multipart, 8 MiB parts,
// 10 at a time) and downloads it again (10 parallel ranged GETs), and fails
// above 128 MiB. It is a measurement, not a unit test: it runs only with
// S3SEAL_TEST_MEMCHECK=1, which scripts/test sets in a step of its own.
func TestPeakRSS(t *testing.T) {
	if os.Getenv("S3SEAL_TEST_MEMCHECK") != "1" {
		t.Skip("a 1 GiB transfer: runs in its own scripts/test step (S3SEAL_TEST_MEMCHECK=1)")
	}
	forEachUpstream(t, peakRSSOnce)
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
