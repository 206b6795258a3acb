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

	mu     sync.Mutex // guards the LRU and each entry's uses
	lru    *lru.Cache[bucketKeyID, *bucketKey]
	flight singleflight.Group
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

// get is a bucket key for id, made with gen when none is live; concurrent
// callers share one gen.
func (b *BucketKeys) get(ctx context.Context, id bucketKeyID, gen func(context.Context) (DataKey, error)) ([]byte, envelope.Metadata, error) {
	for range 2 { // a key made for us can be used up by others before we take it
		if plain, meta, ok := b.take(id); ok {
			return plain, meta, nil
		}
		_, err, _ := b.flight.Do(id.bucket+"\x00"+id.keyID, func() (any, error) {
			// Shared by every caller waiting: one client going away must
			// not fail the others' writes.
			dk, err := gen(context.WithoutCancel(ctx))
			if err != nil {
				return nil, err
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			b.lru.Add(id, &bucketKey{plain: dk.Plaintext, wrapped: envelope.Metadata{KeyID: dk.KeyID, WrappedKey: dk.Ciphertext},
				expires: b.now().Add(b.ttl)})
			return nil, nil
		})
		if err != nil {
			return nil, envelope.Metadata{}, err
		}
	}
	if plain, meta, ok := b.take(id); ok {
		return plain, meta, nil
	}
	return nil, envelope.Metadata{}, fmt.Errorf("bucket key for %s used up as soon as it was made: %w", id.bucket, ErrKMSUnavailable)
}

// Forget wipes every bucket key under a CMK for which unusable is true
// (given the CMK as it was asked for, and as the key service named it): a
// CMK disabled or deleted wraps no new object from then on.
func (b *BucketKeys) Forget(unusable func(keyID string) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range b.lru.Keys() {
		if k, ok := b.lru.Peek(id); ok && (unusable(id.keyID) || unusable(k.wrapped.KeyID)) {
			b.lru.Remove(id)
		}
	}
}
