package kms_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openKeyring(t *testing.T) (*keyring.Keyring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring.json")
	k, err := keyring.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return k, path
}

func createKey(t *testing.T, k *keyring.Keyring, desc string) keyring.KeyInfo {
	t.Helper()
	info, err := k.CreateKey(desc)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// countingResolver counts ResolveKey calls, to show which checks reach the
// key service, and fails them with fail when set.
type countingResolver struct {
	r     kms.KeyResolver
	mu    sync.Mutex
	calls int
	fail  error
}

func (c *countingResolver) ResolveKey(ctx context.Context, keyID string) ([]string, error) {
	c.mu.Lock()
	c.calls++
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return c.r.ResolveKey(ctx, keyID)
}

func (c *countingResolver) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func (c *countingResolver) setFail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = err
}

// spyKeys counts key-service calls and keeps the last data key it handed
// out, to check that a refused one is zeroed.
type spyKeys struct {
	kms.KeyService
	calls     int
	lastPlain []byte
}

func (s *spyKeys) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	s.calls++
	dk, err := s.KeyService.GenerateDataKey(ctx, keyID, encCtx)
	s.lastPlain = dk.Plaintext
	return dk, err
}

func (s *spyKeys) Decrypt(ctx context.Context, keyID string, ct []byte, encCtx map[string]string) ([]byte, error) {
	s.calls++
	return s.KeyService.Decrypt(ctx, keyID, ct, encCtx)
}

func (s *spyKeys) ReEncrypt(ctx context.Context, ct []byte, src string, srcCtx map[string]string, dst string, dstCtx map[string]string) (kms.Wrapped, error) {
	s.calls++
	return s.KeyService.ReEncrypt(ctx, ct, src, srcCtx, dst, dstCtx)
}

// allowFixture is a keyring with two listed keys (one by its alias) and one
// key outside the list.
type allowFixture struct {
	kr         *keyring.Keyring
	k1, k2, k3 keyring.KeyInfo
	resolver   *countingResolver
	list       *kms.AllowList
	clock      *testClock
}

func newAllowFixture(t *testing.T) *allowFixture {
	t.Helper()
	kr, _ := openKeyring(t)
	f := &allowFixture{kr: kr, k1: createKey(t, kr, "one"), k2: createKey(t, kr, "two"), k3: createKey(t, kr, "outside")}
	if err := kr.CreateAlias("alias/two", f.k2.ID); err != nil {
		t.Fatal(err)
	}
	f.resolver = &countingResolver{r: kr}
	f.list = kms.NewAllowList(f.resolver, f.k1.ID, "alias/two")
	f.clock = &testClock{t: time.Unix(1e9, 0)}
	kms.SetClock(f.list, f.clock.now)
	return f
}

func TestAllowListCheck(t *testing.T) {
	f := newAllowFixture(t)
	ctx := t.Context()
	if err := f.list.Resolve(ctx); err != nil {
		t.Fatal(err)
	}
	long := "\x00evil\n" + strings.Repeat("a", 1000)
	cases := []struct {
		name    string
		keyID   string
		allowed bool
		shown   string // KeyNotAllowedError.KeyID
	}{
		{"listed by id", f.k1.ID, true, ""},
		{"listed by alias", f.k2.ID, true, ""},
		{"outside the list", f.k3.ID, false, f.k3.ID},
		// Metadata holds canonical ids; an alias there was not written by s3seal.
		{"alias name", "alias/two", false, "alias/two"},
		{"empty", "", false, ""},
		{"unprintable and long", long, false, "?evil?" + strings.Repeat("a", kms.MaxShownKeyID-6)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := f.list.Check(ctx, tc.keyID)
			if tc.allowed {
				if err != nil {
					t.Fatalf("Check: %v, want allowed", err)
				}
				return
			}
			var kna *kms.KeyNotAllowedError
			if !errors.Is(err, kms.ErrKeyNotAllowed) || !errors.As(err, &kna) {
				t.Fatalf("Check: %v, want a *KeyNotAllowedError", err)
			}
			if kna.KeyID != tc.shown {
				t.Errorf("KeyID = %q, want %q", kna.KeyID, tc.shown)
			}
		})
	}
	// Two entries resolved once; no check asked the key service.
	if n := f.resolver.count(); n != 2 {
		t.Errorf("%d ResolveKey calls, want 2", n)
	}
	if err := f.list.Resolve(ctx); err != nil || f.resolver.count() != 2 {
		t.Errorf("second Resolve: %v after %d calls, want nil and no new call", err, f.resolver.count())
	}
}

