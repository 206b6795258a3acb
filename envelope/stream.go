// Package envelope is s3seal's object format (docs/FORMAT.md): an object is
// one segment per part, each a header and AES-256-GCM chunks under a key
// derived from the object's data key; this package encrypts and decrypts
// them as streams, does the exact size arithmetic between stored and
// plaintext bytes (the multipart layout rule, range mapping), and encodes the
// metadata kept beside each object, and the arithmetic of S3's checksums.
// It holds no key service and imports nothing outside the standard library
// but minio/crc64nvme: data keys come from envelope/kms.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// The segment format (docs/FORMAT.md is the specification):
//
//	segment = header ‖ chunk_0 ‖ ... ‖ chunk_n [‖ record]
//	header  = 0x01 ‖ 3 zero bytes ‖ part number (uint32 BE) ‖ salt (24 random bytes)
//	          (FramingV2: 0x02 ‖ zero byte ‖ part number (uint16 BE) ‖ salt (12 random bytes))
//	key     = HKDF-SHA256(ikm = data key, salt = salt, info = "s3seal v1 segment" ‖ part (uint32 BE) ‖ ChunkSize (uint32 BE))
//	chunk_i = AES-256-GCM(key, nonce = i (uint88 BE) ‖ final flag, plaintext_i, aad = header)
//	          (FramingV2's final chunk: aad = header ‖ record)
//	record  = FramingV2 only: the part's encrypted checksum and its MAC (record.go, §3.4)
//
// Invariants this file relies on:
//   - Every segment has its own random salt, hence its own key, so the counter
//     nonce never repeats under one key, even when a part is uploaded again
//     with other bytes under the same data key. The record's flag byte 0x02
//     keeps its nonce apart from every chunk's.
//   - Every chunk but the last of a segment holds exactly ChunkSize bytes;
//     the last one has the final flag and holds 0..ChunkSize bytes. An empty
//     segment is one empty final chunk. So truncation at a chunk boundary,
//     reordering and chunks from other segments all fail authentication.
//   - Segments of an object are numbered 1, 2, ... in object order and the
//     number is bound twice: in the key and in the AAD.
//   - The header's version byte is the object's Framing and is in every
//     AAD: a version 1 segment cannot pass for a version 2 one or back.
const (
	FormatVersion = 1
	ChunkSize     = 64 << 10
	TagSize       = 16
	HeaderSize    = 32
	DataKeySize   = 32 // AES-256
	saltSize      = 24
	encChunkSize  = ChunkSize + TagSize
	nonceSize     = 12
)

// Framing is how an object's segments are laid out, named by their header
// version: FramingV1 is a 32-byte header and chunks; FramingV2 is a 16-byte
// header, chunks and a 16-byte part record that the final chunk
// authenticates (FORMAT.md §3.4), written by multipart uploads that declare
// a CRC checksum. Both spend HeaderSize bytes per segment besides the
// chunks, so every size is the same under either (§4): a listing row, which
// carries no metadata, sizes any object. Readers take the framing from the
// object's metadata; the header's version byte, in every AAD, must agree.
type Framing byte

const (
	FramingV1 Framing = 1
	FramingV2 Framing = 2
)

func (f Framing) valid() bool { return f == FramingV1 || f == FramingV2 }

// HeaderLen is the size of a segment header: where its first chunk starts.
func (f Framing) HeaderLen() int {
	if f == FramingV2 {
		return HeaderSize - RecordSize
	}
	return HeaderSize
}

// trailer is the number of stored bytes after a segment's final chunk.
func (f Framing) trailer() int {
	if f == FramingV2 {
		return RecordSize
	}
	return 0
}

var (
	// ErrAuthentication means stored bytes are not what s3seal wrote with this
	// data key at this place: tampered, reordered, swapped in from another
	// object or part, or decrypted with the wrong key.
	ErrAuthentication = errors.New("ciphertext failed authentication")
	// ErrTruncated means the ciphertext ended before the final chunk.
	ErrTruncated = errors.New("ciphertext truncated")
	// ErrUnsupportedVersion means a header or metadata of a format this
	// build does not know. Such objects are refused, never guessed at.
	ErrUnsupportedVersion = errors.New("unsupported s3seal format version")
)

