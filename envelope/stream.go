// Package envelope is s3seal's object format (docs/FORMAT.md): an object is
// one segment per part, each a header and AES-256-GCM chunks under a key
// derived from the object's data key; this package encrypts and decrypts
// them as streams, does the exact size arithmetic between stored and
// plaintext bytes (the multipart layout rule, range mapping), and encodes the
// metadata kept beside each object. It holds no key service and imports
// nothing outside the standard library: data keys come from envelope/kms.
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

// The segment format, v1 (docs/FORMAT.md is the specification):
//
//	segment = header ‖ chunk_0 ‖ ... ‖ chunk_n
//	header  = version (0x01) ‖ 3 zero bytes ‖ part number (uint32 BE) ‖ salt (24 random bytes)
//	key     = HKDF-SHA256(ikm = data key, salt = salt, info = "s3seal v1 segment" ‖ part (uint32 BE) ‖ ChunkSize (uint32 BE))
//	chunk_i = AES-256-GCM(key, nonce = i (uint88 BE) ‖ final flag, plaintext_i, aad = header)
//
// Invariants this file relies on:
//   - Every segment has its own random salt, hence its own key, so the counter
//     nonce never repeats under one key, even when a part is uploaded again
//     with other bytes under the same data key.
//   - Every chunk but the last of a segment holds exactly ChunkSize bytes;
//     the last one has the final flag and holds 0..ChunkSize bytes. An empty
//     segment is one empty final chunk. So truncation at a chunk boundary,
//     reordering and chunks from other segments all fail authentication.
//   - Segments of an object are numbered 1, 2, ... in object order and the
//     number is bound twice: in the key and in the AAD.
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
	aead   cipher.AEAD
	header [HeaderSize]byte
	nonce  [nonceSize]byte
}

func newSegment(dataKey []byte, part uint32, salt []byte) (*segment, error) {
	s := &segment{}
	s.header[0] = FormatVersion
	binary.BigEndian.PutUint32(s.header[4:8], part)
	copy(s.header[8:], salt)
	if err := s.init(dataKey); err != nil {
		return nil, err
	}
	return s, nil
}

// parseSegment checks a stored header and derives its key. wantPart is the
// segment's position in the object (1-based): a header that claims another
// position was moved.
func parseSegment(dataKey, header []byte, wantPart uint32) (*segment, error) {
	if len(header) != HeaderSize {
		return nil, fmt.Errorf("segment %d header: %w", wantPart, ErrTruncated)
	}
	if header[0] != FormatVersion {
		return nil, fmt.Errorf("segment %d header has version %d: %w", wantPart, header[0], ErrUnsupportedVersion)
	}
	if header[1]|header[2]|header[3] != 0 {
		return nil, fmt.Errorf("segment %d header has non-zero reserved bytes: %w", wantPart, ErrUnsupportedVersion)
	}
	if got := binary.BigEndian.Uint32(header[4:8]); got != wantPart {
		return nil, fmt.Errorf("segment %d header claims part %d (reordered or swapped): %w", wantPart, got, ErrAuthentication)
	}
	s := &segment{}
	copy(s.header[:], header)
	if err := s.init(dataKey); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *segment) init(dataKey []byte) error {
	if len(dataKey) != DataKeySize {
		return fmt.Errorf("data key is %d bytes, want %d", len(dataKey), DataKeySize)
	}
	info := make([]byte, 0, 32)
	info = append(info, "s3seal v1 segment"...)
	info = binary.BigEndian.AppendUint32(info, binary.BigEndian.Uint32(s.header[4:8]))
	info = binary.BigEndian.AppendUint32(info, ChunkSize)
	key, err := hkdf.Key(sha256.New, dataKey, s.header[8:], string(info), 32)
	if err != nil {
		return fmt.Errorf("deriving segment key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("segment cipher: %w", err)
	}
	s.aead, err = cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("segment cipher: %w", err)
	}
	return nil
}

func (s *segment) setNonce(idx uint64, final bool) {
	// uint88 counter: the top 3 bytes stay zero, 2^64 chunks is plenty.
	binary.BigEndian.PutUint64(s.nonce[3:11], idx)
	s.nonce[11] = 0
	if final {
		s.nonce[11] = 1
	}
}

func (s *segment) seal(dst, plaintext []byte, idx uint64, final bool) []byte {
	s.setNonce(idx, final)
	return s.aead.Seal(dst, s.nonce[:], plaintext, s.header[:])
}

func (s *segment) open(dst, ciphertext []byte, idx uint64, final bool) ([]byte, error) {
	s.setNonce(idx, final)
	return s.aead.Open(dst, s.nonce[:], ciphertext, s.header[:])
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
	pump
}

