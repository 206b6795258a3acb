package envelope

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrImpossibleSize means a stored length that no plaintext encrypts to: the
// object was not written by s3seal as its metadata claims, or was cut.
var ErrImpossibleSize = errors.New("ciphertext size is impossible for format v1")

// ErrRange means a plaintext range outside the object.
var ErrRange = errors.New("range not satisfiable")

// chunks is the number of chunks a segment of plain bytes has: an empty
// segment still has its one empty final chunk.
func chunks(plain int64) int64 {
	return max(1, (plain+ChunkSize-1)/ChunkSize)
}

// SegmentSize is the stored size of a segment holding plain bytes, under
// either framing: HeaderSize + plain + TagSize·max(1, ⌈plain/ChunkSize⌉)
// (FORMAT.md §4.1).
func SegmentSize(plain int64) int64 {
	if plain < 0 {
		panic("envelope: negative plaintext size")
	}
	return HeaderSize + plain + TagSize*chunks(plain)
}

// SegmentPlaintextSize inverts SegmentSize, rejecting sizes that fall in its
// gaps (SegmentSize skips 16 values at every chunk boundary).
func SegmentPlaintextSize(stored int64) (int64, error) {
	body := stored - HeaderSize
	if body < TagSize {
		return 0, fmt.Errorf("%d bytes: %w", stored, ErrImpossibleSize)
	}
	n := (body + encChunkSize - 1) / encChunkSize
	plain := body - TagSize*n
	if plain < 0 || chunks(plain) != n {
		return 0, fmt.Errorf("%d bytes: %w", stored, ErrImpossibleSize)
	}
	return plain, nil
}

// ObjectPlaintextSize is the plaintext size of an object of the given stored
// size and segment count (1 for a single PUT, the ETag's "-N" for a multipart
// object), for objects that follow the multipart rule: every segment but the
// last holds a non-zero multiple of ChunkSize. Then all segments' chunks
// together are the chunks of one long stream, and only the headers (and
// records, within the same HeaderSize) and, for an empty last part, one
// extra empty chunk differ; the two
// cases never collide because the second lands in a gap of the first.
func ObjectPlaintextSize(stored int64, segments int) (int64, error) {
	if segments < 1 || segments > MaxSegments {
		return 0, fmt.Errorf("%d segments: %w", segments, ErrImpossibleSize)
	}
	if segments == 1 {
		return SegmentPlaintextSize(stored)
	}
	body := stored - HeaderSize*int64(segments)
	minChunks := int64(segments - 1) // each non-last segment has at least one chunk
	// Last segment non-empty: the chunks of one stream of plain bytes.
	if body >= TagSize {
		n := (body + encChunkSize - 1) / encChunkSize
		plain := body - TagSize*n
		if plain >= 0 && chunks(plain) == n && plain > minChunks*ChunkSize {
			return plain, nil
		}
	}
	// Last segment empty: m full chunks, then one empty final chunk.
	if rest := body - TagSize; rest >= 0 && rest%encChunkSize == 0 {
		if m := rest / encChunkSize; m >= minChunks {
			return m * ChunkSize, nil
		}
	}
	return 0, fmt.Errorf("%d bytes in %d segments: %w", stored, segments, ErrImpossibleSize)
}

// MaxSegments is the most segments an object can have: S3's 10,000 parts.
// A larger count from a store is a lie, never a reason to allocate.
const MaxSegments = 10000

// Layout is how an object's plaintext is cut into segments: its framing and
// the plaintext size of each segment, in order.
type Layout struct {
	Framing Framing
	Parts   []int64
}

// NewLayout checks the stored segment sizes a store reports for an object of
// stored bytes and returns its layout. Each must be a valid segment size,
// every one but the last must hold a non-zero multiple of ChunkSize (the
// multipart rule, FORMAT.md §4.2), and they must add up to the stored size
// and to the plaintext size that follows from it. Under the rule a segment's
// stored offset fixes its plaintext offset, so sizes that pass can misplace
// no byte: a false one only makes authentication fail (§4.3).
func NewLayout(f Framing, stored []int64, storedTotal int64) (Layout, error) {
	if len(stored) < 1 || len(stored) > MaxSegments {
		return Layout{}, fmt.Errorf("%d segments: %w", len(stored), ErrImpossibleSize)
	}
	l := Layout{Framing: f, Parts: make([]int64, len(stored))}
	for i, s := range stored {
		plain, err := SegmentPlaintextSize(s)
		if err != nil {
			return Layout{}, fmt.Errorf("segment %d: %w", i+1, err)
		}
		l.Parts[i] = plain
	}
	if err := l.Check(); err != nil {
		return Layout{}, err
	}
	plain, err := ObjectPlaintextSize(storedTotal, len(l.Parts))
	if err != nil {
		return Layout{}, err
	}
	if l.CiphertextSize() != storedTotal || l.PlaintextSize() != plain {
		return Layout{}, fmt.Errorf("segments add up to %d stored bytes, the object has %d: %w",
			l.CiphertextSize(), storedTotal, ErrImpossibleSize)
	}
	return l, nil
}