// segment is the per-segment cipher state shared by the encrypter and the
// decrypters.
type segment struct {
	aead    cipher.AEAD
	framing Framing
	// aad is the header, and for FramingV2 the record after it once known:
	// every chunk's AAD is the header, the final chunk's all of aad.
	aad   [HeaderSize]byte
	nonce [nonceSize]byte
	// macKey authenticates the record on its own (FramingV2), so that it
	// can be read without the final chunk.
	macKey []byte
}

// V2 header: version ‖ reserved (1 byte) ‖ part (uint16 BE) ‖ salt (12 bytes).
const v2SaltSize = 12

func newSegment(dataKey []byte, f Framing, part uint32, salt []byte) (*segment, error) {
	s := &segment{framing: f}
	s.aad[0] = byte(f)
	if f == FramingV2 {
		if part > MaxSegments || len(salt) < v2SaltSize {
			return nil, fmt.Errorf("segment %d: not a FramingV2 part", part)
		}
		binary.BigEndian.PutUint16(s.aad[2:4], uint16(part))
		copy(s.aad[4:f.HeaderLen()], salt)
	} else {
		binary.BigEndian.PutUint32(s.aad[4:8], part)
		copy(s.aad[8:], salt)
	}
	if err := s.init(dataKey); err != nil {
		return nil, err
	}
	return s, nil
}

// parseSegment checks a stored header and derives its key. wantPart is the
// segment's position in the object (1-based): a header that claims another
// position was moved. f is the object's framing, which the header's version
// must be.
func parseSegment(dataKey, header []byte, f Framing, wantPart uint32) (*segment, error) {
	if len(header) != f.HeaderLen() {
		return nil, fmt.Errorf("segment %d header: %w", wantPart, ErrTruncated)
	}
	if Framing(header[0]).valid() && Framing(header[0]) != f {
		return nil, fmt.Errorf("segment %d header has version %d, the object's metadata says %d: %w", wantPart, header[0], f, ErrAuthentication)
	}
	got, ok := f.HeaderPart(header)
	if !ok {
		return nil, fmt.Errorf("segment %d header has version %d and non-zero reserved bytes: %w", wantPart, header[0], ErrUnsupportedVersion)
	}
	if got != wantPart {
		return nil, fmt.Errorf("segment %d header claims part %d (reordered or swapped): %w", wantPart, got, ErrAuthentication)
	}
	s := &segment{framing: f}
	copy(s.aad[:], header)
	if err := s.init(dataKey); err != nil {
		return nil, err
	}
	return s, nil
}

// HeaderPart is the part number a stored header of framing f carries in
// the clear; ok is false for bytes that are no such header. It checks no
// key: a header read on its own only says where a segment starts.
func (f Framing) HeaderPart(h []byte) (part uint32, ok bool) {
	if len(h) != f.HeaderLen() || Framing(h[0]) != f {
		return 0, false
	}
	if f == FramingV2 {
		return uint32(binary.BigEndian.Uint16(h[2:4])), h[1] == 0
	}
	return binary.BigEndian.Uint32(h[4:8]), h[1]|h[2]|h[3] == 0
}

func (s *segment) part() uint32 {
	if s.framing == FramingV2 {
		return uint32(binary.BigEndian.Uint16(s.aad[2:4]))
	}
	return binary.BigEndian.Uint32(s.aad[4:8])
}

func (s *segment) header() []byte { return s.aad[:s.framing.HeaderLen()] }

// segmentInfo domain-separates the two framings' segment keys.
var segmentInfo = map[Framing]string{FramingV1: "s3seal v1 segment", FramingV2: "s3seal v2 segment"}

