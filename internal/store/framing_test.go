package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"testing/iotest"
)

// unframe decodes what a chunkedBody framed (as far as it got).
func unframe(t testing.TB, framed []byte) []byte {
	t.Helper()
	var out []byte
	for len(framed) > 0 {
		line, rest, ok := bytes.Cut(framed, []byte("\r\n"))
		if !ok {
			break
		}
		n, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil || n == 0 || int64(len(rest)) < n {
			out = append(out, rest[:min(int64(len(rest)), max(n, 0))]...)
			break
		}
		out = append(out, rest[:n]...)
		framed = rest[min(int64(len(rest)), n+2):]
	}
	return out
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestChunkedBody: the framing is what sigv4's decoder (the one s3seal
// verifies clients' aws-chunked bodies with) reads back as the body, with a
// trailer that checks; its length is framedLength; a source cut short or
// longer than declared never yields the final chunk.
func TestChunkedBody(t *testing.T) {
	for _, n := range []int{0, 1, frameChunk - 1, frameChunk, frameChunk + 1, 3*frameChunk + 17} {
		data := randomBytes(n, uint64(n))
		framed, err := io.ReadAll(iotest.OneByteReader(newChunkedBody(bytes.NewReader(data), int64(n))))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if int64(len(framed)) != framedLength(int64(n)) {
			t.Errorf("%d bytes framed to %d, framedLength says %d", n, len(framed), framedLength(int64(n)))
		}
		if got := unframe(t, framed); !bytes.Equal(got, data) {
			t.Errorf("%d bytes: decoded %d", n, len(got))
		}
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc32.Checksum(data, castagnoli))
		if !bytes.HasSuffix(framed, []byte(finalChunk(sum[:]))) {
			t.Errorf("%d bytes: framing ends %q", n, framed[max(0, len(framed)-40):])
		}
	}
	for name, src := range map[string]io.Reader{
		"cut short":  io.MultiReader(bytes.NewReader(make([]byte, 100)), iotest.ErrReader(errors.New("client went away"))),
		"ends early": bytes.NewReader(make([]byte, 100)),
		"too long":   bytes.NewReader(make([]byte, 300)),
	} {
		framed, err := io.ReadAll(newChunkedBody(src, 200))
		if err == nil || bytes.Contains(framed, []byte("\r\n0\r\n")) {
			t.Errorf("%s: %v, final chunk sent: %v", name, err, bytes.Contains(framed, []byte("\r\n0\r\n")))
		}
	}
}

// TestChunkedBodyFillsReads: every Read but the last fills the caller's
// buffer, framing and data together, however the source hands out its
// bytes (here in sealed-chunk-sized pieces that do not line up with the
// frames). The transport writes each Read to the store as it comes, and
// framing returned on its own would be a write of a few bytes. Framing
// allocates nothing per chunk.
func TestChunkedBodyFillsReads(t *testing.T) {
	const n = 1<<20 + 5
	data := randomBytes(n, 1)
	body := newChunkedBody(&pieces{data: data, size: 65536 + 16}, n)
	buf := make([]byte, 32<<10)
	var framed []byte
	var short int
	for {
		k, err := body.Read(buf)
		framed = append(framed, buf[:k]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if k < len(buf) {
			short++
		}
	}
	if short > 1 {
		t.Errorf("%d Reads returned less than the buffer before the end, want at most the last", short)
	}
	if int64(len(framed)) != framedLength(n) || !bytes.Equal(unframe(t, framed), data) {
		t.Errorf("framed %d bytes (framedLength %d) that decode to other data", len(framed), framedLength(n))
	}
	allocs := testing.AllocsPerRun(5, func() {
		io.CopyBuffer(io.Discard, struct{ io.Reader }{newChunkedBody(bytes.NewReader(data), n)}, buf)
	})
	if allocs > 10 { // the body, its CRC and the final chunk; 17 chunks here
		t.Errorf("framing %d bytes allocated %v times", n, allocs)
	}
}

// pieces yields data at most size bytes at a time, split at multiples of
// size as an EncryptReader splits at its sealed chunks.
type pieces struct {
	data []byte
	off  int
	size int
}

func (p *pieces) Read(b []byte) (int, error) {
	if p.off == len(p.data) {
		return 0, io.EOF
	}
	end := min(len(p.data), p.off+len(b), (p.off/p.size+1)*p.size)
	n := copy(b, p.data[p.off:end])
	p.off += n
	return n, nil
}
