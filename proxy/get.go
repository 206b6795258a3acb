package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// objectReadQuery keeps the parameters of a read that the store must see:
// the version and the response-header overrides.
func objectReadQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, vs := range q {
		if k == "versionId" || strings.HasPrefix(k, "response-") {
			out[k] = vs
		}
	}
	return out
}

// getObject serves GetObject and HeadObject.
func (p *Proxy) getObject(x *exchange) error {
	header := http.Header{}
	copyHeaders(header, x.t.header, getObjectHeaders...)
	query := objectReadQuery(x.t.query)
	rangeHdr := x.t.header.Get("Range")
	if _, res := parseRange(rangeHdr, math.MaxInt64); res == rangeNone {
		rangeHdr = "" // S3 ignores malformed and multiple ranges
	}

	if _, ok := x.t.query["partNumber"]; ok {
		if x.t.header.Get("Range") != "" {
			return newS3Error("InvalidRequest", http.StatusBadRequest,
				"Cannot specify both Range header and partNumber query parameter.", nil)
		}
		return p.getPart(x, header, query)
	}
	if x.r.Method == http.MethodHead {
		return p.headObject(x, header, query, rangeHdr)
	}
	if rangeHdr != "" {
		return p.getObjectRange(x, header, query, rangeHdr)
	}

	resp, err := p.expect(x, http.StatusOK, http.MethodGet, x.t.bucket, x.t.key, query, header) // 304, 412, 404, the store's errors
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	o := newObjRef(x.t.bucket, x.t.key, query, x.t.header)
	if err := p.inspect(x.r.Context(), &o, resp.Header, resp.ContentLength); err != nil {
		return err
	}
	info := o.info
	if info.plaintext {
		relay(x, resp)
		return nil
	}
	dk, err := p.keys.Open(x.r.Context(), info.meta, x.t.bucket, x.t.key)
	if err != nil {
		return err
	}
	defer clear(dk)
	objectResponseHeader(x.w.Header(), resp.Header, info)
	clock := clockFor(x.r.Context(), dirDecrypt)
	return serveDecrypted(x, http.StatusOK, clock.cipher(envelope.NewDecryptReader(clock.source(resp.Body), dk, info.segments)), info.size)
}

