package tlsport

import (
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// handshakeErrorPrefix begins net/http's line for a failed handshake:
// "http: TLS handshake error from ADDR: REASON".
const handshakeErrorPrefix = "http: TLS handshake error from "

// handshakeReasonMax bounds the reason logged: an unsupported ALPN
// protocol's is quoted from the client's hello.
const handshakeReasonMax = 200

// handshakeWindow is how often failed handshakes are said at most: the
// log messages name it.
const handshakeWindow = time.Minute

// HandshakeLog is what a TLS port's http.Server.ErrorLog writes to
// (ErrorLog). net/http logs every failed handshake, one line per
// connection, so any client could flood the log (plain HTTP requests,
// connections closed at once such as a load balancer's TCP checks, junk):
// those lines are counted instead, plain HTTP apart from the others, and
// said at most once a minute with the count. Other lines go on at Warn,
// as they are.
type HandshakeLog struct {
	next          io.Writer
	plain, failed *summary
}

// NewHandshakeLog is the log of the TLS port set by the variable setting,
// which its lines name.
func NewHandshakeLog(logger *slog.Logger, setting string) *HandshakeLog {
	return newHandshakeLog(logger, setting, handshakeWindow)
}

func newHandshakeLog(logger *slog.Logger, setting string, window time.Duration) *HandshakeLog {
	return &HandshakeLog{
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

// ErrorLog is the http.Server.ErrorLog that writes to l.
func (l *HandshakeLog) ErrorLog() *log.Logger {
	return log.New(l, "", 0)
}

// Write takes one line of net/http's. Only a line that is exactly a failed
// handshake's is counted, and as plain HTTP only when its reason is
// exactly errPlainHTTP: a client chooses some of the reason's text (an
// ALPN protocol's name), which must not pass for another kind.
func (l *HandshakeLog) Write(p []byte) (int, error) {
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

// Close says what was counted and not yet said: call it once the port's
// server is shut down.
func (l *HandshakeLog) Close() {
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