func (s *segment) init(dataKey []byte) error {
	if len(dataKey) != DataKeySize {
		return fmt.Errorf("data key is %d bytes, want %d", len(dataKey), DataKeySize)
	}
	salt := s.aad[8:]
	if s.framing == FramingV2 {
		salt = s.aad[4:s.framing.HeaderLen()]
	}
	info := make([]byte, 0, 32)
	info = append(info, segmentInfo[s.framing]...)
	info = binary.BigEndian.AppendUint32(info, s.part())
	info = binary.BigEndian.AppendUint32(info, ChunkSize)
	keyLen := 32
	if s.framing == FramingV2 {
		keyLen = 64 // and the record's MAC key
	}
	key, err := hkdf.Key(sha256.New, dataKey, salt, string(info), keyLen)
	if err != nil {
		return fmt.Errorf("deriving segment key: %w", err)
	}
	s.macKey = key[32:]
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		return fmt.Errorf("segment cipher: %w", err)
	}
	s.aead, err = cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("segment cipher: %w", err)
	}
	return nil
}

// Nonce flag bytes (the nonce's last byte): chunks are final or not; the
// record's keystream has its own.
const (
	flagChunk  = 0x00
	flagFinal  = 0x01
	flagRecord = 0x02
)

func (s *segment) setNonce(idx uint64, flag byte) {
	// uint88 counter: the top 3 bytes stay zero, 2^64 chunks is plenty.
	binary.BigEndian.PutUint64(s.nonce[3:11], idx)
	s.nonce[11] = flag
}

func (s *segment) chunkAAD(final bool) (flag byte, aad []byte) {
	if final {
		return flagFinal, s.aad[:s.framing.HeaderLen()+s.framing.trailer()]
	}
	return flagChunk, s.header()
}

func (s *segment) seal(dst, plaintext []byte, idx uint64, final bool) []byte {
	flag, aad := s.chunkAAD(final)
	s.setNonce(idx, flag)
	return s.aead.Seal(dst, s.nonce[:], plaintext, aad)
}

func (s *segment) open(dst, ciphertext []byte, idx uint64, final bool) ([]byte, error) {
	flag, aad := s.chunkAAD(final)
	s.setNonce(idx, flag)
	return s.aead.Open(dst, s.nonce[:], ciphertext, aad)
}

// EncryptReader reads plaintext from a source and yields one encrypted
// segment. It holds one chunk in memory whatever the stream's length.
type EncryptReader struct {
	src       io.Reader
	seg       *segment
	remaining int64 // plaintext still expected, or -1 when the size is unknown
	idx       uint64
	buf       []byte // a chunk, sealed in place, plus one byte of lookahead
	ahead     bool   // unknown size: aheadByte is the next chunk's first byte
	aheadByte byte
	sealed    int64      // plaintext bytes sealed so far
	record    RecordFunc // FramingV2: the part's checksum, asked before the final chunk is sealed
	pump
}

// RecordFunc gives a FramingV2 segment's part checksum. It is called once,
// after the source has ended cleanly, so a checksum computed over what the
// source yielded is complete; an error fails the stream before the segment
// is whole.
type RecordFunc func() (Checksum, error)

// NewEncryptReader encrypts src as a FramingV1 segment number part (1 for a
// single PUT) under dataKey. When size is not negative, src must yield
// exactly size bytes: fewer or more is an error, so a client that goes away
// mid-body never yields a shorter valid segment.
func NewEncryptReader(src io.Reader, dataKey []byte, part uint32, size int64) (*EncryptReader, error) {
	return newEncryptReader(src, dataKey, part, size, nil, nil)
}

// NewRecordEncryptReader encrypts src as a FramingV2 segment, a multipart
// part (1..MaxSegments), as NewEncryptReader does, with the part record of
// the checksum record gives (FORMAT.md §3.4).
func NewRecordEncryptReader(src io.Reader, dataKey []byte, part uint32, size int64, record RecordFunc) (*EncryptReader, error) {
	if record == nil {
		return nil, errors.New("a FramingV2 segment needs its record")
	}
	return newEncryptReader(src, dataKey, part, size, nil, record)
}

