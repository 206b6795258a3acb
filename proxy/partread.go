package proxy

// Part reads: GetObject and HeadObject with ?partNumber=k.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/s3seal/s3seal/envelope"
)

// getPart serves GetObject and HeadObject with ?partNumber=k: the plaintext
// of part k, which is segment k alone. As S3 does for multipart objects, the
// answer is 206 with Content-Range (the part's place in the object) and
// x-amz-mp-parts-count.
func (p *Proxy) getPart(x *exchange, header http.Header, query url.Values) error {
	k, err := partNumberParam(x.t.query)
	if err != nil {
		return err
	}
	q := url.Values{}
	for kk, vs := range query {
		q[kk] = vs
	}
	q.Set("partNumber", strconv.Itoa(k))
	resp, err := p.store.Do(x.r.Context(), x.object().Request(x.r.Method, q, header))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		return p.relayStoreError(x, resp) // 416 InvalidPartNumber, 404, 304, ...
	}
	part, err := p.placePart(x, resp, k)
	defer part.close()
	if err != nil || part.info.plaintext {
		return err
	}
	h := x.w.Header()
	objectResponseHeader(h, resp.Header, part.info)
	if part.info.segments > 1 {
		h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(part.info.segments))
	}
	if part.n > 0 {
		h.Set("Content-Range", contentRange(part.byteRange, part.info.size))
	}
	var dk []byte
	if x.r.Method == http.MethodGet || p.partChecksumAsked(x, part.info) {
		if dk, err = p.keys.Open(x.r.Context(), part.info.meta, x.t.bucket, x.t.key); err != nil {
			return err
		}
		defer clear(dk)
	}
	check, err := p.partChecksum(x, resp.Header.Get("ETag"), part.info, k, dk)
	if err != nil {
		return err
	}
	if x.r.Method == http.MethodHead {
		h.Set("Content-Length", strconv.FormatInt(part.n, 10))
		x.w.WriteHeader(http.StatusPartialContent)
		return nil
	}
	clock := clockFor(x.r.Context(), dirDecrypt)
	dec := envelope.NewPartDecryptReader(clock.source(part.body), dk, part.info.framing(), uint32(k))
	dec.OnSegment(check)
	return serveDecrypted(x, http.StatusPartialContent, clock.cipher(dec), part.n)
}

// partChecksumAsked reports whether a part read answers the part's
// checksum: with checksum mode, of a part of a COMPOSITE FramingV2 object
// (as S3, which gives a FULL_OBJECT object's parts none).
func (p *Proxy) partChecksumAsked(x *exchange, info objectInfo) bool {
	return checksumMode(x.t.header) && info.framing() == envelope.FramingV2 && info.meta.PartType == envelope.ChecksumComposite
}

// partChecksum answers part k's checksum when the read asks for it, and
// returns the check that the part's body has the record answered from.
func (p *Proxy) partChecksum(x *exchange, etag string, info objectInfo, k int, dk []byte) (func(uint32, []byte) error, error) {
	if !p.partChecksumAsked(x, info) {
		return nil, nil
	}
	o := objRef{Object: x.object(), etag: etag, info: info}
	recs, _, err := p.partChecksums(x.r.Context(), o, dk)
	switch {
	case errors.Is(err, errNoPartReads):
		return nil, nil
	case err != nil:
		return nil, err
	}
	setChecksumHeaders(x.w.Header(), &recs.sums[k-1])
	return recs.check, nil
}

// placedPart is part k of an object and its plaintext place in it.
type placedPart struct {
	info objectInfo
	byteRange
	body  io.Reader // the part's stored bytes
	close func()    // releases what reads body beyond the store's answer
}

