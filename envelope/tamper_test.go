package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// mustFail decrypts stored as a whole object and requires an error and no
// plaintext beyond what matched the original before the damage.
func mustFail(t *testing.T, what string, stored, key []byte, segments int, plain []byte) {
	t.Helper()
	got, err := io.ReadAll(NewDecryptReader(bytes.NewReader(stored), key, FramingV1, segments))
	if err == nil {
		t.Fatalf("%s: decrypted without error", what)
	}
	if !errors.Is(err, ErrAuthentication) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("%s: error %v is not a tamper error", what, err)
	}
	// Whatever was handed out before the error was authenticated, so it is a
	// prefix of the true plaintext: never other bytes.
	if !bytes.HasPrefix(plain, got) {
		t.Fatalf("%s: yielded bytes that are not the plaintext", what)
	}
}

func TestTamperEveryByte(t *testing.T) {
	key := testKey(5)
	for _, size := range []int64{0, 100, C + 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			plain := pattern(size)
			stored := sealSegment(t, key, plain, 1, size)
			step := 1
			if len(stored) > 4096 {
				step = 31 // every header byte and the last chunk's edges are added below
			}
			positions := []int{}
			for i := 0; i < len(stored); i += step {
				positions = append(positions, i)
			}
			for i := 0; i < HeaderSize; i++ {
				positions = append(positions, i)
			}
			for i := len(stored) - 2*TagSize; i < len(stored); i++ {
				positions = append(positions, i)
			}
			for _, i := range positions {
				for _, mask := range []byte{0x01, 0x80} {
					bad := bytes.Clone(stored)
					bad[i] ^= mask
					mustFail(t, fmt.Sprintf("flip byte %d by %#x", i, mask), bad, key, 1, plain)
				}
			}
		})
	}
}

func TestTamperEveryByteMultiSegment(t *testing.T) {
	// A small unaligned layout read through the range reader, which knows
	// each segment's size, so every stored byte can be flipped.
	key := testKey(6)
	l := v1(10, 20, 5)
	plain := pattern(l.PlaintextSize())
	stored := sealObject(t, key, plain, l)
	for i := range stored {
		bad := bytes.Clone(stored)
		bad[i] ^= 0x04
		got, err := readRange(t, bad, key, l, 0, l.PlaintextSize())
		if err == nil {
			t.Fatalf("flip byte %d: decrypted without error", i)
		}
		if !bytes.HasPrefix(plain, got) {
			t.Fatalf("flip byte %d: yielded wrong bytes", i)
		}
	}
}

func TestTruncation(t *testing.T) {
	key := testKey(7)
	size := int64(3*C + 5)
	plain := pattern(size)
	stored := sealSegment(t, key, plain, 1, size)
	cuts := map[int]bool{0: true, 1: true, HeaderSize - 1: true, HeaderSize: true, HeaderSize + 1: true}
	for c := 0; c <= 4; c++ {
		b := HeaderSize + c*encChunkSize
		for _, d := range []int{-TagSize - 1, -TagSize, -1, 0, 1, TagSize, TagSize + 1, encChunkSize / 2} {
			cuts[b+d] = true
		}
	}
	for cut := range cuts {
		if cut < 0 || cut >= len(stored) {
			continue
		}
		mustFail(t, fmt.Sprintf("truncated to %d of %d", cut, len(stored)), stored[:cut], key, 1, plain)
	}
	// Extra bytes after the final chunk are refused too.
	mustFail(t, "one byte appended", append(bytes.Clone(stored), 0), key, 1, plain)
	mustFail(t, "a header appended", append(bytes.Clone(stored), stored[:HeaderSize]...), key, 0, plain)
}

func TestTruncationAcrossSegments(t *testing.T) {
	key := testKey(8)
	l := v1(C, 2*C, 5)
	plain := pattern(l.PlaintextSize())
	stored := sealObject(t, key, plain, l)
	s1, s2 := SegmentSize(C), SegmentSize(C)+SegmentSize(2*C)
	for _, cut := range []int64{s1 - 1, s1 + 1, s1 + HeaderSize, s2 - TagSize, s2 + HeaderSize, int64(len(stored)) - 1} {
		mustFail(t, fmt.Sprintf("cut at %d", cut), stored[:cut], key, 0, plain)
	}
	// Dropping whole trailing segments leaves a valid shorter object; the
	// segment count from the listing is what catches it.
	for _, cut := range []int64{s1, s2} {
		mustFail(t, fmt.Sprintf("cut at segment boundary %d", cut), stored[:cut], key, len(l.Parts), plain)
	}
}

