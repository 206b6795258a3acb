package tlsport

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testlog"
)

// Failed handshakes are summarized: the first at once, then at the end of
// the window how many more there were (also after a burst followed by
// silence, and at Close); plain HTTP apart from the others, and only by an
// exact match. Other lines pass as they are.
func TestHandshakeLog(t *testing.T) {
	const (
		plainLine = "http: TLS handshake error from 192.0.2.1:1234: plain HTTP request on the TLS port: answered with an error that says to use https"
		eofLine   = "http: TLS handshake error from [2001:db8::1]:1234: EOF"
		// A client's ALPN protocol named as the plain HTTP error.
		alpnLine = `http: TLS handshake error from 192.0.2.1:1234: tls: client requested unsupported application protocols (["plain HTTP request on the TLS port: answered with an error that says to use https"])`
		plainMsg = "msg=\"plain HTTP requests on a TLS port, answered with an error that says to use https (said at most once a minute)\" port=S3SEAL_ADDR "
		tlsMsg   = "msg=\"TLS handshakes failed on a TLS port (said at most once a minute, the first one's reason at once)\" port=S3SEAL_ADDR "
	)
	tests := []struct {
		name  string
		lines []string
		close bool // Close before the window ends
		want  []string
	}{
		{"a burst of plain HTTP, then silence", repeat(plainLine, 5), false, []string{plainMsg + "requests=1", plainMsg + "requests=4"}},
		{"20 connections closed at once", repeat(eofLine, 20), false, []string{tlsMsg + "connections=1 reason=EOF", tlsMsg + "connections=19"}},
		{"one alone", []string{eofLine}, false, []string{tlsMsg + "connections=1 reason=EOF"}},
		{"the ALPN trick is no plain HTTP", []string{alpnLine}, false, []string{tlsMsg + `connections=1 reason="tls: client requested unsupported application protocols ([\"plain HTTP request`}},
		{"other lines pass", []string{"http: panic serving 192.0.2.1:1234: " + plainLine}, false, []string{`level=WARN msg="http: panic serving 192.0.2.1:1234: http: TLS handshake error from`}},
		{"Close says the rest", repeat(plainLine, 3), true, []string{plainMsg + "requests=1", plainMsg + "requests=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testlog.Buffer
			window := 100 * time.Millisecond
			if tt.close {
				window = time.Hour
			}
			l := newHandshakeLog(slog.New(slog.NewTextHandler(&logs, nil)), "S3SEAL_ADDR", window)
			errorLog := l.ErrorLog()
			for _, line := range tt.lines {
				errorLog.Print(line)
			}
			if tt.close {
				l.Close()
			} else {
				time.Sleep(3 * window) // the window ends, and another without any
			}
			l.Close()
			got := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("got\n%s\nwant lines with %q", logs.String(), tt.want)
			}
			for i := range tt.want {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("line %d: %s, want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
