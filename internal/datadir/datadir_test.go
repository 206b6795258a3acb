package datadir

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The generated credential is made once, kept 0600 and found again; a file
// others could read is refused, not fixed.
func TestClientCredential(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	first, err := ClientCredential(dir, logger)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ClientCredential(dir, logger)
	if err != nil || again != first {
		t.Fatalf("second start: %+v, %v; first made %+v", again, err, first)
	}
	path := filepath.Join(dir, CredentialsFile)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, %v", fi.Mode(), err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ClientCredential(dir, logger); err == nil || !strings.Contains(err.Error(), "want 0600") {
		t.Fatalf("got %v, want a refusal of the 0644 file", err)
	}
}

func TestRandomString(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := randomString(accessKeyChars, 20)
		if len(s) != 20 || strings.Trim(s, accessKeyChars) != "" {
			t.Fatalf("bad access key %q", s)
		}
		if seen[s] {
			t.Fatalf("repeated %q", s)
		}
		seen[s] = true
	}
}

// EnsureKey makes the default key once and leaves it alone after.
func TestEnsureKey(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ring, err := OpenKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := EnsureKey(ring, "alias/s3seal", logger); err != nil {
			t.Fatal(err)
		}
	}
	if keys := ring.ListKeys(); len(keys) != 1 || len(keys[0].Aliases) != 1 || keys[0].Aliases[0] != "alias/s3seal" {
		t.Fatalf("keys after two starts: %+v", keys)
	}
}
