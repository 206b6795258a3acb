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

// BenchmarkRawAESGCM is the yardstick: AES-256-GCM Seal and Open in place
// over 64 KiB chunks with nothing else. The format's goal is at least 0.8×.
func BenchmarkRawAESGCM(b *testing.B) {
	block, _ := aes.NewCipher(testKey(1))
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, nonceSize)
	buf := make([]byte, ChunkSize, ChunkSize+TagSize)
	sealed := aead.Seal(nil, nonce, buf, nil)
	b.Run("Seal64KiB", func(b *testing.B) {
		b.SetBytes(ChunkSize)
		for b.Loop() {
			aead.Seal(buf[:0], nonce, buf, nil)
		}
	})
	b.Run("Open64KiB", func(b *testing.B) {
		b.SetBytes(ChunkSize)
		ct := make([]byte, len(sealed))
		for b.Loop() {
			copy(ct, sealed)
			if _, err := aead.Open(ct[:0], nonce, ct, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