// GuessLayout is the layout every mainstream client makes: all segments but
// the last the size of the first, the last holding the rest (FORMAT.md
// §11.3). ok is false when no such layout has the object's sizes.
func GuessLayout(f Framing, firstStored int64, segments int, storedTotal int64) (l Layout, ok bool) {
	first, err := SegmentPlaintextSize(firstStored)
	if err != nil || segments < 1 || segments > MaxSegments {
		return Layout{}, false
	}
	plain, err := ObjectPlaintextSize(storedTotal, segments)
	if err != nil {
		return Layout{}, false
	}
	last := plain - int64(segments-1)*first
	if last < 0 {
		return Layout{}, false
	}
	l = Layout{Framing: f, Parts: make([]int64, segments)}
	for i := range l.Parts {
		l.Parts[i] = first
	}
	l.Parts[segments-1] = last
	if l.Check() != nil || l.CiphertextSize() != storedTotal {
		return Layout{}, false
	}
	return l, true
}

// Single is the layout of a single-segment object of plain bytes.
func Single(f Framing, plain int64) Layout { return Layout{Framing: f, Parts: []int64{plain}} }

// NotLast reports whether a segment of plain bytes may stand anywhere but
// last in an object: the multipart rule (FORMAT.md §4.2) wants a non-zero
// multiple of ChunkSize.
func NotLast(plain int64) bool { return plain > 0 && plain%ChunkSize == 0 }

// Check reports whether l follows the multipart rule.
func (l Layout) Check() error {
	p := l.Parts
	if !l.Framing.valid() {
		return fmt.Errorf("framing %d: %w", l.Framing, ErrUnsupportedVersion)
	}
	if len(p) < 1 || len(p) > MaxSegments {
		return fmt.Errorf("%d segments: %w", len(p), ErrImpossibleSize)
	}
	for i, n := range p[:len(p)-1] {
		if !NotLast(n) {
			return fmt.Errorf("segment %d of %d holds %d bytes, not a non-zero multiple of %d: %w",
				i+1, len(p), n, ChunkSize, ErrImpossibleSize)
		}
	}
	if p[len(p)-1] < 0 {
		return fmt.Errorf("last segment holds %d bytes: %w", p[len(p)-1], ErrImpossibleSize)
	}
	return nil
}

// SegmentAt is the index of the segment holding plaintext byte off (the last
// segment for offsets past the end).
func (l Layout) SegmentAt(off int64) int {
	var at int64
	for i, n := range l.Parts {
		at += n
		if off < at {
			return i
		}
	}
	return len(l.Parts) - 1
}

// SegmentOffset is the plaintext offset of segment k (1-based) of an object
// following the multipart rule, whose header is stored at byte stored: every
// segment before it holds whole chunks, so the stored offset converts exactly.
func SegmentOffset(k int, stored int64) (int64, error) {
	if k < 1 || k > MaxSegments {
		return 0, fmt.Errorf("segment %d: %w", k, ErrImpossibleSize)
	}
	body := stored - int64(k-1)*HeaderSize
	if (k == 1 && stored != 0) || body < encChunkSize*int64(k-1) || body%encChunkSize != 0 {
		return 0, fmt.Errorf("segment %d stored at byte %d: %w", k, stored, ErrImpossibleSize)
	}
	return body / encChunkSize * ChunkSize, nil
}

// CheckSegment checks that segment k of n, holding plain bytes at plaintext
// offset off, fits an object of total plaintext bytes under the multipart
// rule: what a read of one part must confirm before labelling its bytes.
func CheckSegment(k, n int, off, plain, total int64) error {
	switch {
	case n < 1 || n > MaxSegments || k < 1 || k > n || off < 0 || plain < 0:
		return fmt.Errorf("segment %d of %d: %w", k, n, ErrImpossibleSize)
	case k < n && !NotLast(plain):
		return fmt.Errorf("segment %d of %d holds %d bytes, not a non-zero multiple of %d: %w", k, n, plain, ChunkSize, ErrImpossibleSize)
	case k == n && off+plain != total:
		return fmt.Errorf("last segment ends at %d, the object at %d: %w", off+plain, total, ErrImpossibleSize)
	case k < n && off+plain+int64(n-k-1)*ChunkSize > total:
		return fmt.Errorf("segment %d of %d ends at %d, past what the object's %d bytes leave: %w", k, n, off+plain, total, ErrImpossibleSize)
	}
	return nil
}

