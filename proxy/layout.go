package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/errgroup"

	"github.com/s3seal/s3seal/envelope"
)

// Layouts of multipart objects, for ranged and part reads: cached per
// (bucket, key, ETag), guessed from part 1's size and confirmed, or fetched
// part by part (docs/FORMAT.md §11.3). A wrong layout can only fail
// authentication, never yield wrong bytes; a guess that fails after the
// answer has started is marked wrong, so the next read fetches the exact
// layout.

const (
	layoutCacheEntries  = 4096
	layoutCacheSegments = 1 << 18 // total cached part sizes: 2 MiB
	partHeadConcurrency = 8
)

type layoutEntry struct {
	layout envelope.Layout // no Parts: a guess failed, fetch the exact layout
	exact  bool
	// verified are the middle segments of a guess whose sizes the store
	// confirmed (checkGuess).
	verified map[int]bool
	// records are the parts' records (FramingV2), once read, and the
	// fingerprint of the metadata they opened under.
	records     partRecords
	fingerprint string
}

// layoutCache is an LRU of object layouts bounded in entries and in the
// part sizes they hold together (one object may have 10,000 parts).
type layoutCache struct {
	mu       sync.Mutex // keeps segments exact, and guards verified
	lru      *lru.Cache[string, *layoutEntry]
	segments int
}

func newLayoutCache() *layoutCache {
	c := &layoutCache{}
	// Evictions happen within Add and RemoveOldest, under c.mu.
	c.lru, _ = lru.NewWithEvict(layoutCacheEntries, func(_ string, e *layoutEntry) {
		c.segments -= len(e.layout.Parts)
	}) // errors only for a size < 1
	return c
}

func layoutKey(bucket, key, etag string) string {
	return bucket + "\x00" + key + "\x00" + normETag(etag)
}

func (c *layoutCache) get(k string) (layoutEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(k)
	if !ok {
		return layoutEntry{}, false
	}
	return layoutEntry{layout: e.layout, exact: e.exact}, true
}

func (c *layoutCache) put(k string, l envelope.Layout, exact bool) {
	c.putEntry(k, &layoutEntry{layout: l, exact: exact})
}

