package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// Leak tolerances: what an idle s3seal may hold at the end of a soak
// beyond what it held at the start, once its keep-alive connections to
// the store and the KMS are discounted (their number follows the load,
// and they close only after 90 s idle).
const (
	soakGoroutineSlack = 5
	soakFDSlack        = 3
)

// TestSoak runs the soak workload — 64 clients, a weighted mix of PUT
// (0 to 64 MiB, mostly small), multipart, GET, ranged GET, HEAD, LIST,
// server-side COPY and DELETE, every read checked byte for byte — against
// one s3seal in front of MinIO for S3SEAL_TEST_SOAK (a duration: 60s in
// scripts/test's soak step, 10m for the full run), and fails on any error,
// any wrong byte, any write not read back, or goroutines and open file
// descriptors of s3seal that outlive the load. It logs a report table
// and s3seal's peak RSS. Without S3SEAL_TEST_SOAK it skips: it is a
// measurement of its own step, without the race detector.
func TestSoak(t *testing.T) {
	d := soakDuration(t, "S3SEAL_TEST_SOAK")
	e := minioEnv(t)
	in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_LOG_LEVEL=warn")
	bucket := newBucket(t, e)
	t.Cleanup(func() { emptyBucket(t, store(t, e), bucket) })
	w := &soakWorkload{
		Clients: 64, KeysPerClient: 8, Duration: d, MaxSize: 64 << 20,
		Bucket: bucket, AccessKey: in.AccessKey, SecretKey: in.SecretKey, Retries: 1,
	}
	before := procSnapshotOf(t, in)
	rep, err := w.Run(context.Background(), []string{in.URL})
	if err != nil {
		t.Fatal(err)
	}
	after := settle(t, in, before, 30*time.Second)
	const m = 1 << 20
	t.Logf("soak: %d clients for %s (final reads %s) against one s3seal in front of MinIO\n%s"+
		"s3seal peak RSS (VmHWM) %.1f MiB\n"+
		"s3seal at start: %s\ns3seal after the run and an idle settle: %s",
		w.Clients, rep.Mix.Round(time.Second), rep.Verify.Round(100*time.Millisecond), rep.table(), float64(peakRSS(t, in.pid()))/m, before, after)
	checkSoakReport(t, rep)
	if after.goroutines()-before.goroutines() > soakGoroutineSlack || after.fileDescriptors()-before.fileDescriptors() > soakFDSlack {
		t.Errorf("s3seal leaks: %s at start, %s at the end", before, after)
	}
}

// soakDuration is the duration in the environment variable env, and skips
// the test when it is unset.
func soakDuration(t *testing.T, env string) time.Duration {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Skipf("a soak run: runs in its own scripts/test step (%s=60s, or 10m)", env)
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a duration such as 60s or 10m", env, v)
	}
	return d
}

// checkSoakReport fails on any error or wrong read of a run, naming the
// first few.
func checkSoakReport(t *testing.T, rep soakReport) {
	t.Helper()
	errs, wrong := rep.totals()
	if errs == 0 && wrong == 0 {
		return
	}
	for i, e := range rep.Errors {
		if i == 20 {
			t.Logf("... and %d more", len(rep.Errors)-i)
			break
		}
		t.Logf("%s %s %s: %v", e.At.Format("15:04:05.000"), e.Op, e.Key, e.Err)
	}
	t.Errorf("%d errors and %d wrong reads", errs, wrong)
}

// procSnapshot is what an s3seal process holds at one moment.
type procSnapshot struct {
	Goroutines int // go_goroutines from /metrics
	FDs        int // entries in /proc/PID/fd
	// Outbound are its established TCP connections to others (the store,
	// the KMS): each is one descriptor and two goroutines (net/http's
	// read and write loops) that an idle pool keeps for 90 s.
	Outbound int
	Inbound  int // established connections to its listeners
}

// goroutines and fileDescriptors are the counts without the outbound
// keep-alive pool.
func (p procSnapshot) goroutines() int      { return p.Goroutines - 2*p.Outbound }
func (p procSnapshot) fileDescriptors() int { return p.FDs - p.Outbound }

func (p procSnapshot) String() string {
	return fmt.Sprintf("%d goroutines, %d open fds, %d outbound and %d inbound connections (%d goroutines and %d fds without the outbound pool)",
		p.Goroutines, p.FDs, p.Outbound, p.Inbound, p.goroutines(), p.fileDescriptors())
}

// settle waits up to limit for in to come back to what it held in before
// (within the slack), and returns what it holds then.
func settle(t *testing.T, in *instance, before procSnapshot, limit time.Duration) procSnapshot {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		now := procSnapshotOf(t, in)
		if (now.goroutines()-before.goroutines() <= soakGoroutineSlack && now.fileDescriptors()-before.fileDescriptors() <= soakFDSlack) ||
			time.Now().After(deadline) {
			return now
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// procSnapshotOf reads in's descriptors and connections from /proc, then
// its goroutines from /metrics (on a connection closed after it, which
// the count includes at start and end alike).
func procSnapshotOf(t *testing.T, in *instance) procSnapshot {
	t.Helper()
	var p procSnapshot
	pid := in.pid()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	p.FDs = len(fds)
	sockets := map[string]bool{}
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			sockets[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	listening := map[string]bool{}
	for _, u := range []string{in.URL, in.MetricsURL, in.KMSAPIURL} {
		listening[fmt.Sprintf("%04X", mustPort(t, u))] = true
	}
	for _, f := range []string{"tcp", "tcp6"} {
		countConns(t, fmt.Sprintf("/proc/%d/net/%s", pid, f), sockets, listening, &p)
	}
	p.Goroutines = metricValue(t, in.MetricsURL, "go_goroutines")
	return p
}

// countConns counts the established connections of a /proc/net/tcp table
// whose sockets are in sockets, as inbound when their local port is one
// of listening (hex, as the table has it), outbound otherwise.
func countConns(t *testing.T, table string, sockets, listening map[string]bool, p *procSnapshot) {
	t.Helper()
	f, err := os.Open(table)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "01" || !sockets[fields[9]] {
			continue
		}
		if _, port, _ := strings.Cut(fields[1], ":"); listening[port] {
			p.Inbound++
		} else {
			p.Outbound++
		}
	}
}

func mustPort(t *testing.T, u string) int {
	t.Helper()
	_, port, _ := strings.Cut(hostPort(u), ":")
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("no port in %q", u)
	}
	return n
}

// metricValue reads one unlabelled gauge from a /metrics page.
func metricValue(t *testing.T, metricsURL, name string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, metricsURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s %q: %v", name, v, err)
			}
			return int(f)
		}
	}
	t.Fatalf("no %s in %s/metrics", name, metricsURL)
	return 0
}

// emptyBucket removes every object from bucket (straight from the store)
// so a long run leaves no disk behind.
func emptyBucket(t *testing.T, st *minio.Client, bucket string) {
	t.Helper()
	ctx := context.Background()
	objects := st.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
	for e := range st.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		t.Errorf("removing %s: %v", e.ObjectName, e.Err)
	}
	if err := st.RemoveBucket(ctx, bucket); err != nil {
		t.Errorf("removing bucket %s: %v", bucket, err)
	}
}
