package sharedfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReplaceAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	if err := Replace(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	data, s1, err := ReadPrivate(path)
	if err != nil || string(data) != "one" {
		t.Fatalf("ReadPrivate = %q, %v", data, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if err := Replace(path, []byte("two!")); err != nil {
		t.Fatal(err)
	}
	if s2, err := StampOf(path); err != nil || s2 == s1 {
		t.Fatalf("stamp unchanged by a replace: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".f.json.tmp-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestReadPrivateRefuses(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{loose, "chmod 600"},
		{dir, "not a regular file"},
		{filepath.Join(dir, "missing"), "no such file"},
	}
	for _, tt := range tests {
		if _, _, err := ReadPrivate(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadPrivate(%s) = %v, want %q", tt.path, err, tt.want)
		}
	}
}

func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		u, err := Lock(path)
		if err == nil {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a second Lock did not wait for the first")
	case <-time.After(100 * time.Millisecond): // it waits, as it should
	}
	unlock()
	<-got
}

func TestForeignOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	if err := Replace(path, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, foreign := ForeignOwner(path); foreign {
		t.Fatal("a file of the directory's owner is foreign")
	}
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	if err := os.Chown(path, 4321, -1); err != nil {
		t.Fatal(err)
	}
	if f, _, foreign := ForeignOwner(path); !foreign || f != 4321 {
		t.Fatalf("a file of uid 4321 in a directory of uid %d: %d, %v", os.Geteuid(), f, foreign)
	}
}