// headObject answers from the store's HEAD alone: sizes and ranges follow
// from the stored size, and no data key is needed.
func (p *Proxy) headObject(x *exchange, header http.Header, query url.Values, rangeHdr string) error {
	resp, err := p.expect(x, http.StatusOK, http.MethodHead, x.t.bucket, x.t.key, query, header)
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	o := newObjRef(x.t.bucket, x.t.key, query, x.t.header)
	if err := p.inspect(x.r.Context(), &o, resp.Header, resp.ContentLength); err != nil {
		return err
	}
	info := o.info
	h := x.w.Header()
	if info.plaintext {
		copyResponseHeader(h, resp)
	} else {
		objectResponseHeader(h, resp.Header, info)
	}
	status, length := http.StatusOK, info.size
	if rangeHdr != "" {
		br, res := parseRange(rangeHdr, info.size)
		switch {
		case res == rangeUnsatisfiable:
			return errInvalidRange(info.size)
		case res == rangeOK:
			status, length = http.StatusPartialContent, br.n
			h.Set("Content-Range", contentRange(br, info.size))
		}
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	x.w.WriteHeader(status)
	return nil
}

// getObjectRange serves a ranged GET (openRange does the work).
func (p *Proxy) getObjectRange(x *exchange, header http.Header, query url.Values, rangeHdr string) error {
	src, err := p.openRange(x.r.Context(), x.t.bucket, x.t.key, query, header, func(size int64) (byteRange, rangeResult) {
		return parseRange(rangeHdr, size)
	})
	if err != nil {
		return err
	}
	defer src.close()
	if src.info.plaintext {
		src.close()
		return p.relayPlaintextRange(x, header, query, rangeHdr, src.etag)
	}
	h := x.w.Header()
	objectResponseHeader(h, src.header, src.info)
	h.Set("Content-Range", contentRange(src.br, src.info.size))
	return serveDecrypted(x, http.StatusPartialContent, src.body, src.br.n)
}

// rangeSource is a plaintext range of an object, ready to stream.
type rangeSource struct {
	header http.Header // the store's headers for the object
	etag   string
	info   objectInfo // info.plaintext: not an s3seal object, no body
	br     byteRange
	body   io.Reader // exactly br.n bytes, authenticated as they come
	closes []func()
}

func (s *rangeSource) close() {
	for _, c := range s.closes {
		c()
	}
	s.closes = nil
}

// openRange opens a plaintext range of bucket/key; pick chooses it once the
// object's size is known (rangeNone: the whole object).
//
// Plaintext offsets need the object's size before the stored bytes can be
// chosen, so a first request (the probe) fetches the first segment header
// (stored bytes 0-31), which also brings the metadata, the stored size
// (Content-Range) and the ETag. Later requests fetch the chunks holding the
// range (and, for a range that starts inside a later segment, that segment's
// header), pinned to the probe's ETag with If-Match so that they all read
// the same object. Multipart objects also need their layout (layout.go).
//
// The first chunk is decrypted before openRange returns, so that a guessed
// layout that turns out wrong can still be corrected and the read retried.
// A store's answer to relay comes back as a *storeFailure.
func (p *Proxy) openRange(ctx context.Context, bucket, key string, query url.Values, header http.Header, pick func(size int64) (byteRange, rangeResult)) (_ *rangeSource, err error) {
	src := &rangeSource{}
	defer func() {
		if err != nil {
			src.close()
		}
	}()
	probeHeader := header.Clone()
	probeHeader.Set("Range", fmt.Sprintf("bytes=0-%d", envelope.HeaderSize-1))
	req, err := p.up.newRequest(ctx, http.MethodGet, bucket, key, query, probeHeader, nil, 0)
	if err != nil {
		return nil, errInternal(err)
	}
	probe, err := p.up.do(req)
	if err != nil {
		return nil, errUpstream(err)
	}
	closeProbe := func() { probe.Body.Close() }
	var stored int64
	switch probe.StatusCode {
	case http.StatusPartialContent:
		if stored, err = contentRangeTotal(probe.Header.Get("Content-Range")); err != nil {
			closeProbe()
			return nil, errUpstream(err)
		}
	case http.StatusOK:
		stored = probe.ContentLength // the store ignored Range: the whole object
	case http.StatusRequestedRangeNotSatisfiable:
		// Only an empty stored object has no byte 0, and s3seal never
		// writes one: it is someone else's.
		closeProbe()
		if !p.allowPlaintext {
			return nil, newS3Error("AccessDenied", http.StatusForbidden, "The object was not written through s3seal.", nil)
		}
		src.info.plaintext = true
		return src, nil
	default:
		return nil, &storeFailure{resp: probe} // 304, 412, 404, the store's errors
	}
	src.closes = append(src.closes, closeProbe)
	src.header = probe.Header
	o := newObjRef(bucket, key, query, header)
	if err := p.inspect(ctx, &o, probe.Header, stored); err != nil {
		return nil, err
	}
	src.info, src.etag = o.info, o.etag
	if src.info.plaintext {
		src.close()
		return src, nil
	}
	br, res := pick(src.info.size)
	switch res {
	case rangeUnsatisfiable:
		return nil, errInvalidRange(src.info.size)
	case rangeNone:
		br = byteRange{0, src.info.size}
	}
	src.br = br
	dk, err := p.keys.Open(ctx, src.info.meta, bucket, key)
	if err != nil {
		return nil, err
	}
	src.closes = append(src.closes, func() { clear(dk) })

	if probe.StatusCode == http.StatusOK {
		// The whole object is already coming: decrypt it up to the range.
		clock := clockFor(ctx, dirDecrypt)
		dec := clock.cipher(envelope.NewDecryptReader(clock.source(probe.Body), dk, src.info.segments))
		if _, err := io.CopyN(io.Discard, dec, br.off); err != nil {
			return nil, err
		}
		src.body = io.LimitReader(dec, br.n)
		return src, nil
	}
	if br.n == 0 {
		// The whole of an empty object: check it all the same.
		closeProbe()
		body, done, err := p.fetchStored(ctx, o, 0, src.info.stored)
		if err != nil {
			return nil, err
		}
		defer done()
		clock := clockFor(ctx, dirDecrypt)
		if _, err := io.Copy(io.Discard, clock.cipher(envelope.NewDecryptReader(clock.source(body), dk, src.info.segments))); err != nil {
			return nil, err
		}
		src.body = bytes.NewReader(nil)
		return src, nil
	}
	header1 := make([]byte, envelope.HeaderSize)
	if _, err := io.ReadFull(probe.Body, header1); err != nil {
		return nil, fmt.Errorf("reading segment header: %w", envelope.ErrTruncated)
	}
	closeProbe()

	layout, exact, err := p.layout(ctx, o)
	if errors.Is(err, errNoPartReads) {
		return p.rangeByStreaming(ctx, src, o, dk)
	}
	if err == nil && !exact {
		layout, exact, err = p.checkGuess(ctx, o, layout, br)
	}
	if err != nil {
		return nil, err
	}
	body, closeSpan, err := p.readSpan(ctx, o, layout, br, dk, header1)
	if err != nil && !exact && layoutMismatch(err) {
		p.log.Info("guessed multipart layout was wrong; fetching every part size",
			slog.String("bucket", bucket), slog.String("key", key), slog.Int("parts", src.info.segments))
		if layout, exact, err = p.exactLayout(ctx, o); err != nil {
			return nil, err
		}
		body, closeSpan, err = p.readSpan(ctx, o, layout, br, dk, header1)
	}
	if err != nil {
		return nil, err
	}
	src.closes = append(src.closes, closeSpan)
	if !exact {
		k := layoutKey(bucket, key, src.etag)
		body = &guessGuard{r: body, wrong: func() { p.layouts.put(k, nil, false) }}
	}
	src.body = body
	return src, nil
}

// layoutMismatch reports errors that a wrong layout causes.
func layoutMismatch(err error) bool {
	return errors.Is(err, envelope.ErrAuthentication) || errors.Is(err, envelope.ErrTruncated) ||
		errors.Is(err, envelope.ErrUnsupportedVersion) || errors.Is(err, envelope.ErrRange)
}

// guessGuard marks a guessed layout as wrong when a read with it fails after
// the answer started, so the next read fetches the exact layout.
type guessGuard struct {
	r     io.Reader
	wrong func()
}

func (g *guessGuard) Read(b []byte) (int, error) {
	n, err := g.r.Read(b)
	if err != nil && err != io.EOF && g.wrong != nil && layoutMismatch(err) {
		g.wrong()
		g.wrong = nil
	}
	return n, err
}

// readSpan fetches and opens the stored bytes of plaintext range br under
// layout, and decrypts the first chunk before returning (see openRange).
func (p *Proxy) readSpan(ctx context.Context, o objRef, layout envelope.Layout, br byteRange, dk, header1 []byte) (io.Reader, func(), error) {
	sp, err := layout.Span(br.off, br.n)
	if err != nil {
		return nil, nil, err
	}
	var segHeader []byte
	if sp.NeedHeader {
		if sp.HeaderOffset == 0 {
			segHeader = header1
		} else {
			body, done, err := p.fetchStored(ctx, o, sp.HeaderOffset, envelope.HeaderSize)
			if err != nil {
				return nil, nil, err
			}
			segHeader = make([]byte, envelope.HeaderSize)
			_, err = io.ReadFull(body, segHeader)
			done()
			if err != nil {
				return nil, nil, fmt.Errorf("reading segment header: %w", envelope.ErrTruncated)
			}
		}
	}
	body, done, err := p.fetchStored(ctx, o, sp.Offset, sp.Length)
	if err != nil {
		return nil, nil, err
	}
	clock := clockFor(ctx, dirDecrypt)
	rr0, err := envelope.NewRangeReader(clock.source(body), dk, layout, sp, segHeader)
	if err != nil {
		done()
		return nil, nil, err
	}
	rr := clock.cipher(rr0)
	first := make([]byte, min(br.n, envelope.ChunkSize))
	var n int
	for n == 0 && err == nil {
		n, err = rr.Read(first)
	}
	switch {
	case err == io.EOF && int64(n) != br.n:
		err = fmt.Errorf("range ended after %d of %d bytes: %w", n, br.n, envelope.ErrTruncated)
	case err == io.EOF:
		err = nil
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return io.MultiReader(bytes.NewReader(first[:n]), rr), done, nil
}

// fetchStored GETs n stored bytes at off, pinned to the object's ETag.
func (p *Proxy) fetchStored(ctx context.Context, o objRef, off, n int64) (io.Reader, func(), error) {
	h := o.header.Clone()
	h.Set("If-Match", o.etag)
	h.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	req, err := p.up.newRequest(ctx, http.MethodGet, o.bucket, o.key, o.query, h, nil, 0)
	if err != nil {
		return nil, nil, errInternal(err)
	}
	resp, err := p.up.do(req)
	if err != nil {
		return nil, nil, errUpstream(err)
	}
	done := func() { resp.Body.Close() }
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if got := resp.Header.Get("Content-Range"); !strings.HasPrefix(got, fmt.Sprintf("bytes %d-%d/", off, off+n-1)) {
			done()
			return nil, nil, errUpstream(fmt.Errorf("store answered range %q, asked for %d+%d", got, off, n))
		}
		return resp.Body, done, nil
	case http.StatusOK:
		if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
			done()
			return nil, nil, fmt.Errorf("skipping to the range: %w", envelope.ErrTruncated)
		}
		return io.LimitReader(resp.Body, n), done, nil
	case http.StatusPreconditionFailed:
		done()
		return nil, nil, errObjectChanged()
	case http.StatusRequestedRangeNotSatisfiable:
		done()
		return nil, nil, fmt.Errorf("stored bytes %d+%d: %w", off, n, envelope.ErrRange)
	}
	return nil, nil, &storeFailure{resp: resp}
}

