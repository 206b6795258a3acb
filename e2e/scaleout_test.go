package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testkms"
)

// faultGrace is how long after a fault's end (its server back in HAProxy)
// an operation that fails still counts as the fault's when it began by
// then: minio-go retries 10 times with at most 1 s of backoff, and a
// store stalled by the fault holds a request up to s3seal's upstream
// timeout (1 minute) before s3seal answers 503.
const faultGrace = 15 * time.Second

// TestScaleOut runs the soak workload through HAProxy in front of three
// s3seal replicas in front of a distributed MinIO (four server processes,
// two drives each, one erasure set, behind a second HAProxy), one KMS,
// for S3SEAL_TEST_SCALEOUT (a duration, at least 2m), with minio-go's
// ordinary retries. A quarter in, one replica is killed with SIGKILL and
// restarted; halfway, one MinIO node is stopped for 30 s and restarted.
// It fails on any wrong byte, any acknowledged write that does not read
// back at the end, and any client error outside the faults (errors
// during them are counted, not failures), and logs the figures of
// docs/scaleout.md. Not part of the default run: scripts/test runs it
// alone with S3SEAL_TEST_SCALEOUT set.
func TestScaleOut(t *testing.T) {
	d := soakDuration(t, "S3SEAL_TEST_SCALEOUT")
	if d < 2*time.Minute {
		t.Fatalf("S3SEAL_TEST_SCALEOUT=%s: at least 2m, the faults take over a minute", d)
	}
	bin, kmsURL := os.Getenv("S3SEAL_TEST_MINIO_BINARY"), os.Getenv(testkms.EndpointEnv)
	if bin == "" || kmsURL == "" {
		t.Fatalf("S3SEAL_TEST_MINIO_BINARY and %s must be set: run it through scripts/test", testkms.EndpointEnv)
	}
	ak, sk := "s3seal-scaleout", "minio-"+randHex(12)
	nodes := startMinIOCluster(t, bin, ak, sk, 4, 2)
	storeLB := startHAProxy(t, lbBackend{Name: "minio", CheckPath: "/minio/health/live", Servers: nodeServers(nodes)})
	e := testEnv{name: "minio-distributed", kmsURL: kmsURL, storeURL: storeLB.URL, storeAK: ak, storeSK: sk}
	replicas := []*instance{startS3seal(t, e, kmsURL, "", "S3SEAL_LOG_LEVEL=warn")}
	replicas = append(replicas, startReplica(t, replicas[0]), startReplica(t, replicas[0]))
	lb := startHAProxy(t, lbBackend{Name: "s3seal", CheckPath: "/readyz", Servers: replicaServers(t, replicas)})
	bucket := newBucket(t, e)
	t.Cleanup(func() { emptyBucket(t, store(t, e), bucket) })

	w := &soakWorkload{
		Clients: 64, KeysPerClient: 8, Duration: d, MaxSize: 64 << 20,
		Bucket: bucket, AccessKey: replicas[0].AccessKey, SecretKey: replicas[0].SecretKey, Retries: 10,
	}
	type result struct {
		rep soakReport
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		rep, err := w.Run(context.Background(), []string{lb.URL})
		done <- result{rep, err}
	}()
	// The faults run here, on the test's goroutine, which may fail the test.
	first, err := lb.counters()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(d / 4)
	before, _ := lb.counters()
	faults := []*faultRecord{killReplica(t, replicas[1], "r2", lb)}
	after := faults[0].countLB(t, lb, before)
	time.Sleep(time.Until(start.Add(d / 2)))
	faults = append(faults, bounceNode(t, nodes[3], "m4", bin, storeLB))
	faults[1].countLB(t, lb, after)
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	last, err := lb.counters()
	if err != nil {
		t.Fatal(err)
	}
	reportScaleOut(t, w, res.rep, faults, replicas, diffCounters(last, first))
}

// nodeServers are the MinIO nodes as HAProxy servers m1, m2, ...
func nodeServers(nodes []*minioNode) []lbServer {
	var s []lbServer
	for i, n := range nodes {
		s = append(s, lbServer{Name: fmt.Sprintf("m%d", i+1), Addr: n.addr})
	}
	return s
}

// replicaServers are the s3seal replicas as HAProxy servers r1, r2, ...,
// checked on their metrics port's /readyz.
func replicaServers(t *testing.T, replicas []*instance) []lbServer {
	var s []lbServer
	for i, r := range replicas {
		s = append(s, lbServer{Name: fmt.Sprintf("r%d", i+1), Addr: hostPort(r.URL), CheckPort: mustPort(t, r.MetricsURL)})
	}
	return s
}

// faultRecord is one injected fault and how the system came back.
type faultRecord struct {
	what       string
	start, end time.Time     // from the fault to its server back in HAProxy
	detect     time.Duration // until HAProxy took the server out
	down       time.Duration // how long it was left down
	ready      time.Duration // from the restart until it answered its health check
	back       time.Duration // from the restart until HAProxy sent it traffic again
	// lb counts the attempts that failed at the s3seal HAProxy (and were
	// retried) from the fault to faultGrace after its end.
	lb   map[string]int64
	note string
}

