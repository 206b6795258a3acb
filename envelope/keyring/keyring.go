// Package keyring is s3seal's embedded key service: a kms.KeyService that
// keeps its customer master keys in a local JSON file, so that s3seal works
// with no external KMS at all.
//
// The keyring file holds key material IN THE CLEAR. Its only protection is
// its mode (0600, enforced on open) and the data directory it lives in. That
// is the right trade-off for a zero-configuration default and for tests; a
// production deployment should use an external KMS (envelope/awskms), where
// the master keys never leave the service.
//
// Keyring file (JSON, mode 0600, replaced atomically on every change):
//
//	{
//	  "version": 1,
//	  "keys": [{
//	    "id":            "UUID v4",
//	    "description":   "...",
//	    "created":       "RFC 3339 time",
//	    "state":         "Enabled" | "Disabled" | "PendingDeletion" | "PendingImport",
//	    "origin":        "S3SEAL" | "EXTERNAL",
//	    "deletion_date": "RFC 3339 time",  (only when PendingDeletion)
//	    "aliases":       ["alias/NAME", ...],
//	    "rotation_period": nanoseconds, "next_rotation": "RFC 3339 time",
//	                     (only when automatic rotation is on)
//	    "rotated":       "RFC 3339 time",  (the last rotation, if any)
//	    "material":      ["base64 of 32 bytes", ...]  (index i is material version i+1;
//	                     empty only for an EXTERNAL key whose material is not imported yet)
//	    "import": {      (only while an import is pending: import.go)
//	      "token":       "base64 of the import token",
//	      "algorithm":   "RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256",
//	      "private_key": "base64 of the PKCS #8 RSA wrapping key",
//	      "valid_to":    "RFC 3339 time"
//	    }
//	  }]
//	}
//
// Every field added after version 1 is optional (omitted when empty), so
// older files load unchanged.
//
// Wrapped data keys are docs/FORMAT.md §7's keyring blobs: the header is
// authenticated along with the encryption context, so a flipped byte, a
// wrong context, or a blob made by another keyring (or another key) fails to
// open, as kms.ErrInvalidCiphertext.
package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/internal/sharedfile"
)

// KeyOrigin tells where a CMK's key material came from.
type KeyOrigin string

const (
	OriginGenerated KeyOrigin = "S3SEAL"   // material made by the keyring
	OriginExternal  KeyOrigin = "EXTERNAL" // customer-provided material imported by the user
)

// KeyInfo describes a CMK. It deliberately has no field that could hold key
// material, so it is safe to print, log or serialize.
type KeyInfo struct {
	ID           string   // UUID v4 string, made with crypto/rand
	Aliases      []string // each "alias/NAME", sorted
	Description  string
	Created      time.Time
	State        kms.KeyState
	Origin       KeyOrigin
	Versions     int       // number of key-material versions (1 + rotations)
	DeletionDate time.Time // zero unless PendingDeletion
	// Automatic rotation: the period (zero when off) and the next one's
	// time; LastRotated is the last rotation's (zero: never rotated).
	RotationPeriod time.Duration
	NextRotation   time.Time
	LastRotated    time.Time
}

const (
	materialSize       = 32 // AES-256 CMK material
	keyringFileVersion = 1
	ringBlobVersion    = 0x01
	ringNonceSize      = 12
	ringTagSize        = 16

	MinPendingDays = 7 // AWS KMS's bounds for the deletion waiting period
	MaxPendingDays = 30

	ringAliasPrefix    = "alias/"
	ringReservedPrefix = "alias/aws/" // AWS-managed aliases; refused so names stay portable
	ringMaxAliasLen    = 256
)

// Keyring is the embedded KeyService. It is safe for concurrent use.
//
// Invariant: a *keyringState, once published in state, is never modified.
// Changes copy the current state, edit the copy, write it to disk, and only
// then publish it, so a failed write leaves the keyring as it was and the
// crypto operations read the state without taking any lock.
type Keyring struct {
	path  string
	arns  ARNs             // set once by UseARNs, before use; zero: none
	now   func() time.Time // replaced by tests
	mu    sync.Mutex       // serializes changes and reloads (and so file writes)
	stamp sharedfile.Stamp // of the file state was read from or written to; under mu
	state atomic.Pointer[keyringState]
}

var (
	_ kms.KeyService      = (*Keyring)(nil)
	_ kms.KeyResolver     = (*Keyring)(nil)
	_ kms.KeyStatusReader = (*Keyring)(nil)
)

// keyringState is both the file's JSON and the in-memory keyring.
type keyringState struct {
	Version int        `json:"version"`
	Keys    []*ringKey `json:"keys"`

	// Indexes over Keys by id and by alias, rebuilt by index.
	byID    map[string]*ringKey
	byAlias map[string]*ringKey
}