// newEncryptReader takes the salt (random when nil) so tests can pin it.
func newEncryptReader(src io.Reader, dataKey []byte, part uint32, size int64, salt []byte, record RecordFunc) (*EncryptReader, error) {
	if part == 0 {
		return nil, errors.New("segment numbers start at 1")
	}
	if salt == nil {
		salt = make([]byte, saltSize) // FramingV2 uses the first 12 bytes
		if _, err := rand.Read(salt); err != nil {
			return nil, fmt.Errorf("segment salt: %w", err)
		}
	}
	f := FramingV1
	if record != nil {
		f = FramingV2
	}
	seg, err := newSegment(dataKey, f, part, salt)
	if err != nil {
		return nil, err
	}
	bufSize := encChunkSize + 1
	if size >= 0 && size < ChunkSize {
		// Small objects are common: don't pay for a whole chunk.
		bufSize = int(size) + TagSize + f.trailer() + 1
	}
	r := &EncryptReader{src: src, seg: seg, remaining: size, record: record}
	if bufSize == encChunkSize+1 {
		r.buf = getChunkBuf()
		r.release = func() { putChunkBuf(r.buf) }
	} else {
		r.buf = make([]byte, bufSize)
	}
	r.out, r.pump.next = seg.header(), r.next
	if size < 0 {
		r.remaining = -1
	}
	return r, nil
}

// setRecord asks for the part checksum of the segment's plainLen bytes and
// makes it the segment's record, which the final chunk's AAD then covers.
func (r *EncryptReader) setRecord(plainLen int64) error {
	c, err := r.record()
	if err == nil {
		err = r.seg.setRecord(c, plainLen)
	}
	if err != nil {
		return fmt.Errorf("segment %d part record: %w", r.seg.part(), err)
	}
	return nil
}

// next seals the next chunk into r.out; the final one is followed by the
// record (FramingV2).
func (r *EncryptReader) next() error {
	var n int
	var final bool
	if r.remaining >= 0 {
		want := int(min(int64(ChunkSize), r.remaining))
		got, err := io.ReadFull(r.src, r.buf[:want])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("plaintext ended %d bytes early: %w", r.remaining-int64(got), io.ErrUnexpectedEOF)
			}
			return fmt.Errorf("reading plaintext: %w", err)
		}
		n = got
		r.remaining -= int64(n)
		final = r.remaining == 0
		if final {
			// One more read proves the source holds nothing beyond the
			// declared size.
			var extra [1]byte
			if m, err := io.ReadFull(r.src, extra[:]); m > 0 {
				return errors.New("plaintext is longer than its declared size")
			} else if !errors.Is(err, io.EOF) {
				return fmt.Errorf("reading plaintext: %w", err)
			}
		}
	} else {
		have := 0
		if r.ahead {
			r.buf[0] = r.aheadByte
			have = 1
		}
		// Read one byte past the chunk to learn whether this chunk is final.
		got, err := io.ReadFull(r.src, r.buf[have:ChunkSize+1])
		n = have + got
		switch {
		case err == nil:
			r.ahead, r.aheadByte = true, r.buf[ChunkSize]
			n = ChunkSize
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			final = true
		default:
			return fmt.Errorf("reading plaintext: %w", err)
		}
	}
	r.sealed += int64(n)
	if final && r.record != nil {
		if err := r.setRecord(r.sealed); err != nil {
			return err
		}
	}
	r.out = r.seg.seal(r.buf[:0], r.buf[:n], r.idx, final)
	if final && r.record != nil {
		r.out = append(r.out, r.seg.record()...)
	}
	r.idx++
	r.done = final
	return nil
}

