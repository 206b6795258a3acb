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

// hangingKeys: GenerateDataKey blocks until its ctx ends (a KMS that
// accepts the connection and never answers; the SDK sets no request
// timeout).
type hangingKeys struct {
	kms.KeyService
	started chan struct{}
}

func (h *hangingKeys) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	close(h.started)
	<-ctx.Done()
	return kms.DataKey{}, ctx.Err()
}

// TestBucketKeyHungKMSFreesCancelledWriters: a writer whose request is
// cancelled stops waiting on a bucket key generation that hangs.
func TestBucketKeyHungKMSFreesCancelledWriters(t *testing.T) {
	ok, _, _ := bucketKeyFixture(t, time.Hour, 1000)
	h := &hangingKeys{KeyService: ok.Keys, started: make(chan struct{})}
	ok.Keys = h
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, _, err := ok.New(ctx, "bkt", "a"); done <- err }()
	<-h.started
	cancel()
	select {
	case err := <-done:
		t.Logf("returned after cancel: %v", err)
	case <-time.After(2 * time.Second):
		t.Fatal("New still blocked 2s after its request was cancelled: a hung KMS call holds every writer to the bucket forever")
	}
}

// TestBucketKeyForgetDuringGeneration: a Forget (a CMK disabled) that runs
// while a bucket key is being generated leaves that key uncached.
type forgetDuring struct {
	kms.KeyService
	during func()
}

func (f *forgetDuring) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	dk, err := f.KeyService.GenerateDataKey(ctx, keyID, encCtx)
	if f.during != nil {
		f.during()
		f.during = nil
	}
	return dk, err
}

func TestBucketKeyForgetDuringGeneration(t *testing.T) {
	ctx := context.Background()
	kr, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := kr.CreateKey("k")
	if err != nil {
		t.Fatal(err)
	}
	bks, _ := kms.NewBucketKeys(time.Hour, 1000)
	f := &forgetDuring{KeyService: kr}
	ok := kms.ObjectKeys{Keys: f, KeyID: info.ID, Allowed: kms.NewAllowList(kr, info.ID), BucketKeys: bks}
	// keyringChanged, as serve runs it, just as the KMS answered.
	f.during = func() {
		if err := kr.DisableKey(info.ID); err != nil {
			t.Fatal(err)
		}
		bks.Forget(func(id string) bool { return !kr.Usable(id) })
	}
	if _, _, err := ok.New(ctx, "bkt", "a"); err != nil {
		t.Logf("first write: %v", err)
	}
	if _, meta, err := ok.New(ctx, "bkt", "b"); err == nil {
		t.Fatalf("a keyring CMK disabled (and Forget run) still wraps new objects through the cached bucket key: %s", meta.KeyID)
	}
}

// TestBucketKeyAliasRepointed: an alias re-pointed to another key (the
// allow-list refreshed) drops the cached bucket key under the old one, and
// writes go on under the new one.
func TestBucketKeyAliasRepointed(t *testing.T) {
	ctx := context.Background()
	kr, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := kr.CreateKey("old")
	k2, _ := kr.CreateKey("new")
	if err := kr.CreateAlias("alias/s3seal", k1.ID); err != nil {
		t.Fatal(err)
	}
	bks, _ := kms.NewBucketKeys(time.Hour, 1000)
	allowed := kms.NewAllowList(kr, "alias/s3seal")
	ok := kms.ObjectKeys{Keys: kr, KeyID: "alias/s3seal", Allowed: allowed, BucketKeys: bks}
	if _, _, err := ok.New(ctx, "bkt", "a"); err != nil {
		t.Fatal(err)
	}
	if err := kr.UpdateAlias("alias/s3seal", "", k2.ID); err != nil {
		t.Fatal(err)
	}
	// serve's keyringChanged
	bks.Forget(func(id string) bool { return !kr.Usable(id) })
	if err := allowed.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	perObject := ok.WithoutBucketKeys()
	if _, m, err := perObject.New(ctx, "bkt", "p"); err != nil || m.KeyID != k2.ID {
		t.Fatalf("per-object: %v %s", err, m.KeyID)
	}
	for i := range 3 {
		if _, m, err := ok.New(ctx, "bkt", "b"); err != nil || m.KeyID != k2.ID {
			t.Errorf("bucket key write %d after re-pointing the alias: key %q, %v", i, m.KeyID, err)
		}
	}
}

