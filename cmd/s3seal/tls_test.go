package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/xml"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/config"
	"github.com/s3seal/s3seal/internal/testcert"
	"github.com/s3seal/s3seal/internal/testlog"
	"github.com/s3seal/s3seal/internal/tlsport"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key as PEM.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	c := testcert.New(t, &x509.Certificate{Subject: pkix.Name{CommonName: "s3seal test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}, nil)
	certFile, keyFile = testcert.WriteChain(t, dir, "cert", c)
	pool = x509.NewCertPool()
	pool.AddCert(c.Cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeSelfSigned(t, dir)
	s, _ := startServer(t, append(zeroConfigEnv(filepath.Join(dir, "data")), "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile))

	if !strings.HasPrefix(s.endpoint(), "https://127.0.0.1:") {
		t.Fatalf("endpoint %s, want https", s.endpoint())
	}
	anonymousOverTLS(t, s, pool)
}

// anonymousOverTLS checks that s answers an unsigned GET over TLS, with
// the certificate trusted through pool: refused (403), but over TLS.
func anonymousOverTLS(t *testing.T, s *server, pool *x509.CertPool) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(s.endpoint() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous GET over TLS: %d, want 403", resp.StatusCode)
	}
}

func TestServeTLSBadFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	env := append(zeroConfigEnv(filepath.Join(dir, "data")), "S3SEAL_TLS_CERT="+missing, "S3SEAL_TLS_KEY="+missing)
	if _, err := newTestServer(t, env); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("got %v, want a tls error at start", err)
	}
}

// A plain HTTP request to a TLS port gets an error in the port's own
// protocol that says to use https, in plain HTTP; TLS keeps working.
func TestPlainHTTPOnTLSPort(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeSelfSigned(t, dir)
	s, _ := startServer(t, append(zeroConfigEnv(filepath.Join(dir, "data")), "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile))
	s3Addr, kmsAddr := s.apiLn.Addr().String(), s.kmsAPILn.Addr().String()
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	t.Run("S3", func(t *testing.T) {
		resp, err := plain.Get("http://" + s3Addr + "/demo/some%20key")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var doc struct{ Code, Message, Resource, RequestId, HostId string }
		if err := xml.Unmarshal(body, &doc); err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%d %s (%v), want 400 and an S3 error", resp.StatusCode, body, err)
		}
		want := "This port serves HTTPS: use https://" + s3Addr + " as the endpoint."
		if doc.Code != "InvalidRequest" || doc.Message != want || doc.Resource != "/demo/some key" {
			t.Errorf("got %+v, want InvalidRequest %q for /demo/some key", doc, want)
		}
		if doc.RequestId == "" || doc.RequestId != resp.Header.Get("X-Amz-Request-Id") || doc.HostId != resp.Header.Get("X-Amz-Id-2") ||
			resp.Header.Get("Content-Type") != "application/xml" {
			t.Errorf("headers %v do not name the document's request %s", resp.Header, body)
		}
	})
	t.Run("S3 HEAD", func(t *testing.T) {
		resp, err := plain.Head("http://" + s3Addr + "/demo/k")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amz-Request-Id") == "" {
			t.Errorf("HEAD: %d %v, want 400 with a request id", resp.StatusCode, resp.Header)
		}
	})
	t.Run("KMS API", func(t *testing.T) {
		resp, err := plain.Post("http://"+kmsAddr+"/", "application/x-amz-json-1.1", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := `{"__type":"ValidationException","message":"This port serves HTTPS: use https://` + kmsAddr + ` as the endpoint."}`
		if resp.StatusCode != http.StatusBadRequest || string(body) != want || resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
			t.Errorf("%d %s %s, want 400 %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
		}
	})
	t.Run("not HTTP at all", func(t *testing.T) {
		c, err := net.Dial("tcp", s3Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("\x00\x01garbage\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(got), "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(string(got), "<Code>InvalidRequest</Code>") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("TLS still", func(t *testing.T) { anonymousOverTLS(t, s, pool) })
}

// The banner names s3seal by a name the certificate has (a listener on
// 0.0.0.0 has none), and says what clients need to trust the certificate:
// the certificate file as their CA bundle when it ends in a self-signed
// certificate, the CA that signed it when the file lacks that CA; it warns
// only of a certificate clients refuse whatever they trust.
func TestBannerTLS(t *testing.T) {
	certs := testcert.NewSet(t)
	selfSignedNote := "The TLS certificate is not signed by a CA this system trusts: clients need\n" +
		"it as their CA bundle (aws --ca-bundle, AWS_CA_BUNDLE for SDKs; README, \"TLS\")."
	tests := []struct {
		name  string
		chain []testcert.Cert
		addr  string
		want  []string
		not   []string
	}{
		{"self-signed for 127.0.0.1", []testcert.Cert{certs.IP}, "127.0.0.1:0", []string{
			"  endpoint    https://127.0.0.1:{port}\n",
			"aws --endpoint-url https://127.0.0.1:{port} --ca-bundle {file} s3 mb s3://demo", selfSignedNote,
		}, []string{"does not verify"}},
		{"self-signed for a DNS name, on 0.0.0.0", []testcert.Cert{certs.DNS}, "0.0.0.0:0", []string{
			"  endpoint    https://s3.example.com:{port}\n", "  kms api     https://s3.example.com:{kmsport}  ",
			"aws --endpoint-url https://s3.example.com:{port} --ca-bundle {file} s3 mb s3://demo", selfSignedNote,
		}, []string{"does not verify", "127.0.0.1:{port}"}},
		{"signed by a CA the file lacks", []testcert.Cert{certs.ByCA}, "0.0.0.0:0", []string{
			"  endpoint    https://s3.example.com:{port}\n",
			"The TLS certificate is signed by CN=s3seal test CA, a CA this system does not trust,\n" +
				"and S3SEAL_TLS_CERT does not hold it: clients need that CA's certificate as their CA\n" +
				"bundle (aws --ca-bundle CA.pem, AWS_CA_BUNDLE=CA.pem for SDKs; README, \"TLS\").",
			"aws --endpoint-url https://s3.example.com:{port} s3 mb s3://demo",
		}, []string{"does not verify", "--ca-bundle {file}"}},
		{"expired", []testcert.Cert{certs.Expired}, "0.0.0.0:0", []string{
			"The TLS certificate is not valid now, so clients will refuse it: x509: certificate has expired or is not yet valid",
			"Renew it (or check this machine's clock), and restart s3seal (README, \"TLS\").",
		}, []string{"--ca-bundle {file}"}},
		{"for no name the banner could show", []testcert.Cert{certs.Wildcard}, "0.0.0.0:0", []string{
			"  endpoint    https://127.0.0.1:{port}\n",
			"The TLS certificate does not verify for 127.0.0.1, so clients will refuse it: " +
				"x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs\n" +
				"Use a certificate for that name (README, \"TLS\"), or a name the certificate has in --endpoint-url.",
		}, []string{"--ca-bundle {file}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := testcert.WriteChain(t, dir, "cert", tt.chain...)
			s, err := newTestServer(t, append(zeroConfigEnv(filepath.Join(dir, "data")),
				"S3SEAL_ADDR="+tt.addr, "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			s.writeBanner(&b)
			_, port, _ := net.SplitHostPort(s.apiLn.Addr().String())
			_, kmsPort, _ := net.SplitHostPort(s.kmsAPILn.Addr().String())
			fill := strings.NewReplacer("{port}", port, "{kmsport}", kmsPort, "{file}", certFile).Replace
			for _, want := range tt.want {
				if !strings.Contains(b.String(), fill(want)) {
					t.Errorf("banner lacks %q:\n%s", fill(want), b.String())
				}
			}
			for _, not := range tt.not {
				if strings.Contains(b.String(), fill(not)) {
					t.Errorf("banner has %q:\n%s", fill(not), b.String())
				}
			}
		})
	}
}

func TestShellWord(t *testing.T) {
	for in, want := range map[string]string{"/tmp/cert.pem": "/tmp/cert.pem", "/my certs/a.pem": "'/my certs/a.pem'", "it's": `'it'\''s'`} {
		if got := shellWord(in); got != want {
			t.Errorf("shellWord(%q) = %q, want %q", in, got, want)
		}
	}
}

// On the TLS port the connection cap holds as on a plain one: plain HTTP
// requests are answered and their connections released, and a connection
// beyond the cap is closed at once; s3seal_refused_total counts both.
func TestConnLimitTLS(t *testing.T) {
	const max = 2
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	s := serveTuned(t, append(zeroConfigEnv(filepath.Join(dir, "data")), "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile),
		func(s *server) { s.conns.max = max })
	addr := s.apiLn.Addr().String()
	for range 2 * max {
		plainGet(t, addr)
		// Released once s3seal sees the client close (tlsport.HTTPSOnly drains until then).
		waitFor(t, func() bool { return s.conns.open.Load() == 0 })
	}
	plainGet(t, s.kmsAPILn.Addr().String())
	waitFor(t, func() bool { return s.conns.open.Load() == 0 })
	fillToCap(t, addr, s.conns)
	sc := scrapeMetrics(t, s)
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"listener=S3SEAL_ADDR", "reason=plain_http"}, 2 * max},
		{[]string{"listener=S3SEAL_KMS_API_ADDR", "reason=plain_http"}, 1},
		{[]string{"listener=S3SEAL_ADDR", "reason=over_cap"}, 1},
	} {
		if got := sc.Sum("s3seal_refused_total", c.labels...); got != c.want {
			t.Errorf("s3seal_refused_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
}

// A plain PUT with a body the client sends in full before it reads still
// gets the whole answer: s3seal half-closes and reads what follows for a
// while rather than closing with the body unread, which resets the
// connection and can discard the answer unread. The connection is gone
// within that while all the same.
func TestPlainHTTPBodyDrained(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	s, _ := startServer(t, append(zeroConfigEnv(filepath.Join(dir, "data")), "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile))
	c, err := net.Dial("tcp", s.apiLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 1 << 20
	req := "PUT /demo/k HTTP/1.1\r\nHost: " + s.apiLn.Addr().String() + "\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n"
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		c.Write(append([]byte(req), make([]byte, size)...)) // may fail once s3seal closes
	}()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	<-sent
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "<Code>InvalidRequest</Code>") {
		t.Fatalf("%d %s (%v), want the whole 400 answer", resp.StatusCode, body, err)
	}
	// The client keeps its end open: s3seal closes after tlsport.PlainDrainTimeout.
	waitFor(t, func() bool { return s.conns.open.Load() == 0 })
	if d := time.Since(start); d > tlsport.PlainDrainTimeout+2*time.Second {
		t.Errorf("connection closed after %v, want within %v", d, tlsport.PlainDrainTimeout)
	}
}

// A plain HEAD gets the answer's head (no body, on the KMS API's port its
// Content-Length all the same), and what the client sent after it is read
// and discarded before s3seal closes: closing with it unread resets the
// connection, which can discard the answer before the client reads it.
func TestPlainHTTPHead(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	s, _ := startServer(t, append(zeroConfigEnv(filepath.Join(dir, "data")), "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile))
	for _, ln := range []net.Listener{s.apiLn, s.kmsAPILn} {
		start := time.Now()
		plainHead(t, ln.Addr().String())
		waitFor(t, func() bool { return s.conns.open.Load() == 0 })
		if d := time.Since(start); d > tlsport.PlainDrainTimeout+2*time.Second {
			t.Errorf("connection closed after %v, want within %v", d, tlsport.PlainDrainTimeout)
		}
	}
}

// plainHead sends a plain HEAD with bytes after its head to the TLS port
// at addr and checks that it is answered 400, then the connection ends
// cleanly.
func plainHead(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// More than s3seal reads with the head, so that some are left unread.
	head := "HEAD / HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		c.Write(append([]byte(head), make([]byte, 4*tlsport.PlainHeadMax)...)) // may fail once s3seal closes
	}()
	<-sent
	time.Sleep(200 * time.Millisecond) // s3seal has answered and closed (or reset) by now
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
	if err != nil {
		t.Fatalf("%s: no answer: %v", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("%s: %d, want 400", addr, resp.StatusCode)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("%s: after the head: %q, %v; want a clean end of the connection", addr, rest, err)
	}
}

// Plain HTTP requests on a TLS port are answered, but not logged one line
// each, which any client could use to flood the log, nor are other failed
// handshakes (connections closed at once): the first of each kind is said
// at once, for each port, then at most one line a minute with the count.
func TestPlainHTTPLogQuiet(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	cfg, err := config.Load(append(zeroConfigEnv(filepath.Join(dir, "data")), "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile))
	if err != nil {
		t.Fatal(err)
	}
	var logs testlog.Buffer
	s, err := newServer(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.closeAll)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	defer func() { cancel(); <-done }()

	for _, ln := range []net.Listener{s.apiLn, s.kmsAPILn} {
		for range 50 {
			plainGet(t, ln.Addr().String())
		}
		for range 20 { // a load balancer's TCP checks: connect, close
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
	}
	handshakeLines := func() []string {
		var lines []string
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "plain HTTP") || strings.Contains(line, "handshake") {
				lines = append(lines, line)
			}
		}
		return lines
	}
	want := []string{
		`msg="plain HTTP requests on a TLS port, answered with an error that says to use https (said at most once a minute)" port=S3SEAL_ADDR requests=1`,
		`msg="TLS handshakes failed on a TLS port (said at most once a minute, the first one's reason at once)" port=S3SEAL_ADDR connections=1 reason=EOF`,
		`msg="plain HTTP requests on a TLS port, answered with an error that says to use https (said at most once a minute)" port=S3SEAL_KMS_API_ADDR requests=1`,
		`msg="TLS handshakes failed on a TLS port (said at most once a minute, the first one's reason at once)" port=S3SEAL_KMS_API_ADDR connections=1 reason=EOF`,
	}
	waitFor(t, func() bool { return len(handshakeLines()) >= len(want) })
	time.Sleep(100 * time.Millisecond) // no more lines come
	lines := handshakeLines()
	if len(lines) != len(want) {
		t.Fatalf("log lines about failed handshakes:\n%s\nwant one of each kind for each port:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range want { // in any order: the ports' goroutines race
		if !slices.ContainsFunc(lines, func(line string) bool { return strings.HasSuffix(line, w) }) {
			t.Errorf("no line ends %s in:\n%s", w, strings.Join(lines, "\n"))
		}
	}
}

// plainGet sends a plain HTTP GET to the TLS port at addr, on a connection
// of its own, and checks that it is answered 400.
func plainGet(t *testing.T, addr string) {
	t.Helper()
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := plain.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain HTTP: %d, want 400", resp.StatusCode)
	}
}
