package kms

// The CMK allow-list. An object's metadata names the CMK its data key is
// wrapped under, and the store, which s3seal does not trust, writes that
// metadata. Without a list, an object sealed under any CMK s3seal's role may
// use (a store operator's own permissive key, say) would decrypt and be
// served as authentic. So s3seal decrypts and rebinds only under the CMKs
// it is configured with, and decides that before asking the key service.

import (
	"cmp"

	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// ErrKeyNotAllowed means an object names a CMK outside the allow-list.
var ErrKeyNotAllowed = errors.New("CMK not in the allow-list")

// maxShownKeyID bounds the key id a KeyNotAllowedError carries: it comes
// from untrusted metadata and ends up in logs.
const maxShownKeyID = 256

// KeyNotAllowedError is ErrKeyNotAllowed for one key id, made printable
// ASCII and cut to maxShownKeyID bytes.
type KeyNotAllowedError struct{ KeyID string }

func (e *KeyNotAllowedError) Error() string {
	return fmt.Sprintf("%v: %q", ErrKeyNotAllowed, e.KeyID)
}

func (e *KeyNotAllowedError) Unwrap() error { return ErrKeyNotAllowed }

func keyNotAllowed(keyID string) *KeyNotAllowedError {
	return &KeyNotAllowedError{KeyID: Printable(keyID, maxShownKeyID)}
}

// Printable cuts s to n bytes and replaces what is not printable ASCII
// with '?', so that a name a client or a store gave can be quoted back in
// an error or a log line.
func Printable(s string, n int) string {
	b := []byte(s[:min(len(s), n)])
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// KeyResolver names a CMK the way the key service does.
type KeyResolver interface {
	// ResolveKey returns every canonical identity of the CMK keyID (an id,
	// ARN or alias/NAME) names: each string the key service may put in
	// Wrapped.KeyID for that CMK. Errors wrap the KeyService Err* kinds.
	ResolveKey(ctx context.Context, keyID string) ([]string, error)
}

// KeyState is a CMK's lifecycle state, named as in AWS KMS.
type KeyState string

const (
	KeyEnabled         KeyState = "Enabled"
	KeyDisabled        KeyState = "Disabled"
	KeyPendingDeletion KeyState = "PendingDeletion"
	// KeyPendingImport is a key made for imported material that has none
	// yet: it can do nothing until the material is imported.
	KeyPendingImport KeyState = "PendingImport"
)

// KeyStatus is what the key service says of a CMK: every canonical name
// it gives the key (as ResolveKey) and its lifecycle state (Enabled,
// Disabled, PendingDeletion; for AWS KMS also its other states, such as
// PendingImport or Unavailable).
type KeyStatus struct {
	IDs   []string
	State KeyState
}

// KeyStatusReader describes a CMK (DescribeKey), so that a configuration
// can be checked before it is used (s3seal doctor).
type KeyStatusReader interface {
	// KeyStatus describes the CMK keyID (an id, ARN or alias/NAME) names.
	// Errors wrap the KeyService Err* kinds.
	KeyStatus(ctx context.Context, keyID string) (KeyStatus, error)
}

// AllowEntryError is a configured allow-list entry that failed to resolve.
type AllowEntryError struct {
	Entry string // as configured
	Err   error
}

func (e *AllowEntryError) Error() string { return fmt.Sprintf("CMK %q: %v", e.Entry, e.Err) }

func (e *AllowEntryError) Unwrap() error { return e.Err }

// retryUnresolved spaces out the resolutions Check attempts while the list
// is unresolved, so a KMS outage is not multiplied by the request rate.
const retryUnresolved = 5 * time.Second

// Bounds on Choose: the longest name it considers (AWS's limit for a key
// id, ARN or alias), how long it remembers what the key service said of a
// name, and how many names.
const (
	maxKeyName  = 2048
	chooseTTL   = time.Minute
	chooseNames = 1024
)

// choice is what Choose learned of a name.
type choice struct {
	id      string
	err     error
	expires time.Time
}

// AllowList is the set of CMKs s3seal may decrypt and rebind under: the
// configured entries (ids, ARNs or aliases), resolved by the key service to
// every name it gives those keys. It is safe for concurrent use.
type AllowList struct {
	resolver KeyResolver
	entries  []string
	now      func() time.Time           // replaced by tests
	chosen   *lru.Cache[string, choice] // Choose's answers for other names
	lenient  bool                       // an entry naming no key is skipped (NewGrantList)

	resolving sync.Mutex // one resolution at a time; held across KMS calls

	mu      sync.Mutex        // guards the fields below; never held across KMS calls
	allowed map[string]bool   // nil until resolved; replaced, never modified
	names   map[string]string // each configured entry to an id of its key; as allowed
	groups  map[string]int    // each canonical id to its entry's index: ids of one key share it
	tried   time.Time         // when the last resolution started
	started int               // resolutions started and finished, so that
	done    int               // a Refresh can reuse one that began after it
	lastErr error             // the last resolution's failure, or nil
}

// NewAllowList returns the list of entries, not yet resolved: it makes no
// key-service call.
func NewAllowList(r KeyResolver, entries ...string) *AllowList {
	chosen, _ := lru.New[string, choice](chooseNames)
	return &AllowList{resolver: r, entries: slices.Clone(entries), now: time.Now, chosen: chosen}
}

// NewGrantList is NewAllowList for a client's key grants: an entry that
// names no key (a key since deleted, an alias not made yet) grants nothing
// rather than failing the whole list, which would lock the client out of
// the keys its other entries name.
func NewGrantList(r KeyResolver, entries ...string) *AllowList {
	a := NewAllowList(r, entries...)
	a.lenient = true
	return a
}

// Resolve resolves every entry unless that is already done. An entry that
// names no key fails with an *AllowEntryError wrapping ErrKeyNotFound.
func (a *AllowList) Resolve(ctx context.Context) error {
	a.mu.Lock()
	resolved := a.allowed != nil
	a.mu.Unlock()
	if resolved {
		return nil
	}
	return a.Refresh(ctx)
}

// Refresh resolves every entry again: an alias may now name another key.
// If it fails, the previous set stays in force, so a KMS hiccup does not
// turn a working list off.
func (a *AllowList) Refresh(ctx context.Context) error {
	a.mu.Lock()
	before := a.started
	a.mu.Unlock()
	a.resolving.Lock()
	defer a.resolving.Unlock()

	a.mu.Lock()
	if a.done > before { // one began and finished while we waited: as fresh as ours
		err := a.lastErr
		a.mu.Unlock()
		return err
	}
	a.started++
	a.tried = a.now()
	a.mu.Unlock()

	r, err := a.resolveAll(ctx)

	a.mu.Lock()
	defer a.mu.Unlock()
	a.done++
	a.lastErr = err
	if err == nil {
		a.allowed, a.names, a.groups = r.allowed, r.names, r.groups
	}
	return err
}

// resolution is what resolving the entries gives.
type resolution struct {
	allowed map[string]bool
	names   map[string]string
	groups  map[string]int
}

func (a *AllowList) resolveAll(ctx context.Context) (resolution, error) {
	r := resolution{allowed: map[string]bool{}, names: map[string]string{}, groups: map[string]int{}}
	for i, entry := range a.entries {
		ids, err := a.resolver.ResolveKey(ctx, entry)
		if err != nil && a.lenient && errors.Is(err, ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return resolution{}, &AllowEntryError{Entry: entry, Err: err}
		}
		for _, id := range ids {
			if id != "" { // an empty id would let the key service pick the key
				r.allowed[id] = true
				r.names[entry] = cmp.Or(r.names[entry], id)
				if _, ok := r.groups[id]; !ok {
					r.groups[id] = i
				}
			}
		}
	}
	return r, nil
}

// SameKey reports whether a and b, canonical ids of allowed CMKs (as
// Choose returns and Wrapped.KeyID holds), name the same key: for AWS KMS
// a key's id and its ARN do.
func (a *AllowList) SameKey(a1, b string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	g1, ok1 := a.groups[a1]
	g2, ok2 := a.groups[b]
	return a1 == b || ok1 && ok2 && g1 == g2
}

// Choose returns a canonical id of the allowed CMK that name (an id, ARN or
// alias/NAME a client chose) names, for a write under it; a name outside
// the list, or naming no key, is a *KeyNotAllowedError. The key service is
// asked only about names that are neither configured nor canonical — only
// to describe the key, never to use it — and its answer is remembered for
// chooseTTL, so that names a client (or a store's bucket tag) repeats do
// not each cost a KMS call.
func (a *AllowList) Choose(ctx context.Context, name string) (string, error) {
	allowed, err := a.current(ctx)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	id, configured := a.names[name]
	a.mu.Unlock()
	switch {
	case allowed[name]:
		return name, nil
	case configured:
		return id, nil
	case len(name) == 0 || len(name) > maxKeyName:
		return "", keyNotAllowed(name)
	}
	if c, ok := a.chosen.Get(name); ok && a.now().Before(c.expires) {
		return c.id, c.err
	}
	id, err = a.resolveChoice(ctx, allowed, name)
	if !errors.Is(err, ErrKMSUnavailable) {
		a.chosen.Add(name, choice{id: id, err: err, expires: a.now().Add(chooseTTL)})
	}
	return id, err
}

// resolveChoice asks the key service which key name names. Anything but
// an outage is the client's name not being allowed.
func (a *AllowList) resolveChoice(ctx context.Context, allowed map[string]bool, name string) (string, error) {
	ids, err := a.resolver.ResolveKey(ctx, name)
	if errors.Is(err, ErrKMSUnavailable) {
		return "", err
	}
	for _, id := range ids {
		if err == nil && allowed[id] {
			return id, nil
		}
	}
	return "", keyNotAllowed(name)
}

// Check returns nil if keyID is one of the allowed CMKs' canonical ids and
// a *KeyNotAllowedError if not, without any key-service call. While the
// list is unresolved it tries to resolve it (at most once per
// retryUnresolved) and otherwise fails with ErrKMSUnavailable.
func (a *AllowList) Check(ctx context.Context, keyID string) error {
	allowed, err := a.current(ctx)
	if err != nil {
		return err
	}
	if !allowed[keyID] {
		return keyNotAllowed(keyID)
	}
	return nil
}

// current returns the resolved set, resolving it first if it is due.
func (a *AllowList) current(ctx context.Context) (map[string]bool, error) {
	a.mu.Lock()
	allowed, lastErr := a.allowed, a.lastErr
	due := allowed == nil && (a.tried.IsZero() || a.now().Sub(a.tried) >= retryUnresolved)
	if due {
		a.tried = a.now() // claimed: concurrent callers do not pile on
	}
	a.mu.Unlock()
	if allowed != nil {
		return allowed, nil
	}
	if due {
		lastErr = a.Refresh(ctx)
		a.mu.Lock()
		allowed = a.allowed
		a.mu.Unlock()
		if allowed != nil {
			return allowed, nil
		}
	}
	return nil, unresolved(lastErr)
}

// unresolved is the error for a list that cannot be consulted yet. It is a
// key-service outage whatever the cause (which is kept as text only): the
// request may succeed later, and the operator sees the cause in /readyz.
func unresolved(cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: CMK allow-list not resolved yet", ErrKMSUnavailable)
	}
	return fmt.Errorf("%w: CMK allow-list not resolved: %v", ErrKMSUnavailable, cause)
}
