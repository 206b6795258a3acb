package keyring

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/envelope/kms"
)

// A new key and its alias are one change: every refusal leaves the file
// as it was (no key without its alias), and says why.
func TestKeyringNewKeyRefusals(t *testing.T) {
	k, path := krOpen(t)
	taken, err := k.CreateKeyWith(KeySpec{Description: "first", Alias: "alias/taken"})
	if err != nil || len(taken.Aliases) != 1 || taken.Aliases[0] != "alias/taken" {
		t.Fatalf("CreateKeyWith: %+v, %v", taken, err)
	}
	material := bytes.Repeat([]byte{1}, 32)
	tests := []struct {
		name string
		make func() (KeyInfo, error)
		kind error
		want string
	}{
		{"alias taken", func() (KeyInfo, error) { return k.CreateKeyWith(KeySpec{Alias: "alias/taken"}) },
			kms.ErrInvalidKMSRequest, "(AlreadyExistsException): alias alias/taken already exists (it names key " + taken.ID + ")"},
		{"alias taken, import", func() (KeyInfo, error) { return k.ImportKeyWith(material, KeySpec{Alias: "alias/taken"}) },
			kms.ErrInvalidKMSRequest, "(AlreadyExistsException): alias alias/taken already exists"},
		{"no alias/ prefix", func() (KeyInfo, error) { return k.CreateKeyWith(KeySpec{Alias: "team"}) },
			kms.ErrInvalidKMSRequest, `(InvalidAliasNameException): invalid alias "team": want alias/NAME, as in alias/team`},
		{"empty name", func() (KeyInfo, error) { return k.CreateKeyWith(KeySpec{Alias: "alias/"}) },
			kms.ErrInvalidKMSRequest, `invalid alias "alias/": the NAME after alias/ is empty`},
		{"reserved", func() (KeyInfo, error) { return k.CreateKeyWith(KeySpec{Alias: "alias/aws/s3"}) },
			kms.ErrInvalidKMSRequest, `invalid alias "alias/aws/s3": alias/aws/ is reserved for AWS-managed keys; choose another NAME`},
		{"too long", func() (KeyInfo, error) { return k.CreateKeyWith(KeySpec{Alias: "alias/" + strings.Repeat("x", 251)}) },
			kms.ErrInvalidKMSRequest, "257 characters, at most 256"},
		{"description too long", func() (KeyInfo, error) { return k.CreateKeyWith(KeySpec{Description: strings.Repeat("ü", 8193)}) },
			kms.ErrInvalidKMSRequest, "(ValidationException): invalid description: 8193 characters, at most 8192"},
		{"description not UTF-8", func() (KeyInfo, error) { return k.CreateKeyWith(KeySpec{Description: "\xff"}) },
			kms.ErrInvalidKMSRequest, "invalid description: not UTF-8 text"},
		{"material size", func() (KeyInfo, error) { return k.ImportKeyWith(material[:31], KeySpec{Alias: "alias/new"}) },
			kms.ErrInvalidKMSRequest, "key material is 31 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.ReadFile(path)
			_, err := tt.make()
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %v and %q", err, tt.kind, tt.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("the refusal changed the keyring file")
			}
		})
	}
	if n := len(k.ListKeys()); n != 1 {
		t.Errorf("%d keys after the refusals, want 1", n)
	}
	// 8192 characters of two bytes each is within AWS's bound.
	if _, err := k.CreateKeyWith(KeySpec{Description: strings.Repeat("ü", 8192)}); err != nil {
		t.Errorf("8192 characters: %v", err)
	}
}

// Like AWS KMS, no alias is made for a key pending deletion.
func TestKeyringAliasPendingDeletion(t *testing.T) {
	k, _ := krOpen(t)
	info := krCreate(t, k, "")
	if _, err := k.ScheduleKeyDeletion(info.ID, 7); err != nil {
		t.Fatal(err)
	}
	err := k.CreateAlias("alias/going", info.ID)
	want := "(KMSInvalidStateException): key " + info.ID + " is pending deletion; cancel the deletion first"
	if !errors.Is(err, kms.ErrKeyDisabled) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// OpenExisting opens a keyring but never starts one: a missing file is
// fs.ErrNotExist, and nothing is left behind (not even the lock file).
func TestKeyringOpenExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keyring.json")
	if _, err := OpenExisting(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want fs.ErrNotExist", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("OpenExisting left %v", entries)
	}
	k, _ := Open(path)
	krCreate(t, k, "x")
	again, err := OpenExisting(path)
	if err != nil || len(again.ListKeys()) != 1 {
		t.Fatalf("OpenExisting of a keyring: %v", err)
	}
}

// A damaged file is named once ("keyring: ", never twice), with its path
// and what to do about it.
func TestKeyringDamagedFileMessage(t *testing.T) {
	for name, content := range map[string]string{
		"not JSON":     "{",
		"fails checks": `{"version": 2, "keys": []}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keyring.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			if err == nil || !strings.HasPrefix(err.Error(), "keyring: ") || strings.Count(err.Error(), "keyring:") != 1 ||
				!strings.Contains(err.Error(), path) || !strings.HasSuffix(err.Error(), "; "+corruptFix) {
				t.Fatalf("got %v", err)
			}
		})
	}
}
