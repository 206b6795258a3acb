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

// objectInfo is what a store's answer says about an object.
type objectInfo struct {
	meta      envelope.Metadata
	plaintext bool  // no s3seal metadata, served as stored (AllowPlaintextReads)
	stored    int64 // stored size
	size      int64 // plaintext size (= stored for plaintext objects)
	segments  int   // from the ETag's "-N"
}

// inspect reads an object's metadata and sizes from the store's headers.
func (p *Proxy) inspect(h http.Header, stored int64) (objectInfo, error) {
	info := objectInfo{stored: stored, segments: etagParts(h.Get("ETag"))}
	if stored < 0 {
		return info, errUpstream(errors.New("store sent no Content-Length for an object"))
	}
	meta, err := envelope.ParseHeader(h)
	switch {
	case errors.Is(err, envelope.ErrNoMetadata):
		if !p.allowPlaintext {
			return info, newS3Error("AccessDenied", http.StatusForbidden,
				"The object was not written through s3seal.", err)
		}
		info.plaintext, info.size = true, stored
		return info, nil
	case err != nil:
		return info, err
	}
	info.meta = meta
	// Never a guess: a size that no plaintext encrypts to is a damaged or
	// foreign object.
	if info.size, err = envelope.ObjectPlaintextSize(stored, info.segments); err != nil {
		return info, err
	}
	return info, nil
}

// etagParts is the part count of a multipart ETag ("...-N"), 1 otherwise.
func etagParts(etag string) int {
	etag = strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	i := strings.LastIndexByte(etag, '-')
	if i < 0 {
		return 1
	}
	n, err := strconv.Atoi(etag[i+1:])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

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

// versionQuery keeps only versionId.
func versionQuery(q url.Values) url.Values {
	out := url.Values{}
	if v, ok := q["versionId"]; ok {
		out["versionId"] = v
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
	info, err := p.inspect(resp.Header, resp.ContentLength)
	if err != nil {
		return err
	}
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
	info, err := p.inspect(resp.Header, resp.ContentLength)
	if err != nil {
		return err
	}
	h := x.w.Header()
	if info.plaintext {
		copyResponseHeader(h, resp.Header)
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
	src.etag = probe.Header.Get("ETag")
	if src.info, err = p.inspect(probe.Header, stored); err != nil {
		return nil, err
	}
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
		o := objRef{bucket: bucket, key: key, query: versionQuery(query), header: http.Header{}, etag: src.etag, info: src.info}
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

	o := objRef{bucket: bucket, key: key, query: versionQuery(query), header: http.Header{}, etag: src.etag, info: src.info}
	copyHeaders(o.header, header, "x-amz-expected-bucket-owner", "x-amz-request-payer", "x-amz-server-side-encryption-customer-")
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
	return p.pass(x, http.MethodGet, x.t.bucket, x.t.key, query, h)
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
		case lk == "content-length", lk == "content-range", lk == "content-md5",
			lk == "accept-ranges", lk == "x-amz-request-id", lk == "x-amz-mp-parts-count",
			strings.HasPrefix(lk, "x-amz-checksum-"),
			strings.HasPrefix(lk, "x-amz-server-side-encryption") && !strings.HasPrefix(lk, "x-amz-server-side-encryption-customer-"),
			strings.HasPrefix(lk, "x-amz-meta-") && envelope.IsReserved(lk):
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
	for _, k := range hopByHop {
		dst.Del(k)
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
	ctx := x.r.Context()
	q := url.Values{}
	for kk, vs := range query {
		q[kk] = vs
	}
	q.Set("partNumber", strconv.Itoa(k))
	req, err := p.up.newRequest(ctx, x.r.Method, x.t.bucket, x.t.key, q, header, nil, 0)
	if err != nil {
		return errInternal(err)
	}
	resp, err := p.up.do(req)
	if err != nil {
		return errUpstream(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		return relayFailure(x, resp) // 416 InvalidPartNumber, 404, 304, ...
	}
	partStored := resp.ContentLength
	total := partStored
	start := int64(-1) // stored offset of the part, when the store says
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		if total, err = contentRangeTotal(cr); err != nil {
			return errUpstream(err)
		}
		var a, b int64
		if _, err := fmt.Sscanf(cr, "bytes %d-%d/", &a, &b); err == nil {
			start = a
		}
	} else if resp.StatusCode == http.StatusPartialContent {
		return errUpstream(errors.New("store answered a partNumber read with 206 but no Content-Range"))
	}
	info, err := p.inspect(resp.Header, total)
	if err != nil {
		return err
	}
	if info.plaintext {
		relay(x, resp)
		return nil
	}
	n := info.segments
	if k > n {
		return newS3Error("InvalidPartNumber", http.StatusRequestedRangeNotSatisfiable,
			"The requested partnumber is not satisfiable", nil)
	}
	if partStored < 0 {
		return errUpstream(errors.New("store sent no Content-Length for a part"))
	}
	plain, err := envelope.SegmentPlaintextSize(partStored)
	if err != nil {
		return err
	}
	// The part's plaintext offset. Every part before it is a non-zero
	// multiple of the chunk size (the multipart rule), so its stored offset
	// converts exactly; without one, the exact layout says.
	var off int64
	switch {
	case k == 1:
	case start >= 0:
		body := start - int64(k-1)*envelope.HeaderSize
		const enc = envelope.ChunkSize + envelope.TagSize
		if body < 0 || body%enc != 0 {
			return errCorrupt(fmt.Errorf("part %d starts at stored byte %d: %w", k, start, envelope.ErrImpossibleSize))
		}
		off = body / enc * envelope.ChunkSize
	default:
		o := objRef{bucket: x.t.bucket, key: x.t.key, query: versionQuery(query), header: http.Header{}, etag: resp.Header.Get("ETag"), info: info}
		copyHeaders(o.header, header, "x-amz-expected-bucket-owner", "x-amz-request-payer", "x-amz-server-side-encryption-customer-")
		layout, exact, err := p.layout(ctx, o)
		if err == nil && !exact {
			layout, _, err = p.exactLayout(ctx, o)
		}
		if err != nil {
			return err
		}
		off = layout[:k-1].PlaintextSize()
	}
	if off+plain > info.size {
		return errCorrupt(fmt.Errorf("part %d (%d bytes at %d) past the object's %d bytes: %w", k, plain, off, info.size, envelope.ErrImpossibleSize))
	}
	h := x.w.Header()
	objectResponseHeader(h, resp.Header, info)
	if n > 1 {
		h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(n))
	}
	if plain > 0 {
		h.Set("Content-Range", contentRange(byteRange{off, plain}, info.size))
	}
	if x.r.Method == http.MethodHead {
		h.Set("Content-Length", strconv.FormatInt(plain, 10))
		x.w.WriteHeader(http.StatusPartialContent)
		return nil
	}
	dk, err := p.keys.Open(ctx, info.meta, x.t.bucket, x.t.key)
	if err != nil {
		return err
	}
	defer clear(dk)
	clock := clockFor(x.r.Context(), dirDecrypt)
	return serveDecrypted(x, http.StatusPartialContent, clock.cipher(envelope.NewPartDecryptReader(clock.source(resp.Body), dk, uint32(k))), plain)
}
