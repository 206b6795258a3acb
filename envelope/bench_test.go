package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"io"
	"testing"
)

var benchSizes = []struct {
	name string
	size int64
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
	{"64MiB", 64 << 20},
}

// cyclicReader yields n bytes by cycling over a 1 MiB block. Plaintext
// arriving from a socket is in cache when s3seal reads it; a 64 MiB
// bytes.Reader would instead time the machine's DRAM bandwidth.
type cyclicReader struct {
	block []byte
	off   int
	left  int64
}

func (c *cyclicReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(int64(len(p)), c.left)], c.block[c.off:])
	c.off = (c.off + n) % len(c.block)
	c.left -= int64(n)
	return n, nil
}

var benchBlock = pattern(1 << 20)

// BenchmarkEncrypt measures one segment's encryption to io.Discard, the
// format's cost without I/O.
func BenchmarkEncrypt(b *testing.B) {
	key := testKey(1)
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			b.SetBytes(bs.size)
			for b.Loop() {
				r, err := NewEncryptReader(&cyclicReader{block: benchBlock, left: bs.size}, key, 1, bs.size)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	key := testKey(1)
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			stored := sealSegment(b, key, pattern(bs.size), 1, bs.size)
			src := bytes.NewReader(stored)
			b.SetBytes(bs.size)
			for b.Loop() {
				src.Reset(stored)
				if _, err := io.Copy(io.Discard, NewDecryptReader(src, key, FramingV1, 1)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawAESGCM is the yardstick: AES-256-GCM over 64 KiB chunks with
// nothing else (no stream, no header, no key derivation), on the same data
// as the benchmarks above: Seal of 64 MiB cycled from the 1 MiB block, Open
// of 64 MiB of stored chunks, each into a buffer of its own. The format's
// goal is at least 0.8× of it.
func BenchmarkRawAESGCM(b *testing.B) {
	block, _ := aes.NewCipher(testKey(1))
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, nonceSize)
	const size = 64 << 20
	b.Run("Seal64MiB", func(b *testing.B) {
		b.SetBytes(size)
		dst := make([]byte, 0, encChunkSize)
		for b.Loop() {
			for off := 0; off < size; off += ChunkSize {
				src := off % len(benchBlock)
				dst = aead.Seal(dst[:0], nonce, benchBlock[src:src+ChunkSize], nil)
			}
		}
	})
	sealed := make([]byte, 0, size+size/ChunkSize*TagSize)
	for off := 0; off < size; off += ChunkSize {
		src := off % len(benchBlock)
		sealed = aead.Seal(sealed, nonce, benchBlock[src:src+ChunkSize], nil)
	}
	b.Run("Open64MiB", func(b *testing.B) {
		b.SetBytes(size)
		dst := make([]byte, 0, ChunkSize)
		for b.Loop() {
			for off := 0; off < len(sealed); off += encChunkSize {
				var err error
				if dst, err = aead.Open(dst[:0], nonce, sealed[off:off+encChunkSize], nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
