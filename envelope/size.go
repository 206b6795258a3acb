package envelope

import (
	"errors"
	"fmt"
	"io"
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

// SegmentSize is the stored size of a segment holding plain bytes:
// HeaderSize + plain + TagSize·max(1, ⌈plain/ChunkSize⌉).
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

// ObjectSize is the stored size of an object whose segments hold the given
// plaintext sizes.
func ObjectSize(segments ...int64) int64 {
	var total int64
	for _, s := range segments {
		total += SegmentSize(s)
	}
	return total
}

// ObjectPlaintextSize is the plaintext size of an object of the given stored
// size and segment count (1 for a single PUT, the ETag's "-N" for a multipart
// object), for objects that follow the multipart rule: every segment but the
// last holds a non-zero multiple of ChunkSize. Then all segments' chunks
// together are the chunks of one long stream, and only the headers and, for
// an empty last part, one extra empty chunk differ; the two cases never
// collide because the second lands in a gap of the first.
func ObjectPlaintextSize(stored int64, segments int) (int64, error) {
	if segments < 1 {
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

// Layout is the plaintext size of each segment of an object, in order.
type Layout []int64

// PlaintextSize is the object's plaintext size.
func (l Layout) PlaintextSize() int64 {
	var total int64
	for _, s := range l {
		total += s
	}
	return total
}

// CiphertextSize is the object's stored size.
func (l Layout) CiphertextSize() int64 { return ObjectSize(l...) }

// Span says which stored bytes to fetch to decrypt a plaintext range.
type Span struct {
	// Offset and Length are the stored bytes to fetch: whole chunks, from
	// the one holding the range's first byte to the one holding its last.
	Offset, Length int64
	// HeaderOffset is where the first segment's header is stored, when the
	// fetched bytes do not start with it (NeedHeader); the caller fetches
	// HeaderSize bytes there and hands them to NewRangeReader.
	HeaderOffset int64
	NeedHeader   bool

	segment int   // index in Layout of the first segment
	chunk   int64 // index of the first chunk in that segment
	skip    int64 // plaintext bytes to drop from the first chunk
	plain   int64 // plaintext bytes to yield
}

// Plaintext is the number of plaintext bytes the span yields.
func (s Span) Plaintext() int64 { return s.plain }

// Span maps the plaintext range [off, off+n) to stored bytes. n must be at
// least 1: an empty range needs no bytes.
func (l Layout) Span(off, n int64) (Span, error) {
	total := l.PlaintextSize()
	if off < 0 || n < 1 || off > total-n {
		return Span{}, fmt.Errorf("bytes %d+%d of %d: %w", off, n, total, ErrRange)
	}
	var sp Span
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
	return sp, nil
}

type position struct {
	segment    int
	chunk      int64
	inChunk    int64
	segStart   int64 // stored offset of the segment's header
	chunkStart int64 // stored offset of the chunk
	chunkEnd   int64 // stored offset just past the chunk's tag
}

// locate finds the chunk holding plaintext byte off, which must exist.
func (l Layout) locate(off int64) position {
	var plainStart, storedStart int64
	for i, size := range l {
		if off < plainStart+size {
			rel := off - plainStart
			c := rel / ChunkSize
			start := storedStart + HeaderSize + c*encChunkSize
			clen := min(int64(ChunkSize), size-c*ChunkSize)
			return position{segment: i, chunk: c, inChunk: rel % ChunkSize,
				segStart: storedStart, chunkStart: start, chunkEnd: start + clen + TagSize}
		}
		plainStart += size
		storedStart += SegmentSize(size)
	}
	panic("envelope: locate past the end")
}

// RangeReader decrypts the stored bytes of a Span and yields exactly the
// plaintext range it was made for. Every chunk it reads is authenticated
// before any of its bytes are yielded.
type RangeReader struct {
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

// NewRangeReader decrypts src, the stored bytes [sp.Offset, sp.Offset+sp.Length)
// of an object with the given layout. header is the first segment's stored
// header when sp.NeedHeader, else nil.
func NewRangeReader(src io.Reader, dataKey []byte, layout Layout, sp Span, header []byte) (*RangeReader, error) {
	r := &RangeReader{
		src: src, dataKey: dataKey, layout: layout,
		segIdx: sp.segment, chunk: sp.chunk, skip: sp.skip, left: sp.plain,
		ct: getChunkBuf()[:encChunkSize], pt: getChunkBuf()[:ChunkSize],
	}
	r.pump.next = r.next
	r.release = func() { putChunkBuf(r.ct); putChunkBuf(r.pt) }
	if sp.NeedHeader {
		seg, err := parseSegment(dataKey, header, uint32(sp.segment+1))
		if err != nil {
			return nil, err
		}
		r.seg = seg
	}
	return r, nil
}

func (r *RangeReader) next() error {
	if r.seg == nil {
		hdr := r.ct[:HeaderSize]
		if _, err := io.ReadFull(r.src, hdr); err != nil {
			return r.readErr(err)
		}
		seg, err := parseSegment(r.dataKey, hdr, uint32(r.segIdx+1))
		if err != nil {
			return err
		}
		r.seg = seg
	}
	size := r.layout[r.segIdx]
	plen := min(int64(ChunkSize), size-r.chunk*ChunkSize)
	final := r.chunk == chunks(size)-1
	ct := r.ct[:plen+TagSize]
	if _, err := io.ReadFull(r.src, ct); err != nil {
		return r.readErr(err)
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
	if final {
		r.seg, r.segIdx, r.chunk = nil, r.segIdx+1, 0
	} else {
		r.chunk++
	}
	return nil
}

func (r *RangeReader) readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("segment %d chunk %d: %w", r.segIdx+1, r.chunk, ErrTruncated)
	}
	return fmt.Errorf("reading ciphertext: %w", err)
}
