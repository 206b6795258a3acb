package keyring

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/s3seal/s3seal/internal/sharedfile"
)

// The keyring file is shared (s3seal keys changes it while serve runs,
// replicas may share one): internal/sharedfile says how. Reload notices a
// change by the file's stamp.

// corruptFix is what to do about a keyring file that does not parse or
// check. Deleting it is the one wrong answer: a fresh keyring would start
// with new keys, and every object sealed under the old ones would be lost.
const corruptFix = "the file is damaged: restore it from a backup (do not delete it: the objects sealed under its keys " +
	"cannot be decrypted without it), or fix the JSON by hand if the change that broke it is known"

// readState reads, checks and indexes the file at path; keys whose deletion
// date has passed (at now) are purged and the file rewritten without them,
// which the caller makes safe by holding the lock. The stamp is of the
// file read.
func readState(path string, now time.Time) (*keyringState, sharedfile.Stamp, error) {
	data, stamp, err := sharedfile.ReadPrivate(path)
	if err != nil {
		return nil, sharedfile.Stamp{}, fmt.Errorf("keyring: %w", err)
	}
	st := new(keyringState)
	// The decoder's errors name offsets, types and at most one offending
	// character, never a field's value, so they cannot echo key material.
	if err := json.Unmarshal(data, st); err != nil {
		return nil, sharedfile.Stamp{}, fmt.Errorf("keyring: parsing %s: %w; %s", path, err, corruptFix)
	}
	if err := st.validate(); err != nil {
		return nil, sharedfile.Stamp{}, fmt.Errorf("keyring: %s: %w; %s", path, err, corruptFix)
	}
	if st.purge(now) {
		if err := sharedfile.Replace(path, st.marshal()); err != nil {
			return nil, sharedfile.Stamp{}, fmt.Errorf("keyring: purging deleted keys from %s: %w", path, err)
		}
		if stamp, err = sharedfile.StampOf(path); err != nil {
			return nil, sharedfile.Stamp{}, fmt.Errorf("keyring: %w", err)
		}
	}
	st.index()
	return st, stamp, nil
}

// Path is the keyring file's path.
func (k *Keyring) Path() string { return k.path }

// Reload reads the file again if it changed since this Keyring last read
// or wrote it, and reports whether it did. A file that fails to read or
// check leaves the keyring as it was.
func (k *Keyring) Reload() (changed bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloadLocked(false)
}

// reloadLocked reads the file if its stamp changed, or always (force: a
// change is about to be made, and a stamp is only a hint: a coarse mtime,
// or a file system that reuses inodes, can hide a change).
func (k *Keyring) reloadLocked(force bool) (bool, error) {
	stamp, err := sharedfile.StampOf(k.path)
	if err != nil {
		return false, fmt.Errorf("keyring: %w", err)
	}
	if stamp == k.stamp && !force {
		return false, nil
	}
	st, stamp, err := readStateNoPurge(k.path)
	if err != nil {
		return false, err
	}
	k.stamp = stamp
	k.state.Store(st)
	return true, nil
}

// readStateNoPurge is readState for a reader that may not hold the lock:
// expired keys are treated as gone (resolve) without rewriting the file.
func readStateNoPurge(path string) (*keyringState, sharedfile.Stamp, error) {
	return readState(path, time.Time{})
}

// Sync is what a long-running user of a shared keyring file does
// periodically (serve, every few seconds): rotate the keys that are due,
// then pick up the changes others made. It reports the keys it rotated
// and whether the keyring changed in any way.
func (k *Keyring) Sync() (rotated []KeyInfo, changed bool, err error) {
	rotated, rerr := k.RotateDue()
	changed, err = k.Reload()
	return rotated, changed || len(rotated) > 0, errors.Join(rerr, err)
}

// Usable reports whether keyID names a key that may wrap and unwrap now.
func (k *Keyring) Usable(keyID string) bool {
	_, err := k.usableKey("DescribeKey", keyID)
	return err == nil
}
