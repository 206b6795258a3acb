package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/metricstest"
	"github.com/s3seal/s3seal/internal/store"
)

// serveTuned serves environ's configuration like startServer, after tune
// has changed what the test needs of the server (not of the config).
func serveTuned(t *testing.T, environ []string, tune func(*server)) *server {
	t.Helper()
	s, err := newTestServer(t, environ)
	if err != nil {
		t.Fatal(err)
	}
	tune(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return s
}

// closedWithin reports whether the server closes conn (EOF or reset)
// before wait passes; anything read before is skipped.
func closedWithin(conn net.Conn, wait time.Duration) error {
	conn.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("still open")
	}
	return nil
}

// TestSlowHeaderClosed: a client that sends part of its request line or
// headers, or nothing, and stops is disconnected within the header bound
// (S3SEAL_CLIENT_TIMEOUT when shorter than 30s).
func TestSlowHeaderClosed(t *testing.T) {
	s := startZeroConfigWith(t, "S3SEAL_CLIENT_TIMEOUT=300ms")
	for _, tc := range []struct{ name, sent string }{
		{"nothing", ""},
		{"half a request line", "GET /bucket/ke"},
		{"headers unfinished", "GET /bucket/key HTTP/1.1\r\nHost: s3seal\r\nX-Amz-Date: 2026"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.apiLn.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, tc.sent)
			if err := closedWithin(conn, 15*time.Second); err != nil { // far above 300ms: only a hang fails
				t.Error(err)
			}
		})
	}
}

func startZeroConfigWith(t *testing.T, extra ...string) *server {
	t.Helper()
	s, _ := startServer(t, append(zeroConfigEnv(t.TempDir()), extra...))
	return s
}

// TestOversizedRequests: through the real listener, request lines and
// headers over s3seal's limits get S3 XML errors; only those beyond
// http.Server.MaxHeaderBytes get net/http's own 431.
func TestOversizedRequests(t *testing.T) {
	s := startZeroConfigWith(t)
	for _, tc := range []struct {
		name       string
		query, pad int // bytes of query and of one header
		status     int
		code       string
	}{
		{"URI of 20 KiB", 20 << 10, 0, http.StatusRequestURITooLong, "RequestURITooLong"},
		{"headers of 40 KiB", 0, 40 << 10, http.StatusBadRequest, "RequestHeaderSectionTooLarge"},
		{"headers of 100 KiB", 0, 100 << 10, http.StatusRequestHeaderFieldsTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", s.endpoint()+"/bucket/key?x="+strings.Repeat("a", tc.query), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.pad > 0 {
				req.Header.Set("X-Pad", strings.Repeat("a", tc.pad))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || store.ErrorCode(body) != tc.code {
				t.Errorf("answered %d %.200s, want %d %q", resp.StatusCode, body, tc.status, tc.code)
			}
		})
	}
}

// TestNewConnLimit: the cap leaves the reserve (at most half of the
// limit) to the store, the key service and files.
func TestNewConnLimit(t *testing.T) {
	for _, tc := range []struct {
		nofile      uint64
		maxInflight int
		want        int64
	}{
		{0, 1024, 0},
		{1024, 1024, 512},
		{65536, 1024, 65536 - 3072},
		{1 << 20, 0, 1 << 19},
		{1 << 20, 16, 1<<20 - 1056},
		{1 << 62, 1024, 1<<31 - 3072},
	} {
		if got := newConnLimit(tc.nofile, tc.maxInflight, testLogger(t)).max; got != tc.want {
			t.Errorf("nofile %d, max inflight %d: cap %d, want %d", tc.nofile, tc.maxInflight, got, tc.want)
		}
	}
}

// TestConnLimit: beyond the cap, a new connection is closed at once, and
// the accepted ones are served; once some close, new ones are taken again.
func TestConnLimit(t *testing.T) {
	const max = 4
	s := serveTuned(t, zeroConfigEnv(t.TempDir()), func(s *server) { s.conns.max = max })
	held := fillToCap(t, s.apiLn.Addr().String(), s.conns)
	for _, c := range held {
		c.Close()
	}
	waitFor(t, func() bool { return s.conns.open.Load() == 0 })
	client := s3Client(t, s.endpoint(), s.cred.AccessKey, s.cred.SecretKey)
	if _, err := client.ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Errorf("once connections closed: %v", err)
	}
}