type ringKey struct {
	ID           string       `json:"id"`
	Description  string       `json:"description"`
	Created      time.Time    `json:"created"`
	State        kms.KeyState `json:"state"`
	Origin       KeyOrigin    `json:"origin"`
	DeletionDate time.Time    `json:"deletion_date,omitzero"`
	Aliases      []string     `json:"aliases"`
	// Automatic rotation (rotation.go): the period, zero when off, and the
	// next rotation's time; Rotated is the last rotation's, automatic or
	// not (zero: never rotated).
	RotationPeriod time.Duration `json:"rotation_period,omitzero"`
	NextRotation   time.Time     `json:"next_rotation,omitzero"`
	Rotated        time.Time     `json:"rotated,omitzero"`
	// Material holds every version's 32 bytes, oldest first; the last one
	// wraps, all of them unwrap. The byte slices are never modified. It is
	// empty only while an EXTERNAL key awaits its material (PendingImport).
	Material [][]byte `json:"material"`
	// Import is the import in progress (GetParametersForImport), or nil.
	// Like Material it is never modified, only replaced.
	Import *pendingImport `json:"import,omitzero"`
}

// Open opens (or creates, empty) the keyring file at path. The file is
// JSON, mode 0600, and every change is written with an atomic replace (temp
// file in the same dir, fsync, rename, fsync dir). Keys whose DeletionDate has
// passed are purged when the keyring is opened.
//
// A file readable or writable by group or others is refused rather than
// silently fixed: it may already have leaked, and that is for a human to judge.
func Open(path string) (*Keyring, error) {
	return openKeyring(path, time.Now)
}

// OpenExisting opens the keyring file at path, which must exist: for the
// commands that use a keyring but must not start one where a mistyped path
// leads. A missing file is an error wrapping fs.ErrNotExist, and leaves no
// file (not even the lock file) behind.
func OpenExisting(path string) (*Keyring, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return open(path, time.Now, false)
}

func openKeyring(path string, now func() time.Time) (*Keyring, error) {
	return open(path, now, true)
}

