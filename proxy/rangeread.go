package proxy

// Ranged reads: a plaintext range mapped to the stored bytes that hold it,
// fetched and authenticated (docs/FORMAT.md, "Ranges").

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/store"
)

// getObjectRange serves a ranged GET (openRange does the work).
func (p *Proxy) getObjectRange(x *exchange, header http.Header, query url.Values, rangeHdr string) error {
	src, err := p.openRange(x.r.Context(), x.object(), query, header, func(size int64) (byteRange, rangeResult) {
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

// onClose has close call f.
func (s *rangeSource) onClose(f func()) { s.closes = append(s.closes, f) }

// openRange opens a plaintext range of obj; pick chooses it once the
// object's size is known (rangeNone: the whole object). query and header
// are the read's parameters and conditions.
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
// A store's answer to relay comes back as a *store.Failure.
func (p *Proxy) openRange(ctx context.Context, obj store.Object, query url.Values, header http.Header, pick func(size int64) (byteRange, rangeResult)) (_ *rangeSource, err error) {
	src := &rangeSource{}
	defer func() {
		if err != nil {
			src.close()
		}
	}()
	probe, stored, err := p.probe(ctx, obj, query, header)
	if err != nil {
		return nil, err
	}
	if probe == nil {
		src.info.plaintext = true
		return src, nil
	}
	src.onClose(func() { probe.Body.Close() })
	src.header = probe.Header
	o := objRef{Object: obj}
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
	dk, err := p.keys.Open(ctx, src.info.meta, obj.Bucket, obj.Key)
	if err != nil {
		return nil, err
	}
	src.onClose(func() { clear(dk) })
	switch {
	case probe.StatusCode == http.StatusOK:
		// The store ignored Range: the whole object is already coming.
		src.body, err = decryptFrom(ctx, probe.Body, dk, o.info, br)
	case br.n == 0:
		probe.Body.Close()
		src.body, err = p.checkEmpty(ctx, o, dk)
	default:
		src.body, err = p.openSpan(ctx, o, probe.Body, dk, src)
	}
	return src, err
}

// probe asks for stored bytes 0-31 of obj under the read's conditions, and
// returns the answer (206, or 200 for a store that ignores Range) and the
// stored size. An object without byte 0 comes back as a nil answer: s3seal
// never writes an empty one, so it is someone else's.
func (p *Proxy) probe(ctx context.Context, obj store.Object, query url.Values, header http.Header) (*http.Response, int64, error) {
	h := header.Clone()
	h.Set("Range", fmt.Sprintf("bytes=0-%d", envelope.HeaderSize-1))
	resp, err := p.store.Do(ctx, obj.Request(http.MethodGet, query, h))
	if err != nil {
		return nil, 0, err
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		stored, err := contentRangeTotal(resp.Header.Get("Content-Range"))
		if err != nil {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("%w: %w", err, store.ErrUnexpectedAnswer)
		}
		return resp, stored, nil
	case http.StatusOK:
		return resp, resp.ContentLength, nil
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		if !p.allowPlaintext {
			return nil, 0, errNotSealed()
		}
		return nil, 0, nil
	}
	return nil, 0, &store.Failure{Resp: resp} // 304, 412, 404, the store's errors
}

// decryptFrom decrypts the stored object coming from stored, from its
// start, and returns range br of its plaintext: the bytes before it are
// decrypted (and so authenticated) and dropped.
func decryptFrom(ctx context.Context, stored io.Reader, dk []byte, info objectInfo, br byteRange) (io.Reader, error) {
	clock := clockFor(ctx, dirDecrypt)
	dec := clock.cipher(envelope.NewDecryptReader(clock.source(stored), dk, info.framing(), info.segments))
	if _, err := io.CopyN(io.Discard, dec, br.off); err != nil {
		return nil, err
	}
	return io.LimitReader(dec, br.n), nil
}

// checkEmpty reads and authenticates the whole of an empty object, whose
// empty range needs no bytes but must not skip the check.
func (p *Proxy) checkEmpty(ctx context.Context, o objRef, dk []byte) (io.Reader, error) {
	body, err := p.fetchStored(ctx, o, 0, o.info.stored)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	all, err := decryptFrom(ctx, body, dk, o.info, byteRange{0, o.info.size})
	if err == nil {
		_, err = io.Copy(io.Discard, all)
	}
	return bytes.NewReader(nil), err
}

// openSpan opens range src.br of o from the stored bytes its layout says
// hold it. probe is the probe's body, the first segment's header; it is
// closed once read.
func (p *Proxy) openSpan(ctx context.Context, o objRef, probe io.ReadCloser, dk []byte, src *rangeSource) (io.Reader, error) {
	header1 := make([]byte, envelope.HeaderSize)
	_, err := io.ReadFull(probe, header1)
	probe.Close() // all it holds; the range is fetched anew
	if err != nil {
		return nil, fmt.Errorf("reading segment header: %w: %w", envelope.ErrTruncated, err)
	}
	layout, exact, err := p.layout(ctx, o)
	if errors.Is(err, errNoPartReads) {
		return p.rangeByStreaming(ctx, o, dk, src)
	}
	if err == nil && !exact {
		layout, exact, err = p.checkGuess(ctx, o, layout, src.br)
	}
	if err != nil {
		return nil, err
	}
	body, done, err := p.readSpan(ctx, o, layout, src.br, dk, header1)
	if err != nil && !exact && layoutMismatch(err) {
		p.log.Info("guessed multipart layout was wrong; fetching every part size",
			slog.String("bucket", o.Bucket), slog.String("key", o.Key), slog.Int("parts", o.info.segments))
		if layout, exact, err = p.exactLayout(ctx, o); err != nil {
			return nil, err
		}
		body, done, err = p.readSpan(ctx, o, layout, src.br, dk, header1)
	}
	if err != nil {
		return nil, err
	}
	src.onClose(done)
	if !exact {
		k := layoutKey(o.Bucket, o.Key, o.etag)
		body = &guessGuard{r: body, wrong: func() { p.layouts.put(k, envelope.Layout{}, false) }}
	}
	return body, nil
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

// readSpan opens plaintext range br of o under layout, and decrypts the
// first chunk before returning (see openRange).
func (p *Proxy) readSpan(ctx context.Context, o objRef, layout envelope.Layout, br byteRange, dk, header1 []byte) (io.Reader, func(), error) {
	clock := clockFor(ctx, dirDecrypt)
	fetch := func(off, n int64) (io.ReadCloser, error) {
		body, err := p.fetchStored(ctx, o, off, n)
		if err != nil {
			return nil, err
		}
		return readCloser{clock.source(body), body}, nil
	}
	rr, err := envelope.OpenRange(fetch, dk, layout, br.off, br.n, header1)
	if err != nil {
		return nil, nil, err
	}
	done := func() { rr.Close() }
	first, rest, err := readFirst(clock.cipher(rr), br.n)
	if err != nil {
		done()
		return nil, nil, err
	}
	if rest == nil {
		return bytes.NewReader(first), done, nil
	}
	return &primed{first: first, rest: rest}, done, nil
}

// primed yields first, read ahead of rest (readFirst), then rest. Unlike
// io.MultiReader it hands rest's own WriteTo the copy, with no buffer of
// its own.
type primed struct {
	first []byte
	rest  io.Reader
}

func (p *primed) Read(b []byte) (int, error) {
	if len(p.first) == 0 {
		return p.rest.Read(b)
	}
	n := copy(b, p.first)
	p.first = p.first[n:]
	return n, nil
}

func (p *primed) WriteTo(w io.Writer) (int64, error) {
	var n int
	if len(p.first) > 0 {
		var err error
		n, err = w.Write(p.first)
		p.first = p.first[n:]
		if err != nil {
			return int64(n), err
		}
	}
	m, err := io.Copy(w, p.rest)
	return int64(n) + m, err
}

// readCloser reads from one source and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// fetchStored GETs n stored bytes of o at off, pinned to its ETag, resuming
// where the answer breaks (resumable). Stored bytes the store does not have
// are a wrong layout (envelope.ErrRange) or a truncated object.
func (p *Proxy) fetchStored(ctx context.Context, o objRef, off, n int64) (io.ReadCloser, error) {
	body, err := p.store.GetRange(ctx, o.Object, o.etag, off, n)
	switch {
	case errors.Is(err, store.ErrRangeNotSatisfiable):
		return nil, fmt.Errorf("stored bytes %d+%d: %w", off, n, envelope.ErrRange)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("stored bytes %d+%d: %w", off, n, envelope.ErrTruncated)
	case err != nil:
		return nil, err
	}
	return p.resumable(ctx, o, off, n, body), nil
}

// rangeByStreaming serves a range of a multipart object from a store that
// cannot report part sizes: the object is decrypted from its start and the
// bytes before the range are dropped. Slow for ranges far into the object,
// but exact.
func (p *Proxy) rangeByStreaming(ctx context.Context, o objRef, dk []byte, src *rangeSource) (io.Reader, error) {
	body, err := p.fetchStored(ctx, o, 0, o.info.stored)
	if err != nil {
		return nil, err
	}
	src.onClose(func() { body.Close() })
	return decryptFrom(ctx, body, dk, o.info, src.br)
}

// relayPlaintextRange serves a range of an object without s3seal metadata
// (AllowPlaintextReads) by letting the store apply the client's Range.
func (p *Proxy) relayPlaintextRange(x *exchange, header http.Header, query url.Values, rangeHdr, etag string) error {
	h := header.Clone()
	h.Set("Range", rangeHdr)
	if etag != "" {
		h.Set("If-Match", etag)
	}
	resp, err := p.request(x, http.StatusPartialContent, x.object().Request(http.MethodGet, query, h))
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	relayPlaintext(x, resp)
	return nil
}
