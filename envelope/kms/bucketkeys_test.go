package kms_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// genCounter counts GenerateDataKey calls and keeps every plaintext it
// handed out, to check that bucket keys are wiped when they go.
type genCounter struct {
	kms.KeyService
	mu     sync.Mutex
	gens   int
	plains [][]byte
}

func (g *genCounter) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	dk, err := g.KeyService.GenerateDataKey(ctx, keyID, encCtx)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gens++
	g.plains = append(g.plains, dk.Plaintext)
	return dk, err
}

func (g *genCounter) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gens
}

// unwiped is how many bucket keys handed out are not zero.
func (g *genCounter) unwiped() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, p := range g.plains {
		if !bytes.Equal(p, make([]byte, len(p))) {
			n++
		}
	}
	return n
}

// bucketKeyFixture is ObjectKeys over a keyring with bucket keys reused for
// ttl and uses objects, a fake clock, and the generator's count.
func bucketKeyFixture(t *testing.T, ttl time.Duration, uses int) (kms.ObjectKeys, *genCounter, *time.Time) {
	t.Helper()
	kr, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := kr.CreateKey("bucket keys")
	if err != nil {
		t.Fatal(err)
	}
	bks, err := kms.NewBucketKeys(ttl, uses)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1e9, 0)
	kms.SetBucketKeysClock(bks, func() time.Time { return now })
	g := &genCounter{KeyService: kr}
	return kms.ObjectKeys{Keys: g, KeyID: info.ID, Allowed: kms.NewAllowList(kr, info.ID), BucketKeys: bks}, g, &now
}

// TestBucketKeys: new objects in a bucket share one GenerateDataKey, yet
// every object has its own data key, which opens back (through any
// process's Open) only at its own name; the bucket key is replaced after
// its lifetime or its uses, and wiped.
func TestBucketKeys(t *testing.T) {
	ctx := context.Background()
	ok, gen, now := bucketKeyFixture(t, time.Minute, 5)
	keys := map[string]bool{}
	for i := range 12 {
		name := string(rune('a' + i))
		dk, meta, err := ok.New(ctx, "bkt", name)
		if err != nil {
			t.Fatal(err)
		}
		if len(meta.BucketKeySalt) != envelope.BucketKeySaltSize || meta.Context != nil {
			t.Fatalf("metadata %+v", meta)
		}
		if keys[string(dk)] {
			t.Fatal("two objects got the same data key")
		}
		keys[string(dk)] = true
		// Another process opens it: only the metadata and the name.
		reader := kms.ObjectKeys{Keys: ok.Keys, KeyID: ok.KeyID, Allowed: ok.Allowed}
		got, err := reader.Open(ctx, meta, "bkt", name)
		if err != nil || !bytes.Equal(got, dk) {
			t.Fatalf("Open: %v", err)
		}
		// At another name in the bucket the key derived differs (the
		// object then fails authentication); in another bucket the
		// bucket key does not unwrap.
		if other, err := reader.Open(ctx, meta, "bkt", name+"x"); err != nil || bytes.Equal(other, dk) {
			t.Fatalf("opened at another name: same key %v, %v", bytes.Equal(other, dk), err)
		}
		if _, err := reader.Open(ctx, meta, "bkt2", name); !errors.Is(err, kms.ErrInvalidCiphertext) {
			t.Fatalf("opened in another bucket: %v", err)
		}
	}
	if n := gen.count(); n != 3 { // 12 objects, 5 uses each
		t.Fatalf("%d GenerateDataKey calls for 12 objects at 5 uses, want 3", n)
	}
	for i, p := range gen.plains[:2] {
		if !bytes.Equal(p, make([]byte, len(p))) {
			t.Errorf("used-up bucket key %d not wiped", i)
		}
	}
	*now = now.Add(time.Minute)
	if _, _, err := ok.New(ctx, "bkt", "later"); err != nil {
		t.Fatal(err)
	}
	if n := gen.count(); n != 4 || !bytes.Equal(gen.plains[2], make([]byte, 32)) {
		t.Fatalf("after its lifetime: %d calls, old key wiped %v", n, bytes.Equal(gen.plains[2], make([]byte, 32)))
	}
	// Other buckets have their own; a client's context gets a key of its own.
	if _, meta, err := ok.New(ctx, "other", "a"); err != nil || gen.count() != 5 || meta.BucketKeySalt == nil {
		t.Fatalf("another bucket: %d calls, %v", gen.count(), err)
	}
	if _, meta, err := ok.WithContext(map[string]string{"team": "a"}).New(ctx, "bkt", "ctx"); err != nil || meta.BucketKeySalt != nil {
		t.Fatalf("with a context: %+v, %v", meta, err)
	}
	if _, meta, err := ok.WithoutBucketKeys().New(ctx, "bkt", "mp"); err != nil || meta.BucketKeySalt != nil {
		t.Fatalf("without bucket keys: %+v, %v", meta, err)
	}
}

