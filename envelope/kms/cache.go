package kms

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache remembers unwrapped data keys so that reading one object
// many times (ranged GETs, parallel downloads) costs one KMS Decrypt, not one
// per request. Only Decrypt is cached; everything else passes through.
//
// An entry lives at most TTL and the cache never holds more than MaxEntries
// keys. A CMK disabled in the key service keeps decrypting cached keys until
// their TTL runs out — that bound is the price of the cache — unless the
// one who sees the change calls Forget (serve does for its keyring).
type Cache struct {
	KeyService
	ttl    time.Duration
	now    func() time.Time
	hits   atomic.Uint64
	misses atomic.Uint64
	// forgets counts Forget calls: a key unwrapped across one is not
	// cached, since the CMK may have been what was forgotten.
	forgets atomic.Uint64

	// mu serializes the LRU's changes, and so the wiping of evicted keys
	// (its eviction callback) with the copying of cached ones.
	mu  sync.Mutex
	lru *lru.Cache[[sha256.Size]byte, *cacheEntry] // nil: caching is off
}

type cacheEntry struct {
	keyID   string // the CMK it was unwrapped under, as asked (Forget)
	key     []byte
	expires time.Time
}

// NewCache caches up to maxEntries unwrapped keys of ks for ttl.
// maxEntries < 1 or ttl <= 0 disables caching (every Decrypt is a miss).
func NewCache(ks KeyService, maxEntries int, ttl time.Duration) *Cache {
	c := &Cache{KeyService: ks, ttl: ttl, now: time.Now}
	if maxEntries >= 1 && ttl > 0 {
		// An evicted or replaced key is wiped.
		c.lru, _ = lru.NewWithEvict(maxEntries, func(_ [sha256.Size]byte, e *cacheEntry) { clear(e.key) })
	}
	return c
}

// Hits and Misses count Decrypt calls answered from the cache and not.
func (c *Cache) Hits() uint64   { return c.hits.Load() }
func (c *Cache) Misses() uint64 { return c.misses.Load() }

// Len is the number of keys held now.
func (c *Cache) Len() int {
	if c.lru == nil {
		return 0
	}
	return c.lru.Len()
}

// cacheID names one unwrap: the same ciphertext under another context or
// key id is another entry, so a moved object never hits its old entry.
func cacheID(keyID string, ciphertext []byte, encCtx map[string]string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(keyID), ciphertext, CanonicalContext(encCtx)} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var id [sha256.Size]byte
	h.Sum(id[:0])
	return id
}

// Decrypt answers from the cache when it can. The returned slice is the
// caller's own copy.
func (c *Cache) Decrypt(ctx context.Context, keyID string, ciphertext []byte, encCtx map[string]string) ([]byte, error) {
	if c.lru == nil {
		c.misses.Add(1)
		return c.KeyService.Decrypt(ctx, keyID, ciphertext, encCtx)
	}
	id := cacheID(keyID, ciphertext, encCtx)
	if key := c.get(id); key != nil {
		c.hits.Add(1)
		return key, nil
	}
	c.misses.Add(1)
	before := c.forgets.Load()
	key, err := c.KeyService.Decrypt(ctx, keyID, ciphertext, encCtx)
	if err != nil {
		return nil, err
	}
	c.put(id, keyID, key, before)
	return key, nil
}

// Forget drops (and wipes) every key unwrapped under a CMK for which
// unusable (given the CMK as Decrypt was asked for it) is true: what a
// key service's change of state (a CMK disabled or deleted) calls for, so
// that the TTL bound does not apply to it.
func (c *Cache) Forget(unusable func(keyID string) bool) {
	if c.lru == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets.Add(1)
	for _, id := range c.lru.Keys() {
		if e, ok := c.lru.Peek(id); ok && unusable(e.keyID) {
			c.lru.Remove(id)
		}
	}
}

// get is a copy of the live key cached as id, or nil.
func (c *Cache) get(id [sha256.Size]byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(id)
	switch {
	case !ok:
		return nil
	case !c.now().Before(e.expires):
		c.lru.Remove(id)
		return nil
	}
	return bytes.Clone(e.key)
}

// put caches a copy of key as id, and drops expired keys at the cold end so
// that unwrapped keys do not linger in memory long past their TTL.
//
// A key unwrapped while a Forget ran (forgets moved from before) is not
// cached: Forget may have been about its CMK.
func (c *Cache) put(id [sha256.Size]byte, keyID string, key []byte, before uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forgets.Load() != before {
		return
	}
	now := c.now()
	c.lru.Remove(id) // a concurrent miss got here first: Add would not wipe its key
	c.lru.Add(id, &cacheEntry{keyID: keyID, key: bytes.Clone(key), expires: now.Add(c.ttl)})
	for {
		old, e, ok := c.lru.GetOldest()
		if !ok || now.Before(e.expires) {
			return
		}
		c.lru.Remove(old)
	}
}
