package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/s3seal/s3seal/internal/config"
	"github.com/s3seal/s3seal/internal/datadir"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// zeroConfigEnv is an environment with nothing set but what a test must
// control: where data goes and that listeners take free loopback ports.
func zeroConfigEnv(dataDir string) []string {
	return []string{
		"S3SEAL_DATA_DIR=" + dataDir,
		"S3SEAL_ADDR=127.0.0.1:0",
		"S3SEAL_METRICS_ADDR=127.0.0.1:0",
		"S3SEAL_KMS_API_ADDR=127.0.0.1:0",
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newTestServer sets up, without serving, a server for the configuration
// in environ, which must parse. It returns newServer's error rather than
// failing, for the tests of starts that must be refused; what a server
// that was set up holds is released when the test ends.
func newTestServer(t *testing.T, environ []string) (*server, error) {
	t.Helper()
	cfg, err := config.Load(environ)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(context.Background(), cfg, testLogger(t))
	if err != nil {
		return nil, err
	}
	t.Cleanup(s.closeAll)
	return s, nil
}

// startServer serves the configuration in environ until stop is called or
// the test ends, whichever is first.
func startServer(t *testing.T, environ []string) (s *server, stop func()) {
	t.Helper()
	s, err := newTestServer(t, environ)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// startZeroConfig serves a server in dataDir as `s3seal` with no
// configuration would, until the test ends.
func startZeroConfig(t *testing.T, dataDir string) *server {
	t.Helper()
	s, _ := startServer(t, zeroConfigEnv(dataDir))
	return s
}

// startZeroConfigClient is startZeroConfig with an S3 client that signs
// with the credential the start wrote to dataDir, read back from the file
// as a user would find it.
func startZeroConfigClient(t *testing.T, dataDir string) (*server, *s3.Client) {
	t.Helper()
	s := startZeroConfig(t, dataDir)
	doc, err := datadir.ReadCredentials(filepath.Join(dataDir, datadir.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	return s, s3Client(t, s.endpoint(), doc.Credentials[0].AccessKey, doc.Credentials[0].SecretKey)
}

// TestListenOnExplains: a listener that cannot bind names its variable and
// value and says what to do, not only the system's "bind: ...".
func TestListenOnExplains(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name, addr, want string
		is               error
	}{
		{"in use", taken.Addr().String(), "S3SEAL_METRICS_ADDR=" + taken.Addr().String() +
			": address already in use: another program (or another s3seal) listens there; stop it or set S3SEAL_METRICS_ADDR to a free port", syscall.EADDRINUSE},
		{"not this machine's address", "192.0.2.1:0", "S3SEAL_METRICS_ADDR=192.0.2.1:0: no network interface of this machine has that address", syscall.EADDRNOTAVAIL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := listenOn("S3SEAL_METRICS_ADDR", tt.addr)
			if err == nil {
				ln.Close()
				t.Fatalf("listenOn(%s) bound", tt.addr)
			}
			if !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, tt.is) {
				t.Fatalf("error %q (is %v: %v), want it to start with %q", err, tt.is, errors.Is(err, tt.is), tt.want)
			}
		})
	}
}