// PlaintextSize is the object's plaintext size.
func (l Layout) PlaintextSize() int64 {
	var total int64
	for _, s := range l.Parts {
		total += s
	}
	return total
}

// CiphertextSize is the object's stored size.
func (l Layout) CiphertextSize() int64 {
	var total int64
	for _, s := range l.Parts {
		total += SegmentSize(s)
	}
	return total
}

// StoredOffsets are where each segment is stored, and, last, the object's
// stored size.
func (l Layout) StoredOffsets() []int64 {
	offs := make([]int64, len(l.Parts)+1)
	for i, plain := range l.Parts {
		offs[i+1] = offs[i] + SegmentSize(plain)
	}
	return offs
}

// span says which stored bytes to fetch to decrypt a plaintext range.
type span struct {
	// Offset and Length are the stored bytes to fetch: whole chunks, from
	// the one holding the range's first byte to the one holding its last.
	Offset, Length int64
	// HeaderOffset is where the first segment's header is stored, when the
	// fetched bytes do not start with it (NeedHeader).
	HeaderOffset int64
	NeedHeader   bool

	segment int   // index in Layout of the first segment
	chunk   int64 // index of the first chunk in that segment
	skip    int64 // plaintext bytes to drop from the first chunk
	plain   int64 // plaintext bytes to yield
}

// span maps the plaintext range [off, off+n) to stored bytes. n must be at
// least 1: an empty range needs no bytes.
func (l Layout) span(off, n int64) (span, error) {
	total := l.PlaintextSize()
	if off < 0 || n < 1 || off > total-n {
		return span{}, fmt.Errorf("bytes %d+%d of %d: %w", off, n, total, ErrRange)
	}
	var sp span
	sp.plain = n
	first := l.locate(off)
	last := l.locate(off + n - 1)
	sp.segment, sp.chunk, sp.skip = first.segment, first.chunk, first.inChunk
	sp.HeaderOffset = first.segStart
	if first.chunk == 0 {
		sp.Offset = first.segStart
	} else {
		sp.Offset, sp.NeedHeader = first.chunkStart, true
	}
	sp.Length = last.chunkEnd - sp.Offset
	if last.final {
		// The final chunk's AAD holds the record after it (FramingV2).
		sp.Length += int64(l.Framing.trailer())
	}
	return sp, nil
}

type position struct {
	segment    int
	chunk      int64
	inChunk    int64
	segStart   int64 // stored offset of the segment's header
	chunkStart int64 // stored offset of the chunk
	chunkEnd   int64 // stored offset just past the chunk's tag
	final      bool  // the chunk is its segment's last
}

// locate finds the chunk holding plaintext byte off, which must exist.
func (l Layout) locate(off int64) position {
	var plainStart, storedStart int64
	for i, size := range l.Parts {
		if off < plainStart+size {
			rel := off - plainStart
			c := rel / ChunkSize
			start := storedStart + int64(l.Framing.HeaderLen()) + c*encChunkSize
			clen := min(int64(ChunkSize), size-c*ChunkSize)
			return position{segment: i, chunk: c, inChunk: rel % ChunkSize,
				segStart: storedStart, chunkStart: start, chunkEnd: start + clen + TagSize,
				final: c == chunks(size)-1}
		}
		plainStart += size
		storedStart += SegmentSize(size)
	}
	panic("envelope: locate past the end")
}

// Fetch reads n stored bytes of an object at offset off.
type Fetch func(off, n int64) (io.ReadCloser, error)

// OpenRange decrypts the plaintext range [off, off+n) of an object with
// layout l, fetching only the stored bytes that hold it: whole chunks and,
// for a range that starts inside a segment, that segment's header (unless it
// is the first segment's and header0 holds it), as sio's DecryptReaderAt
// does. The reader yields exactly n bytes, each chunk authenticated before
// any of its bytes; Close releases what it fetched. n must be at least 1:
// an empty range needs no bytes.
func OpenRange(fetch Fetch, dataKey []byte, l Layout, off, n int64, header0 []byte) (io.ReadCloser, error) {
	sp, err := l.span(off, n)
	if err != nil {
		return nil, err
	}
	var header []byte
	if sp.NeedHeader {
		if header, err = fetchHeader(fetch, sp.HeaderOffset, l.Framing.HeaderLen(), header0); err != nil {
			return nil, err
		}
	}
	body, err := fetch(sp.Offset, sp.Length)
	if err != nil {
		return nil, err
	}
	rr, err := newRangeReader(body, dataKey, l, sp, header)
	if err != nil {
		body.Close()
		return nil, err
	}
	return rangeReadCloser{rr, body}, nil
}

