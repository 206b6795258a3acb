package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/buildinfo"
	"github.com/s3seal/s3seal/internal/config"
	"github.com/s3seal/s3seal/internal/datadir"
	"github.com/s3seal/s3seal/internal/testlog"
	"github.com/s3seal/s3seal/internal/tlsport"

	"github.com/s3seal/s3seal/envelope/keyring"
)

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestZeroConfigBootstrapTwice(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "s3seal-data")

	first, stopFirst := startServer(t, zeroConfigEnv(dataDir))
	if m := fileMode(t, dataDir); m != 0o700 {
		t.Errorf("data dir mode %v, want 0700", m)
	}
	for _, f := range []string{datadir.CredentialsFile, datadir.KeyringFile} {
		if m := fileMode(t, filepath.Join(dataDir, f)); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, m)
		}
	}
	if !regexp.MustCompile(`^[A-Z0-9]{20}$`).MatchString(first.cred.AccessKey) {
		t.Errorf("access key %q: want 20 characters A-Z0-9", first.cred.AccessKey)
	}
	if len(first.cred.SecretKey) != 40 {
		t.Errorf("secret key is %d characters, want 40", len(first.cred.SecretKey))
	}
	ring, err := keyring.Open(filepath.Join(dataDir, datadir.KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	firstKey, err := ring.DescribeKey(defaultKeyAlias)
	if err != nil {
		t.Fatalf("no %s after first start: %v", defaultKeyAlias, err)
	}

	// The first one still runs: a second s3seal on the same store is refused.
	if _, err := newTestServer(t, zeroConfigEnv(dataDir)); err == nil || !strings.Contains(err.Error(), "in use by another s3seal") {
		t.Fatalf("second s3seal on a data dir in use: %v", err)
	}
	stopFirst()
	second := startZeroConfig(t, dataDir)
	if second.cred != first.cred {
		t.Errorf("second start has credential %+v, want the first one's %+v", second.cred, first.cred)
	}
	ring, err = keyring.Open(filepath.Join(dataDir, datadir.KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	if keys := ring.ListKeys(); len(keys) != 1 || keys[0].ID != firstKey.ID {
		t.Errorf("keys after second start: %+v, want only %s", keys, firstKey.ID)
	}
}

func TestBanner(t *testing.T) {
	dataDir := t.TempDir()
	s := startZeroConfig(t, dataDir)
	var b bytes.Buffer
	s.writeBanner(&b)
	banner := b.String()
	for _, want := range []string{
		s.endpoint(), s.cred.AccessKey, s.cred.SecretKey, "us-east-1", dataDir,
		"first runs and demos",
		"AWS_ACCESS_KEY_ID=" + s.cred.AccessKey + " AWS_SECRET_ACCESS_KEY=" + s.cred.SecretKey,
		"aws --endpoint-url " + s.endpoint() + " s3 mb s3://demo",
		"s3 cp README.md s3://demo/",
		"version     " + buildinfo.Read().String(),
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
}

// A credential from the environment is used as is, and its secret is never
// printed.
func TestConfiguredCredential(t *testing.T) {
	dataDir := t.TempDir()
	s, err := newTestServer(t, append(zeroConfigEnv(dataDir), "S3SEAL_ACCESS_KEY=MYACCESSKEY", "S3SEAL_SECRET_KEY=my-secret-value"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, datadir.CredentialsFile)); !os.IsNotExist(err) {
		t.Errorf("credentials.json written although a credential is configured (stat: %v)", err)
	}
	var b bytes.Buffer
	s.writeBanner(&b)
	if strings.Contains(b.String(), "my-secret-value") {
		t.Errorf("banner prints the configured secret:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "MYACCESSKEY") {
		t.Errorf("banner lacks the access key:\n%s", b.String())
	}
}

func TestKeyringMissingConfiguredKey(t *testing.T) {
	dataDir := t.TempDir()
	_, err := newTestServer(t, append(zeroConfigEnv(dataDir), "S3SEAL_KMS_KEY_ID=alias/typo"))
	if err == nil || !strings.Contains(err.Error(), "alias/typo") {
		t.Fatalf("got %v, want an error naming alias/typo", err)
	}
}

func TestHealthAndReadyEndpoints(t *testing.T) {
	s := startZeroConfig(t, t.TempDir())
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.healthURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

// S3SEAL_PPROF puts net/http/pprof on the metrics listener only: off (the
// default) /debug/pprof/ is not found there; on, the index and its
// sub-paths answer. The S3 and KMS API listeners never serve it: there
// /debug/pprof/ is an S3 (or KMS API) request like any other, refused
// unsigned.
func TestPprofOnMetricsListenerOnly(t *testing.T) {
	const pprofIndexMark = "Types of profiles available"
	tests := []struct {
		name string
		env  []string
		want map[string]int // path on the metrics listener: status
	}{
		{"unset", nil, map[string]int{
			"/debug/pprof/": http.StatusNotFound, "/debug/pprof/cmdline": http.StatusNotFound, "/debug/pprof/heap": http.StatusNotFound,
		}},
		{"false", []string{"S3SEAL_PPROF=false"}, map[string]int{"/debug/pprof/": http.StatusNotFound}},
		{"true", []string{"S3SEAL_PPROF=true"}, map[string]int{
			"/debug/pprof/": http.StatusOK, "/debug/pprof/cmdline": http.StatusOK, "/debug/pprof/heap?debug=1": http.StatusOK,
			"/debug/pprof/goroutine?debug=1": http.StatusOK, "/debug/pprof/symbol": http.StatusOK,
			"/debug/pprof/nosuchprofile": http.StatusNotFound,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, append(zeroConfigEnv(t.TempDir()), tt.env...))
			for path, want := range tt.want {
				code, body := getStatus(t, s.healthURL()+path)
				if code != want {
					t.Errorf("metrics listener %s: %d, want %d\n%.300s", path, code, want, body)
				}
			}
			code, body := getStatus(t, s.healthURL()+"/debug/pprof/")
			if index := strings.Contains(body, pprofIndexMark); index != (code == http.StatusOK) {
				t.Errorf("metrics listener /debug/pprof/: %d, pprof index in the body: %v", code, index)
			}
			// /healthz and /metrics are unchanged beside it.
			for _, path := range []string{"/healthz", "/metrics"} {
				if code, body := getStatus(t, s.healthURL()+path); code != http.StatusOK {
					t.Errorf("metrics listener %s: %d %.300s", path, code, body)
				}
			}

			code, body = getStatus(t, s.endpoint()+"/debug/pprof/")
			if code != http.StatusForbidden || !strings.Contains(body, "<Code>AccessDenied</Code>") || strings.Contains(body, pprofIndexMark) {
				t.Errorf("S3 listener /debug/pprof/: %d %.300s, want S3's 403 AccessDenied for an unsigned request", code, body)
			}
			code, body = getStatus(t, "http://"+tlsport.ReachableAddr(s.kmsAPILn.Addr())+"/debug/pprof/")
			if code == http.StatusOK || strings.Contains(body, pprofIndexMark) {
				t.Errorf("KMS API listener /debug/pprof/: %d %.300s, want no pprof", code, body)
			}
		})
	}
}

// run with an already cancelled context starts, prints the banner and shuts
// down cleanly: the whole CLI path, deterministically.
func TestRunStartsAndStops(t *testing.T) {
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, nil, zeroConfigEnv(dataDir), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "s3 mb s3://demo") {
		t.Errorf("no banner on stdout:\n%s", stdout.String())
	}
	var lines int
	for line := range strings.SplitSeq(strings.TrimSpace(stderr.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("log line is not JSON: %q", line)
		}
		lines++
	}
	if lines == 0 {
		t.Error("no logs on stderr")
	}
}

// TestWarnPlainHTTP: plain HTTP is fine on loopback and warned about loudly
// anywhere else.
func TestWarnPlainHTTP(t *testing.T) {
	tests := []struct {
		addr string
		tls  bool
		warn bool
	}{
		{"127.0.0.1:8080", false, false},
		{"[::1]:8080", false, false},
		{"0.0.0.0:8080", false, true},
		{"192.0.2.10:8080", false, true},
		{"0.0.0.0:8443", true, false},
	}
	for _, tt := range tests {
		var logs bytes.Buffer
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		warnPlainHTTP(addr, tt.tls, slog.New(slog.NewJSONHandler(&logs, nil)))
		if got := strings.Contains(logs.String(), "PLAIN HTTP"); got != tt.warn {
			t.Errorf("%s tls=%v: warned %v, want %v: %s", tt.addr, tt.tls, got, tt.warn, logs.String())
		}
	}
}

// serve refuses a default key it cannot use, naming the key, its state
// and the commands that fix it.
func TestServeRefusesUnusableDefaultKey(t *testing.T) {
	tests := []struct {
		name  string
		setup [][]string // keys commands, after the data dir's first start
		want  string
	}{
		{"disabled", [][]string{{"disable", defaultKeyAlias}},
			" is Disabled — s3seal can neither seal new objects nor read existing ones (cached data keys aside); " +
				"fix: s3seal keys enable alias/s3seal, or set S3SEAL_KMS_KEY_ID to an enabled key"},
		{"pending deletion", [][]string{{"schedule-deletion", defaultKeyAlias}},
			" is PendingDeletion — s3seal can neither seal new objects nor read existing ones (cached data keys aside); " +
				"fix: s3seal keys cancel-deletion alias/s3seal, then s3seal keys enable alias/s3seal; or set S3SEAL_KMS_KEY_ID to an enabled key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			keysJSON(t, dataDir, "create", "-alias", defaultKeyAlias)
			for _, args := range tt.setup {
				keysJSON(t, dataDir, args...)
			}
			_, err := newTestServer(t, zeroConfigEnv(dataDir))
			if err == nil || !strings.Contains(err.Error(), "the CMK alias/s3seal (") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// A data dir that is a file is named as S3SEAL_DATA_DIR, whichever of
// serve's configurations reads it first.
func TestServeDataDirIsAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "S3SEAL_DATA_DIR=" + file + " is a file, not a directory: set S3SEAL_DATA_DIR to the data dir of your s3seal serve"
	for name, extra := range map[string][]string{
		"zero configuration":    nil,
		"configured credential": {"S3SEAL_ACCESS_KEY=MYACCESSKEY", "S3SEAL_SECRET_KEY=my-secret-value"},
		"nothing in the data dir but users": {"S3SEAL_ACCESS_KEY=MYACCESSKEY", "S3SEAL_SECRET_KEY=my-secret-value",
			"S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID=alias/x", "S3SEAL_KMS_REGION=us-east-1",
			"S3SEAL_UPSTREAM_URL=http://127.0.0.1:9", "S3SEAL_UPSTREAM_ACCESS_KEY=a", "S3SEAL_UPSTREAM_SECRET_KEY=b"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newTestServer(t, append(zeroConfigEnv(file), extra...))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want %q", err, want)
			}
		})
	}
}

// A start that makes a data dir, or a keyring in one that had none, warns
// once, naming the data dir's absolute path: a mistyped S3SEAL_DATA_DIR
// is found before clients write to it. A start on an existing one does not.
func TestServeWarnsNewDataDir(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "missing")
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, want string
	}{
		{"missing data dir", missing, "started a new data dir: if you meant an existing one, stop s3seal and set S3SEAL_DATA_DIR to it"},
		{"data dir without a keyring", empty, "started a new keyring in a data dir that had none: if you meant another data dir, " +
			"stop s3seal and set S3SEAL_DATA_DIR to it"},
		{"second start", missing, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(zeroConfigEnv(tt.dir))
			if err != nil {
				t.Fatal(err)
			}
			var logs testlog.Buffer
			s, err := newServer(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			s.closeAll()
			var warned []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("%v in %q", err, line)
				}
				if strings.HasPrefix(rec["msg"].(string), "started a new") {
					warned = append(warned, rec)
				}
			}
			switch {
			case tt.want == "" && len(warned) != 0:
				t.Errorf("warned on an existing data dir: %v", warned)
			case tt.want != "" && (len(warned) != 1 || warned[0]["msg"] != tt.want || warned[0]["level"] != "WARN" || warned[0]["dir"] != tt.dir):
				t.Errorf("warnings %v, want one WARN %q with dir %s\n%s", warned, tt.want, tt.dir, logs.String())
			}
		})
	}
}
