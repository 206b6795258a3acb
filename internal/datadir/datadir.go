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
	"syscall"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// Files in the data directory.
const (
	KeyringFile     = "keyring.json"
	CredentialsFile = "credentials.json"
	StoreDir        = "store" // the embedded store's
)

// Ensure creates dir (mode 0700) if needed: only serve's first start and
// the commands that start a keyring (s3seal keys create, import) do.
func Ensure(dir string) error {
	if err := Check(dir, ""); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return dirError(dir, err)
	}
	return Check(dir, "")
}

// Check reports what keeps dir from being used as the data dir: it is
// missing (an error wrapping fs.ErrNotExist, whose message ends with
// start, how to make one), a file, or not accessible to this process.
// Each message names S3SEAL_DATA_DIR, which is where the operator set it.
func Check(dir, start string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return missing(fmt.Sprintf("S3SEAL_DATA_DIR=%s does not exist: set S3SEAL_DATA_DIR to the data dir of your s3seal serve, or %s",
			dir, orServe(start)))
	case err != nil:
		return dirError(dir, err)
	case !fi.IsDir():
		return fmt.Errorf("S3SEAL_DATA_DIR=%s is a file, not a directory: set S3SEAL_DATA_DIR to the data dir of your s3seal serve, "+
			"or to a path that does not exist yet for a new one", dir)
	}
	// Reading the data dir's files takes read and search permission on it.
	const readSearch = 0x4 | 0x1 // R_OK | X_OK, which package syscall does not name
	if err := syscall.Access(dir, readSearch); err != nil {
		return dirError(dir, &fs.PathError{Op: "access", Path: dir, Err: err})
	}
	return nil
}

// missingError is a data dir or keyring that does not exist; its message
// says what to do, so the underlying "no such file" is not repeated.
type missingError struct{ msg string }

func missing(msg string) error               { return &missingError{msg} }
func (e *missingError) Error() string        { return e.msg }
func (e *missingError) Is(target error) bool { return target == fs.ErrNotExist }

// orServe is how to make a missing data dir: start, or serve's first start.
func orServe(start string) string {
	if start == "" {
		return "start s3seal serve once to create it"
	}
	return start
}

// dirError names S3SEAL_DATA_DIR in err, and for a permission problem the
// uid s3seal runs as and the one that owns the data dir.
func dirError(dir string, err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("S3SEAL_DATA_DIR=%s: %w", dir, err)
	}
	owner := ""
	if fi, serr := os.Stat(dir); serr == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owner = fmt.Sprintf(" (it is owned by uid %d, mode %s)", st.Uid, fi.Mode().Perm())
		}
	}
	return fmt.Errorf("S3SEAL_DATA_DIR=%s is not accessible to uid %d%s: run s3seal as the user that owns the data dir, "+
		"or make it theirs (chown -R %d %s): %w", dir, os.Getuid(), owner, os.Getuid(), dir, err)
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
	// A data dir that is a file or not accessible is named as such, not
	// as a failure to read the file in it.
	if err := Ensure(dir); err != nil {
		return Credential{}, err
	}
	path := filepath.Join(dir, CredentialsFile)
	doc, err := ReadCredentials(path)
	if errors.Is(err, fs.ErrNotExist) {
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

// OpenKeyring opens dir's keyring.json, which must exist: a command that
// only uses a keyring must not start one where a mistyped S3SEAL_DATA_DIR
// leads. start says how to start one, for the message.
func OpenKeyring(dir, start string) (*keyring.Keyring, error) {
	if err := Check(dir, start); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, KeyringFile)
	ring, err := keyring.OpenExisting(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, missing(fmt.Sprintf("S3SEAL_DATA_DIR=%s has no %s (no key was ever made there): set S3SEAL_DATA_DIR to the data dir of your s3seal serve, or %s",
			dir, KeyringFile, orServe(start)))
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%w: s3seal runs as uid %d; run it as the user that owns %s", err, os.Getuid(), path)
	}
	return ring, err
}

// CreateKeyring opens dir's keyring.json, creating the dir and an empty
// keyring if needed: for serve's first start, and s3seal keys create and
// import.
func CreateKeyring(dir string) (*keyring.Keyring, error) {
	if err := Ensure(dir); err != nil {
		return nil, err
	}
	return keyring.Open(filepath.Join(dir, KeyringFile))
}

// EnsureKey creates a key under alias unless the alias exists: the default
// key, on first start. (A configured key that is missing is for the doctor's
// checks to report: silently creating a key for a mistyped id would hide the
// mistake.) Replicas sharing a data dir may all start at once: one makes the
// key, the others use it.
func EnsureKey(ring *keyring.Keyring, alias string, logger *slog.Logger) error {
	if _, err := ring.DescribeKey(alias); !errors.Is(err, kms.ErrKeyNotFound) {
		return nil
	}
	info, err := ring.CreateKeyWith(keyring.KeySpec{Description: "s3seal default key, created on first start", Alias: alias})
	if err != nil {
		return madeMeanwhile(ring, alias, logger, err)
	}
	logger.Info("created the keyring's default key", "key_id", info.ID, "alias", alias)
	return nil
}

// madeMeanwhile handles EnsureKey's failure err to create the default key:
// when another process sharing the keyring made it first (the alias is
// taken), the key it made is used if it is enabled. No key of our own was
// made: the key and its alias are one change.
func madeMeanwhile(ring *keyring.Keyring, alias string, logger *slog.Logger, err error) error {
	var ke *kms.KMSError
	// The keyring's code for a taken alias, as the KMS API answers it (keyring/errors.go).
	if !errors.As(err, &ke) || ke.Code != "AlreadyExistsException" {
		return fmt.Errorf("keyring %s: creating the default key: %w", ring.Path(), err)
	}
	// The failed change read the file as it is now.
	info, derr := ring.DescribeKey(alias)
	switch {
	case derr != nil:
		return fmt.Errorf("keyring %s: creating the default key: %w", ring.Path(), err)
	case info.State != kms.KeyEnabled:
		return fmt.Errorf("keyring %s: the default key %s (%s), made meanwhile by another s3seal sharing the data dir, is %s: %w",
			ring.Path(), alias, info.ID, info.State, err)
	}
	logger.Info("using the default key another s3seal sharing the data dir created meanwhile", "key_id", info.ID, "alias", alias)
	return nil
}
