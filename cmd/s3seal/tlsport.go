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
	"sync"
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
// HTTP; net/http logs it as the handshake's error, which handshakeLog
// recognizes.
var errPlainHTTP = errors.New("plain HTTP request on the TLS port: answered with an error that says to use https")

// handshakeErrorPrefix begins net/http's line for a failed handshake:
// "http: TLS handshake error from ADDR: REASON".
const handshakeErrorPrefix = "http: TLS handshake error from "

// handshakeReasonMax bounds the reason logged: an unsupported ALPN
// protocol's is quoted from the client's hello.
const handshakeReasonMax = 200

// handshakeLog is a TLS port's http.Server.ErrorLog. net/http logs every
// failed handshake, one line per connection, so any client could flood the
// log (plain HTTP requests, connections closed at once such as a load
// balancer's TCP checks, junk): those lines are counted instead, plain
// HTTP apart from the others, and said at most once a window with the
// count. Other lines go to next as they are.
type handshakeLog struct {
	next          io.Writer
	plain, failed *summary
}

// quietHandshakes is the ErrorLog of the TLS port set by the variable
// setting: net/http's lines at Warn, as elsewhere, but failed handshakes
// summarized once a minute.
func quietHandshakes(logger *slog.Logger, setting string) *log.Logger {
	return log.New(newHandshakeLog(logger, setting, time.Minute), "", 0)
}

func newHandshakeLog(logger *slog.Logger, setting string, window time.Duration) *handshakeLog {
	return &handshakeLog{
		next: slog.NewLogLogger(logger.Handler(), slog.LevelWarn).Writer(),
		plain: &summary{window: window, say: func(n int64, _ string) {
			logger.Warn("plain HTTP requests on a TLS port, answered with an error that says to use https (said at most once a minute)",
				"port", setting, "requests", n)
		}},
		failed: &summary{window: window, say: func(n int64, reason string) {
			args := []any{"port", setting, "connections", n}
			if reason != "" {
				args = append(args, "reason", reason)
			}
			logger.Warn("TLS handshakes failed on a TLS port (said at most once a minute, the first one's reason at once)", args...)
		}},
	}
}

// Write takes one line of net/http's. Only a line that is exactly a failed
// handshake's is counted, and as plain HTTP only when its reason is
// exactly errPlainHTTP: a client chooses some of the reason's text (an
// ALPN protocol's name), which must not pass for another kind.
func (l *handshakeLog) Write(p []byte) (int, error) {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(string(p), "\n"), handshakeErrorPrefix)
	_, reason, found := strings.Cut(rest, ": ") // an address has no ": "
	if !ok || !found {
		return l.next.Write(p)
	}
	if reason == errPlainHTTP.Error() {
		l.plain.add("")
		return len(p), nil
	}
	if len(reason) > handshakeReasonMax {
		reason = strings.ToValidUTF8(reason[:handshakeReasonMax], "") + "..."
	}
	l.failed.add(reason)
	return len(p), nil
}

// Close says what was counted and not yet said: serve calls it once its
// servers are shut down.
func (l *handshakeLog) Close() {
	l.plain.close()
	l.failed.close()
}

// summary says how often something happened: the first at once (with its
// detail), then at the end of each window in which more happened, how
// many; after a window without any, the next is said at once again.
type summary struct {
	window time.Duration
	say    func(n int64, detail string)

	mu     sync.Mutex
	count  int64       // not said yet
	timer  *time.Timer // running while a window is open
	closed bool
}

func (s *summary) add(detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.count++
		return
	}
	s.say(1, detail)
	if !s.closed {
		s.timer = time.AfterFunc(s.window, s.windowEnd)
	}
}

func (s *summary) windowEnd() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer == nil { // closed meanwhile
		return
	}
	if s.count == 0 {
		s.timer = nil
		return
	}
	s.say(s.count, "")
	s.count = 0
	s.timer.Reset(s.window)
}

func (s *summary) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.count > 0 {
		s.say(s.count, "")
		s.count = 0
	}
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
	// Request tells Write the method: for a HEAD it writes the head only,
	// Content-Length kept.
	resp := &http.Response{StatusCode: w.status, ProtoMajor: 1, ProtoMinor: 1, Header: w.header,
		ContentLength: int64(w.body.Len()), Body: io.NopCloser(&w.body), Close: true, Request: r}
	// Drained whatever Write returns: part of the answer may be sent.
	resp.Write(c.Conn)
	lingerClose(c.Conn)
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

