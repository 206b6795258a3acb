package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Limits on a plain HTTP request read on a TLS port: enough for any
// request's line and headers, and quick, so that such connections cannot
// be used to hold the port. After the answer, what the client still sends
// (a request body) is read and discarded, up to plainDrainMax within
// plainDrainTimeout: closing with it unread would reset the connection,
// which can discard the answer before the client reads it. The connection
// cap counts the connection until then.
const (
	plainHeadMax      = 16 << 10
	plainHeadTimeout  = 5 * time.Second
	plainDrainMax     = 1 << 20
	plainDrainTimeout = time.Second
)

// tlsRecordHandshake is the first byte of every TLS connection: the
// record type of the ClientHello.
const tlsRecordHandshake = 0x16

// errPlainHTTP ends the TLS handshake of a connection that spoke plain
// HTTP; net/http logs it as the handshake's error, which plainHTTPLog
// recognizes.
var errPlainHTTP = errors.New("plain HTTP request on the TLS port: answered with an error that says to use https")

// plainHTTPLog is a TLS port's http.Server.ErrorLog. net/http logs every
// failed handshake, so each plain HTTP request would be a line and any
// client could flood the log: those lines are counted instead, and said at
// most once a minute with the count. Other lines go to next as they are.
type plainHTTPLog struct {
	next    io.Writer
	logger  *slog.Logger
	setting string // the port's variable, for the summary
	count   atomic.Int64
	last    atomic.Int64 // unix nanoseconds of the last summary
}

// quietPlainHTTP is the ErrorLog of the TLS port set by the variable
// setting: net/http's lines at Warn, as elsewhere, but plain HTTP
// requests summarized.
func quietPlainHTTP(logger *slog.Logger, setting string) *log.Logger {
	next := slog.NewLogLogger(logger.Handler(), slog.LevelWarn).Writer()
	return log.New(&plainHTTPLog{next: next, logger: logger, setting: setting}, "", 0)
}

func (l *plainHTTPLog) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte(errPlainHTTP.Error())) {
		return l.next.Write(p)
	}
	l.count.Add(1)
	now, last := time.Now().UnixNano(), l.last.Load()
	if now-last < int64(time.Minute) || !l.last.CompareAndSwap(last, now) {
		return len(p), nil
	}
	l.logger.Warn("plain HTTP requests on a TLS port, answered with an error that says to use https (said at most once a minute)",
		"port", l.setting, "requests", l.count.Swap(0))
	return len(p), nil
}

// plainAnswerer writes the answer to a plain HTTP request on a TLS port;
// httpsURL is where the client should go instead.
type plainAnswerer func(w http.ResponseWriter, r *http.Request, httpsURL string)

// httpsOnly wraps a TLS port's listener: a connection whose first byte is
// not a TLS handshake record is read as a plain HTTP request, answered by
// answer in plain HTTP, and closed; the others go to TLS untouched. The
// first byte is read in the connection's own goroutine (the handshake's
// first read), never in Accept, so a silent client blocks nobody, and
// ReadHeaderTimeout bounds the wait as it bounds the handshake.
func httpsOnly(ln net.Listener, answer plainAnswerer) net.Listener {
	return &httpsOnlyListener{Listener: ln, answer: answer}
}

type httpsOnlyListener struct {
	net.Listener
	answer plainAnswerer
}

func (l *httpsOnlyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, answer: l.answer}, nil
}

// sniffConn looks at its first byte before handing the stream on. The TLS
// handshake is its only reader at first, so no lock is needed.
type sniffConn struct {
	net.Conn
	answer  plainAnswerer
	sniffed bool
}

func (c *sniffConn) Read(p []byte) (int, error) {
	if c.sniffed || len(p) == 0 {
		return c.Conn.Read(p)
	}
	c.sniffed = true
	var first [1]byte
	if _, err := io.ReadFull(c.Conn, first[:]); err != nil {
		return 0, err
	}
	if first[0] == tlsRecordHandshake {
		p[0] = first[0]
		return 1, nil
	}
	c.answerPlain(first[0])
	return 0, errPlainHTTP
}

