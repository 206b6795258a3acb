package datadir

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/envelope/keyring"
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
	ring, err := CreateKeyring(dir)
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

// Every way a data dir can be wrong is named with S3SEAL_DATA_DIR and its
// value, and says what to do; nothing is created on the way.
func TestDataDirMessages(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	noRing := filepath.Join(base, "no-ring")
	if err := os.Mkdir(noRing, 0o700); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(base, "missing")
	const start = "run `s3seal keys create` to start a keyring there"
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"open, missing dir", func() error { _, err := OpenKeyring(missing, start); return err },
			"S3SEAL_DATA_DIR=" + missing + " does not exist: set S3SEAL_DATA_DIR to the data dir of your s3seal serve, or " + start},
		{"open, no keyring", func() error { _, err := OpenKeyring(noRing, start); return err },
			"S3SEAL_DATA_DIR=" + noRing + " has no keyring.json (no key was ever made there): set S3SEAL_DATA_DIR to the data dir of your s3seal serve, or " + start},
		{"open, missing dir, serve's hint", func() error { _, err := OpenKeyring(missing, ""); return err },
			"or start s3seal serve once to create it"},
		{"open, a file", func() error { _, err := OpenKeyring(file, start); return err },
			"S3SEAL_DATA_DIR=" + file + " is a file, not a directory: set S3SEAL_DATA_DIR to the data dir of your s3seal serve"},
		{"create, a file", func() error { _, err := CreateKeyring(file); return err },
			"S3SEAL_DATA_DIR=" + file + " is a file, not a directory"},
		{"credential, a file", func() error { _, err := ClientCredential(file, slog.New(slog.DiscardHandler)); return err },
			"S3SEAL_DATA_DIR=" + file + " is a file, not a directory"},
		{"create, under a file", func() error { return Ensure(filepath.Join(file, "sub")) },
			"S3SEAL_DATA_DIR=" + filepath.Join(file, "sub") + ": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	for _, p := range []string{missing, filepath.Join(noRing, KeyringFile), filepath.Join(noRing, KeyringFile+".lock")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s was made by a refused open (%v)", p, err)
		}
	}
}

// A data dir this uid may not read names the uid and the owner.
func TestDataDirUnreadable(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root reads every directory")
	}
	dir := filepath.Join(t.TempDir(), "locked")
	if err := os.Mkdir(dir, 0o000); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	_, err := OpenKeyring(dir, "")
	want := fmt.Sprintf("S3SEAL_DATA_DIR=%s is not accessible to uid %d (it is owned by uid %d, mode ----------)", dir, os.Getuid(), os.Getuid())
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "chown -R") {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// Replicas sharing a data dir, all on their first start: each opened the
// keyring before any made the default key. One makes it, the others use
// it: every start succeeds, and there is one key, under the alias.
func TestEnsureKeyRace(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rings := make([]*keyring.Keyring, 4)
	for i := range rings {
		ring, err := CreateKeyring(dir)
		if err != nil {
			t.Fatal(err)
		}
		rings[i] = ring
	}
	// In turn: the later ones still see the keyring as it was when opened.
	if err := EnsureKey(rings[0], "alias/s3seal", logger); err != nil {
		t.Fatal(err)
	}
	if err := EnsureKey(rings[1], "alias/s3seal", logger); err != nil {
		t.Fatalf("second replica's first start: %v", err)
	}
	// At once.
	errs := make(chan error, 2)
	for _, ring := range rings[2:] {
		go func() { errs <- EnsureKey(ring, "alias/s3seal", logger) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent first start: %v", err)
		}
	}
	want, err := rings[0].DescribeKey("alias/s3seal")
	if err != nil {
		t.Fatal(err)
	}
	for i, ring := range rings {
		if got, err := ring.DescribeKey("alias/s3seal"); err != nil || got.ID != want.ID {
			t.Errorf("replica %d: alias/s3seal is %+v, %v; want key %s", i, got, err, want.ID)
		}
	}
	if _, err := rings[0].Reload(); err != nil {
		t.Fatal(err)
	}
	if keys := rings[0].ListKeys(); len(keys) != 1 {
		t.Errorf("keys: %+v, want only the default key", keys)
	}
}

// A default key another replica made and that is not enabled is not used
// silently: the start fails, naming its state.
func TestEnsureKeyMadeMeanwhileDisabled(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	first, err := CreateKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := CreateKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureKey(first, "alias/s3seal", logger); err != nil {
		t.Fatal(err)
	}
	if err := first.DisableKey("alias/s3seal"); err != nil {
		t.Fatal(err)
	}
	err = EnsureKey(second, "alias/s3seal", logger)
	if err == nil || !strings.Contains(err.Error(), "made meanwhile by another s3seal sharing the data dir, is Disabled") {
		t.Fatalf("got %v, want a refusal naming the state", err)
	}
}
