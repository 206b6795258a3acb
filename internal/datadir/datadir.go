// Package datadir is s3seal's data directory (S3SEAL_DATA_DIR): what a
// zero-configuration start keeps there — the embedded keyring with its
// default key, the generated client credential, the embedded store's files —
// made on first start and found again on the next. Everything here is
// idempotent.
package datadir

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// Files in the data directory.
const (
	KeyringFile     = "keyring.json"
	CredentialsFile = "credentials.json"
	StoreDir        = "store" // the embedded store's
)

// Ensure creates dir (mode 0700) if needed.
func Ensure(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	return nil
}

// WarnLoose reports a data dir open to group or others. It is used, not
// refused: the keyring and credential files are 0600 themselves, but their
// names and the store's files would be visible.
func WarnLoose(dir string, logger *slog.Logger) {
	fi, err := os.Stat(dir)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("data dir is accessible to group or others; chmod 700 it", "dir", dir, "mode", fi.Mode().Perm().String())
	}
}

// Credential is one access key and its secret.
type Credential struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// Credentials is credentials.json. It holds a list, not one credential, so
// the same file can carry several credentials once that is supported.
type Credentials struct {
	Version     int          `json:"version"`
	Credentials []Credential `json:"credentials"`
}

// Characters of generated credentials: access keys look like AWS's (upper
// case and digits); secrets avoid '/' and '+' so they paste into shells and
// URLs without quoting.
const (
	accessKeyChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	secretKeyChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// randomString returns n characters drawn uniformly from chars with
// crypto/rand (rejection sampling, so no character is more likely).
func randomString(chars string, n int) string {
	limit := 256 - 256%len(chars)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		rand.Read(buf) // never fails
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, chars[int(b)%len(chars)])
			}
		}
	}
	return string(out)
}

// NewCredential makes a credential of S3's shape from crypto/rand: for the
// data dir's, and for a command's own in-process s3seal (rewrap).
func NewCredential() Credential {
	return Credential{AccessKey: randomString(accessKeyChars, 20), SecretKey: randomString(secretKeyChars, 40)}
}

// ClientCredential is the credential in dir's credentials.json, which is
// generated on first start.
func ClientCredential(dir string, logger *slog.Logger) (Credential, error) {
	path := filepath.Join(dir, CredentialsFile)
	doc, err := ReadCredentials(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := Ensure(dir); err != nil {
			return Credential{}, err
		}
		doc = Credentials{Version: 1, Credentials: []Credential{NewCredential()}}
		if err := writeCredentials(path, doc); err != nil {
			return Credential{}, err
		}
		logger.Info("generated a client credential", "file", path, "access_key", doc.Credentials[0].AccessKey)
	} else if err != nil {
		return Credential{}, err
	}
	return doc.Credentials[0], nil
}

// ReadCredentials reads and checks credentials.json. Like the keyring, it
// refuses a file open to group or others rather than fixing the mode: the
// secret may already have leaked, and that is for a human to judge.
func ReadCredentials(path string) (Credentials, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Credentials{}, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return Credentials{}, fmt.Errorf("%s has mode %s: it holds a secret, want 0600 (check who read it, then chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, err
	}
	var doc Credentials
	if err := json.Unmarshal(b, &doc); err != nil {
		return Credentials{}, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Version != 1 || len(doc.Credentials) == 0 {
		return Credentials{}, fmt.Errorf("%s: want version 1 and at least one credential", path)
	}
	for i, c := range doc.Credentials {
		if c.AccessKey == "" || c.SecretKey == "" {
			return Credentials{}, fmt.Errorf("%s: credential %d lacks access_key or secret_key", path, i)
		}
	}
	return doc, nil
}

// writeCredentials creates path with mode 0600, failing if it exists, so
// two processes starting at once cannot overwrite each other's secret.
func writeCredentials(path string, doc Credentials) (err error) {
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("credentials: %w", cerr)
		}
		if err != nil {
			os.Remove(path) // a half-written secret file would only block the next start
		}
	}()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	return nil
}

// OpenKeyring opens dir's keyring.json, creating the dir and an empty
// keyring if needed.
func OpenKeyring(dir string) (*keyring.Keyring, error) {
	if err := Ensure(dir); err != nil {
		return nil, err
	}
	ring, err := keyring.Open(filepath.Join(dir, KeyringFile))
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return ring, nil
}

// EnsureKey creates a key under alias unless the alias exists: the default
// key, on first start. (A configured key that is missing is for the doctor's
// checks to report: silently creating a key for a mistyped id would hide the
// mistake.)
func EnsureKey(ring *keyring.Keyring, alias string, logger *slog.Logger) error {
	if _, err := ring.DescribeKey(alias); !errors.Is(err, kms.ErrKeyNotFound) {
		return nil
	}
	info, err := ring.CreateKey("s3seal default key, created on first start")
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := ring.CreateAlias(alias, info.ID); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	logger.Info("created the keyring's default key", "key_id", info.ID, "alias", alias)
	return nil
}
