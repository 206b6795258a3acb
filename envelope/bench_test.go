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

// BenchmarkEncrypt measures one segment's encryption from memory to
// io.Discard, the format's cost without I/O.
func BenchmarkEncrypt(b *testing.B) {
	key := testKey(1)
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			plain := pattern(bs.size)
			src := bytes.NewReader(plain)
			b.SetBytes(bs.size)
			for b.Loop() {
				src.Reset(plain)
				r, err := NewEncryptReader(src, key, 1, bs.size)
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
				if _, err := io.Copy(io.Discard, NewDecryptReader(src, key, 1)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawAESGCM is the yardstick: AES-256-GCM Seal and Open of the same
// 64 MiB in 64 KiB chunks, from one buffer into another, with nothing else
// (no stream, no header, no key derivation). The format's goal is at least
// 0.8× of it.
func BenchmarkRawAESGCM(b *testing.B) {
	block, _ := aes.NewCipher(testKey(1))
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, nonceSize)
	const size = 64 << 20
	plain := pattern(size)
	sealed := make([]byte, 0, size+size/ChunkSize*TagSize)
	for off := 0; off < size; off += ChunkSize {
		sealed = aead.Seal(sealed, nonce, plain[off:off+ChunkSize], nil)
	}
	b.Run("Seal64MiB", func(b *testing.B) {
		b.SetBytes(size)
		dst := make([]byte, 0, len(sealed))
		for b.Loop() {
			dst = dst[:0]
			for off := 0; off < size; off += ChunkSize {
				dst = aead.Seal(dst, nonce, plain[off:off+ChunkSize], nil)
			}
		}
	})
	b.Run("Open64MiB", func(b *testing.B) {
		b.SetBytes(size)
		dst := make([]byte, 0, size)
		for b.Loop() {
			dst = dst[:0]
			for off := 0; off < len(sealed); off += encChunkSize {
				var err error
				if dst, err = aead.Open(dst, nonce, sealed[off:off+encChunkSize], nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
