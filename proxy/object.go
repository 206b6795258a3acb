package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/store"
)

// objectInfo is what a store's answers say about an object.
type objectInfo struct {
	meta      envelope.Metadata
	plaintext bool  // no s3seal metadata, served as stored (AllowPlaintextReads)
	stored    int64 // stored size
	size      int64 // plaintext size (= stored for plaintext objects)
	segments  int   // part count (partCount)
}

// objRef names one version of an object in the store, and how to ask about
// it: every request that learns more about it is pinned to its ETag.
type objRef struct {
	store.Object
	etag string
	info objectInfo
}

// objectAt names bucket/key at version versionID, asked about with the
// owner and payer headers of client.
func objectAt(bucket, key, versionID string, client http.Header) store.Object {
	o := store.Object{Bucket: bucket, Key: key, VersionID: versionID, Header: http.Header{}}
	copyHeaders(o.Header, client, ownerHeaders...)
	return o
}

// inspect reads an object's metadata, sizes and part count from a store's
// answer about it (h, and its stored size), into o.info.
func (p *Proxy) inspect(ctx context.Context, o *objRef, h http.Header, stored int64) error {
	o.etag = h.Get("ETag")
	o.info = objectInfo{stored: stored}
	if stored < 0 {
		return errUpstream(errors.New("store sent no Content-Length for an object"))
	}
	meta, err := parseMetadata(h)
	switch {
	case errors.Is(err, envelope.ErrUnsupportedVersion):
		// Written by a newer s3seal, or a damaged version field: either way
		// this build must not guess.
		return newS3Error("UnsupportedObjectFormat", http.StatusInternalServerError,
			"The stored object uses an s3seal format this version cannot read.", err)
	case errors.Is(err, envelope.ErrNoMetadata):
		if !p.allowPlaintext {
			return errNotSealed()
		}
		o.info.plaintext, o.info.size = true, stored
		return nil
	case err != nil:
		return err
	}
	o.info.meta = meta
	if o.info.segments, err = p.partCount(ctx, *o, h); err != nil {
		return err
	}
	// Never a guess: a size that no plaintext encrypts to is a damaged or
	// foreign object.
	o.info.size, err = envelope.ObjectPlaintextSize(stored, o.info.segments)
	return err
}

// framing is how the object's segments are laid out, from its metadata.
func (i objectInfo) framing() envelope.Framing {
	if i.meta.Framing == 0 {
		return envelope.FramingV1
	}
	return i.meta.Framing
}

// etagParts is the part count of a multipart ETag ("...-N"), 1 otherwise.
// A count above envelope.MaxSegments comes back as MaxSegments+1, which
// every size function refuses: the store's number never sizes anything.
func etagParts(etag string) int {
	n, _ := envelope.ETagPartCount(etag)
	return n
}

// Part counts (FORMAT.md §4.2): an object's size follows from its stored
// size and its part count, which S3 gives as the "-N" of a multipart ETag.
// An ETag without one means a single part only on a store that ends every
// multipart ETag so: the embedded store, and any store once s3seal has seen
// it answer a completed upload so. On any other store the count is asked
// (partCounts.ask) and remembered per ETag, and a store that will not say is
// refused: a size is never guessed.
type partCounts struct {
	marked atomic.Int32 // etagsMarked, etagsUnmarked or 0: not known yet
	known  *lru.Cache[string, int]
}

const (
	etagsMarked   = 1
	etagsUnmarked = -1
	countCacheLen = 1 << 16
)

func newPartCounts(marked bool) *partCounts {
	c := &partCounts{}
	c.known, _ = lru.New[string, int](countCacheLen) // errors only for a size < 1
	if marked {
		c.marked.Store(etagsMarked)
	}
	return c
}