// NewEncryptReader encrypts src as segment number part (1 for a single PUT,
// the part number for a multipart part) under dataKey. When size is not
// negative, src must yield exactly size bytes: fewer or more is an error,
// so a client that goes away mid-body never yields a shorter valid segment.
func NewEncryptReader(src io.Reader, dataKey []byte, part uint32, size int64) (*EncryptReader, error) {
	var salt [saltSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, fmt.Errorf("segment salt: %w", err)
	}
	return newEncryptReader(src, dataKey, part, size, salt[:])
}

func newEncryptReader(src io.Reader, dataKey []byte, part uint32, size int64, salt []byte) (*EncryptReader, error) {
	if part == 0 {
		return nil, errors.New("segment numbers start at 1")
	}
	seg, err := newSegment(dataKey, part, salt)
	if err != nil {
		return nil, err
	}
	bufSize := encChunkSize + 1
	if size >= 0 && size < ChunkSize {
		bufSize = int(size) + TagSize + 1 // small objects are common: don't pay for a whole chunk
	}
	r := &EncryptReader{src: src, seg: seg, remaining: size}
	if bufSize == encChunkSize+1 {
		r.buf = getChunkBuf()
		r.release = func() { putChunkBuf(r.buf) }
	} else {
		r.buf = make([]byte, bufSize)
	}
	r.out, r.pump.next = seg.header[:], r.next
	if size < 0 {
		r.remaining = -1
	}
	return r, nil
}

// next seals the next chunk into r.out.
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
	r.out = r.seg.seal(r.buf[:0], r.buf[:n], r.idx, final)
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
// chunk of the last segment has been authenticated.
type DecryptReader struct {
	src          io.Reader
	dataKey      []byte
	wantSegments int
	seg          *segment
	segNum       uint32
	idx          uint64
	ct           []byte // one chunk plus one byte read ahead
	carried      int    // bytes at the start of ct already read from src
	pt           []byte
	pump
}

// NewDecryptReader decrypts src, an object's stored body. wantSegments is
// the number of segments the object must have (from the listing's ETag), or
// 0 when unknown.
func NewDecryptReader(src io.Reader, dataKey []byte, wantSegments int) *DecryptReader {
	r := &DecryptReader{
		src:          src,
		dataKey:      dataKey,
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
func NewPartDecryptReader(src io.Reader, dataKey []byte, part uint32) *DecryptReader {
	r := NewDecryptReader(src, dataKey, int(part))
	r.segNum = part - 1
	return r
}

// startSegment reads and checks the next segment header. It reports false at
// a clean end of the object.
func (r *DecryptReader) startSegment() (bool, error) {
	got, err := io.ReadFull(r.src, r.ct[r.carried:HeaderSize])
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
	r.seg, err = parseSegment(r.dataKey, r.ct[:HeaderSize], r.segNum+1)
	if err != nil {
		return false, err
	}
	r.segNum++
	r.idx = 0
	return true, nil
}

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
	got, err := io.ReadFull(r.src, r.ct[r.carried:])
	n := r.carried + got
	r.carried = 0
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("reading ciphertext: %w", err)
	}
	where := func() string { return fmt.Sprintf("segment %d chunk %d", r.segNum, r.idx) }
	switch {
	case n < TagSize:
		return fmt.Errorf("%s: ends without its final chunk: %w", where(), ErrTruncated)
	case n <= encChunkSize:
		// The stream ends inside or right after this chunk: it must be the
		// last chunk of the last segment.
		r.out, err = r.seg.open(r.pt[:0], r.ct[:n], r.idx, true)
		if err != nil {
			return fmt.Errorf("%s (last in stream): %w", where(), ErrAuthentication)
		}
		r.seg = nil
	default:
		// A full chunk with more bytes behind it: either a middle chunk or
		// the final chunk of a segment that another segment follows. Opening
		// into pt keeps ct intact for the second try.
		r.out, err = r.seg.open(r.pt[:0], r.ct[:encChunkSize], r.idx, false)
		if err != nil {
			r.out, err = r.seg.open(r.pt[:0], r.ct[:encChunkSize], r.idx, true)
			if err != nil {
				return fmt.Errorf("%s: %w", where(), ErrAuthentication)
			}
			r.seg = nil
		}
		r.ct[0] = r.ct[encChunkSize]
		r.carried = 1
	}
	r.idx++
	return nil
}

// chunkPool holds chunk buffers (a sealed chunk plus one byte of
// lookahead), so that a stream over a small object does not pay for
// allocating and zeroing 128 KiB; streams hand theirs back when they end.
var chunkPool = sync.Pool{New: func() any { return new([encChunkSize + 1]byte) }}

func getChunkBuf() []byte { return chunkPool.Get().(*[encChunkSize + 1]byte)[:] }

// putChunkBuf takes any reslice of a buffer from getChunkBuf.
func putChunkBuf(b []byte) { chunkPool.Put((*[encChunkSize + 1]byte)(b[:encChunkSize+1])) }

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