func (c *layoutCache) putEntry(k string, e *layoutEntry) {
	if len(e.layout.Parts) > layoutCacheSegments {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(k)
	c.lru.Add(k, e)
	c.segments += len(e.layout.Parts)
	for c.segments > layoutCacheSegments {
		c.lru.RemoveOldest()
	}
}

// records are the part records cached for k, if its layout is l and they
// opened under metadata of fingerprint fp (recordsFingerprint).
func (c *layoutCache) records(k string, l envelope.Layout, fp string) (partRecords, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Peek(k)
	if !ok || e.records.sums == nil || e.fingerprint != fp || !slices.Equal(e.layout.Parts, l.Parts) || e.layout.Framing != l.Framing {
		return partRecords{}, false
	}
	return e.records, true
}

// putRecords caches the part records read under layout l, which they
// confirmed: each header was where l places it, each MAC bound its size.
func (c *layoutCache) putRecords(k string, l envelope.Layout, fp string, recs partRecords) {
	c.putEntry(k, &layoutEntry{layout: l, exact: true, records: recs, fingerprint: fp})
}

// isVerified and markVerified track confirmed segments of a guess.
func (c *layoutCache) isVerified(k string, seg int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Peek(k)
	return ok && e.verified[seg]
}

func (c *layoutCache) markVerified(k string, seg int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.lru.Peek(k); ok {
		if e.verified == nil {
			e.verified = map[int]bool{}
		}
		e.verified[seg] = true
	}
}

// errNoPartReads means a store that does not answer partNumber reads.
var errNoPartReads = errors.New("store does not serve partNumber reads")

// layout returns the object's layout and whether it is known to be exact
// rather than guessed.
func (p *Proxy) layout(ctx context.Context, o objRef) (envelope.Layout, bool, error) {
	if o.info.segments <= 1 {
		return envelope.Single(o.info.framing(), o.info.size), true, nil
	}
	k := layoutKey(o.Bucket, o.Key, o.etag)
	// A cached layout must describe this object as the store reports it now:
	// the part count of its ETag and its stored size.
	if e, ok := p.layouts.get(k); ok && (e.layout.Parts == nil || fits(e.layout, o.info)) {
		if e.layout.Parts == nil {
			return p.exactLayout(ctx, o)
		}
		return e.layout, e.exact, nil
	}
	s1, err := p.partSize(ctx, o, 1)
	if err != nil {
		return envelope.Layout{}, false, err
	}
	if guess, ok := envelope.GuessLayout(o.info.framing(), s1, o.info.segments, o.info.stored); ok {
		exact := len(guess.Parts) == 2 // part 1 and the total fix both sizes
		p.layouts.put(k, guess, exact)
		return guess, exact, nil
	}
	return p.exactLayout(ctx, o)
}

// knownLayout is the object's layout, fetched exactly unless known so.
func (p *Proxy) knownLayout(ctx context.Context, o objRef) (envelope.Layout, error) {
	l, exact, err := p.layout(ctx, o)
	if err == nil && !exact {
		l, _, err = p.exactLayout(ctx, o)
	}
	return l, err
}

// fits reports whether layout l is that of an object of info's framing,
// part count and stored size.
func fits(l envelope.Layout, info objectInfo) bool {
	return l.Framing == info.framing() && len(l.Parts) == info.segments && l.CiphertextSize() == info.stored
}

// checkGuess confirms the sizes a read of plaintext range br relies on.
// Under a guess, part 1's size is known (it was asked for), and the first
// chunk decrypted proves where the range's first segment starts (a header
// read anywhere else does not carry that segment's number). What remains
// unproven are the sizes of the middle segments the range touches: they
// decide chunk lengths and final flags, and a wrong one would only show once
// the answer has started. So each such segment's size is asked for once (and
// remembered); any difference means the guess is wrong and the exact layout
// is fetched. The last segment's size follows from the others and the
// stored total, which is the store's claim (a probe's Content-Range): a
// range that does not reach the last segment never authenticates it, so
// that segment's size is asked for too, and the object's size answered is
// one the part sizes agree with.
func (p *Proxy) checkGuess(ctx context.Context, o objRef, l envelope.Layout, br byteRange) (envelope.Layout, bool, error) {
	first, last := l.SegmentAt(br.off), l.SegmentAt(br.off+br.n-1)
	k := layoutKey(o.Bucket, o.Key, o.etag)
	var check []int
	for s := max(first, 1); s <= min(last, len(l.Parts)-2); s++ {
		check = append(check, s)
	}
	if n := len(l.Parts) - 1; n >= 1 && last < n {
		check = append(check, n)
	}
	for _, s := range check {
		if p.layouts.isVerified(k, s) {
			continue
		}
		stored, err := p.partSize(ctx, o, s+1)
		if err != nil {
			return envelope.Layout{}, false, err
		}
		if plain, err := envelope.SegmentPlaintextSize(stored); err != nil || plain != l.Parts[s] {
			return p.exactLayout(ctx, o)
		}
		p.layouts.markVerified(k, s)
	}
	return l, false, nil
}

// exactLayout fetches every part's size. The sizes must follow the multipart
// rule and add up to the object (envelope.NewLayout): under the rule no
// size a store reports can shift a byte, only fail authentication.
func (p *Proxy) exactLayout(ctx context.Context, o objRef) (envelope.Layout, bool, error) {
	n := o.info.segments
	if n < 1 || n > envelope.MaxSegments {
		return envelope.Layout{}, false, errCorrupt(fmt.Errorf("%d parts: %w", n, envelope.ErrImpossibleSize))
	}
	stored := make([]int64, n)
	err := eachPart(ctx, n, func(ctx context.Context, i int) error {
		var err error
		stored[i], err = p.partSize(ctx, o, i+1)
		return err
	})
	if err != nil {
		return envelope.Layout{}, false, err
	}
	l, err := envelope.NewLayout(o.info.framing(), stored, o.info.stored)
	if err != nil {
		return envelope.Layout{}, false, errCorrupt(fmt.Errorf("part sizes the store reports: %w", err))
	}
	p.layouts.put(layoutKey(o.Bucket, o.Key, o.etag), l, true)
	return l, true, nil
}

// partSize is the stored size of part k, from HEAD ?partNumber=k.
func (p *Proxy) partSize(ctx context.Context, o objRef, k int) (int64, error) {
	resp, err := p.store.HeadPart(ctx, o.Object, o.etag, k)
	switch {
	case err != nil:
		return 0, partReadFailure(err)
	case resp.ContentLength == o.info.stored && resp.Header.Get("X-Amz-Mp-Parts-Count") == "":
		// The whole object: the store ignored partNumber.
		return 0, errNoPartReads
	}
	return resp.ContentLength, nil
}

func errObjectChanged() *s3Error {
	// Replaced between two requests of one read: a retry reads the new object.
	return newS3Error("ServiceUnavailable", http.StatusServiceUnavailable,
		"The object changed while it was being read. Please retry.", nil)
}

// eachPart runs f for parts 0..n-1, partHeadConcurrency at a time, and
// returns the first error, after which no more are started: a store that
// failed once is not asked thousands more times.
func eachPart(parent context.Context, n int, f func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(parent)
	g.SetLimit(partHeadConcurrency)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return f(ctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return parent.Err() // stopped early without an error of f's
}