// rangeReadCloser keeps the range reader's WriteTo, which spares io.Copy a
// copy of every byte.
type rangeReadCloser struct {
	*rangeReader
	io.Closer
}

// fetchHeader is the segment header, of hlen bytes, stored at byte at;
// header0 may hold the object's first stored bytes.
func fetchHeader(fetch Fetch, at int64, hlen int, header0 []byte) ([]byte, error) {
	if at == 0 && len(header0) >= hlen {
		return header0[:hlen], nil
	}
	r, err := fetch(at, int64(hlen))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h := make([]byte, hlen)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, fmt.Errorf("reading the segment header at stored byte %d: %w: %w", at, ErrTruncated, err)
	}
	return h, nil
}

// rangeReader decrypts the stored bytes of a span and yields exactly the
// plaintext range it was made for. Every chunk it reads is authenticated
// before any of its bytes are yielded.
type rangeReader struct {
	src     io.Reader
	dataKey []byte
	layout  Layout
	seg     *segment
	segIdx  int
	chunk   int64
	skip    int64
	left    int64
	ct, pt  []byte
	pump
}

// newRangeReader decrypts src, the stored bytes [sp.Offset, sp.Offset+sp.Length)
// of an object with the given layout. header is the first segment's stored
// header when sp.NeedHeader, else nil.
func newRangeReader(src io.Reader, dataKey []byte, layout Layout, sp span, header []byte) (*rangeReader, error) {
	r := &rangeReader{
		src: src, dataKey: dataKey, layout: layout,
		segIdx: sp.segment, chunk: sp.chunk, skip: sp.skip, left: sp.plain,
		ct: getChunkBuf()[:encChunkSize], pt: getChunkBuf()[:ChunkSize],
	}
	r.pump.next = r.next
	r.release = func() { putChunkBuf(r.ct); putChunkBuf(r.pt) }
	if sp.NeedHeader {
		seg, err := parseSegment(dataKey, header, layout.Framing, uint32(sp.segment+1))
		if err != nil {
			return nil, err
		}
		r.seg = seg
	}
	return r, nil
}

func (r *rangeReader) next() error {
	if r.seg == nil {
		hdr := r.ct[:r.layout.Framing.HeaderLen()]
		if _, err := io.ReadFull(r.src, hdr); err != nil {
			return r.readErr(err)
		}
		seg, err := parseSegment(r.dataKey, hdr, r.layout.Framing, uint32(r.segIdx+1))
		if err != nil {
			return err
		}
		r.seg = seg
	}
	size := r.layout.Parts[r.segIdx]
	plen := min(int64(ChunkSize), size-r.chunk*ChunkSize)
	final := r.chunk == chunks(size)-1
	ct := r.ct[:plen+TagSize]
	if _, err := io.ReadFull(r.src, ct); err != nil {
		return r.readErr(err)
	}
	if final {
		// FramingV2: the record after the chunk is in its AAD.
		if _, err := io.ReadFull(r.src, r.seg.record()); err != nil {
			return r.readErr(err)
		}
	}
	pt, err := r.seg.open(r.pt[:0], ct, uint64(r.chunk), final)
	if err != nil {
		return fmt.Errorf("segment %d chunk %d: %w", r.segIdx+1, r.chunk, ErrAuthentication)
	}
	pt = pt[r.skip:]
	r.skip = 0
	if int64(len(pt)) > r.left {
		pt = pt[:r.left]
	}
	r.left -= int64(len(pt))
	r.out, r.done = pt, r.left == 0
	if !final {
		r.chunk++
		return nil
	}
	r.seg, r.segIdx, r.chunk = nil, r.segIdx+1, 0
	return nil
}

func (r *rangeReader) readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("segment %d chunk %d: %w", r.segIdx+1, r.chunk, ErrTruncated)
	}
	return fmt.Errorf("reading ciphertext: %w", err)
}

// ETagPartCount is the part count N of a multipart ETag ("...-N", §4.2),
// and whether the ETag had one (without, an object is one part on a store
// that ends every multipart ETag so). A count above MaxSegments comes back
// as MaxSegments+1, which every size function refuses: a store's number
// never sizes anything.
func ETagPartCount(etag string) (int, bool) {
	etag = strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	i := strings.LastIndexByte(etag, '-')
	if i < 0 {
		return 1, false
	}
	return ParsePartCount(etag[i+1:])
}

// ParsePartCount parses a part count a store gave (an ETag's N, or
// x-amz-mp-parts-count), bounded as ETagPartCount's; ok is false if it is
// no number.
func ParsePartCount(s string) (int, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) || (err == nil && n > MaxSegments):
		return MaxSegments + 1, true
	case err != nil || n < 1:
		return 1, false
	}
	return int(n), true
}