// rangeByStreaming serves a range of a multipart object from a store that
// cannot report part sizes: the object is decrypted from its start and the
// bytes before the range are dropped. Slow for ranges far into the object,
// but exact.
func (p *Proxy) rangeByStreaming(ctx context.Context, src *rangeSource, o objRef, dk []byte) (*rangeSource, error) {
	body, done, err := p.fetchStored(ctx, o, 0, o.info.stored)
	if err != nil {
		return nil, err
	}
	src.closes = append(src.closes, done)
	clock := clockFor(ctx, dirDecrypt)
	dec := clock.cipher(envelope.NewDecryptReader(clock.source(body), dk, o.info.segments))
	if _, err := io.CopyN(io.Discard, dec, src.br.off); err != nil {
		return nil, err
	}
	src.body = io.LimitReader(dec, src.br.n)
	return src, nil
}

// relayPlaintextRange serves a range of an object without s3seal metadata
// (AllowPlaintextReads) by letting the store apply the client's Range.
func (p *Proxy) relayPlaintextRange(x *exchange, header http.Header, query url.Values, rangeHdr, etag string) error {
	h := header.Clone()
	h.Set("Range", rangeHdr)
	if etag != "" {
		h.Set("If-Match", etag)
	}
	resp, err := p.send(x.r.Context(), http.MethodGet, x.t.bucket, x.t.key, query, h, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return relayFailure(x, resp)
	}
	relay(x, resp)
	return nil
}