// TestBucketKeyExpiredWiped: an expired bucket key of a bucket no longer
// written is wiped, not kept until that bucket is written again.
func TestBucketKeyExpiredWiped(t *testing.T) {
	ctx := context.Background()
	ok, gen, now := bucketKeyFixture(t, time.Minute, 1000)
	if _, _, err := ok.New(ctx, "idle", "a"); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Hour)
	if _, _, err := ok.New(ctx, "busy", "a"); err != nil {
		t.Fatal(err)
	}
	gen.mu.Lock()
	defer gen.mu.Unlock()
	if !bytes.Equal(gen.plains[0], make([]byte, 32)) {
		t.Error("bucket 'idle' key, expired 59 minutes ago, is still in memory unwiped")
	}
}

// TestBucketKeyFewUsesManyWriters: many concurrent writers to a bucket
// whose keys serve few uses all succeed, and every key replaced is wiped.
func TestBucketKeyFewUsesManyWriters(t *testing.T) {
	ctx := context.Background()
	ok, gen, _ := bucketKeyFixture(t, time.Hour, 1)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 20 {
				if _, _, err := ok.New(ctx, "bkt", "k"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	ok.BucketKeys.Forget(func(string) bool { return true })
	if n := gen.unwiped(); n > 0 {
		t.Fatalf("%d of %d bucket keys never wiped", n, gen.count())
	}
}

// TestBucketKeyFirstWritersRace: rounds of 64 first writers to a bucket
// with no live key make one bucket key each, and none stays unwiped.
func TestBucketKeyFirstWritersRace(t *testing.T) {
	ctx := context.Background()
	ok, gen, _ := bucketKeyFixture(t, time.Hour, 1_000_000)
	const rounds = 400
	for range rounds {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				<-start
				if _, _, err := ok.New(ctx, "bkt", "k"); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		ok.BucketKeys.Forget(func(string) bool { return true })
	}
	if n, u := gen.count(), gen.unwiped(); n != rounds || u > 0 {
		t.Fatalf("%d rounds made %d bucket keys, %d never wiped", rounds, n, u)
	}
}

// TestKeyUserDecryptsBucketKey pins a documented limit (SECURITY.md): a
// KMS-API key-user's Decrypt of one version 5 object's s3seal-k under
// {"s3seal:bucket": b} gives the bucket key, which with each other object's
// (public) salt derives every data key it served.
func TestKeyUserDecryptsBucketKey(t *testing.T) {
	ctx := context.Background()
	ok, _, _ := bucketKeyFixture(t, time.Hour, 1000)
	_, m1, _ := ok.New(ctx, "bkt", "one")
	dk2, m2, _ := ok.New(ctx, "bkt", "two")
	// the key-user's call, as internal/kmsapi passes it to the keyring
	bk, err := ok.Keys.Decrypt(ctx, m1.KeyID, m1.WrappedKey, map[string]string{"s3seal:bucket": "bkt"})
	if err != nil {
		t.Fatal(err)
	}
	// The limit SECURITY.md states: one Decrypt opens every object the
	// bucket key served.
	if got, _ := envelope.DeriveObjectKey(bk, m2.BucketKeySalt, "bkt", "two"); !bytes.Equal(got, dk2) {
		t.Fatal("a bucket key unwrapped for object one does not derive object two's key")
	}
}

func TestBucketKeyRelabel(t *testing.T) {
	ctx := context.Background()
	ok, _, _ := bucketKeyFixture(t, time.Hour, 1000)
	_, v5, _ := ok.New(ctx, "bkt", "a")
	_, v1, _ := ok.WithoutBucketKeys().New(ctx, "bkt", "a")
	asV1 := v5
	asV1.BucketKeySalt = nil
	if _, err := ok.Open(ctx, asV1, "bkt", "a"); !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Errorf("v5 as v1: %v", err)
	}
	asV5 := v1
	asV5.BucketKeySalt = v5.BucketKeySalt
	if _, err := ok.Open(ctx, asV5, "bkt", "a"); !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Errorf("v1 as v5: %v", err)
	}
	withCtx := v5
	withCtx.BucketKeySalt = nil
	withCtx.Context = map[string]string{"x": "y"}
	if _, err := ok.Open(ctx, withCtx, "bkt", "a"); !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Errorf("v5 as v2: %v", err)
	}
}
