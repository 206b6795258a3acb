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