func TestAllowListResolveErrors(t *testing.T) {
	missingID := randomKeyID()
	cases := []struct {
		name  string
		extra string // entry listed after the fixture's first key; "" for none
		fail  error  // resolver failure
		kind  error
	}{
		{"alias names no key", "alias/missing", nil, kms.ErrKeyNotFound},
		{"id names no key", missingID, nil, kms.ErrKeyNotFound},
		{"kms unavailable", "", &kms.KMSError{Op: "DescribeKey", Kind: kms.ErrKMSUnavailable}, kms.ErrKMSUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newAllowFixture(t)
			want := f.k1.ID // the failing entry: the first, unless extra is the bad one
			if tc.extra != "" {
				f.list, want = kms.NewAllowList(f.resolver, f.k1.ID, tc.extra), tc.extra
			}
			f.resolver.setFail(tc.fail)
			err := f.list.Resolve(t.Context())
			var ee *kms.AllowEntryError
			if !errors.Is(err, tc.kind) || !errors.As(err, &ee) {
				t.Fatalf("Resolve: %v, want an *AllowEntryError of %v", err, tc.kind)
			}
			if ee.Entry != want || !strings.Contains(err.Error(), want) {
				t.Errorf("error %q names entry %q, want %q", err, ee.Entry, want)
			}
			// Unresolved, the list refuses everything as an outage, never
			// as a verdict on the key.
			err = f.list.Check(t.Context(), f.k1.ID)
			if !errors.Is(err, kms.ErrKMSUnavailable) || errors.Is(err, kms.ErrKeyNotAllowed) || errors.Is(err, kms.ErrKeyNotFound) {
				t.Errorf("Check while unresolved: %v, want ErrKMSUnavailable only", err)
			}
		})
	}
}

// While unresolved, Check resolves at most once per kms.RetryUnresolved, and
// recovers once the key service answers.
func TestAllowListRetriesWhileUnresolved(t *testing.T) {
	f := newAllowFixture(t)
	ctx := t.Context()
	f.resolver.setFail(&kms.KMSError{Op: "DescribeKey", Kind: kms.ErrKMSUnavailable})
	steps := []struct {
		advance time.Duration
		recover bool
		calls   int // ResolveKey calls so far
		ok      bool
	}{
		{0, false, 1, false}, // first Check tries (fails at the first entry)
		{0, false, 1, false},
		{kms.RetryUnresolved - time.Second, false, 1, false},
		{time.Second, false, 2, false},
		{time.Second, true, 2, false}, // back, but not due yet
		{kms.RetryUnresolved, false, 4, true},
		{time.Hour, false, 4, true}, // resolved: no more calls
	}
	for i, s := range steps {
		f.clock.advance(s.advance)
		if s.recover {
			f.resolver.setFail(nil)
		}
		err := f.list.Check(ctx, f.k1.ID)
		if (err == nil) != s.ok || (err != nil && !errors.Is(err, kms.ErrKMSUnavailable)) {
			t.Fatalf("step %d: Check = %v, want ok=%v or ErrKMSUnavailable", i, err, s.ok)
		}
		if n := f.resolver.count(); n != s.calls {
			t.Fatalf("step %d: %d ResolveKey calls, want %d", i, n, s.calls)
		}
	}
	if err := f.list.Check(ctx, f.k3.ID); !errors.Is(err, kms.ErrKeyNotAllowed) || f.resolver.count() != 4 {
		t.Errorf("outside key: %v after %d calls, want ErrKeyNotAllowed and no call", err, f.resolver.count())
	}
}

func TestAllowListRefreshKeepsSetOnFailure(t *testing.T) {
	f := newAllowFixture(t)
	ctx := t.Context()
	if err := f.list.Resolve(ctx); err != nil {
		t.Fatal(err)
	}
	f.resolver.setFail(&kms.KMSError{Op: "DescribeKey", Kind: kms.ErrKMSUnavailable})
	if err := f.list.Refresh(ctx); !errors.Is(err, kms.ErrKMSUnavailable) {
		t.Fatalf("Refresh: %v, want ErrKMSUnavailable", err)
	}
	if err := f.list.Check(ctx, f.k1.ID); err != nil {
		t.Errorf("Check after a failed refresh: %v, want the old set in force", err)
	}
}