// certTrust is what the banner says about s3seal's certificate. host is
// the name clients use in the endpoint: the listener's address when the
// certificate is for it, else a name the certificate has (a certificate
// for s3.example.com served on 0.0.0.0:8443 is used as
// https://s3.example.com:8443). Then at most one of: caBundle, the
// certificate file, which clients pass as --ca-bundle (it holds the
// self-signed certificate the chain ends in); caName, the CA that signed
// it when neither this system nor the file holds that CA; err, why clients
// refuse it whatever they trust (expired, for no name the banner could
// use, ...). None of them: the system's CAs trust it.
type certTrust struct {
	host     string
	caBundle string
	caName   string
	err      error
}

// trustFor checks cert (loaded from certFile), served on a listener whose
// address is listenHost, against roots (nil: the system's).
func trustFor(cert tls.Certificate, certFile, listenHost string, roots *x509.CertPool) certTrust {
	chain, err := parseChain(cert, certFile)
	if err != nil {
		return certTrust{host: listenHost, err: err}
	}
	leaf, top := chain[0], chain[len(chain)-1]
	t := certTrust{host: certHost(leaf, listenHost)}
	inter := certPool(chain[1:])
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: t.host, Roots: roots, Intermediates: inter})
	if err == nil || !untrustedCA(err) {
		t.err = err
		return t
	}
	// Go would take any certificate of the file as a trust anchor, OpenSSL
	// (the AWS CLI's) only a self-signed one: the file is a CA bundle for
	// clients only when its chain ends in one.
	if !selfSigned(top) {
		t.caName = top.Issuer.String()
		return t
	}
	if _, err = leaf.Verify(x509.VerifyOptions{DNSName: t.host, Roots: certPool(chain[len(chain)-1:]), Intermediates: inter}); err != nil {
		t.err = err
		return t
	}
	t.caBundle = absPath(certFile)
	return t
}

// parseChain is cert's chain, leaf first.
func parseChain(cert tls.Certificate, certFile string) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for _, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", certFile, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s holds no certificate", certFile)
	}
	return chain, nil
}

// certHost is the name clients use for a listener on listenHost: that
// address if the certificate is for it, else the certificate's first DNS
// name that is no wildcard, or its first IP address. A listener's address
// is often no name clients use at all (0.0.0.0 is shown as 127.0.0.1):
// the certificate says which one they use.
func certHost(leaf *x509.Certificate, listenHost string) string {
	if leaf.VerifyHostname(listenHost) == nil {
		return listenHost
	}
	for _, name := range leaf.DNSNames {
		if !strings.Contains(name, "*") {
			return name
		}
	}
	if len(leaf.IPAddresses) > 0 {
		return leaf.IPAddresses[0].String()
	}
	return listenHost
}

func certPool(certs []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

// untrustedCA says whether err is only that no CA trusted here signed the
// certificate: Verify checks validity and host name before that.
func untrustedCA(err error) bool {
	var unknown x509.UnknownAuthorityError
	var noRoots x509.SystemRootsError
	return errors.As(err, &unknown) || errors.As(err, &noRoots)
}

// selfSigned says whether c is signed by its own key (a root, or a
// self-signed leaf, which may not be a CA and so is checked directly).
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
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
// trust s3seal's certificate (trust, from trustFor), and returns the
// option the commands take for it ("" without TLS, or for a certificate
// the system trusts).
func writeTrustNote(w io.Writer, trust certTrust) string {
	var invalid x509.CertificateInvalidError
	switch {
	case trust.err != nil && errors.As(trust.err, &invalid) && invalid.Reason == x509.Expired:
		fmt.Fprintf(w, "The TLS certificate is not valid now, so clients will refuse it: %v\n"+
			"Renew it (or check this machine's clock), and restart s3seal (README, \"TLS\").\n\n", trust.err)
	case trust.err != nil:
		fmt.Fprintf(w, "The TLS certificate does not verify for %s, so clients will refuse it: %v\n"+
			"Use a certificate for that name (README, \"TLS\"), or a name the certificate has in --endpoint-url.\n\n", trust.host, trust.err)
	case trust.caName != "":
		fmt.Fprintf(w, "The TLS certificate is signed by %s, a CA this system does not trust,\n"+
			"and S3SEAL_TLS_CERT does not hold it: clients need that CA's certificate as their CA\n"+
			"bundle (aws --ca-bundle CA.pem, AWS_CA_BUNDLE=CA.pem for SDKs; README, \"TLS\").\n\n", trust.caName)
	case trust.caBundle != "":
		fmt.Fprintf(w, "The TLS certificate is not signed by a CA this system trusts: clients need\n"+
			"it as their CA bundle (aws --ca-bundle, AWS_CA_BUNDLE for SDKs; README, \"TLS\").\n\n")
		return " --ca-bundle " + shellWord(trust.caBundle)
	}
	return ""
}