// DecryptReader decrypts a whole object: segments 1, 2, ... in order, as
// stored. It needs no sizes, and so it relies on the rule that every segment
// but the last holds a whole number of full chunks (docs/FORMAT.md,
// "Multipart objects"); a stream that breaks the rule fails authentication,
// it never decrypts to other bytes.
//
// Read returns an error, never io.EOF, unless every byte up to the final
// chunk (and, for FramingV2, the record) of the last segment has been
// authenticated.
type DecryptReader struct {
	src          io.Reader
	dataKey      []byte
	framing      Framing
	wantSegments int
	seg          *segment
	segNum       uint32
	idx          uint64
	ct           []byte // one chunk, a record and one byte read ahead
	carried      int    // bytes at the start of ct already read from src
	pt           []byte
	onSegment    func(part uint32, sealed []byte) error
	pump
}

// OnSegment has f called as each FramingV2 segment ends, with its part
// number and its stored header and record (HeaderSize bytes), which its
// final chunk has just authenticated; an error from f fails the read. A
// reader that answered the part checksums before the body uses it to know
// the body's records are the ones it answered from (FORMAT.md §3.4).
func (r *DecryptReader) OnSegment(f func(part uint32, sealed []byte) error) { r.onSegment = f }

// NewDecryptReader decrypts src, the stored body of an object of framing f
// (from its metadata). wantSegments is the number of segments the object
// must have (from the listing's ETag), or 0 when unknown.
func NewDecryptReader(src io.Reader, dataKey []byte, f Framing, wantSegments int) *DecryptReader {
	r := &DecryptReader{
		src:          src,
		dataKey:      dataKey,
		framing:      f,
		wantSegments: wantSegments,
		ct:           getChunkBuf(),
		pt:           getChunkBuf()[:ChunkSize],
	}
	r.pump.next = r.next
	r.release = func() { putChunkBuf(r.ct); putChunkBuf(r.pt) }
	return r
}

// NewPartDecryptReader decrypts src, the stored bytes of segment part alone
// (what a store returns for GET ?partNumber=part): exactly one segment, which
// must carry that number, with every chunk checked as in a whole read.
func NewPartDecryptReader(src io.Reader, dataKey []byte, f Framing, part uint32) *DecryptReader {
	r := NewDecryptReader(src, dataKey, f, int(part))
	r.segNum = part - 1
	return r
}

// startSegment reads and checks the next segment header. It reports false at
// a clean end of the object.
func (r *DecryptReader) startSegment() (bool, error) {
	hlen := r.framing.HeaderLen()
	got, err := io.ReadFull(r.src, r.ct[r.carried:hlen])
	got += r.carried
	r.carried = 0
	if got == 0 && errors.Is(err, io.EOF) && r.segNum > 0 {
		if r.wantSegments > 0 && int(r.segNum) != r.wantSegments {
			return false, fmt.Errorf("object has %d segments, want %d: %w", r.segNum, r.wantSegments, ErrTruncated)
		}
		return false, nil
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, fmt.Errorf("segment %d header: %w", r.segNum+1, ErrTruncated)
		}
		return false, fmt.Errorf("reading ciphertext: %w", err)
	}
	if r.wantSegments > 0 && int(r.segNum) >= r.wantSegments {
		return false, fmt.Errorf("object has more than %d segments: %w", r.wantSegments, ErrAuthentication)
	}
	r.seg, err = parseSegment(r.dataKey, r.ct[:hlen], r.framing, r.segNum+1)
	if err != nil {
		return false, err
	}
	r.segNum++
	r.idx = 0
	return true, nil
}

