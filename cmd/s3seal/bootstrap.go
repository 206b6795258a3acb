package main

// First-start bootstrap: the data directory, the generated client
// credential and the keyring's default key. Everything here is idempotent:
// the second start finds what the first one made and reuses it.

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

	"github.com/s3seal/s3seal/sigv4"
)

// Files in the data directory.
const (
	keyringFile     = "keyring.json"
	credentialsFile = "credentials.json"
	storeDir        = "store"
)

// ensureDataDir creates dir (mode 0700) if needed.
func ensureDataDir(dir string) error {
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

// warnLooseDataDir reports a data dir open to group or others. It is used,
// not refused: the keyring and credential files are 0600 themselves, but
// their names and the store's files would be visible.
func warnLooseDataDir(dir string, logger *slog.Logger) {
	fi, err := os.Stat(dir)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("data dir is accessible to group or others; chmod 700 it", "dir", dir, "mode", fi.Mode().Perm().String())
	}
}

// credential is one access key and its secret.
type credential struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// newCredentialSet is what clients may sign with. A file of several
// credentials (one per client or team) can later fill it without changing
// the verifier's side.
func newCredentialSet(creds ...credential) sigv4.StaticCredentials {
	s := make(sigv4.StaticCredentials, len(creds))
	for _, c := range creds {
		s[c.AccessKey] = c.SecretKey
	}
	return s
}

// credentialsDoc is credentials.json. It holds a list, not one credential,
// so the same file can carry several credentials once that is supported.
type credentialsDoc struct {
	Version     int          `json:"version"`
	Credentials []credential `json:"credentials"`
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

func generateCredential() credential {
	return credential{AccessKey: randomString(accessKeyChars, 20), SecretKey: randomString(secretKeyChars, 40)}
}

// clientCredential is the credential clients sign with, and whether its
// secret came from the data dir (and so may be shown in the banner).
type clientCredential struct {
	credential
	generated bool
}

// loadClientCredential returns the configured credential, or else the one
// in DATA_DIR/credentials.json, generating that file on first start.
func loadClientCredential(cfg Config, logger *slog.Logger) (clientCredential, error) {
	if cfg.AccessKey != "" {
		return clientCredential{credential: credential{cfg.AccessKey, cfg.SecretKey}}, nil
	}
	path := filepath.Join(cfg.DataDir, credentialsFile)
	doc, err := readCredentials(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := ensureDataDir(cfg.DataDir); err != nil {
			return clientCredential{}, err
		}
		doc = credentialsDoc{Version: 1, Credentials: []credential{generateCredential()}}
		if err := writeCredentials(path, doc); err != nil {
			return clientCredential{}, err
		}
		logger.Info("generated a client credential", "file", path, "access_key", doc.Credentials[0].AccessKey)
	} else if err != nil {
		return clientCredential{}, err
	}
	return clientCredential{credential: doc.Credentials[0], generated: true}, nil
}

// readCredentials reads and checks credentials.json. Like the keyring, it
// refuses a file open to group or others rather than fixing the mode: the
// secret may already have leaked, and that is for a human to judge.
func readCredentials(path string) (credentialsDoc, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return credentialsDoc{}, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return credentialsDoc{}, fmt.Errorf("%s has mode %s: it holds a secret, want 0600 (check who read it, then chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return credentialsDoc{}, err
	}
	var doc credentialsDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return credentialsDoc{}, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Version != 1 || len(doc.Credentials) == 0 {
		return credentialsDoc{}, fmt.Errorf("%s: want version 1 and at least one credential", path)
	}
	for i, c := range doc.Credentials {
		if c.AccessKey == "" || c.SecretKey == "" {
			return credentialsDoc{}, fmt.Errorf("%s: credential %d lacks access_key or secret_key", path, i)
		}
	}
	return doc, nil
}

// writeCredentials creates path with mode 0600, failing if it exists, so
// two processes starting at once cannot overwrite each other's secret.
func writeCredentials(path string, doc credentialsDoc) (err error) {
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

// openDataKeyring opens DATA_DIR/keyring.json, creating the dir and an empty
// keyring if needed.
func openDataKeyring(dataDir string) (*keyring.Keyring, error) {
	if err := ensureDataDir(dataDir); err != nil {
		return nil, err
	}
	ring, err := keyring.Open(filepath.Join(dataDir, keyringFile))
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return ring, nil
}

// ensureDefaultKey creates the default alias (with a new key) on first
// start. Any other missing key is left for the doctor's checks to report,
// since silently creating a key for a mistyped id would hide the mistake.
func ensureDefaultKey(ring *keyring.Keyring, keyID string, logger *slog.Logger) error {
	if keyID != defaultKeyAlias {
		return nil
	}
	if _, err := ring.DescribeKey(keyID); !errors.Is(err, kms.ErrKeyNotFound) {
		return nil
	}
	_, err := createDefaultKey(ring, logger)
	return err
}

func createDefaultKey(ring *keyring.Keyring, logger *slog.Logger) (keyring.KeyInfo, error) {
	info, err := ring.CreateKey("s3seal default key, created on first start")
	if err != nil {
		return keyring.KeyInfo{}, fmt.Errorf("keyring: %w", err)
	}
	if err := ring.CreateAlias(defaultKeyAlias, info.ID); err != nil {
		return keyring.KeyInfo{}, fmt.Errorf("keyring: %w", err)
	}
	logger.Info("created the keyring's default key", "key_id", info.ID, "alias", defaultKeyAlias)
	return ring.DescribeKey(info.ID)
}
