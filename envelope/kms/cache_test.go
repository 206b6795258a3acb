package kms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// countingKS is a unit-test fake: Decrypt "unwraps" by returning the
// ciphertext reversed and counts calls.
type countingKS struct {
	KeyService
	mu    sync.Mutex
	calls int
	fail  error
}

func (c *countingKS) Decrypt(_ context.Context, keyID string, ct []byte, encCtx map[string]string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail != nil {
		return nil, c.fail
	}
	out := make([]byte, len(ct))
	for i := range ct {
		out[len(ct)-1-i] = ct[i]
	}
	return out, nil
}

func TestCacheHitsMissesAndCopies(t *testing.T) {
	ctx := context.Background()
	fake := &countingKS{}
	c := NewCache(fake, 10, time.Minute)
	ectx := BindingContext("b", "k")
	a, err := c.Decrypt(ctx, "key", []byte("abc"), ectx)
	if err != nil || string(a) != "cba" {
		t.Fatalf("first decrypt: %q %v", a, err)
	}
	a[0] = 'X' // the caller owns its copy
	b, _ := c.Decrypt(ctx, "key", []byte("abc"), ectx)
	if string(b) != "cba" {
		t.Fatalf("cached key was changed through a returned slice: %q", b)
	}
	if c.Hits() != 1 || c.Misses() != 1 || fake.calls != 1 {
		t.Fatalf("hits %d misses %d calls %d", c.Hits(), c.Misses(), fake.calls)
	}
	// Another context, key id or ciphertext is another entry.
	for _, call := range []struct {
		id  string
		ct  string
		ctx map[string]string
	}{{"key", "abc", BindingContext("b", "other")}, {"", "abc", ectx}, {"key", "abd", ectx}} {
		if _, err := c.Decrypt(ctx, call.id, []byte(call.ct), call.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if c.Misses() != 4 || fake.calls != 4 {
		t.Fatalf("distinct unwraps shared an entry: misses %d calls %d", c.Misses(), fake.calls)
	}
}

func TestCacheTTLAndBound(t *testing.T) {
	ctx := context.Background()
	fake := &countingKS{}
	c := NewCache(fake, 3, time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	for i := range 5 {
		if _, err := c.Decrypt(ctx, "k", []byte{byte(i)}, nil); err != nil {
			t.Fatal(err)
		}
		if c.Len() > 3 {
			t.Fatalf("cache holds %d keys, bound is 3", c.Len())
		}
	}
	// 0 and 1 were evicted (least recently used), 4 is still there.
	c.Decrypt(ctx, "k", []byte{4}, nil)
	c.Decrypt(ctx, "k", []byte{0}, nil)
	if c.Hits() != 1 {
		t.Fatalf("hits %d, want 1 (only key 4)", c.Hits())
	}
	now = now.Add(time.Minute)
	calls := fake.calls
	c.Decrypt(ctx, "k", []byte{0}, nil)
	if fake.calls != calls+1 {
		t.Fatal("expired entry was served")
	}
	if c.Len() != 1 {
		t.Fatalf("expired keys linger: %d held", c.Len())
	}
}

func TestCacheErrorsAndDisabled(t *testing.T) {
	ctx := context.Background()
	fake := &countingKS{fail: &KMSError{Op: "Decrypt", Kind: ErrKeyDisabled}}
	c := NewCache(fake, 10, time.Minute)
	for range 2 {
		if _, err := c.Decrypt(ctx, "k", []byte("x"), nil); !errors.Is(err, ErrKeyDisabled) {
			t.Fatalf("got %v", err)
		}
	}
	if fake.calls != 2 || c.Len() != 0 {
		t.Fatal("a failure was cached")
	}
	off := NewCache(&countingKS{}, 0, time.Minute)
	off.Decrypt(ctx, "k", []byte("x"), nil)
	off.Decrypt(ctx, "k", []byte("x"), nil)
	if off.Hits() != 0 || off.Misses() != 2 || off.Len() != 0 {
		t.Fatal("a zero-size cache cached")
	}
}

func TestCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	c := NewCache(&countingKS{}, 8, time.Minute)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ct := []byte(fmt.Sprint((g + i) % 12))
				want := bytes.Clone(ct)
				slices.Reverse(want)
				got, err := c.Decrypt(ctx, "k", ct, nil)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("got %q %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if c.Hits()+c.Misses() != 1600 || c.Len() > 8 {
		t.Fatalf("hits %d misses %d len %d", c.Hits(), c.Misses(), c.Len())
	}
}

// TestCacheWipesKeys: a key leaving the cache (evicted, expired or
// replaced) is zeroed in memory, not left for the garbage collector.
func TestCacheWipesKeys(t *testing.T) {
	ctx := context.Background()
	c := NewCache(&countingKS{}, 2, time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	held := func(ct string) []byte {
		t.Helper()
		if _, err := c.Decrypt(ctx, "k", []byte(ct), nil); err != nil {
			t.Fatal(err)
		}
		e, ok := c.lru.Peek(cacheID("k", []byte(ct), nil))
		if !ok {
			t.Fatalf("%q not cached", ct)
		}
		return e.key
	}
	wiped := func(name string, key []byte) {
		t.Helper()
		if !bytes.Equal(key, make([]byte, len(key))) {
			t.Errorf("%s key not wiped: %q", name, key)
		}
	}
	evicted, expired := held("aaaa"), held("bbbb")
	held("cccc") // evicts aaaa
	wiped("evicted", evicted)
	now = now.Add(time.Minute)
	c.Decrypt(ctx, "k", []byte("bbbb"), nil) // expired: dropped, then cached anew
	wiped("expired", expired)
}

// Forget drops the keys of the CMKs named, and only those.
func TestCacheForget(t *testing.T) {
	ctx := context.Background()
	fake := &countingKS{}
	c := NewCache(fake, 10, time.Hour)
	for _, id := range []string{"a", "a", "b"} {
		if _, err := c.Decrypt(ctx, id, []byte("ct-"+id+fmt.Sprint(c.Len())), nil); err != nil {
			t.Fatal(err)
		}
	}
	c.Forget(func(id string) bool { return id == "a" || id == "nope" })
	if c.Len() != 1 {
		t.Fatalf("%d entries after forgetting a, want b's 1", c.Len())
	}
	if _, err := c.Decrypt(ctx, "b", []byte("ct-b2"), nil); err != nil || c.Hits() != 1 {
		t.Fatalf("b's key is gone too: hits %d %v", c.Hits(), err)
	}
}

// forgettingKS calls forget while it unwraps: a key disabled mid-call.
type forgettingKS struct {
	countingKS
	forget func()
}

func (f *forgettingKS) Decrypt(ctx context.Context, keyID string, ct []byte, encCtx map[string]string) ([]byte, error) {
	f.forget()
	return f.countingKS.Decrypt(ctx, keyID, ct, encCtx)
}

// A key unwrapped while Forget runs is not cached: it may be the
// forgotten CMK's.
func TestCacheForgetDuringUnwrap(t *testing.T) {
	fake := &forgettingKS{}
	c := NewCache(fake, 10, time.Hour)
	fake.forget = func() { c.Forget(func(string) bool { return true }) }
	if _, err := c.Decrypt(context.Background(), "a", []byte("ct"), nil); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Fatal("a key unwrapped across a Forget was cached")
	}
}