func TestAllowListConcurrent(t *testing.T) {
	f := newAllowFixture(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				if i%4 == 0 {
					f.list.Refresh(ctx)
				}
				if err := f.list.Check(ctx, f.k1.ID); err != nil && !errors.Is(err, kms.ErrKMSUnavailable) {
					t.Errorf("Check: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if err := f.list.Check(ctx, f.k3.ID); !errors.Is(err, kms.ErrKeyNotAllowed) {
		t.Errorf("outside key: %v", err)
	}
}

// Open and Rebind refuse an object under a CMK outside the list before
// any key-service call; inside the list, Decrypt is pinned to the named key.
func TestObjectKeysAllowList(t *testing.T) {
	f := newAllowFixture(t)
	ctx := t.Context()
	spy := &spyKeys{KeyService: f.kr}
	ok := kms.ObjectKeys{Keys: spy, KeyID: f.k1.ID, Allowed: f.list}
	dk, listed, err := ok.New(ctx, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.kr.GenerateDataKey(ctx, f.k3.ID, kms.BindingContext("b", "k"))
	if err != nil {
		t.Fatal(err)
	}
	outside := envelope.Metadata{KeyID: other.KeyID, WrappedKey: other.Ciphertext}
	// The planted key's blob under a listed name: the key service refuses it.
	relabeled := envelope.Metadata{KeyID: f.k1.ID, WrappedKey: other.Ciphertext}

	cases := []struct {
		name  string
		meta  envelope.Metadata
		err   error // nil: opens to dk
		calls int   // key-service calls per operation
	}{
		{"listed", listed, nil, 1},
		{"outside", outside, kms.ErrKeyNotAllowed, 0},
		{"relabeled", relabeled, kms.ErrInvalidCiphertext, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spy.calls = 0
			got, err := ok.Open(ctx, tc.meta, "b", "k")
			if !errors.Is(err, tc.err) || (tc.err == nil && string(got) != string(dk)) {
				t.Errorf("Open: %v, want %v", err, tc.err)
			}
			_, err = ok.Rebind(ctx, tc.meta, "b", "k", "b", "copy")
			if !errors.Is(err, tc.err) {
				t.Errorf("Rebind: %v, want %v", err, tc.err)
			}
			if spy.calls != 2*tc.calls {
				t.Errorf("%d key-service calls, want %d", spy.calls, 2*tc.calls)
			}
		})
	}
}

// Without an allow-list nothing is trusted and the key service is not asked.
func TestObjectKeysNilAllowList(t *testing.T) {
	f := newAllowFixture(t)
	ctx := t.Context()
	spy := &spyKeys{KeyService: f.kr}
	dk, err := f.kr.GenerateDataKey(ctx, f.k1.ID, kms.BindingContext("b", "k"))
	if err != nil {
		t.Fatal(err)
	}
	m := envelope.Metadata{KeyID: dk.KeyID, WrappedKey: dk.Ciphertext}
	ok := kms.ObjectKeys{Keys: spy, KeyID: f.k1.ID}
	_, _, errNew := ok.New(ctx, "b", "k")
	_, errOpen := ok.Open(ctx, m, "b", "k")
	_, errRebind := ok.Rebind(ctx, m, "b", "k", "b", "copy")
	for op, err := range map[string]error{"New": errNew, "Open": errOpen, "Rebind": errRebind} {
		if !errors.Is(err, kms.ErrInvalidKMSRequest) || !strings.Contains(err.Error(), "allow-list") {
			t.Errorf("%s: %v, want ErrInvalidKMSRequest naming the allow-list", op, err)
		}
	}
	if spy.calls != 0 {
		t.Errorf("%d key-service calls, want none", spy.calls)
	}
}

// The alias for new objects re-pointed: New refreshes the list once and
// goes on; the old key's objects then need the old key listed.
func TestObjectKeysAliasRepointed(t *testing.T) {
	f := newAllowFixture(t)
	ctx := t.Context()
	if err := f.kr.CreateAlias("alias/new", f.k1.ID); err != nil {
		t.Fatal(err)
	}
	list := kms.NewAllowList(f.resolver, "alias/new")
	ok := kms.ObjectKeys{Keys: f.kr, KeyID: "alias/new", Allowed: list}
	_, before, err := ok.New(ctx, "b", "old")
	if err != nil || before.KeyID != f.k1.ID {
		t.Fatalf("New: %v, key %q; want %q", err, before.KeyID, f.k1.ID)
	}
	if err := f.kr.DeleteAlias("alias/new", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.kr.CreateAlias("alias/new", f.k3.ID); err != nil {
		t.Fatal(err)
	}
	calls := f.resolver.count()
	_, after, err := ok.New(ctx, "b", "new")
	if err != nil || after.KeyID != f.k3.ID {
		t.Fatalf("New after re-pointing: %v, key %q; want %q", err, after.KeyID, f.k3.ID)
	}
	if n := f.resolver.count() - calls; n != 1 {
		t.Errorf("%d ResolveKey calls, want 1 refresh", n)
	}
	if _, err := ok.Open(ctx, before, "b", "old"); !errors.Is(err, kms.ErrKeyNotAllowed) {
		t.Errorf("Open under the old key, not listed: %v, want ErrKeyNotAllowed", err)
	}
	ok.Allowed = kms.NewAllowList(f.kr, "alias/new", f.k1.ID)
	if _, err := ok.Open(ctx, before, "b", "old"); err != nil {
		t.Errorf("Open under the old key, listed: %v", err)
	}
}

// A key service that wraps under a CMK outside the list, even after a
// refresh, gets its data key zeroed and no object written.
func TestObjectKeysIssuedOutsideList(t *testing.T) {
	f := newAllowFixture(t)
	ctx := t.Context()
	spy := &spyKeys{KeyService: f.kr}
	ok := kms.ObjectKeys{Keys: spy, KeyID: f.k3.ID, Allowed: f.list}
	calls := f.resolver.count()
	key, _, err := ok.New(ctx, "b", "k")
	if !errors.Is(err, kms.ErrKeyNotAllowed) || key != nil {
		t.Fatalf("New: %v, %d-byte key; want ErrKeyNotAllowed and no key", err, len(key))
	}
	if string(spy.lastPlain) != string(make([]byte, kms.DataKeySize)) {
		t.Error("refused data key was not zeroed")
	}
	// Resolved on first use, then refreshed once: two entries each time.
	if n := f.resolver.count() - calls; n != 4 {
		t.Errorf("%d ResolveKey calls, want 4", n)
	}
	dk, err := f.kr.GenerateDataKey(ctx, f.k1.ID, kms.BindingContext("b", "k"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ok.Rebind(ctx, envelope.Metadata{KeyID: dk.KeyID, WrappedKey: dk.Ciphertext}, "b", "k", "b", "copy")
	if !errors.Is(err, kms.ErrKeyNotAllowed) {
		t.Errorf("Rebind to a key outside the list: %v, want ErrKeyNotAllowed", err)
	}
}

// Choose maps a client's name to an allowed CMK: configured names and
// canonical ids without the key service, other names through it once a
// minute, and everything it cannot place as not allowed.
func TestAllowListChoose(t *testing.T) {
	ctx := context.Background()
	k, _ := openKeyring(t)
	a, b, out := createKey(t, k, "a"), createKey(t, k, "b"), createKey(t, k, "outside")
	for alias, id := range map[string]string{"alias/a": a.ID, "alias/b-too": b.ID, "alias/out": out.ID} {
		if err := k.CreateAlias(alias, id); err != nil {
			t.Fatal(err)
		}
	}
	res := &countingResolver{r: k}
	list := kms.NewAllowList(res, "alias/a", b.ID)
	if err := list.Resolve(ctx); err != nil {
		t.Fatal(err)
	}
	base := res.count()
	tests := []struct {
		name, want string
		allowed    bool
		calls      int // key-service calls it costs
	}{
		{"alias/a", a.ID, true, 0},
		{a.ID, a.ID, true, 0},
		{b.ID, b.ID, true, 0},
		{"alias/b-too", b.ID, true, 1},
		{"alias/b-too", b.ID, true, 0}, // remembered
		{"alias/out", "", false, 1},
		{"alias/out", "", false, 0},
		{"alias/none", "", false, 1},
		{"", "", false, 0},
		{strings.Repeat("x", 3000), "", false, 0},
	}
	for _, tc := range tests {
		before := res.count()
		id, err := list.Choose(ctx, tc.name)
		if id != tc.want || (err == nil) != tc.allowed || (err != nil && !errors.Is(err, kms.ErrKeyNotAllowed)) {
			t.Errorf("Choose(%.20q) = %q, %v", tc.name, id, err)
		}
		if n := res.count() - before; n != tc.calls {
			t.Errorf("Choose(%.20q) cost %d key-service calls, want %d", tc.name, n, tc.calls)
		}
	}
	// An outage is the caller's to retry, and is not remembered.
	res.setFail(&kms.KMSError{Op: "DescribeKey", Kind: kms.ErrKMSUnavailable})
	if _, err := list.Choose(ctx, "alias/unseen"); !errors.Is(err, kms.ErrKMSUnavailable) {
		t.Errorf("during an outage: %v", err)
	}
	res.setFail(nil)
	if id, err := list.Choose(ctx, "alias/unseen"); err == nil || id != "" || res.count() == base {
		t.Errorf("after the outage: %q %v", id, err)
	}
}