// open opens the keyring file at path, and creates it empty if it is
// missing and create is set.
func open(path string, now func() time.Time, create bool) (*Keyring, error) {
	k := &Keyring{path: path, now: now}
	unlock, err := sharedfile.Lock(path)
	switch {
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		// A keyring on read-only media (a backup being decrypted): it can
		// be read, and any change will fail when it is written.
		unlock = func() {}
	case err != nil:
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer unlock()
	st, stamp, err := readState(path, now())
	if errors.Is(err, os.ErrNotExist) && create {
		st = &keyringState{Version: keyringFileVersion, Keys: []*ringKey{}}
		if err := sharedfile.Replace(path, st.marshal()); err != nil {
			return nil, fmt.Errorf("keyring: creating %s: %w", path, err)
		}
		if stamp, err = sharedfile.StampOf(path); err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		st.index()
	} else if err != nil {
		return nil, err
	}
	k.stamp = stamp
	k.state.Store(st)
	return k, nil
}

// validate checks what the rest of the code assumes about a loaded file.
func (s *keyringState) validate() error {
	if s.Version != keyringFileVersion {
		return fmt.Errorf("unsupported keyring version %d", s.Version)
	}
	if s.Keys == nil {
		s.Keys = []*ringKey{} // written back as [], not null
	}
	ids := map[string]bool{}
	aliases := map[string]bool{}
	for i, key := range s.Keys {
		if key == nil {
			return fmt.Errorf("key %d is null", i)
		}
		// The blob stores the id's length in one byte.
		if key.ID == "" || len(key.ID) > 255 || strings.HasPrefix(key.ID, ringAliasPrefix) {
			return fmt.Errorf("key %d has an invalid id", i)
		}
		if ids[key.ID] {
			return fmt.Errorf("duplicate key id %s", key.ID)
		}
		ids[key.ID] = true
		if err := key.validate(); err != nil {
			return err
		}
		for _, a := range key.Aliases {
			if err := CheckAlias(a); err != nil {
				return fmt.Errorf("key %s: %w", key.ID, err)
			}
			if aliases[a] {
				return fmt.Errorf("duplicate alias %s", a)
			}
			aliases[a] = true
		}
		slices.Sort(key.Aliases)
	}
	return nil
}

// validate checks one key: its state, origin, material and rotation.
func (key *ringKey) validate() error {
	switch key.State {
	case kms.KeyEnabled, kms.KeyDisabled, kms.KeyPendingImport:
		if !key.DeletionDate.IsZero() {
			return fmt.Errorf("key %s: deletion date set but state %s", key.ID, key.State)
		}
	case kms.KeyPendingDeletion:
		if key.DeletionDate.IsZero() {
			return fmt.Errorf("key %s: pending deletion without a deletion date", key.ID)
		}
	default:
		return fmt.Errorf("key %s: unknown state %q", key.ID, key.State)
	}
	if key.Origin != OriginGenerated && key.Origin != OriginExternal {
		return fmt.Errorf("key %s: unknown origin %q", key.ID, key.Origin)
	}
	if err := key.validateMaterial(); err != nil {
		return err
	}
	if key.RotationPeriod < 0 || (key.RotationPeriod > 0) != !key.NextRotation.IsZero() {
		return fmt.Errorf("key %s: rotation period and next rotation do not go together", key.ID)
	}
	return key.validateImport()
}

// validateMaterial checks that a key has material exactly when its state
// needs it: an EXTERNAL key awaiting its import has none (and may be
// scheduled for deletion so), every other key has some.
func (key *ringKey) validateMaterial() error {
	switch {
	case key.State == kms.KeyPendingImport && (key.Origin != OriginExternal || len(key.Material) != 0):
		return fmt.Errorf("key %s: pending import, but not an EXTERNAL key without material", key.ID)
	case len(key.Material) == 0 && key.State != kms.KeyPendingImport &&
		!(key.State == kms.KeyPendingDeletion && key.Origin == OriginExternal):
		return fmt.Errorf("key %s: no key material", key.ID)
	}
	for v, m := range key.Material {
		if len(m) != materialSize {
			return fmt.Errorf("key %s: material version %d is %d bytes, want %d", key.ID, v+1, len(m), materialSize)
		}
	}
	return nil
}

func (s *keyringState) index() {
	s.byID = make(map[string]*ringKey, len(s.Keys))
	s.byAlias = map[string]*ringKey{}
	for _, key := range s.Keys {
		s.byID[key.ID] = key
		for _, a := range key.Aliases {
			s.byAlias[a] = key
		}
	}
}

// clone copies everything that a change may modify. Material byte slices are
// shared: they are never modified.
func (s *keyringState) clone() *keyringState {
	c := &keyringState{Version: s.Version, Keys: make([]*ringKey, len(s.Keys))}
	for i, key := range s.Keys {
		kc := *key
		kc.Aliases = slices.Clone(key.Aliases)
		kc.Material = slices.Clone(key.Material)
		c.Keys[i] = &kc
	}
	c.index()
	return c
}

// expired reports whether key's deletion date has passed: such a key is
// treated as gone even before the file is rewritten without it.
func (key *ringKey) expired(now time.Time) bool {
	return key.State == kms.KeyPendingDeletion && !now.Before(key.DeletionDate)
}

// purge drops the expired keys (and so their aliases) and reports whether
// there were any. The indexes are stale afterwards.
func (s *keyringState) purge(now time.Time) bool {
	n := len(s.Keys)
	s.Keys = slices.DeleteFunc(s.Keys, func(key *ringKey) bool { return key.expired(now) })
	return len(s.Keys) != n
}

// resolve finds a live key by id or "alias/..." name, or returns nil.
func (s *keyringState) resolve(ref string, now time.Time) *ringKey {
	var key *ringKey
	if strings.HasPrefix(ref, ringAliasPrefix) {
		key = s.byAlias[ref]
	} else {
		key = s.byID[ref]
	}
	if key == nil || key.expired(now) {
		return nil
	}
	return key
}

func (s *keyringState) marshal() []byte {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic("keyring: marshal: " + err.Error()) // only plain types: cannot fail
	}
	return append(b, '\n')
}

func (key *ringKey) info() KeyInfo {
	return KeyInfo{
		ID:           key.ID,
		Aliases:      slices.Clone(key.Aliases),
		Description:  key.Description,
		Created:      key.Created,
		State:        key.State,
		Origin:       key.Origin,
		Versions:     len(key.Material),
		DeletionDate: key.DeletionDate,

		RotationPeriod: key.RotationPeriod,
		NextRotation:   key.NextRotation,
		LastRotated:    key.Rotated,
	}
}

// update applies change to a copy of the state, saves the copy and publishes
// it. If change or the write fails, nothing visible changes.
//
// Other processes change the file too (s3seal keys beside a running serve,
// replicas sharing it): the change is made under the file's lock, to the
// file as it is now, so that none of theirs is lost.
func (k *Keyring) update(op string, change func(s *keyringState, now time.Time) error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	unlock, err := sharedfile.Lock(k.path)
	if err != nil {
		return &kms.KMSError{Op: op, Kind: kms.ErrKMSUnavailable, Cause: fmt.Errorf("locking keyring: %w", err)}
	}
	defer unlock()
	if _, err := k.reloadLocked(true); err != nil {
		return &kms.KMSError{Op: op, Kind: kms.ErrKMSUnavailable, Cause: err}
	}
	now := k.now()
	next := k.state.Load().clone()
	if err := change(next, now); err != nil {
		return err
	}
	next.purge(now) // expired keys are gone anyway; do not write them back
	if err := sharedfile.Replace(k.path, next.marshal()); err != nil {
		return &kms.KMSError{Op: op, Kind: kms.ErrKMSUnavailable, Cause: fmt.Errorf("saving keyring: %w", err)}
	}
	next.index()
	k.state.Store(next)
	if stamp, err := sharedfile.StampOf(k.path); err == nil {
		k.stamp = stamp
	}
	return nil
}

