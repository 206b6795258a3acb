package proxy

import (
	"fmt"
	"io"
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

	resp, o, err := p.readObject(x, query, header)
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	info := o.info
	if info.plaintext {
		relayPlaintext(x, resp)
		return nil
	}
	dk, err := p.keys.Open(x.r.Context(), info.meta, x.t.bucket, x.t.key)
	if err != nil {
		return err
	}
	defer clear(dk)
	objectResponseHeader(x.w.Header(), resp.Header, info)
	setContextHeader(x.w.Header(), info.meta) // unwrapped under it just now
	var check func(uint32, []byte) error
	if checksumMode(x.t.header) {
		var c *envelope.Checksum
		if c, check, err = p.objectChecksum(x.r.Context(), o, dk); err != nil {
			return err
		}
		setChecksumHeaders(x.w.Header(), c)
	}
	stored := p.resumable(x.r.Context(), o, 0, info.stored, resp.Body)
	defer stored.Close()
	clock := clockFor(x.r.Context(), dirDecrypt)
	dec := envelope.NewDecryptReader(clock.source(stored), dk, info.framing(), info.segments)
	dec.OnSegment(check)
	return serveDecrypted(x, http.StatusOK, clock.cipher(dec), info.size)
}

// readObject sends x's GET or HEAD to the store, with the read's query and
// header, and reads what its 200 answer says of the object. Any other answer
// is relayed (304, 412, 404, the store's errors) and a nil answer returned.
func (p *Proxy) readObject(x *exchange, query url.Values, header http.Header) (*http.Response, objRef, error) {
	o := objRef{Object: x.object()}
	resp, err := p.request(x, http.StatusOK, o.Request(x.r.Method, query, header))
	if resp == nil {
		return nil, o, err
	}
	if err := p.inspect(x.r.Context(), &o, resp.Header, resp.ContentLength); err != nil {
		resp.Body.Close()
		return nil, o, err
	}
	return resp, o, nil
}

// headObject answers from the store's HEAD alone: sizes and ranges follow
// from the stored size, and no data key is needed but to verify the sealed
// checksum that checksum mode asks for.
func (p *Proxy) headObject(x *exchange, header http.Header, query url.Values, rangeHdr string) error {
	resp, o, err := p.readObject(x, query, header)
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	info := o.info
	h := x.w.Header()
	if info.plaintext {
		copyResponseHeader(h, resp)
	} else {
		objectResponseHeader(h, resp.Header, info)
	}
	status, length := http.StatusOK, info.size
	if checksumMode(x.t.header) && rangeHdr == "" {
		c, err := p.readChecksum(x.r.Context(), o)
		if err != nil {
			return err
		}
		setChecksumHeaders(h, c)
	}
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

// serveDecrypted writes status and the prepared headers, then the plaintext
// from src, which must yield exactly length bytes.
//
// The first chunk is decrypted and authenticated before the headers go out,
// so small objects and damage at the start get a proper S3 error. After that
// the only way to report a failure is to cut the response off.
func serveDecrypted(x *exchange, status int, src io.Reader, length int64) error {
	first, rest, err := readFirst(src, length)
	if err != nil {
		return err
	}
	x.w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	x.w.WriteHeader(status)
	if _, err := x.w.Write(first); err != nil {
		x.abort(err)
	}
	if rest == nil {
		return nil
	}
	n, err := io.Copy(x.w, rest)
	switch {
	case err != nil:
		x.abort(err)
	case int64(len(first))+n != length:
		x.abort(fmt.Errorf("object yielded %d of %d bytes: %w", int64(len(first))+n, length, envelope.ErrTruncated))
	}
	return nil
}

// readFirst has src decrypt, and so authenticate, its first chunk, so
// that a failure there can still be answered with an S3 error, or retried.
// The decrypting readers open a whole chunk before they yield any byte of
// it, so one byte is all readFirst takes: the rest of the chunk stays in
// src, which hands it on without a copy (WriteTo), and no request pays
// for a chunk-sized buffer of its own. first is that byte (none when src
// is empty, as an empty object's is); rest is the remainder, nil when src
// has ended.
func readFirst(src io.Reader, length int64) (first []byte, rest io.Reader, err error) {
	buf := make([]byte, 1)
	var n int
	for n == 0 && err == nil {
		n, err = src.Read(buf)
	}
	switch {
	case err == io.EOF && int64(n) != length:
		return nil, nil, fmt.Errorf("plaintext ended after %d of %d bytes: %w", n, length, envelope.ErrTruncated)
	case err == io.EOF:
		return buf[:n], nil, nil
	case err != nil:
		return nil, nil, err
	}
	return buf[:n], src, nil
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
	setEncryptionHeaders(dst, info.meta)
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
