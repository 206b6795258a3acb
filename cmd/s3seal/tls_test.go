package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/config"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key as PEM.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "s3seal test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
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

func TestHTTPSURL(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(0, 0, 0, 0), Port: 8443}
	tests := []struct{ host, want string }{
		{"s3.example.com:8443", "https://s3.example.com:8443"},
		{"s3.example.com", "https://s3.example.com:8443"},
		{"[::1]:8443", "https://[::1]:8443"},
		{"", "https://127.0.0.1:8443"},
		{"evil<host>", "https://127.0.0.1:8443"},
	}
	for _, tt := range tests {
		if got := httpsURL(tt.host, local); got != tt.want {
			t.Errorf("httpsURL(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
}

// With a self-signed certificate the banner's commands take it as their CA
// bundle, and say why.
func TestBannerTLSCABundle(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	s, err := newTestServer(t, append(zeroConfigEnv(filepath.Join(dir, "data")), "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	s.writeBanner(&b)
	for _, want := range []string{
		"aws --endpoint-url " + s.endpoint() + " --ca-bundle " + certFile + " s3 mb s3://demo",
		"The TLS certificate is not signed by a CA this system trusts: clients need\n" +
			"it as their CA bundle (aws --ca-bundle, AWS_CA_BUNDLE for SDKs; README, \"TLS\").",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, b.String())
		}
	}
}

func TestTrustFor(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeSelfSigned(t, dir)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		host     string
		roots    *x509.CertPool
		caBundle string
		err      string
	}{
		{"self-signed, system roots", "127.0.0.1", nil, certFile, ""},
		{"trusted by the given roots", "127.0.0.1", pool, "", ""},
		{"not for the host", "localhost", nil, "", "x509: certificate is not valid for any names, but wanted to match localhost"},
	}
	for _, tt := range tests {
		got := trustFor(cert, certFile, tt.host, tt.roots)
		if got.caBundle != tt.caBundle || (tt.err == "") != (got.err == nil) || (got.err != nil && !strings.Contains(got.err.Error(), tt.err)) {
			t.Errorf("%s: got %q, %v; want ca bundle %q, error %q", tt.name, got.caBundle, got.err, tt.caBundle, tt.err)
		}
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
// beyond the cap is closed at once.
func TestConnLimitTLS(t *testing.T) {
	const max = 2
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	s := serveTuned(t, append(zeroConfigEnv(filepath.Join(dir, "data")), "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile),
		func(s *server) { s.conns.max = max })
	addr := s.apiLn.Addr().String()
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 2 * max {
		resp, err := plain.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP: %d, want 400", resp.StatusCode)
		}
		// Released once s3seal sees the client close (lingerClose).
		waitFor(t, func() bool { return s.conns.open.Load() == 0 })
	}
	fillToCap(t, s, max)
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
	// The client keeps its end open: s3seal closes after plainDrainTimeout.
	waitFor(t, func() bool { return s.conns.open.Load() == 0 })
	if d := time.Since(start); d > plainDrainTimeout+2*time.Second {
		t.Errorf("connection closed after %v, want within %v", d, plainDrainTimeout)
	}
}

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Plain HTTP requests on a TLS port are answered, but not logged one line
// each, which any client could use to flood the log: one line a minute at
// most says so, for each port, with how many there were.
func TestPlainHTTPLogQuiet(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	cfg, err := config.Load(append(zeroConfigEnv(filepath.Join(dir, "data")), "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile))
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	s, err := newServer(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.closeAll)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	defer func() { cancel(); <-done }()

	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, ln := range []net.Listener{s.apiLn, s.kmsAPILn} {
		for range 50 {
			resp, err := plain.Get("http://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("plain HTTP: %d, want 400", resp.StatusCode)
			}
		}
	}
	waitFor(t, func() bool { return s.conns.open.Load() == 0 })
	var lines []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "plain HTTP") || strings.Contains(line, "handshake") {
			lines = append(lines, line)
		}
	}
	want := []string{
		`msg="plain HTTP requests on a TLS port, answered with an error that says to use https (said at most once a minute)" port=S3SEAL_ADDR requests=1`,
		`msg="plain HTTP requests on a TLS port, answered with an error that says to use https (said at most once a minute)" port=S3SEAL_KMS_API_ADDR requests=1`,
	}
	if len(lines) != len(want) || !strings.HasSuffix(lines[0], want[0]) || !strings.HasSuffix(lines[1], want[1]) {
		t.Errorf("log lines about plain HTTP:\n%s\nwant one for each port:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// The summary counts the plain HTTP requests since the last one; other
// lines pass as they are.
func TestPlainHTTPLogCounts(t *testing.T) {
	var logs bytes.Buffer
	errorLog := quietPlainHTTP(slog.New(slog.NewTextHandler(&logs, nil)), "S3SEAL_ADDR")
	for range 3 {
		errorLog.Printf("http: TLS handshake error from 192.0.2.1:1234: %v", errPlainHTTP)
	}
	errorLog.Printf("http: TLS handshake error from 192.0.2.1:1234: EOF")
	l := errorLog.Writer().(*plainHTTPLog)
	l.last.Add(-int64(time.Minute)) // a minute later
	errorLog.Printf("http: TLS handshake error from 192.0.2.1:1234: %v", errPlainHTTP)
	got := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{"port=S3SEAL_ADDR requests=1", `level=WARN msg="http: TLS handshake error from 192.0.2.1:1234: EOF"`, "port=S3SEAL_ADDR requests=3"}
	if len(got) != len(want) {
		t.Fatalf("got\n%s\nwant lines ending %q", logs.String(), want)
	}
	for i := range want {
		if !strings.HasSuffix(got[i], want[i]) {
			t.Errorf("line %d: %s, want it to end %s", i, got[i], want[i])
		}
	}
}