// updateKey is update for changes to the one key that keyID names.
func (k *Keyring) updateKey(op, keyID string, change func(key *ringKey, now time.Time) error) (KeyInfo, error) {
	var info KeyInfo
	err := k.update(op, func(s *keyringState, now time.Time) error {
		key := s.resolve(keyID, now)
		if key == nil {
			return ringNotFound(op, keyID)
		}
		if err := change(key, now); err != nil {
			return err
		}
		info = key.info()
		return nil
	})
	if err != nil {
		return KeyInfo{}, err
	}
	return info, nil
}

// newRingKeyID returns a random (version 4) UUID.
func newRingKeyID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// KeySpec is what a new key is made with besides its material.
type KeySpec struct {
	Description string
	Alias       string // "alias/NAME" for the new key, or empty for none
}

// check refuses a spec AWS KMS would refuse, before anything is made.
func (spec KeySpec) check(op string) error {
	if err := CheckDescription(spec.Description); err != nil {
		return &kms.KMSError{Op: op, Kind: kms.ErrInvalidKMSRequest, Code: codeValidation, Cause: err}
	}
	if spec.Alias == "" {
		return nil
	}
	if err := CheckAlias(spec.Alias); err != nil {
		return &kms.KMSError{Op: op, Kind: kms.ErrInvalidKMSRequest, Code: codeInvalidAliasName, Cause: err}
	}
	return nil
}

// addKey adds a key of origin with material, or, with nil material, an
// EXTERNAL key that waits for its material (PendingImport). The key and
// its alias are one change: a taken alias makes no key.
func (k *Keyring) addKey(op string, material []byte, origin KeyOrigin, spec KeySpec) (KeyInfo, error) {
	if err := spec.check(op); err != nil {
		return KeyInfo{}, err
	}
	state, versions := kms.KeyEnabled, [][]byte{material}
	if material == nil {
		state, versions = kms.KeyPendingImport, [][]byte{}
	}
	var info KeyInfo
	err := k.update(op, func(s *keyringState, now time.Time) error {
		key := &ringKey{
			ID:          newRingKeyID(),
			Description: spec.Description,
			Created:     now.UTC().Round(0), // as it will read back from the file
			State:       state,
			Origin:      origin,
			Aliases:     []string{},
			Material:    versions,
		}
		if spec.Alias != "" {
			if err := aliasFree(op, s, spec.Alias, now); err != nil {
				return err
			}
			key.Aliases = []string{spec.Alias}
		}
		s.Keys = append(s.Keys, key)
		info = key.info()
		return nil
	})
	return info, err
}

// CreateKey makes a new enabled key with fresh random material.
func (k *Keyring) CreateKey(description string) (KeyInfo, error) {
	return k.CreateKeyWith(KeySpec{Description: description})
}

// CreateKeyWith makes a new enabled key with fresh random material, and
// its alias if spec names one, in one change.
func (k *Keyring) CreateKeyWith(spec KeySpec) (KeyInfo, error) {
	material := make([]byte, materialSize)
	rand.Read(material)
	return k.addKey("CreateKey", material, OriginGenerated, spec)
}

// ImportKey makes a new enabled key from customer-provided material, which
// must be exactly 32 bytes. The keyring keeps its own copy.
func (k *Keyring) ImportKey(material []byte, description string) (KeyInfo, error) {
	return k.ImportKeyWith(material, KeySpec{Description: description})
}

// ImportKeyWith is ImportKey with an alias too, made in the same change.
func (k *Keyring) ImportKeyWith(material []byte, spec KeySpec) (KeyInfo, error) {
	if len(material) != materialSize {
		return KeyInfo{}, ringInvalid("ImportKey", "key material is %d bytes, want %d", len(material), materialSize)
	}
	return k.addKey("ImportKey", bytes.Clone(material), OriginExternal, spec)
}

// RotateKey adds a new version of key material: new wraps use it, wraps made
// under older versions still unwrap. Imported keys cannot be rotated, since
// the keyring would have to make up material the customer never provided.
func (k *Keyring) RotateKey(keyID string) (KeyInfo, error) {
	const op = "RotateKey"
	return k.updateKey(op, keyID, func(key *ringKey, now time.Time) error {
		if err := key.rotatable(op); err != nil {
			return err
		}
		key.rotate(now)
		return nil
	})
}

// rotatable refuses, for op, a key that cannot get new material: one whose
// material the customer imports (the keyring would have to make up
// material the customer never provided), or one not enabled.
func (key *ringKey) rotatable(op string) error {
	switch {
	case key.Origin != OriginGenerated:
		return ringUnsupported(op, "key %s has imported material and cannot be rotated", key.ID)
	case key.State != kms.KeyEnabled:
		return ringWrongState(op, key)
	}
	return nil
}