// TestConnLimitOtherListeners: the KMS API's connections count toward the
// S3 listener's cap (one pool of client connections), and the metrics
// listener has a cap of its own, which a flood of it leaves the S3
// listener out of.
func TestConnLimitOtherListeners(t *testing.T) {
	const max = 3
	s := serveTuned(t, zeroConfigEnv(t.TempDir()), func(s *server) { s.conns.max, s.healthConns.max = max, max })
	if s.healthConns == s.conns || s.health.ConnState == nil || s.kmsAPI.ConnState == nil {
		t.Fatal("the metrics or KMS API listener is not capped")
	}
	for _, c := range fillToCap(t, s.healthLn.Addr().String(), s.healthConns) {
		c.Close()
	}
	waitFor(t, func() bool { return s.healthConns.open.Load() == 0 })
	if got := scrapeMetrics(t, s).Sum("s3seal_refused_total", "listener=S3SEAL_METRICS_ADDR", "reason=over_cap"); got != 1 {
		t.Errorf("refused connections to the metrics listener counted %v, want 1", got)
	}
	// Full again (the scrape may have kept a connection open).
	held := openConns(t, s.healthLn.Addr().String(), s.healthConns, int(s.healthConns.max-s.healthConns.open.Load()))
	client := s3Client(t, s.endpoint(), s.cred.AccessKey, s.cred.SecretKey)
	if _, err := client.ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Errorf("S3 with the metrics listener full: %v", err)
	}
	// The S3 client's kept-alive connection and the KMS API's fill the one
	// pool: then the S3 listener takes no more.
	n := int(s.conns.max - s.conns.open.Load())
	if n < 1 {
		t.Fatalf("%d S3 connections open after one request", s.conns.open.Load())
	}
	openConns(t, s.kmsAPILn.Addr().String(), s.conns, n)
	fillToCap(t, s.apiLn.Addr().String(), s.conns)
	for _, c := range held {
		c.Close()
	}
	waitFor(t, func() bool { return s.healthConns.open.Load() < s.healthConns.max }) // room to scrape
	if got := scrapeMetrics(t, s).Sum("s3seal_refused_total", "listener=S3SEAL_ADDR", "reason=over_cap"); got != 1 {
		t.Errorf("refused S3 connections counted %v, want 1", got)
	}
}

// scrapeMetrics reads s's /metrics.
func scrapeMetrics(t *testing.T, s *server) metricstest.Scrape {
	t.Helper()
	sc, err := metricstest.Get(s.healthURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// openConns opens n connections to addr, each counted by l before the
// next is opened, and returns them (closed when the test ends).
func openConns(t *testing.T, addr string, l *connLimit, n int) []net.Conn {
	t.Helper()
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for range n {
		before := l.open.Load()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		waitFor(t, func() bool { return l.open.Load() == before+1 })
	}
	return held
}

// fillToCap opens connections to addr until l, which counts them, is at
// its cap, checks that one more is closed at once, and returns the ones
// it opened (closed when the test ends).
func fillToCap(t *testing.T, addr string, l *connLimit) []net.Conn {
	t.Helper()
	held := openConns(t, addr, l, int(l.max-l.open.Load()))
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := closedWithin(extra, 10*time.Second); err != nil {
		t.Errorf("a connection to %s beyond the cap: %v", addr, err)
	}
	return held
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}

// TestIdleConnectionsReleased: thousands of connections that send nothing,
// or one request and then nothing, neither keep a signed request from
// being served nor keep their descriptors: the server closes them after
// the header bound and the idle timeout, and the process's descriptor
// count comes back down.
func TestIdleConnectionsReleased(t *testing.T) {
	const silent, keptAlive = 1800, 200
	if lim, err := raiseFileLimit(); err != nil || lim < 2*(silent+keptAlive)+1024 {
		t.Skipf("open-file limit %d (%v): too low for this test", lim, err)
	}
	// Bounds long enough for all connections to be open at once, even on
	// a loaded machine under -race, and short enough for a test.
	s := serveTuned(t, append(zeroConfigEnv(t.TempDir()), "S3SEAL_CLIENT_TIMEOUT=10s"),
		func(s *server) { s.api.IdleTimeout = 10 * time.Second })
	client := s3Client(t, s.endpoint(), s.cred.AccessKey, s.cred.SecretKey)
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("idle")}); err != nil {
		t.Fatal(err)
	}
	base := countFDs(t)
	conns := openIdle(t, s.apiLn.Addr().String(), silent, keptAlive)
	waitFor(t, func() bool { return s.conns.open.Load() >= silent+keptAlive })
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("idle"), Key: aws.String("k"),
		Body: strings.NewReader("served")}); err != nil {
		t.Errorf("with %d idle connections open: %v", len(conns), err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, c := range conns {
		if err := closedWithin(c, time.Until(deadline)); err != nil {
			t.Fatalf("connection %d of %d: %v", i, len(conns), err)
		}
		c.Close()
	}
	// The client's own keep-alive connection closes after IdleTimeout too.
	waitFor(t, func() bool { return countFDs(t) <= base+16 })
}

// openIdle opens keptAlive connections that send one (unsigned, refused)
// request, read its answer, then idle, and then silent ones that send
// nothing: those are quick to open, so all are open at once.
func openIdle(t *testing.T, addr string, silent, keptAlive int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close() // closing twice is harmless
		}
	})
	dial := func(n int) {
		for i := range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("dial %d: %v", i, err)
			}
			conns = append(conns, c)
		}
	}
	dial(keptAlive)
	for _, c := range conns {
		io.WriteString(c, "GET /idle HTTP/1.1\r\nHost: s3seal\r\n\r\n")
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		if n, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 403") {
			t.Fatalf("a kept-alive connection's request: %q %v", buf[:n], err)
		}
	}
	dial(silent)
	return conns
}

// countFDs is how many file descriptors the test process has open: the
// server runs in it.
func countFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) {
		t.Skip("no /proc/self/fd")
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
