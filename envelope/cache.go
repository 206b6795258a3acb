package envelope

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// CachingKeyService remembers unwrapped data keys so that reading one object
// many times (ranged GETs, parallel downloads) costs one KMS Decrypt, not one
// per request. Only Decrypt is cached; everything else passes through.
//
// An entry lives at most TTL and the cache never holds more than MaxEntries
// keys. A CMK disabled in the key service keeps decrypting cached keys until
// their TTL runs out: that bound is the price of the cache.
type CachingKeyService struct {
	KeyService
	max    int
	ttl    time.Duration
	now    func() time.Time
	hits   atomic.Uint64
	misses atomic.Uint64

	mu      sync.Mutex
	lru     *list.List // front = most recently used; values are *cacheEntry
	entries map[[sha256.Size]byte]*list.Element
}

type cacheEntry struct {
	id      [sha256.Size]byte
	key     []byte
	expires time.Time
}

// NewCachingKeyService caches up to maxEntries unwrapped keys of ks for ttl.
// maxEntries < 1 or ttl <= 0 disables caching (every Decrypt is a miss).
func NewCachingKeyService(ks KeyService, maxEntries int, ttl time.Duration) *CachingKeyService {
	return &CachingKeyService{
		KeyService: ks, max: maxEntries, ttl: ttl, now: time.Now,
		lru: list.New(), entries: make(map[[sha256.Size]byte]*list.Element),
	}
}

// Hits and Misses count Decrypt calls answered from the cache and not.
func (c *CachingKeyService) Hits() uint64   { return c.hits.Load() }
func (c *CachingKeyService) Misses() uint64 { return c.misses.Load() }

// Len is the number of keys held now.
func (c *CachingKeyService) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// cacheID names one unwrap: the same ciphertext under another context or
// key id is another entry, so a moved object never hits its old entry.
func cacheID(keyID string, ciphertext []byte, encCtx map[string]string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(keyID), ciphertext, canonicalContext(encCtx)} {
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
func (c *CachingKeyService) Decrypt(ctx context.Context, keyID string, ciphertext []byte, encCtx map[string]string) ([]byte, error) {
	if c.max < 1 || c.ttl <= 0 {
		c.misses.Add(1)
		return c.KeyService.Decrypt(ctx, keyID, ciphertext, encCtx)
	}
	id := cacheID(keyID, ciphertext, encCtx)
	now := c.now()
	c.mu.Lock()
	if el, ok := c.entries[id]; ok {
		e := el.Value.(*cacheEntry)
		if now.Before(e.expires) {
			c.lru.MoveToFront(el)
			key := append([]byte(nil), e.key...)
			c.mu.Unlock()
			c.hits.Add(1)
			return key, nil
		}
		c.remove(el)
	}
	c.mu.Unlock()
	c.misses.Add(1)

	key, err := c.KeyService.Decrypt(ctx, keyID, ciphertext, encCtx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[id]; ok { // a concurrent miss got here first
		c.remove(el)
	}
	c.entries[id] = c.lru.PushFront(&cacheEntry{id: id, key: append([]byte(nil), key...), expires: now.Add(c.ttl)})
	// Drop what is over the bound, and expired keys at the cold end, so
	// unwrapped keys do not linger in memory past their TTL on an idle cache.
	for el := c.lru.Back(); el != nil; el = c.lru.Back() {
		if c.lru.Len() <= c.max && now.Before(el.Value.(*cacheEntry).expires) {
			break
		}
		c.remove(el)
	}
	return key, nil
}

// remove drops an entry and wipes its key. Callers hold mu.
func (c *CachingKeyService) remove(el *list.Element) {
	e := el.Value.(*cacheEntry)
	clear(e.key)
	delete(c.entries, e.id)
	c.lru.Remove(el)
}