// serveDecrypted writes status and the prepared headers, then the plaintext
// from src, which must yield exactly length bytes.
//
// The first chunk is decrypted and authenticated before the headers go out,
// so small objects and damage at the start get a proper S3 error. After that
// the only way to report a failure is to cut the response off.
func serveDecrypted(x *exchange, status int, src io.Reader, length int64) error {
	buf := make([]byte, max(1, min(length, envelope.ChunkSize)))
	var n int
	var err error
	for n == 0 && err == nil {
		n, err = src.Read(buf)
	}
	switch {
	case err != nil && err != io.EOF:
		return err
	case err == io.EOF && int64(n) != length:
		return fmt.Errorf("object ended after %d of %d bytes: %w", n, length, envelope.ErrTruncated)
	}
	x.w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	x.w.WriteHeader(status)
	if _, werr := x.w.Write(buf[:n]); werr != nil {
		x.abort(werr)
	}
	if err == io.EOF {
		return nil
	}
	rest, err := io.Copy(x.w, src)
	switch {
	case err != nil:
		x.abort(err)
	case int64(n)+rest != length:
		x.abort(fmt.Errorf("object yielded %d of %d bytes: %w", int64(n)+rest, length, envelope.ErrTruncated))
	}
	return nil
}

// objectResponseHeader prepares the headers of a decrypted object from the
// store's: everything that describes the object, nothing that describes the
// stored ciphertext (its length, range, checksums, part count) and none of
// s3seal's own metadata.
func objectResponseHeader(dst, src http.Header, info objectInfo) {
	for k, vs := range src {
		lk := strings.ToLower(k)
		switch {
		case !answerHeader(lk, http.StatusOK),
			lk == "content-length", lk == "content-range", lk == "accept-ranges", lk == "x-amz-mp-parts-count",
			strings.HasPrefix(lk, "x-amz-checksum-"),
			strings.HasPrefix(lk, "x-amz-server-side-encryption"):
			continue
		}
		if strings.HasPrefix(lk, "x-amz-meta-") {
			// S3 sends user metadata names in lower case and SDKs hand them
			// to users as sent; the store's Go-canonical "X-Amz-Meta-Owner"
			// would reach a boto3 user as "Owner".
			k = lk
		}
		dst[k] = append([]string(nil), vs...)
	}
	dst.Set("Accept-Ranges", "bytes")
	setEncryptionHeaders(dst, info.meta.KeyID)
}

func contentRange(br byteRange, size int64) string {
	return fmt.Sprintf("bytes %d-%d/%d", br.off, br.off+br.n-1, size)
}