// placePart reads what the store says of part k (its stored size, its place
// in the object, the object's size and part count) and checks it all
// against the format: the part must fit the object under the multipart rule
// (envelope.CheckSegment), and its stored offset must be where its header
// really is (checkPartStart). Plaintext objects are relayed as they are.
func (p *Proxy) placePart(x *exchange, resp *http.Response, k int) (placedPart, error) {
	part := placedPart{body: resp.Body, close: func() {}}
	total, start, err := partRange(resp)
	if err != nil {
		return part, errUpstream(err)
	}
	o := objRef{Object: x.object()}
	if err := p.inspect(x.r.Context(), &o, resp.Header, total); err != nil {
		return part, err
	}
	part.info = o.info
	if part.info.plaintext {
		relayPlaintext(x, resp)
		return part, nil
	}
	if k > part.info.segments {
		return part, newS3Error("InvalidPartNumber", http.StatusRequestedRangeNotSatisfiable,
			"The requested partnumber is not satisfiable", nil)
	}
	if c := resp.Header.Get("X-Amz-Mp-Parts-Count"); c != "" && c != strconv.Itoa(part.info.segments) {
		return part, errCorrupt(fmt.Errorf("the store counts %s parts here and %d in the ETag: %w", c, part.info.segments, envelope.ErrImpossibleSize))
	}
	if resp.ContentLength < 0 {
		return part, errUpstream(errors.New("store sent no Content-Length for a part"))
	}
	if part.n, err = envelope.SegmentPlaintextSize(resp.ContentLength); err != nil {
		return part, err
	}
	if part.off, err = p.partOffset(x.r.Context(), o, k, start, part.n); err != nil {
		return part, err
	}
	if err := envelope.CheckSegment(k, part.info.segments, part.off, part.n, part.info.size); err != nil {
		return part, errCorrupt(fmt.Errorf("part %d as the store reports it: %w", k, err))
	}
	at := start
	if k == 1 {
		at = 0 // part 1 starts the object, with a Content-Range or not
	}
	if x.r.Method == http.MethodGet && at >= 0 {
		// The part's stored place is known: a broken answer can resume.
		body := p.resumable(x.r.Context(), o, at, resp.ContentLength, resp.Body)
		part.body, part.close = body, func() { body.Close() }
	}
	if x.r.Method == http.MethodGet && k > 1 && start >= 0 {
		part.body, err = p.checkPartStart(x.r.Context(), o, start, part.body)
	}
	return part, err
}

// partRange reads the object's stored size and the part's stored offset
// (-1 when not given) from a partNumber answer.
func partRange(resp *http.Response) (total, start int64, err error) {
	cr := resp.Header.Get("Content-Range")
	if cr == "" {
		if resp.StatusCode == http.StatusPartialContent {
			return 0, 0, errors.New("store answered a partNumber read with 206 but no Content-Range")
		}
		return resp.ContentLength, -1, nil
	}
	if total, err = contentRangeTotal(cr); err != nil {
		return 0, 0, err
	}
	var b int64
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/", &start, &b); err != nil || start < 0 {
		return 0, 0, fmt.Errorf("store sent Content-Range %q", cr)
	}
	return total, start, nil
}

// partOffset is the plaintext offset of part k: from its stored offset,
// which converts exactly under the multipart rule, or, without one, from
// the layout. A layout known exactly must agree with both.
func (p *Proxy) partOffset(ctx context.Context, o objRef, k int, start, plain int64) (int64, error) {
	if start >= 0 {
		off, err := envelope.SegmentOffset(k, start)
		if err != nil {
			return 0, errCorrupt(err)
		}
		if e, ok := p.layouts.get(layoutKey(o.Bucket, o.Key, o.etag)); ok && e.exact && fits(e.layout, o.info) &&
			(plainBefore(e.layout, k) != off || e.layout.Parts[k-1] != plain) {
			return 0, errCorrupt(fmt.Errorf("part %d at %d+%d disagrees with the layout: %w", k, off, plain, envelope.ErrImpossibleSize))
		}
		return off, nil
	}
	if k == 1 {
		return 0, nil
	}
	layout, err := p.knownLayout(ctx, o)
	if err != nil {
		return 0, err
	}
	if layout.Parts[k-1] != plain {
		return 0, errCorrupt(fmt.Errorf("part %d holds %d bytes, its layout says %d: %w", k, plain, layout.Parts[k-1], envelope.ErrImpossibleSize))
	}
	return plainBefore(layout, k), nil
}

// plainBefore is the plaintext size of the parts before part k of l.
func plainBefore(l envelope.Layout, k int) int64 {
	return envelope.Layout{Framing: l.Framing, Parts: l.Parts[:k-1]}.PlaintextSize()
}

// checkPartStart confirms that the part a store answered a partNumber read
// with is stored where its Content-Range says: the segment header read at
// that offset (pinned to the ETag) must be the one the part starts with.
// Else the plaintext would be labelled with another part's offset. It
// returns the part's body, header included.
func (p *Proxy) checkPartStart(ctx context.Context, o objRef, start int64, body io.Reader) (io.Reader, error) {
	got := make([]byte, envelope.HeaderSize)
	if _, err := io.ReadFull(body, got); err != nil {
		return nil, fmt.Errorf("reading the part's header: %w: %w", envelope.ErrTruncated, err)
	}
	at, err := p.fetchStored(ctx, o, start, envelope.HeaderSize)
	if err != nil {
		return nil, err
	}
	defer at.Close()
	want := make([]byte, envelope.HeaderSize)
	if _, err := io.ReadFull(at, want); err != nil || !bytes.Equal(got, want) {
		return nil, errCorrupt(fmt.Errorf("the part's header is not at stored byte %d: %w", start, envelope.ErrAuthentication))
	}
	return io.MultiReader(bytes.NewReader(got), body), nil
}