// rotate adds a version of fresh material, which new wraps use from now.
func (key *ringKey) rotate(now time.Time) {
	material := make([]byte, materialSize)
	rand.Read(material)
	key.Material = append(key.Material, material)
	key.Rotated = now.UTC().Round(0)
}

// UpdateKeyDescription replaces the description of the key keyID names.
func (k *Keyring) UpdateKeyDescription(keyID, description string) (KeyInfo, error) {
	const op = "UpdateKeyDescription"
	if err := CheckDescription(description); err != nil {
		return KeyInfo{}, &kms.KMSError{Op: op, Kind: kms.ErrInvalidKMSRequest, Code: codeValidation, Cause: err}
	}
	return k.updateKey(op, keyID, func(key *ringKey, _ time.Time) error {
		if key.State == kms.KeyPendingDeletion {
			return ringPendingDeletion(op, key)
		}
		key.Description = description
		return nil
	})
}

// EnableKey enables a disabled key. It cannot revive a key pending deletion:
// that takes CancelKeyDeletion, as in AWS KMS.
func (k *Keyring) EnableKey(keyID string) error {
	return k.setState("EnableKey", keyID, kms.KeyEnabled)
}

// DisableKey disables a key: every crypto operation with it fails with
// ErrKeyDisabled until it is enabled again.
func (k *Keyring) DisableKey(keyID string) error {
	return k.setState("DisableKey", keyID, kms.KeyDisabled)
}

// setState enables or disables a key that is not pending deletion or
// waiting for its material.
func (k *Keyring) setState(op, keyID string, state kms.KeyState) error {
	_, err := k.updateKey(op, keyID, func(key *ringKey, now time.Time) error {
		switch key.State {
		case kms.KeyPendingDeletion:
			return ringPendingDeletion(op, key)
		case kms.KeyPendingImport:
			return ringWrongState(op, key)
		}
		key.State = state
		return nil
	})
	return err
}

// ScheduleKeyDeletion makes a key unusable now and deletes it, material and
// aliases, pendingDays (7 to 30, as in AWS KMS) from now. It returns the
// deletion date.
func (k *Keyring) ScheduleKeyDeletion(keyID string, pendingDays int) (time.Time, error) {
	const op = "ScheduleKeyDeletion"
	if pendingDays < MinPendingDays || pendingDays > MaxPendingDays {
		return time.Time{}, ringInvalid(op, "pending window is %d days, want %d to %d", pendingDays, MinPendingDays, MaxPendingDays)
	}
	info, err := k.updateKey(op, keyID, func(key *ringKey, now time.Time) error {
		if key.State == kms.KeyPendingDeletion {
			return ringPendingDeletion(op, key)
		}
		key.State = kms.KeyPendingDeletion
		key.DeletionDate = now.UTC().Round(0).Add(time.Duration(pendingDays) * 24 * time.Hour)
		return nil
	})
	return info.DeletionDate, err
}

// CancelKeyDeletion takes a key out of PendingDeletion. Like AWS KMS, it
// leaves the key Disabled: using it again is a separate decision. A key
// deleted before its material was imported goes back to PendingImport.
func (k *Keyring) CancelKeyDeletion(keyID string) error {
	const op = "CancelKeyDeletion"
	_, err := k.updateKey(op, keyID, func(key *ringKey, now time.Time) error {
		if key.State != kms.KeyPendingDeletion {
			return ringErr(op, kms.ErrInvalidKMSRequest, codeInvalidState, "key %s is not pending deletion", key.ID)
		}
		key.State = kms.KeyDisabled
		if len(key.Material) == 0 {
			key.State = kms.KeyPendingImport
		}
		key.DeletionDate = time.Time{}
		return nil
	})
	return err
}

// CheckAlias enforces AWS's alias syntax, so that aliases carry over to a
// real KMS.
func CheckAlias(alias string) error {
	name, ok := strings.CutPrefix(alias, ringAliasPrefix)
	switch {
	case !ok:
		return fmt.Errorf("invalid alias %q: want alias/NAME, as in alias/%s", alias, strings.TrimPrefix(alias, "/"))
	case name == "":
		return fmt.Errorf("invalid alias %q: the NAME after alias/ is empty", alias)
	case strings.HasPrefix(alias, ringReservedPrefix):
		return fmt.Errorf("invalid alias %q: alias/aws/ is reserved for AWS-managed keys; choose another NAME", alias)
	case len(alias) > ringMaxAliasLen:
		return fmt.Errorf("invalid alias %q: %d characters, at most %d", alias, len(alias), ringMaxAliasLen)
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '/' || c == '_' || c == '-') {
			return fmt.Errorf("invalid alias %q: only letters, digits, '/', '_' and '-' are allowed after alias/", alias)
		}
	}
	return nil
}

// MaxDescription is AWS KMS's bound on a key description, in characters.
const MaxDescription = 8192