// contentRangeTotal is the complete length in "bytes a-b/total".
func contentRangeTotal(v string) (int64, error) {
	_, total, ok := strings.Cut(v, "/")
	n, err := strconv.ParseInt(total, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("store sent Content-Range %q", v)
	}
	return n, nil
}

func errInvalidRange(size int64) error {
	e := newS3Error("InvalidRange", http.StatusRequestedRangeNotSatisfiable,
		"The requested range is not satisfiable", nil)
	e.Header = http.Header{"Content-Range": {fmt.Sprintf("bytes */%d", size)}}
	return e
}

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
	resp, err := p.send(x.r.Context(), x.r.Method, x.t.bucket, x.t.key, q, header, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		return relayFailure(x, resp) // 416 InvalidPartNumber, 404, 304, ...
	}
	part, err := p.placePart(x, resp, header, query, k)
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
	if x.r.Method == http.MethodHead {
		h.Set("Content-Length", strconv.FormatInt(part.n, 10))
		x.w.WriteHeader(http.StatusPartialContent)
		return nil
	}
	dk, err := p.keys.Open(x.r.Context(), part.info.meta, x.t.bucket, x.t.key)
	if err != nil {
		return err
	}
	defer clear(dk)
	clock := clockFor(x.r.Context(), dirDecrypt)
	return serveDecrypted(x, http.StatusPartialContent, clock.cipher(envelope.NewPartDecryptReader(clock.source(part.body), dk, uint32(k))), part.n)
}

// placedPart is part k of an object and its plaintext place in it.
type placedPart struct {
	info objectInfo
	byteRange
	body io.Reader // the part's stored bytes
}

// placePart reads what the store says of part k (its stored size, its place
// in the object, the object's size and part count) and checks it all
// against the format: the part must fit the object under the multipart rule
// (envelope.CheckSegment), and its stored offset must be where its header
// really is (checkPartStart). Plaintext objects are relayed as they are.
func (p *Proxy) placePart(x *exchange, resp *http.Response, header http.Header, query url.Values, k int) (placedPart, error) {
	part := placedPart{body: resp.Body}
	total, start, err := partRange(resp)
	if err != nil {
		return part, errUpstream(err)
	}
	o := newObjRef(x.t.bucket, x.t.key, query, header)
	if err := p.inspect(x.r.Context(), &o, resp.Header, total); err != nil {
		return part, err
	}
	part.info = o.info
	if part.info.plaintext {
		relay(x, resp)
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
	if x.r.Method == http.MethodGet && k > 1 && start >= 0 {
		part.body, err = p.checkPartStart(x.r.Context(), o, start, resp.Body)
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
		if e, ok := p.layouts.get(layoutKey(o.bucket, o.key, o.etag)); ok && e.exact && fits(e.layout, o.info) &&
			(e.layout[:k-1].PlaintextSize() != off || e.layout[k-1] != plain) {
			return 0, errCorrupt(fmt.Errorf("part %d at %d+%d disagrees with the layout: %w", k, off, plain, envelope.ErrImpossibleSize))
		}
		return off, nil
	}
	if k == 1 {
		return 0, nil
	}
	layout, exact, err := p.layout(ctx, o)
	if err == nil && !exact {
		layout, _, err = p.exactLayout(ctx, o)
	}
	if err != nil {
		return 0, err
	}
	if layout[k-1] != plain {
		return 0, errCorrupt(fmt.Errorf("part %d holds %d bytes, its layout says %d: %w", k, plain, layout[k-1], envelope.ErrImpossibleSize))
	}
	return layout[:k-1].PlaintextSize(), nil
}

// checkPartStart confirms that the part a store answered a partNumber read
// with is stored where its Content-Range says: the segment header read at
// that offset (pinned to the ETag) must be the one the part starts with.
// Else the plaintext would be labelled with another part's offset. It
// returns the part's body, header included.
func (p *Proxy) checkPartStart(ctx context.Context, o objRef, start int64, body io.Reader) (io.Reader, error) {
	got := make([]byte, envelope.HeaderSize)
	if _, err := io.ReadFull(body, got); err != nil {
		return nil, fmt.Errorf("reading the part's header: %w", envelope.ErrTruncated)
	}
	at, done, err := p.fetchStored(ctx, o, start, envelope.HeaderSize)
	if err != nil {
		return nil, err
	}
	defer done()
	want := make([]byte, envelope.HeaderSize)
	if _, err := io.ReadFull(at, want); err != nil || !bytes.Equal(got, want) {
		return nil, errCorrupt(fmt.Errorf("the part's header is not at stored byte %d: %w", start, envelope.ErrAuthentication))
	}
	return io.MultiReader(bytes.NewReader(got), body), nil
}
