package tlsport

import (
	"net"
	"testing"
)

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
