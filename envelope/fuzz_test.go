package envelope

import (
	"bytes"
	"encoding/base64"
	"io"
	"testing"
)

// FuzzDecrypt feeds arbitrary stored bytes to both decrypters: they must
// never panic, and whatever they yield before failing must be plaintext that
// the key really sealed (here: a prefix of the seed object's plaintext, since
// the fuzzer cannot forge a tag).
func FuzzDecrypt(f *testing.F) {
	key := testKey(42)
	plain := pattern(2*C + 7)
	l := v1(C, C+7)
	stored := sealObject(f, key, plain, l)
	f.Add(stored, uint8(0))
	f.Add(stored[:HeaderSize+40], uint8(1))
	f.Add(sealSegment(f, key, nil, 1, 0), uint8(1))
	f.Add(sealSegment(f, key, plain[:100], 1, 100), uint8(1))
	f.Add([]byte{}, uint8(0))
	f.Add(bytes.Repeat([]byte{1}, HeaderSize+TagSize), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, segments uint8) {
		got, err := io.ReadAll(NewDecryptReader(bytes.NewReader(data), key, FramingV1, int(segments%4)))
		if err == nil && !bytes.Equal(data, stored) && !bytes.HasPrefix(plain, got) {
			// Only s3seal's own seeds decrypt; they are prefixes of plain.
			t.Fatalf("decrypted %d unexpected bytes", len(got))
		}
		if err != nil && !bytes.HasPrefix(plain, got) {
			t.Fatalf("yielded %d unauthenticated bytes before failing", len(got))
		}
		// The range reader over the same bytes, as if they were the object.
		sp, err := l.span(0, l.PlaintextSize())
		if err != nil {
			t.Fatal(err)
		}
		rr, err := newRangeReader(bytes.NewReader(data), key, l, sp, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(rr)
		if !bytes.HasPrefix(plain, got) {
			t.Fatalf("range reader yielded %d wrong bytes (err %v)", len(got), err)
		}
	})
}

// FuzzRoundTrip checks that any plaintext, split into any aligned layout,
// decrypts to itself.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint8(1))
	f.Add(pattern(C+1), uint8(2))
	f.Fuzz(func(t *testing.T, plain []byte, segs uint8) {
		n := int(segs%3) + 1
		l := v1(make([]int64, n)...)
		rest := int64(len(plain))
		for i := range n - 1 {
			l.Parts[i] = C
			rest -= C
		}
		if rest < 0 {
			l = v1(int64(len(plain)))
		} else {
			l.Parts[n-1] = rest
		}
		stored := sealObject(t, testKey(3), plain, l)
		got, err := io.ReadAll(NewDecryptReader(bytes.NewReader(stored), testKey(3), FramingV1, len(l.Parts)))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("round trip of %d bytes in %v: %v", len(plain), l, err)
		}
	})
}

// FuzzParseMetadata: no panics, and what parses re-encodes to itself.
func FuzzParseMetadata(f *testing.F) {
	good := awsLike.UserMetadata()
	f.Add(good["s3seal-v"], good["s3seal-c"], good["s3seal-k"], "")
	f.Add("1", "key", "AAAA", "s3seal-x")
	f.Add("2", "", "", "")
	f.Add("1", "k", base64.StdEncoding.EncodeToString([]byte{0}), "X-Amz-Meta-S3seal-V")
	f.Fuzz(func(t *testing.T, v, c, k, extra string) {
		meta := map[string]string{"s3seal-v": v, "s3seal-c": c, "s3seal-k": k}
		if extra != "" {
			meta[extra] = v
		}
		m, err := ParseUserMetadata(meta)
		if err != nil {
			return
		}
		again, err := ParseUserMetadata(m.UserMetadata())
		if err != nil || again.KeyID != m.KeyID || !bytes.Equal(again.WrappedKey, m.WrappedKey) {
			t.Fatalf("re-encoding %+v failed: %v", m, err)
		}
	})
}
