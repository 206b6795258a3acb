package tlsport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Limits on a plain HTTP request read on a TLS port: enough for any
// request's line and headers, and quick, so that such connections cannot
// be used to hold the port. After the answer, what the client still sends
// (a request body) is read and discarded, up to PlainDrainMax within
// PlainDrainTimeout: closing with it unread would reset the connection,
// which can discard the answer before the client reads it. A connection
// cap counts the connection until then.
const (
	PlainHeadMax      = 16 << 10
	PlainHeadTimeout  = 5 * time.Second
	PlainDrainMax     = 1 << 20
	PlainDrainTimeout = time.Second
)

// tlsRecordHandshake is the first byte of every TLS connection: the
// record type of the ClientHello.
const tlsRecordHandshake = 0x16

// errPlainHTTP ends the TLS handshake of a connection that spoke plain
// HTTP; net/http logs it as the handshake's error, which HandshakeLog
// recognizes.
var errPlainHTTP = errors.New("plain HTTP request on the TLS port: answered with an error that says to use https")

// PlainAnswerer writes the answer to a plain HTTP request on a TLS port;
// httpsURL is where the client should go instead.
type PlainAnswerer func(w http.ResponseWriter, r *http.Request, httpsURL string)

// HTTPSOnly wraps a TLS port's listener: a connection whose first byte is
// not a TLS handshake record is read as a plain HTTP request, answered by
// answer in plain HTTP, and closed; the others go to TLS untouched. The
// first byte is read in the connection's own goroutine (the handshake's
// first read), never in Accept, so a silent client blocks nobody, and
// ReadHeaderTimeout bounds the wait as it bounds the handshake.
func HTTPSOnly(ln net.Listener, answer PlainAnswerer) net.Listener {
	return &httpsOnlyListener{Listener: ln, answer: answer}
}

type httpsOnlyListener struct {
	net.Listener
	answer PlainAnswerer
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
	answer  PlainAnswerer
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
// and headers, within PlainHeadMax and PlainHeadTimeout), answers it and
// half-closes (lingerClose). The connection is closed by the failed
// handshake's caller.
func (c *sniffConn) answerPlain(first byte) {
	c.Conn.SetDeadline(time.Now().Add(PlainHeadTimeout))
	br := bufio.NewReader(io.MultiReader(bytes.NewReader([]byte{first}), io.LimitReader(c.Conn, PlainHeadMax)))
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
// sends (within PlainDrainMax and PlainDrainTimeout) until it closes too.
func lingerClose(conn net.Conn) {
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	conn.SetReadDeadline(time.Now().Add(PlainDrainTimeout))
	io.CopyN(io.Discard, conn, PlainDrainMax)
}

// httpsURL is the https URL of this port as the client named it (its Host
// header, when that is a plain host[:port]), else by its local address.
func httpsURL(host string, local net.Addr) string {
	_, port, _ := net.SplitHostPort(local.String())
	if host == "" || len(host) > 255 || strings.ContainsFunc(host, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]", r))
	}) {
		return "https://" + ReachableAddr(local)
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	return "https://" + host
}

// ReachableAddr is listener address a as a client on this machine dials
// it: a wildcard address becomes 127.0.0.1. The banner and the plain-HTTP
// answer name listeners so.
func ReachableAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
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
