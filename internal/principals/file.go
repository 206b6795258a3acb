package principals

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s3seal/s3seal/internal/datadir"
	"github.com/s3seal/s3seal/internal/sharedfile"
)

const fileVersion = 1

// document is users.json.
type document struct {
	Version int     `json:"version"`
	Users   []*User `json:"users"`
}

// Store is the principals file. It is safe for concurrent use; a document,
// once published, is never modified (changes edit a copy), so readers take
// no lock. A missing file is an empty one: it is created by the first
// change.
type Store struct {
	path  string
	now   func() time.Time // replaced by tests
	mu    sync.Mutex       // serializes changes and reloads
	stamp sharedfile.Stamp // of the file doc was read from or written to; under mu
	doc   atomic.Pointer[document]
}

// Open reads the principals file at path (a missing one is empty).
func Open(path string) (*Store, error) {
	s := &Store{path: path, now: time.Now}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Users returns every user, sorted by name. The slice and its users are
// the caller's.
func (s *Store) Users() []User {
	doc := s.doc.Load()
	out := make([]User, 0, len(doc.Users))
	for _, u := range doc.Users {
		out = append(out, u.clone())
	}
	return out
}

// Reload reads the file again if it changed since this Store last read or
// wrote it, and reports whether it did. A file that fails to read or check
// leaves the Store as it was.
func (s *Store) Reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked(false)
}

func (s *Store) reloadLocked(force bool) (bool, error) {
	stamp, err := sharedfile.StampOf(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		changed := s.doc.Load() == nil || len(s.doc.Load().Users) > 0
		s.stamp = sharedfile.Stamp{}
		s.doc.Store(&document{Version: fileVersion, Users: []*User{}})
		return changed, nil
	}
	if err != nil {
		return false, fmt.Errorf("principals: %w", err)
	}
	if stamp == s.stamp && s.doc.Load() != nil && !force {
		return false, nil
	}
	doc, stamp, err := read(s.path)
	if err != nil {
		return false, err
	}
	s.stamp = stamp
	s.doc.Store(doc)
	return true, nil
}

// read reads and checks the file.
func read(path string) (*document, sharedfile.Stamp, error) {
	data, stamp, err := sharedfile.ReadPrivate(path)
	if err != nil {
		return nil, sharedfile.Stamp{}, fmt.Errorf("principals: %w", err)
	}
	doc := new(document)
	// The decoder's errors name offsets and types, never a value: they
	// cannot echo a secret.
	if err := json.Unmarshal(data, doc); err != nil {
		return nil, sharedfile.Stamp{}, fmt.Errorf("principals: parsing %s: %w", path, err)
	}
	if err := doc.check(); err != nil {
		return nil, sharedfile.Stamp{}, fmt.Errorf("principals: %s: %w", path, err)
	}
	return doc, stamp, nil
}

func (d *document) check() error {
	if d.Version != fileVersion {
		return fmt.Errorf("unsupported version %d", d.Version)
	}
	names, keys := map[string]bool{}, map[string]bool{}
	for i, u := range d.Users {
		if u == nil {
			return fmt.Errorf("user %d is null", i)
		}
		if err := u.check(); err != nil {
			return err
		}
		if names[u.Name] || keys[u.AccessKey] {
			return fmt.Errorf("user %s: name or access key used twice", u.Name)
		}
		names[u.Name], keys[u.AccessKey] = true, true
	}
	if d.Users == nil {
		d.Users = []*User{}
	}
	return nil
}

func (u *User) clone() User {
	c := *u
	c.Buckets = slices.Clone(u.Buckets)
	for i := range c.Buckets {
		c.Buckets[i].Access = slices.Clone(c.Buckets[i].Access)
	}
	c.Keys = slices.Clone(u.Keys)
	return c
}

// update applies change to a copy of the file as it is now, under its
// lock, checks and saves the copy, and publishes it. If anything fails,
// nothing changes.
func (s *Store) update(change func(d *document, now time.Time) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := sharedfile.Lock(s.path)
	if err != nil {
		return fmt.Errorf("principals: %w", err)
	}
	defer unlock()
	if _, err := s.reloadLocked(true); err != nil {
		return err
	}
	next := &document{Version: fileVersion}
	for _, u := range s.doc.Load().Users {
		c := u.clone()
		next.Users = append(next.Users, &c)
	}
	if err := change(next, s.now()); err != nil {
		return err
	}
	slices.SortFunc(next.Users, func(a, b *User) int { return strings.Compare(a.Name, b.Name) })
	if err := next.check(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return fmt.Errorf("principals: %w", err)
	}
	if err := sharedfile.Replace(s.path, append(data, '\n')); err != nil {
		return fmt.Errorf("principals: saving %s: %w", s.path, err)
	}
	s.doc.Store(next)
	if stamp, err := sharedfile.StampOf(s.path); err == nil {
		s.stamp = stamp
	}
	return nil
}

// ErrNoSuchUser is a change to a user the file does not have.
var ErrNoSuchUser = errors.New("no such user")

// Add makes a user with a new credential and returns it: the only time
// its secret is handed out.
func (s *Store) Add(name string, role Role, buckets []BucketGrant, keys []string) (User, error) {
	if role == RoleKeyAdmin && len(keys) == 0 {
		keys = []string{AllKeys} // a key-admin manages every key unless told otherwise
	}
	cred := datadir.NewCredential()
	u := User{Name: name, Role: role, AccessKey: cred.AccessKey, SecretKey: cred.SecretKey,
		Buckets: []BucketGrant{}, Keys: []string{}}
	u.grant(buckets, keys)
	err := s.update(func(d *document, now time.Time) error {
		if slices.ContainsFunc(d.Users, func(v *User) bool { return v.Name == name }) {
			return fmt.Errorf("user %s already exists", name)
		}
		u.Created = now.UTC().Round(0)
		d.Users = append(d.Users, &u)
		return nil
	})
	return u.clone(), err
}

// Remove deletes a user: its credential stops working at once for this
// Store's readers, and within a reload for others.
func (s *Store) Remove(name string) error {
	return s.update(func(d *document, _ time.Time) error {
		n := len(d.Users)
		d.Users = slices.DeleteFunc(d.Users, func(u *User) bool { return u.Name == name })
		if len(d.Users) == n {
			return fmt.Errorf("%w: %s", ErrNoSuchUser, name)
		}
		return nil
	})
}

// Grant adds bucket and key grants to a user.
func (s *Store) Grant(name string, buckets []BucketGrant, keys []string) (User, error) {
	return s.changeUser(name, func(u *User) error { u.grant(buckets, keys); return nil })
}

// Revoke takes bucket access and key grants away from a user.
func (s *Store) Revoke(name string, buckets []BucketGrant, keys []string) (User, error) {
	return s.changeUser(name, func(u *User) error { return u.revoke(buckets, keys) })
}

func (s *Store) changeUser(name string, change func(u *User) error) (User, error) {
	var out User
	err := s.update(func(d *document, _ time.Time) error {
		i := slices.IndexFunc(d.Users, func(u *User) bool { return u.Name == name })
		if i < 0 {
			return fmt.Errorf("%w: %s", ErrNoSuchUser, name)
		}
		if err := change(d.Users[i]); err != nil {
			return err
		}
		out = d.Users[i].clone()
		return nil
	})
	return out, err
}