// next decrypts one chunk. It reads a chunk, the trailer t (the record of
// FramingV2, nothing for FramingV1) and one more byte: if the stream ends
// before that byte, what it read is the last segment's final chunk and
// trailer; otherwise the chunk is full and either a middle chunk or, under
// the multipart rule, the final chunk of a segment that another follows.
func (r *DecryptReader) next() error {
	if r.seg == nil {
		more, err := r.startSegment()
		if err != nil {
			return err
		}
		if !more {
			r.done = true
			return nil
		}
	}
	t := r.framing.trailer()
	got, err := io.ReadFull(r.src, r.ct[r.carried:encChunkSize+t+1])
	n := r.carried + got
	r.carried = 0
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("reading ciphertext: %w", err)
	}
	where := func() string { return fmt.Sprintf("segment %d chunk %d", r.segNum, r.idx) }
	switch {
	case n < TagSize+t:
		return fmt.Errorf("%s: ends without its final chunk: %w", where(), ErrTruncated)
	case n <= encChunkSize+t:
		copy(r.seg.record(), r.ct[n-t:n])
		r.out, err = r.seg.open(r.pt[:0], r.ct[:n-t], r.idx, true)
		if err != nil {
			return fmt.Errorf("%s (last in stream): %w", where(), ErrAuthentication)
		}
		if err := r.endSegment(); err != nil {
			return err
		}
	default:
		// Opening into pt keeps ct intact for the second try.
		r.out, err = r.seg.open(r.pt[:0], r.ct[:encChunkSize], r.idx, false)
		rest := r.ct[encChunkSize:n]
		if err != nil {
			copy(r.seg.record(), rest[:t])
			r.out, err = r.seg.open(r.pt[:0], r.ct[:encChunkSize], r.idx, true)
			if err != nil {
				return fmt.Errorf("%s: %w", where(), ErrAuthentication)
			}
			if err := r.endSegment(); err != nil {
				return err
			}
			rest = rest[t:]
		}
		r.carried = copy(r.ct, rest)
	}
	r.idx++
	return nil
}

// endSegment ends a segment whose final chunk authenticated (and with it,
// in its AAD, a FramingV2 record).
func (r *DecryptReader) endSegment() error {
	seg := r.seg
	r.seg = nil
	if r.onSegment != nil && r.framing == FramingV2 {
		if err := r.onSegment(seg.part(), seg.aad[:]); err != nil {
			r.out = nil // not even this segment's last bytes
			return err
		}
	}
	return nil
}

// chunkPool holds chunk buffers (a sealed chunk plus one byte of
// lookahead), so that a stream over a small object does not pay for
// allocating and zeroing 128 KiB; streams hand theirs back when they end.
var chunkPool = sync.Pool{New: func() any { return new([chunkBufSize]byte) }}

// chunkBufSize holds a sealed chunk, a part record and one byte read ahead.
const chunkBufSize = encChunkSize + RecordSize + 1

func getChunkBuf() []byte { return chunkPool.Get().(*[chunkBufSize]byte)[:] }

// putChunkBuf takes any reslice of a buffer from getChunkBuf.
func putChunkBuf(b []byte) { chunkPool.Put((*[chunkBufSize]byte)(b[:chunkBufSize])) }

// pump hands out, one at a time, the chunks its producer makes: the
// Read/WriteTo half shared by the encrypter and the decrypters.
type pump struct {
	out     []byte // produced bytes not yet handed out
	done    bool   // the producer has made its last chunk
	err     error  // sticky: once failed, always failed
	next    func() error
	release func() // gives pooled buffers back; called once, at the end
}

// end is called whenever the pump has nothing more to give. The buffers
// can go back to the pool then: out is empty and nothing else points into
// them (Write must not retain its argument).
func (p *pump) end() {
	if p.release != nil {
		p.release()
		p.release = nil
	}
}

func (p *pump) Read(b []byte) (int, error) {
	for len(p.out) == 0 {
		if p.err != nil {
			p.end()
			return 0, p.err
		}
		if p.done {
			p.end()
			return 0, io.EOF
		}
		p.err = p.next()
	}
	n := copy(b, p.out)
	p.out = p.out[n:]
	return n, nil
}

// WriteTo hands each chunk straight to w, saving a copy per byte.
func (p *pump) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(p.out) > 0 {
			n, err := w.Write(p.out)
			total += int64(n)
			p.out = p.out[n:]
			if err != nil {
				return total, err
			}
			continue
		}
		if p.err != nil {
			p.end()
			return total, p.err
		}
		if p.done {
			p.end()
			return total, nil
		}
		p.err = p.next()
	}
}