func chunkAt(i int) (int, int) { return HeaderSize + i*encChunkSize, HeaderSize + (i+1)*encChunkSize }

func TestReorderAndSwap(t *testing.T) {
	key, otherKey := testKey(9), testKey(10)
	size := int64(3*C + 100)
	plain := pattern(size)
	stored := sealSegment(t, key, plain, 1, size)
	other := func() []byte { // another key and another salt
		r, _ := newEncryptReader(bytes.NewReader(plain), otherKey, 1, size, bytes.Repeat([]byte{0xee}, saltSize), nil)
		b, _ := io.ReadAll(r)
		return b
	}()
	sameKeyOtherSalt := sealSegment(t, key, plain, 2, size) // part 2's salt differs
	sameKeyOtherSalt[4:8][3] = 1                            // claims to be part 1

	swap := func(a, b int) []byte {
		out := bytes.Clone(stored)
		a0, a1 := chunkAt(a)
		b0, b1 := chunkAt(b)
		copy(out[a0:a1], stored[b0:b1])
		copy(out[b0:b1], stored[a0:a1])
		return out
	}
	replace := func(i int, from []byte) []byte {
		out := bytes.Clone(stored)
		a0, a1 := chunkAt(i)
		copy(out[a0:a1], from[a0:a1])
		return out
	}
	// dup12 holds chunk 1 where chunk 2 belongs.
	dup12 := bytes.Clone(stored)
	a0, a1 := chunkAt(1)
	b0, _ := chunkAt(2)
	copy(dup12[b0:], stored[a0:a1])
	tests := []struct {
		name   string
		stored []byte
	}{
		{"chunks 0 and 1 swapped", swap(0, 1)},
		{"chunks 1 and 2 swapped", swap(1, 2)},
		{"chunk 1 duplicated over 2", replace(2, dup12)},
		{"chunk from another object", replace(1, other)},
		{"chunk from another segment of the same key", replace(1, sameKeyOtherSalt)},
		{"header from another segment of the same key", append(bytes.Clone(sameKeyOtherSalt[:HeaderSize]), stored[HeaderSize:]...)},
		{"header from another object", append(bytes.Clone(other[:HeaderSize]), stored[HeaderSize:]...)},
		{"whole object under another key", other},
	}
	for _, tt := range tests {
		mustFail(t, tt.name, tt.stored, key, 1, plain)
	}
}

func TestSegmentSwaps(t *testing.T) {
	key := testKey(11)
	l := v1(C, C, 50)
	plain := pattern(l.PlaintextSize())
	stored := sealObject(t, key, plain, l)
	seg := func(b []byte, i int) []byte {
		start := int64(0)
		for j := 0; j < i; j++ {
			start += SegmentSize(l.Parts[j])
		}
		return b[start : start+SegmentSize(l.Parts[i])]
	}
	otherObj := sealObject(t, testKey(12), plain, l)
	reupload := sealObject(t, key, pattern(l.PlaintextSize() + 1)[1:], l) // same key, other bytes
	relabeled := bytes.Clone(seg(stored, 0))
	relabeled[7] = 2 // segment 1 claiming to be part 2
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name   string
		stored []byte
	}{
		{"parts 1 and 2 reordered", cat(seg(stored, 1), seg(stored, 0), seg(stored, 2))},
		{"part 1 repeated as part 2", cat(seg(stored, 0), seg(stored, 0), seg(stored, 2))},
		{"part 1 relabeled as part 2", cat(seg(stored, 0), relabeled, seg(stored, 2))},
		{"part 2 from another object", cat(seg(stored, 0), seg(otherObj, 1), seg(stored, 2))},
		{"middle part dropped", cat(seg(stored, 0), seg(stored, 2))},
	}
	for _, tt := range tests {
		mustFail(t, tt.name, tt.stored, key, 0, plain)
	}
	// A part re-uploaded under the same data key replaces the old one
	// cleanly: it is what the client sent for that part number.
	mixed := cat(seg(stored, 0), seg(reupload, 1), seg(stored, 2))
	if _, err := io.ReadAll(NewDecryptReader(bytes.NewReader(mixed), key, FramingV1, 3)); err != nil {
		t.Fatalf("re-uploaded part: %v", err)
	}
}
