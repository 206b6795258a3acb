package keyring

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The keyring file is shared: s3seal keys changes it while serve runs, and
// replicas may share one. Every change is made under an exclusive lock on
// a lock file beside it (PATH.lock), to the file as it is then, and written
// with an atomic replace; readers need no lock, since a reader sees either
// the old file or the new one. Reload notices a change by the file's
// identity, size and modification time.

// fileStamp identifies one version of the file.
type fileStamp struct {
	ino   uint64
	size  int64
	mtime time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return stampFrom(fi), nil
}

func stampFrom(fi os.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// lockFile takes the exclusive lock on path's lock file, waiting for it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s.lock: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// readState reads, checks and indexes the file at path; keys whose deletion
// date has passed (at now) are purged and the file rewritten without them,
// which the caller makes safe by holding the lock. The stamp is of the
// file read (one open file, stat and read together).
func readState(path string, now time.Time) (*keyringState, fileStamp, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileStamp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, fileStamp{}, fmt.Errorf("keyring: %w", err)
	case !fi.Mode().IsRegular():
		return nil, fileStamp{}, fmt.Errorf("keyring: %s is not a regular file", path)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, fileStamp{}, fmt.Errorf("keyring: %s holds key material but has mode %#o; run chmod 600 %s",
			path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("keyring: %w", err)
	}
	stamp := stampFrom(fi)
	st := new(keyringState)
	// The decoder's errors name offsets, types and at most one offending
	// character, never a field's value, so they cannot echo key material.
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fileStamp{}, fmt.Errorf("keyring: parsing %s: %w", path, err)
	}
	if err := st.validate(); err != nil {
		return nil, fileStamp{}, fmt.Errorf("keyring: %s: %w", path, err)
	}
	if st.purge(now) {
		if err := ringWriteFile(path, st.marshal()); err != nil {
			return nil, fileStamp{}, fmt.Errorf("keyring: purging deleted keys from %s: %w", path, err)
		}
		if stamp, err = stampOf(path); err != nil {
			return nil, fileStamp{}, fmt.Errorf("keyring: %w", err)
		}
	}
	st.index()
	return st, stamp, nil
}

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
	stamp, err := stampOf(k.path)
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
func readStateNoPurge(path string) (*keyringState, fileStamp, error) {
	return readState(path, time.Time{})
}

// ringWriteFile replaces path with data so that a crash leaves either the
// old or the new file, never a mix: temp file in the same directory (so the
// rename cannot cross file systems), fsync, rename, fsync the directory (so
// the rename itself is durable).
func ringWriteFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // created 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil { // whatever the umask or platform did
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // renamed: the change happened, only its durability is uncertain
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return nil // ditto; some file systems cannot sync directories
	}
	return nil
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
