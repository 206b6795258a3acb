package proxy

import (
	"errors"
	"fmt"
	"io"
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

// getObject serves GetObject and HeadObject.
func (p *Proxy) getObject(x *exchange) error {
	header := http.Header{}
	copyHeaders(header, x.t.header, getObjectHeaders...)
	query := objectReadQuery(x.t.query)
	rangeHdr := x.t.header.Get("Range")
	if _, res := parseRange(rangeHdr, math.MaxInt64); res == rangeNone {
		rangeHdr = "" // S3 ignores malformed and multiple ranges
	}

	if x.r.Method == http.MethodHead {
		return p.headObject(x, header, query, rangeHdr)
	}
	if rangeHdr != "" {
		return p.getObjectRange(x, header, query, rangeHdr)
	}

	req, err := p.up.newRequest(x.r.Context(), http.MethodGet, x.t.bucket, x.t.key, query, header, nil, 0)
	if err != nil {
		return errInternal(err)
	}
	resp, err := p.up.do(req)
	if err != nil {
		return errUpstream(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return relayFailure(x, resp) // 304, 412, 404, the store's errors
	}
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
	return serveDecrypted(x, http.StatusOK, envelope.NewDecryptReader(resp.Body, dk, info.segments), info.size)
}

// headObject answers from the store's HEAD alone: sizes and ranges follow
// from the stored size, and no data key is needed.
func (p *Proxy) headObject(x *exchange, header http.Header, query url.Values, rangeHdr string) error {
	req, err := p.up.newRequest(x.r.Context(), http.MethodHead, x.t.bucket, x.t.key, query, header, nil, 0)
	if err != nil {
		return errInternal(err)
	}
	resp, err := p.up.do(req)
	if err != nil {
		return errUpstream(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return relayFailure(x, resp)
	}
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
		case res == rangeOK && info.segments > 1 && !info.plaintext:
			return errNotImplemented("A Range on a multipart object")
		case res == rangeOK:
			status, length = http.StatusPartialContent, br.n
			h.Set("Content-Range", contentRange(br, info.size))
		}
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	x.w.WriteHeader(status)
	return nil
}

// getObjectRange serves a ranged GET. Plaintext offsets need the object's
// size before the stored bytes can be chosen, so a first request fetches the
// first segment header (stored bytes 0-31), which also brings the metadata,
// the stored size (Content-Range) and the ETag. The second request fetches
// the chunks holding the range, pinned to that ETag with If-Match so that
// both requests read the same object.
func (p *Proxy) getObjectRange(x *exchange, header http.Header, query url.Values, rangeHdr string) error {
	ctx := x.r.Context()
	probeHeader := header.Clone()
	probeHeader.Set("Range", fmt.Sprintf("bytes=0-%d", envelope.HeaderSize-1))
	req, err := p.up.newRequest(ctx, http.MethodGet, x.t.bucket, x.t.key, query, probeHeader, nil, 0)
	if err != nil {
		return errInternal(err)
	}
	probe, err := p.up.do(req)
	if err != nil {
		return errUpstream(err)
	}
	defer probe.Body.Close()

	var stored int64
	switch probe.StatusCode {
	case http.StatusPartialContent:
		if stored, err = contentRangeTotal(probe.Header.Get("Content-Range")); err != nil {
			return errUpstream(err)
		}
	case http.StatusOK:
		stored = probe.ContentLength // the store ignored Range: the whole object
	case http.StatusRequestedRangeNotSatisfiable:
		// Only an empty stored object has no byte 0, and s3seal never
		// writes one: it is someone else's.
		if !p.allowPlaintext {
			return newS3Error("AccessDenied", http.StatusForbidden, "The object was not written through s3seal.", nil)
		}
		return p.relayPlaintextRange(x, header, query, rangeHdr, "")
	default:
		return relayFailure(x, probe) // 304, 412, 404, the store's errors
	}
	info, err := p.inspect(probe.Header, stored)
	if err != nil {
		return err
	}
	etag := probe.Header.Get("ETag")
	if info.plaintext {
		probe.Body.Close()
		return p.relayPlaintextRange(x, header, query, rangeHdr, etag)
	}

	br, res := parseRange(rangeHdr, info.size)
	switch {
	case res == rangeUnsatisfiable:
		return errInvalidRange(info.size)
	case info.segments > 1:
		return errNotImplemented("A Range on a multipart object")
	}
	dk, err := p.keys.Open(ctx, info.meta, x.t.bucket, x.t.key)
	if err != nil {
		return err
	}
	defer clear(dk)
	h := x.w.Header()
	objectResponseHeader(h, probe.Header, info)
	h.Set("Content-Range", contentRange(br, info.size))

	if probe.StatusCode == http.StatusOK {
		// The whole object is already coming: decrypt it up to the range.
		dec := envelope.NewDecryptReader(probe.Body, dk, info.segments)
		if _, err := io.CopyN(io.Discard, dec, br.off); err != nil {
			return err
		}
		return serveDecrypted(x, http.StatusPartialContent, io.LimitReader(dec, br.n), br.n)
	}

	layout := envelope.Layout{info.size}
	sp, err := layout.Span(br.off, br.n)
	if err != nil {
		return errInternal(err)
	}
	var segHeader []byte
	if sp.NeedHeader {
		segHeader = make([]byte, envelope.HeaderSize)
		if _, err := io.ReadFull(probe.Body, segHeader); err != nil {
			return fmt.Errorf("reading segment header: %w", envelope.ErrTruncated)
		}
	}
	probe.Body.Close()

	spanHeader := http.Header{}
	copyHeaders(spanHeader, header, "x-amz-expected-bucket-owner", "x-amz-request-payer", "x-amz-server-side-encryption-customer-")
	spanHeader.Set("If-Match", etag)
	spanHeader.Set("Range", fmt.Sprintf("bytes=%d-%d", sp.Offset, sp.Offset+sp.Length-1))
	req, err = p.up.newRequest(ctx, http.MethodGet, x.t.bucket, x.t.key, objectReadQuery(query), spanHeader, nil, 0)
	if err != nil {
		return errInternal(err)
	}
	resp, err := p.up.do(req)
	if err != nil {
		return errUpstream(err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if got := resp.Header.Get("Content-Range"); !strings.HasPrefix(got, fmt.Sprintf("bytes %d-%d/", sp.Offset, sp.Offset+sp.Length-1)) {
			return errUpstream(fmt.Errorf("store answered range %q, asked for %d+%d", got, sp.Offset, sp.Length))
		}
	case http.StatusOK:
		if _, err := io.CopyN(io.Discard, resp.Body, sp.Offset); err != nil {
			return fmt.Errorf("skipping to the range: %w", envelope.ErrTruncated)
		}
		body = io.LimitReader(resp.Body, sp.Length)
	case http.StatusPreconditionFailed:
		// Replaced between the two requests: a retry reads the new object.
		return newS3Error("ServiceUnavailable", http.StatusServiceUnavailable,
			"The object changed while it was being read. Please retry.", nil)
	default:
		clear(x.w.Header()) // the prepared success headers
		x.w.Header().Set("X-Amz-Request-Id", x.id)
		return relayFailure(x, resp)
	}
	rr, err := envelope.NewRangeReader(body, dk, layout, sp, segHeader)
	if err != nil {
		return err
	}
	return serveDecrypted(x, http.StatusPartialContent, rr, br.n)
}

// relayPlaintextRange serves a range of an object without s3seal metadata
// (AllowPlaintextReads) by letting the store apply the client's Range.
func (p *Proxy) relayPlaintextRange(x *exchange, header http.Header, query url.Values, rangeHdr, etag string) error {
	h := header.Clone()
	h.Set("Range", rangeHdr)
	if etag != "" {
		h.Set("If-Match", etag)
	}
	req, err := p.up.newRequest(x.r.Context(), http.MethodGet, x.t.bucket, x.t.key, query, h, nil, 0)
	if err != nil {
		return errInternal(err)
	}
	resp, err := p.up.do(req)
	if err != nil {
		return errUpstream(err)
	}
	defer resp.Body.Close()
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