// TestBucketKeysConcurrent: concurrent first writes to a bucket share one
// GenerateDataKey.
func TestBucketKeysConcurrent(t *testing.T) {
	ctx := context.Background()
	ok, gen, _ := bucketKeyFixture(t, time.Hour, 1000)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, _, err := ok.New(ctx, "bkt", "k")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := gen.count(); n != 1 {
		t.Fatalf("%d GenerateDataKey calls for 50 concurrent objects, want 1", n)
	}
}

// TestBucketKeysForget: a CMK that becomes unusable wraps no new object
// through a cached bucket key.
func TestBucketKeysForget(t *testing.T) {
	ctx := context.Background()
	ok, gen, _ := bucketKeyFixture(t, time.Hour, 1000)
	if _, _, err := ok.New(ctx, "bkt", "a"); err != nil {
		t.Fatal(err)
	}
	ok.BucketKeys.Forget(func(keyID string) bool { return keyID == ok.KeyID })
	if !bytes.Equal(gen.plains[0], make([]byte, 32)) {
		t.Error("forgotten bucket key not wiped")
	}
	if _, _, err := ok.New(ctx, "bkt", "b"); err != nil || gen.count() != 2 {
		t.Fatalf("after Forget: %d calls, %v", gen.count(), err)
	}
}

// TestBucketKeyCopies: a server-side copy of an object under a bucket key
// gets a data key of its own, wrapped for its new name: the same key, so
// the stored bytes are copied unchanged.
func TestBucketKeyCopies(t *testing.T) {
	ctx := context.Background()
	ok, _, _ := bucketKeyFixture(t, time.Hour, 1000)
	dk, meta, err := ok.New(ctx, "bkt", "src")
	if err != nil {
		t.Fatal(err)
	}
	moved, err := ok.Rebind(ctx, meta, "bkt", "src", "dst-bkt", "dst")
	if err != nil || moved.BucketKeySalt != nil {
		t.Fatalf("Rebind: %+v, %v", moved, err)
	}
	got, err := ok.Open(ctx, moved, "dst-bkt", "dst")
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("copy opens to another key: %v", err)
	}
	if _, err := ok.Open(ctx, moved, "bkt", "src"); !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Fatalf("copy's metadata opened at the source: %v", err)
	}
}

// TestBucketKeyGrants: a cached bucket key serves only clients that may
// use its CMK.
func TestBucketKeyGrants(t *testing.T) {
	ok, _, _ := bucketKeyFixture(t, time.Hour, 1000)
	ok.Grants = true
	allowed := kms.WithGrant(context.Background(), grantOnly(ok.KeyID))
	if _, _, err := ok.New(allowed, "bkt", "a"); err != nil {
		t.Fatal(err)
	}
	denied := kms.WithGrant(context.Background(), grantOnly("another"))
	if _, _, err := ok.New(denied, "bkt", "b"); !errors.Is(err, kms.ErrNotGranted) {
		t.Fatalf("a client without the CMK used the cached bucket key: %v", err)
	}
}

func TestNewBucketKeysBounds(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		uses int
	}{{0, 1}, {time.Minute, 0}, {-time.Second, 5}} {
		if _, err := kms.NewBucketKeys(tc.ttl, tc.uses); err == nil {
			t.Errorf("NewBucketKeys(%v, %d) accepted", tc.ttl, tc.uses)
		}
	}
}

// TestBucketKeyIdleWiped: a process that writes nothing more still wipes a
// bucket key once it expires (by the wall clock, with no write to sweep).
func TestBucketKeyIdleWiped(t *testing.T) {
	ok, gen, _ := bucketKeyFixture(t, time.Hour, 1000)
	bks, err := kms.NewBucketKeys(50*time.Millisecond, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ok.BucketKeys = bks
	if _, _, err := ok.New(context.Background(), "bkt", "a"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		bks.Forget(func(string) bool { return false }) // forgets nothing; orders us after the timer's wipe
		if bytes.Equal(gen.plains[0], make([]byte, 32)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an idle bucket key was not wiped after it expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