// learn records what a completed upload of n parts says about the store:
// whether its ETag carries "-n". It returns true when that is news that an
// operator should hear of (a store that does not mark multipart ETags).
func (c *partCounts) learn(etag string, n int) bool {
	if got, ok := envelope.ETagPartCount(etag); ok && got == n {
		c.marked.Store(etagsMarked)
		return false
	}
	return c.marked.Swap(etagsUnmarked) != etagsUnmarked
}

// errUnknownPartCount refuses an object whose part count the store will
// not give.
func errUnknownPartCount(cause error) *s3Error {
	return newS3Error("UnknownPartCount", http.StatusBadGateway,
		"The store gives no part count for this object (its ETag has no -N and it does not answer partNumber reads), "+
			"so s3seal cannot know its size. Run s3seal doctor against this store.", cause)
}

// partCount is the number of parts of the object o, whose answer header is
// h: the ETag's "-N", a count the answer carries, or what the store says
// when asked.
func (p *Proxy) partCount(ctx context.Context, o objRef, h http.Header) (int, error) {
	if n, ok := envelope.ETagPartCount(o.etag); ok {
		return n, nil
	}
	if n, ok := envelope.ParsePartCount(h.Get("X-Amz-Mp-Parts-Count")); ok {
		return n, nil
	}
	if p.counts.marked.Load() == etagsMarked {
		return 1, nil
	}
	k := layoutKey(o.Bucket, o.Key, o.etag)
	if n, ok := p.counts.known.Get(k); ok {
		return n, nil
	}
	n, err := p.askPartCount(ctx, o)
	if err != nil {
		return 0, err
	}
	p.counts.known.Add(k, n)
	return n, nil
}

// askPartCount asks the store for o's part count: HEAD ?partNumber=1 says
// it for a multipart object (x-amz-mp-parts-count); for a single part, a
// store that serves part reads answers 416 to ?partNumber=2.
func (p *Proxy) askPartCount(ctx context.Context, o objRef) (int, error) {
	resp, err := p.store.HeadPart(ctx, o.Object, o.etag, 1)
	if err != nil {
		return 0, partReadFailure(err)
	}
	if n, ok := envelope.ParsePartCount(resp.Header.Get("X-Amz-Mp-Parts-Count")); ok {
		return n, nil
	}
	if resp.ContentLength != o.info.stored {
		return 0, errUnknownPartCount(errors.New("part 1 is not the whole object, and no part count"))
	}
	_, err = p.store.HeadPart(ctx, o.Object, o.etag, 2)
	var f *store.Failure
	switch {
	case errors.Is(err, store.ErrRangeNotSatisfiable):
		return 1, nil
	case err != nil && !errors.As(err, &f):
		return 0, partReadFailure(err)
	}
	return 0, errUnknownPartCount(errors.New("the store answers ?partNumber=2 of a one-part object"))
}

// partReadFailure maps a part read s3seal made for itself that failed: the
// client asked for no part, so the store's answer is not the client's to
// see, and a store that will not answer it is unavailable to this read (503,
// which SDKs retry).
func partReadFailure(err error) error {
	if err == nil || errors.Is(err, store.ErrChanged) {
		return err
	}
	var f *store.Failure
	if errors.As(err, &f) {
		return errUpstream(fmt.Errorf("HEAD ?partNumber answered %d", f.Resp.StatusCode))
	}
	return errUpstream(err)
}

// object is the object x names, at the version it asks for, asked about
// with its owner and payer headers.
func (x *exchange) object() store.Object {
	return objectAt(x.t.bucket, x.t.key, x.t.query.Get("versionId"), x.t.header)
}

// written is the object x writes: no version, since writes make one.
func (x *exchange) written() store.Object {
	return objectAt(x.t.bucket, x.t.key, "", x.t.header)
}

// errNotSealed refuses an object without s3seal metadata: s3seal cannot
// vouch for it (AllowPlaintextReads serves such objects as stored).
func errNotSealed() *s3Error {
	return newS3Error("AccessDenied", http.StatusForbidden, "The object was not written through s3seal.", nil)
}