// CheckDescription refuses a description AWS KMS would refuse: longer
// than MaxDescription characters, or not UTF-8 (the API is JSON).
func CheckDescription(d string) error {
	if !utf8.ValidString(d) {
		return errors.New("invalid description: not UTF-8 text")
	}
	if n := utf8.RuneCountInString(d); n > MaxDescription {
		return fmt.Errorf("invalid description: %d characters, at most %d", n, MaxDescription)
	}
	return nil
}

// aliasFree refuses an alias that names a live key already.
func aliasFree(op string, s *keyringState, alias string, now time.Time) error {
	if key := s.byAlias[alias]; key != nil && !key.expired(now) {
		return ringErr(op, kms.ErrInvalidKMSRequest, codeAlreadyExists, "alias %s already exists (it names key %s)", alias, key.ID)
	}
	return nil
}

// CreateAlias names the key keyID (an id or another alias) alias, which must
// be unused. Like AWS KMS, it refuses a key pending deletion: an alias is
// no way to a key that is going away.
func (k *Keyring) CreateAlias(alias, keyID string) error {
	const op = "CreateAlias"
	if err := CheckAlias(alias); err != nil {
		return &kms.KMSError{Op: op, Kind: kms.ErrInvalidKMSRequest, Code: codeInvalidAliasName, Cause: err}
	}
	return k.update(op, func(s *keyringState, now time.Time) error {
		if err := aliasFree(op, s, alias, now); err != nil {
			return err
		}
		key := s.resolve(keyID, now)
		switch {
		case key == nil:
			return ringNotFound(op, keyID)
		case key.State == kms.KeyPendingDeletion:
			return ringPendingDeletion(op, key)
		}
		key.Aliases = append(key.Aliases, alias)
		slices.Sort(key.Aliases)
		return nil
	})
}

// UpdateAlias points an existing alias at the key keyID names, which must
// not be pending deletion (as in AWS KMS: an alias is no way to a key that
// is going away). fromID, when not empty, is the key id the caller saw the
// alias name (and was authorized on): if it names another key by now, the
// alias is left alone.
func (k *Keyring) UpdateAlias(alias, fromID, keyID string) error {
	const op = "UpdateAlias"
	return k.update(op, func(s *keyringState, now time.Time) error {
		from, err := aliasOf(op, s, alias, fromID, now)
		if err != nil {
			return err
		}
		to := s.resolve(keyID, now)
		switch {
		case to == nil:
			return ringNotFound(op, keyID)
		case to.State == kms.KeyPendingDeletion:
			return ringPendingDeletion(op, to)
		case to == from:
			return nil
		}
		from.Aliases = slices.DeleteFunc(from.Aliases, func(a string) bool { return a == alias })
		to.Aliases = append(to.Aliases, alias)
		slices.Sort(to.Aliases)
		return nil
	})
}

// DeleteAlias removes an alias; the key it named is unaffected. keyID,
// when not empty, is the key id the caller saw the alias name: if it names
// another key by now, the alias stays.
func (k *Keyring) DeleteAlias(alias, keyID string) error {
	const op = "DeleteAlias"
	return k.update(op, func(s *keyringState, now time.Time) error {
		if !strings.HasPrefix(alias, ringAliasPrefix) {
			return ringInvalid(op, "invalid alias %q: want alias/NAME", alias)
		}
		key, err := aliasOf(op, s, alias, keyID, now)
		if err != nil {
			return err
		}
		key.Aliases = slices.DeleteFunc(key.Aliases, func(a string) bool { return a == alias })
		return nil
	})
}

// aliasOf is the key alias names, which must be the key id want unless
// want is empty: a change authorized on the key the alias named when the
// caller looked must not apply to another key it was re-pointed to since.
func aliasOf(op string, s *keyringState, alias, want string, now time.Time) (*ringKey, error) {
	key := s.resolve(alias, now)
	switch {
	case !strings.HasPrefix(alias, ringAliasPrefix) || key == nil:
		return nil, ringNotFound(op, alias)
	case want != "" && key.ID != want:
		return nil, ringErr(op, kms.ErrInvalidKMSRequest, codeConflict, "alias %s names another key now; try again", alias)
	}
	return key, nil
}

// DescribeKey returns the key that keyID (an id or alias, or an ARN with
// UseARNs) names.
func (k *Keyring) DescribeKey(keyID string) (KeyInfo, error) {
	key := k.state.Load().resolve(k.local(keyID), k.now())
	if key == nil {
		return KeyInfo{}, ringNotFound("DescribeKey", keyID)
	}
	return key.info(), nil
}

// ResolveKey returns the names of the key keyID names: its id, the only
// name the keyring puts in Wrapped.KeyID, and with UseARNs its ARN, which
// the KMS API puts there.
func (k *Keyring) ResolveKey(ctx context.Context, keyID string) ([]string, error) {
	if err := ctxDone(ctx, "DescribeKey"); err != nil {
		return nil, err
	}
	info, err := k.DescribeKey(keyID)
	if err != nil {
		return nil, err
	}
	return k.names(info.ID), nil
}

