// Package sharedfile is a small private file that several processes share
// and change: the keyring (serve and `s3seal keys`, replicas on one data
// dir) and the principals file. Every change is made under an exclusive
// lock on a lock file beside it (PATH.lock), to the file as it is then, and
// written with an atomic replace; readers need no lock, since a reader sees
// either the old file or the new one. A reader notices a change by the
// file's Stamp.
package sharedfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Stamp identifies one version of a file: its identity, size and
// modification time. It is a hint: a coarse mtime, or a file system that
// reuses inodes, can hide a change, so a writer reads the file again under
// the lock whatever the stamp says.
type Stamp struct {
	ino   uint64
	size  int64
	mtime time.Time
}

// StampOf returns the stamp of the file at path.
func StampOf(path string) (Stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Stamp{}, err
	}
	return stampFrom(fi), nil
}

func stampFrom(fi os.FileInfo) Stamp {
	st := Stamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// Lock takes the exclusive lock on path's lock file, waiting for it.
func Lock(path string) (unlock func(), err error) {
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

// ReadPrivate reads the file at path and its stamp (one open file, stat and
// read together). A file that is not regular, or that group or others may
// read or write, is refused rather than silently fixed: it holds secrets,
// may already have leaked, and that is for a human to judge.
func ReadPrivate(path string) ([]byte, Stamp, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Stamp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, Stamp{}, err
	case !fi.Mode().IsRegular():
		return nil, Stamp{}, fmt.Errorf("%s is not a regular file", path)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, Stamp{}, fmt.Errorf("%s holds secrets but has mode %#o; run chmod 600 %s",
			path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, Stamp{}, err
	}
	return data, stampFrom(fi), nil
}

// Replace replaces path with data, mode 0600, so that a crash leaves either
// the old or the new file, never a mix: temp file in the same directory (so
// the rename cannot cross file systems), fsync, rename, fsync the directory
// (so the rename itself is durable).
func Replace(path string, data []byte) (err error) {
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

// ForeignOwner reports whether path is owned by another user than its
// directory, and both owners: a file written by `sudo s3seal ...` in a data
// dir a service user owns is one that service cannot read.
func ForeignOwner(path string) (fileUID, dirUID uint32, foreign bool) {
	uid := func(p string) (uint32, bool) {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return 0, false
		}
		return st.Uid, true
	}
	f, okf := uid(path)
	d, okd := uid(filepath.Dir(path))
	return f, d, okf && okd && f != d
}