// answerPlain reads the plain HTTP request that began with first (its line
// and headers, within plainHeadMax and plainHeadTimeout), answers it and
// half-closes (lingerClose). The connection is closed by the failed
// handshake's caller.
func (c *sniffConn) answerPlain(first byte) {
	c.Conn.SetDeadline(time.Now().Add(plainHeadTimeout))
	br := bufio.NewReader(io.MultiReader(bytes.NewReader([]byte{first}), io.LimitReader(c.Conn, plainHeadMax)))
	r, err := http.ReadRequest(br)
	if err != nil {
		// Not even an HTTP request head: answered all the same, for the path /.
		r, _ = http.NewRequest(http.MethodGet, "/", nil)
	}
	w := &bufferedAnswer{header: http.Header{}}
	c.answer(w, r, httpsURL(r.Host, c.Conn.LocalAddr()))
	resp := &http.Response{StatusCode: w.status, ProtoMajor: 1, ProtoMinor: 1, Header: w.header,
		ContentLength: int64(w.body.Len()), Body: io.NopCloser(&w.body), Close: true}
	if r.Method == http.MethodHead {
		resp.Body = http.NoBody
	}
	if resp.Write(c.Conn) == nil {
		lingerClose(c.Conn)
	}
}

// lingerClose ends conn's sending side after the answer, so that the
// client reads the answer to its end, and discards what the client still
// sends (within plainDrainMax and plainDrainTimeout) until it closes too.
func lingerClose(conn net.Conn) {
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	conn.SetReadDeadline(time.Now().Add(plainDrainTimeout))
	io.CopyN(io.Discard, conn, plainDrainMax)
}

// httpsURL is the https URL of this port as the client named it (its Host
// header, when that is a plain host[:port]), else by its local address.
func httpsURL(host string, local net.Addr) string {
	_, port, _ := net.SplitHostPort(local.String())
	if host == "" || len(host) > 255 || strings.ContainsFunc(host, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]", r))
	}) {
		return "https://" + displayAddr(local)
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	return "https://" + host
}

// bufferedAnswer is an http.ResponseWriter that keeps a small answer for
// writing as a whole.
type bufferedAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (a *bufferedAnswer) Header() http.Header { return a.header }

func (a *bufferedAnswer) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}

func (a *bufferedAnswer) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(b)
}

// certTrust is what clients need to trust s3seal's certificate for the
// banner's host: caBundle is the certificate file to pass as --ca-bundle
// (not verified by the roots, but verified when that file is trusted: a
// self-signed or private-CA certificate), or err says why even that fails
// (the certificate is not for the host, or expired, ...).
type certTrust struct {
	caBundle string
	err      error
}

// trustFor checks cert (loaded from certFile) for host against roots (nil:
// the system's).
func trustFor(cert tls.Certificate, certFile, host string, roots *x509.CertPool) certTrust {
	var chain []*x509.Certificate
	for _, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return certTrust{err: fmt.Errorf("%s: %w", certFile, err)}
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return certTrust{err: fmt.Errorf("%s holds no certificate", certFile)}
	}
	inter := x509.NewCertPool()
	own := x509.NewCertPool()
	for i, c := range chain {
		own.AddCert(c)
		if i > 0 {
			inter.AddCert(c)
		}
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err == nil {
		return certTrust{}
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: host, Roots: own}); err != nil {
		return certTrust{err: err}
	}
	return certTrust{caBundle: absPath(certFile)}
}

// shellWord quotes s for a POSIX shell where it needs it.
func shellWord(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=@,%", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeTrustNote says, before the banner's commands, what clients need to
// trust s3seal's certificate, and returns the option the commands take for
// it ("" without TLS, or for a certificate the system trusts).
func (s *server) writeTrustNote(w io.Writer) string {
	if !s.tls {
		return ""
	}
	host, _, _ := net.SplitHostPort(displayAddr(s.apiLn.Addr()))
	trust := trustFor(s.api.TLSConfig.Certificates[0], s.cfg.TLSCert, host, nil)
	switch {
	case trust.err != nil:
		fmt.Fprintf(w, "The TLS certificate does not verify for %s, so clients will refuse it: %v\n"+
			"Use a certificate for that name (README, \"TLS\"), or a name the certificate has in --endpoint-url.\n\n", host, trust.err)
	case trust.caBundle != "":
		fmt.Fprintf(w, "The TLS certificate is not signed by a CA this system trusts: clients need\n"+
			"it as their CA bundle (aws --ca-bundle, AWS_CA_BUNDLE for SDKs; README, \"TLS\").\n\n")
		return " --ca-bundle " + shellWord(trust.caBundle)
	}
	return ""
}
