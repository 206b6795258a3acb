package kms

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/s3seal/s3seal/envelope"
)

// ContextBucket alone is a bucket key's encryption context (FORMAT.md
// §6.3): it binds the key to its bucket, and each object's data key is
// derived from it with the object's name.

// BucketContext is the encryption context of a bucket key for bucket.
func BucketContext(bucket string) map[string]string {
	return map[string]string{ContextBucket: bucket}
}

// BucketKeys hands out bucket keys: one GenerateDataKey per bucket and
// CMK, reused for new objects until TTL has passed or MaxUses objects have
// used it, then wiped and replaced. Readers never need it: any process
// unwraps a bucket key from an object's metadata (through Cache).
type BucketKeys struct {
	ttl     time.Duration
	maxUses int
	now     func() time.Time

	mu      sync.Mutex // guards the LRU, each entry's uses and forgets
	lru     *lru.Cache[bucketKeyID, *bucketKey]
	forgets int // Forget calls: a key made across one is not kept
	flight  singleflight.Group
}

type bucketKeyID struct{ bucket, keyID string }

type bucketKey struct {
	plain   []byte // wiped when the entry goes
	wrapped envelope.Metadata
	expires time.Time
	uses    int
}

// maxBucketKeys bounds the buckets whose keys are held at once.
const maxBucketKeys = 4096

// NewBucketKeys reuses each bucket key for ttl and maxUses objects.
func NewBucketKeys(ttl time.Duration, maxUses int) (*BucketKeys, error) {
	if ttl <= 0 || maxUses < 1 {
		return nil, fmt.Errorf("bucket keys need a positive lifetime and use count, not %v and %d", ttl, maxUses)
	}
	b := &BucketKeys{ttl: ttl, maxUses: maxUses, now: time.Now}
	b.lru, _ = lru.NewWithEvict(maxBucketKeys, func(_ bucketKeyID, k *bucketKey) { clear(k.plain) })
	return b, nil
}

// take returns a copy of a live bucket key for bucket under keyID and its
// metadata (KeyID and WrappedKey), counting one use, or false.
func (b *BucketKeys) take(id bucketKeyID) ([]byte, envelope.Metadata, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweep()
	k, ok := b.lru.Get(id)
	switch {
	case !ok:
		return nil, envelope.Metadata{}, false
	case k.uses >= b.maxUses || !b.now().Before(k.expires):
		b.lru.Remove(id) // wipes it
		return nil, envelope.Metadata{}, false
	}
	k.uses++
	return bytes.Clone(k.plain), k.wrapped, true
}

// sweep wipes expired keys from the cold end, so that a bucket no longer
// written does not keep its key in memory (make's timer does the same for
// an idle process).
func (b *BucketKeys) sweep() {
	for {
		id, k, ok := b.lru.GetOldest()
		if !ok || b.now().Before(k.expires) {
			return
		}
		b.lru.Remove(id)
	}
}

// bucketKeyTimeout bounds one GenerateDataKey for a bucket key, which all
// the bucket's writers wait on.
const bucketKeyTimeout = 30 * time.Second

// get is a bucket key for id, made with gen when none is live; concurrent
// callers share one gen, and each stops waiting when its own ctx ends.
func (b *BucketKeys) get(ctx context.Context, id bucketKeyID, gen func(context.Context) (DataKey, error)) ([]byte, envelope.Metadata, error) {
	for { // a key made for us can be used up by others before we take it
		if plain, meta, ok := b.take(id); ok {
			return plain, meta, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, envelope.Metadata{}, err
		}
		ch := b.flight.DoChan(id.bucket+"\x00"+id.keyID, func() (any, error) {
			return nil, b.make(ctx, id, gen)
		})
		select {
		case res := <-ch:
			if res.Err != nil {
				return nil, envelope.Metadata{}, res.Err
			}
		case <-ctx.Done():
			return nil, envelope.Metadata{}, ctx.Err()
		}
	}
}

// make generates a bucket key for id and keeps it, unless a Forget came in
// meanwhile (the CMK it was made under may be the one forgotten: the next
// get makes another, which the key service then refuses).
func (b *BucketKeys) make(ctx context.Context, id bucketKeyID, gen func(context.Context) (DataKey, error)) error {
	b.mu.Lock()
	epoch := b.forgets
	k, ok := b.lru.Peek(id)
	live := ok && k.uses < b.maxUses && b.now().Before(k.expires)
	b.mu.Unlock()
	if live { // a flight that ended as we missed made one
		return nil
	}
	// Shared by every caller waiting: one client going away must not fail
	// the others' writes, and a hung key service must not hold them all.
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bucketKeyTimeout)
	defer cancel()
	dk, err := gen(gctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.forgets != epoch {
		clear(dk.Plaintext)
		return nil
	}
	k = &bucketKey{plain: dk.Plaintext, wrapped: envelope.Metadata{KeyID: dk.KeyID, WrappedKey: dk.Ciphertext}, expires: b.now().Add(b.ttl)}
	b.lru.Remove(id) // wipes one a racing flight left
	b.lru.Add(id, k)
	// An idle bucket's key is wiped when it expires, not when next asked.
	time.AfterFunc(b.ttl, func() { b.drop(id, k) })
	return nil
}

// drop wipes id's key if it is still k (whichever it is, for nil).
func (b *BucketKeys) drop(id bucketKeyID, k *bucketKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, ok := b.lru.Peek(id); ok && (k == nil || cur == k) {
		b.lru.Remove(id)
	}
}

// Forget wipes every bucket key under a CMK for which unusable is true
// (given the CMK as it was asked for, and as the key service named it): a
// CMK disabled or deleted wraps no new object from then on.
func (b *BucketKeys) Forget(unusable func(keyID string) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forgets++
	for _, id := range b.lru.Keys() {
		if k, ok := b.lru.Peek(id); ok && (unusable(id.keyID) || unusable(k.wrapped.KeyID)) {
			b.lru.Remove(id)
		}
	}
}