// countLB waits until faultGrace after f's end and sets f.lb to what lb
// counted since before.
func (f *faultRecord) countLB(t *testing.T, lb *haproxy, before map[string]int64) map[string]int64 {
	t.Helper()
	time.Sleep(time.Until(f.end.Add(faultGrace)))
	now, err := lb.counters()
	if err != nil {
		t.Fatal(err)
	}
	f.lb = diffCounters(now, before)
	return now
}

func diffCounters(now, before map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for k, v := range now {
		d[k] = v - before[k]
	}
	return d
}

// formatCounters is counters as "name n, ...".
func formatCounters(c map[string]int64) string {
	var parts []string
	for _, name := range lbCounters {
		parts = append(parts, fmt.Sprintf("%s %d", name, c[name]))
	}
	return strings.Join(parts, ", ")
}

// killReplica kills replica r (HAProxy server name) with SIGKILL, leaves
// it down 5 s, and starts it again on the same addresses.
func killReplica(t *testing.T, r *instance, name string, lb *haproxy) *faultRecord {
	t.Helper()
	f := &faultRecord{what: "s3seal replica " + name + ": SIGKILL, restart after 5 s", start: time.Now()}
	f.note = fmt.Sprintf("; its peak RSS before the kill %.1f MiB", float64(peakRSS(t, r.pid()))/(1<<20))
	r.stopWith(t, syscall.SIGKILL)
	var err error
	if f.detect, err = lb.waitStatus(name, "DOWN", 30*time.Second); err != nil {
		t.Error(err)
	}
	time.Sleep(time.Until(f.start.Add(5 * time.Second)))
	f.down = time.Since(f.start)
	restart := time.Now()
	r.launch(t)
	f.ready = time.Since(restart)
	if _, err := lb.waitStatus(name, "UP", 30*time.Second); err != nil {
		t.Error(err)
	}
	f.back, f.end = time.Since(restart), time.Now()
	return f
}

// bounceNode stops MinIO node n (HAProxy server name) with SIGTERM, leaves
// it down 30 s, and starts it again.
func bounceNode(t *testing.T, n *minioNode, name, bin string, lb *haproxy) *faultRecord {
	t.Helper()
	f := &faultRecord{what: "MinIO node " + name + ": SIGTERM, restart after 30 s", start: time.Now()}
	n.stop(t)
	var err error
	if f.detect, err = lb.waitStatus(name, "DOWN", 30*time.Second); err != nil {
		t.Error(err)
	}
	time.Sleep(time.Until(f.start.Add(30 * time.Second)))
	f.down = time.Since(f.start)
	restart := time.Now()
	n.start(t, bin)
	if f.ready, err = waitHTTP("http://"+n.addr+"/minio/health/cluster", 2*time.Minute); err != nil {
		t.Errorf("%v; its log:\n%s", err, n.log())
	}
	if _, err := lb.waitStatus(name, "UP", 30*time.Second); err != nil {
		t.Error(err)
	}
	f.back, f.end = time.Since(restart), time.Now()
	return f
}

// reportScaleOut logs the run's figures and fails on wrong reads, lost
// writes and errors outside the faults.
func reportScaleOut(t *testing.T, w *soakWorkload, rep soakReport, faults []*faultRecord, replicas []*instance, lbTotal map[string]int64) {
	t.Helper()
	during := make([]int, len(faults))
	var outside, wrong []soakError
	for _, e := range rep.Errors {
		in := -1
		for i, f := range faults {
			// An operation under way during the fault is the fault's,
			// however long it then took to fail.
			if !e.At.Before(f.start) && !e.Start.After(f.end.Add(faultGrace)) {
				in = i
			}
		}
		switch {
		case e.Wrong:
			wrong = append(wrong, e)
		case in >= 0:
			during[in]++
		default:
			outside = append(outside, e)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "scale-out: %d clients for %s (final reads %s) through HAProxy, 3 s3seal replicas, a 4-node MinIO (8 drives, one erasure set)\n%s",
		w.Clients, rep.Mix.Round(time.Second), rep.Verify.Round(100*time.Millisecond), rep.table())
	for i, f := range faults {
		fmt.Fprintf(&b, "%s at %s: out of HAProxy after %s, down %s, restart to healthy %s, restart to back in HAProxy %s; "+
			"operations under way from the fault to %s after it that failed (after retries): %d; failed attempts at HAProxy meanwhile: %s%s\n",
			f.what, f.start.Format("15:04:05"), f.detect.Round(100*time.Millisecond), f.down.Round(100*time.Millisecond),
			f.ready.Round(100*time.Millisecond), f.back.Round(100*time.Millisecond), faultGrace, during[i], formatCounters(f.lb), f.note)
	}
	fmt.Fprintf(&b, "whole run: %d client errors outside the faults, failed attempts at HAProxy: %s\n", len(outside), formatCounters(lbTotal))
	for i, r := range replicas {
		fmt.Fprintf(&b, "s3seal r%d peak RSS (VmHWM, since its last start) %.1f MiB\n", i+1, float64(peakRSS(t, r.pid()))/(1<<20))
	}
	t.Log(b.String())
	for _, e := range append(wrong, outside...) {
		t.Errorf("%s %s %s: %v", e.At.Format("15:04:05.000"), e.Op, e.Key, e.Err)
	}
	for i, e := range rep.Errors {
		if i < 20 {
			t.Logf("client error: %s %s %s: %v", e.At.Format("15:04:05.000"), e.Op, e.Key, e.Err)
		}
	}
}