// KeyStatus returns the id and the state of the key keyID (an id or alias)
// names.
func (k *Keyring) KeyStatus(ctx context.Context, keyID string) (kms.KeyStatus, error) {
	if err := ctxDone(ctx, "DescribeKey"); err != nil {
		return kms.KeyStatus{}, err
	}
	info, err := k.DescribeKey(keyID)
	if err != nil {
		return kms.KeyStatus{}, err
	}
	return kms.KeyStatus{IDs: k.names(info.ID), State: info.State}, nil
}

// ListKeys returns every key, sorted by creation time then id.
func (k *Keyring) ListKeys() []KeyInfo {
	now := k.now()
	infos := []KeyInfo{}
	for _, key := range k.state.Load().Keys {
		if !key.expired(now) {
			infos = append(infos, key.info())
		}
	}
	slices.SortFunc(infos, func(a, b KeyInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return infos
}

// usableKey resolves keyID for a crypto operation: unknown is
// ErrKeyNotFound, not Enabled is ErrKeyDisabled.
func (k *Keyring) usableKey(op, keyID string) (*ringKey, error) {
	key := k.state.Load().resolve(k.local(keyID), k.now())
	if key == nil {
		return nil, ringNotFound(op, keyID)
	}
	if key.State != kms.KeyEnabled {
		return nil, ringWrongState(op, key)
	}
	return key, nil
}

func ringGCM(material []byte) cipher.AEAD {
	b, err := aes.NewCipher(material)
	if err != nil {
		panic("keyring: " + err.Error()) // material is always 32 bytes
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic("keyring: " + err.Error())
	}
	return g
}

// ringWrap seals plaintext under key's newest material; see the blob format at
// the top of this file.
func ringWrap(key *ringKey, plaintext []byte, encCtx map[string]string) kms.Wrapped {
	version := len(key.Material)
	blob := make([]byte, 0, 2+len(key.ID)+4+ringNonceSize+len(plaintext)+ringTagSize)
	blob = append(blob, ringBlobVersion, byte(len(key.ID)))
	blob = append(blob, key.ID...)
	blob = binary.BigEndian.AppendUint32(blob, uint32(version))
	aad := append(bytes.Clone(blob), kms.CanonicalContext(encCtx)...)
	var nonce [ringNonceSize]byte
	rand.Read(nonce[:])
	blob = append(blob, nonce[:]...)
	blob = ringGCM(key.Material[version-1]).Seal(blob, nonce[:], plaintext, aad)
	return kms.Wrapped{Ciphertext: blob, KeyID: key.ID}
}

// unwrap opens a blob. keyID, when not empty, must name the blob's key.
// Anything wrong with the blob itself is ErrInvalidCiphertext, including a
// key id this keyring does not have: the blob is for another keyring.
func (k *Keyring) unwrap(op, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	now := k.now()
	st := k.state.Load()
	var want *ringKey
	if keyID != "" {
		if want = st.resolve(k.local(keyID), now); want == nil {
			return nil, ringNotFound(op, keyID)
		}
	}
	key, hdr, err := st.blobKey(op, blob, now)
	if err != nil {
		return nil, err
	}
	if want != nil && want != key {
		return nil, ringErr(op, kms.ErrInvalidCiphertext, codeIncorrectKey, "ciphertext is for another key")
	}
	if key.State != kms.KeyEnabled {
		return nil, ringWrongState(op, key)
	}
	if hdr.version == 0 || uint64(hdr.version) > uint64(len(key.Material)) {
		return nil, ringBadCiphertext(op, "unknown key material version")
	}
	aad := append(bytes.Clone(blob[:hdr.nonceStart]), kms.CanonicalContext(encCtx)...)
	nonce := blob[hdr.nonceStart : hdr.nonceStart+ringNonceSize]
	plaintext, err := ringGCM(key.Material[hdr.version-1]).Open(nil, nonce, blob[hdr.nonceStart+ringNonceSize:], aad)
	if err != nil {
		return nil, ringBadCiphertext(op, "authentication failed: wrong encryption context or corrupt ciphertext")
	}
	return plaintext, nil
}

// blobHeader is the unauthenticated head of a keyring blob.
type blobHeader struct {
	keyID      string
	version    uint32
	nonceStart int
}

// parseBlob reads a blob's header; ok is false for anything too short or
// of another format to be a keyring blob.
func parseBlob(blob []byte) (hdr blobHeader, ok bool) {
	if len(blob) < 2 || blob[0] != ringBlobVersion {
		return blobHeader{}, false
	}
	idEnd := 2 + int(blob[1])
	hdr.nonceStart = idEnd + 4
	if len(blob) < hdr.nonceStart+ringNonceSize+ringTagSize {
		return blobHeader{}, false
	}
	hdr.keyID = string(blob[2:idEnd])
	hdr.version = binary.BigEndian.Uint32(blob[idEnd:hdr.nonceStart])
	return hdr, true
}

// blobKey finds the live key a blob names. A blob naming no key of this
// keyring is invalid ciphertext, not a missing key: it is for another
// keyring.
func (s *keyringState) blobKey(op string, blob []byte, now time.Time) (*ringKey, blobHeader, error) {
	hdr, ok := parseBlob(blob)
	if !ok {
		return nil, blobHeader{}, ringBadCiphertext(op, "not a keyring ciphertext, or too short")
	}
	key := s.byID[hdr.keyID]
	if key == nil || key.expired(now) {
		return nil, blobHeader{}, ringBadCiphertext(op, "ciphertext is for a key this keyring does not have")
	}
	return key, hdr, nil
}

// CiphertextKeyID returns the id of the key that made blob, without
// opening it, so that a caller can decide whether the blob's key may be
// used before asking to decrypt. The header it reads is not authenticated
// until Decrypt opens the blob: a forged header only names a key whose
// material then fails to open the blob.
func (k *Keyring) CiphertextKeyID(blob []byte) (string, error) {
	key, _, err := k.state.Load().blobKey("Decrypt", blob, k.now())
	if err != nil {
		return "", err
	}
	return key.ID, nil
}

// ctxDone fails an operation whose context is already done, as AWSKMS does,
// so callers see one behaviour. Past this check the keyring never waits on
// anything, so ctx is not consulted again.
func ctxDone(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &kms.KMSError{Op: op, Kind: kms.ErrKMSUnavailable, Cause: err}
	}
	return nil
}

// GenerateDataKey returns a fresh random 32-byte data key, in plaintext and
// wrapped under keyID's newest material.
func (k *Keyring) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	return k.GenerateDataKeyOfSize(ctx, keyID, kms.DataKeySize, encCtx)
}

// MaxDataKeySize is the largest data key GenerateDataKeyOfSize makes: AWS
// KMS's limit for GenerateDataKey's NumberOfBytes.
const MaxDataKeySize = 1024

// GenerateDataKeyOfSize is GenerateDataKey for a data key of size bytes
// (1 to MaxDataKeySize), as AWS KMS's GenerateDataKey with NumberOfBytes.
func (k *Keyring) GenerateDataKeyOfSize(ctx context.Context, keyID string, size int, encCtx map[string]string) (kms.DataKey, error) {
	const op = "GenerateDataKey"
	if size < 1 || size > MaxDataKeySize {
		return kms.DataKey{}, ringInvalid(op, "data key size is %d bytes, want 1 to %d", size, MaxDataKeySize)
	}
	if err := ctxDone(ctx, op); err != nil {
		return kms.DataKey{}, err
	}
	key, err := k.usableKey(op, keyID)
	if err != nil {
		return kms.DataKey{}, err
	}
	plaintext := make([]byte, size)
	rand.Read(plaintext)
	return kms.DataKey{Plaintext: plaintext, Wrapped: ringWrap(key, plaintext, encCtx)}, nil
}

// Decrypt unwraps ciphertext made by this keyring under encCtx.
func (k *Keyring) Decrypt(ctx context.Context, keyID string, ciphertext []byte, encCtx map[string]string) ([]byte, error) {
	if err := ctxDone(ctx, "Decrypt"); err != nil {
		return nil, err
	}
	return k.unwrap("Decrypt", keyID, ciphertext, encCtx)
}

// ReEncrypt unwraps ciphertext and wraps the plaintext under dstKeyID and
// dstCtx. The plaintext is zeroed before returning.
func (k *Keyring) ReEncrypt(ctx context.Context, ciphertext []byte, srcKeyID string, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (kms.Wrapped, error) {
	const op = "ReEncrypt"
	if err := ctxDone(ctx, op); err != nil {
		return kms.Wrapped{}, err
	}
	// Check the destination first so a bad request does not decrypt at all.
	dst, err := k.usableKey(op, dstKeyID)
	if err != nil {
		return kms.Wrapped{}, err
	}
	plaintext, err := k.unwrap(op, srcKeyID, ciphertext, srcCtx)
	if err != nil {
		return kms.Wrapped{}, err
	}
	defer clear(plaintext)
	return ringWrap(dst, plaintext, dstCtx), nil
}

// Encrypt wraps 1 to MaxEncryptPlaintext bytes under keyID.
func (k *Keyring) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (kms.Wrapped, error) {
	if err := kms.CheckEncryptInput("Encrypt", plaintext); err != nil {
		return kms.Wrapped{}, err
	}
	if err := ctxDone(ctx, "Encrypt"); err != nil {
		return kms.Wrapped{}, err
	}
	key, err := k.usableKey("Encrypt", keyID)
	if err != nil {
		return kms.Wrapped{}, err
	}
	return ringWrap(key, plaintext, encCtx), nil
}
