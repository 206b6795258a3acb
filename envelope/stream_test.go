package envelope

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"sync"
	"testing"
	"testing/iotest"
)

const C = ChunkSize

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, DataKeySize) }

// pattern is a deterministic, non-repeating-per-chunk plaintext.
func pattern(n int64) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i/251)
	}
	return p
}

// sealSegment encrypts one segment with a fixed salt derived from part, so
// tests are repeatable.
func sealSegment(t testing.TB, key, plain []byte, part uint32, size int64) []byte {
	t.Helper()
	return sealFramed(t, FramingV1, key, plain, part, size)
}

// sealFramed is sealSegment for either framing; a FramingV2 segment records
// the CRC32C of its plaintext (testRecord).
func sealFramed(t testing.TB, f Framing, key, plain []byte, part uint32, size int64) []byte {
	t.Helper()
	return sealSalted(t, f, key, plain, part, size, bytes.Repeat([]byte{byte(part), 0x5a}, saltSize/2))
}

// sealSalted is sealFramed with the given salt.
func sealSalted(t testing.TB, f Framing, key, plain []byte, part uint32, size int64, salt []byte) []byte {
	t.Helper()
	var record RecordFunc
	if f == FramingV2 {
		record = func() (Checksum, error) { return testRecord(plain), nil }
	}
	r, err := newEncryptReader(bytes.NewReader(plain), key, part, size, salt, record)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sealObject stores plain as segments of the given layout, numbered 1..N.
func sealObject(t testing.TB, key, plain []byte, layout Layout) []byte {
	t.Helper()
	var out []byte
	var off int64
	for i, n := range layout.Parts {
		out = append(out, sealFramed(t, layout.Framing, key, plain[off:off+n], uint32(i+1), n)...)
		off += n
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	key := testKey(1)
	sizes := []int64{0, 1, 15, 16, 17, C - 1, C, C + 1, 2*C - 1, 2 * C, 2*C + 1, 5*C + 123}
	for _, size := range sizes {
		for _, known := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d/known=%v", size, known), func(t *testing.T) {
				plain := pattern(size)
				declared := size
				if !known {
					declared = -1
				}
				// OneByteReader shakes out assumptions about full reads.
				r, err := NewEncryptReader(iotest.OneByteReader(bytes.NewReader(plain)), key, 1, declared)
				if err != nil {
					t.Fatal(err)
				}
				stored, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(stored)) != SegmentSize(size) {
					t.Fatalf("stored %d bytes, SegmentSize says %d", len(stored), SegmentSize(size))
				}
				if got, err := SegmentPlaintextSize(int64(len(stored))); err != nil || got != size {
					t.Fatalf("SegmentPlaintextSize = %d, %v", got, err)
				}
				got, err := io.ReadAll(iotest.HalfReader(NewDecryptReader(bytes.NewReader(stored), key, FramingV1, 1)))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, plain) {
					t.Fatal("plaintext differs after round trip")
				}
				// WriteTo paths give the same bytes.
				var viaWriteTo bytes.Buffer
				r2, _ := newEncryptReader(bytes.NewReader(plain), key, 1, declared, stored[8:32], nil)
				if _, err := io.Copy(&viaWriteTo, r2); err != nil || !bytes.Equal(viaWriteTo.Bytes(), stored) {
					t.Fatalf("EncryptReader.WriteTo differs (err %v)", err)
				}
				viaWriteTo.Reset()
				if _, err := io.Copy(&viaWriteTo, NewDecryptReader(bytes.NewReader(stored), key, FramingV1, 0)); err != nil || !bytes.Equal(viaWriteTo.Bytes(), plain) {
					t.Fatalf("DecryptReader.WriteTo differs (err %v)", err)
				}
			})
		}
	}
}

func TestEncryptDeclaredSize(t *testing.T) {
	key := testKey(1)
	tests := []struct {
		name     string
		actual   int64
		declared int64
	}{
		{"short by one", C, C + 1},
		{"short by a chunk", 2 * C, 3 * C},
		{"empty but declared", 0, 10},
		{"long by one", C + 1, C},
		{"long, declared empty", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewEncryptReader(bytes.NewReader(pattern(tt.actual)), key, 1, tt.declared)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(r); err == nil {
				t.Fatal("mismatched size accepted")
			}
		})
	}
}

func TestEncryptSourceError(t *testing.T) {
	boom := errors.New("client went away")
	src := io.MultiReader(bytes.NewReader(pattern(C+5)), iotest.ErrReader(boom))
	for _, size := range []int64{-1, 3 * C} {
		r, _ := NewEncryptReader(src, testKey(1), 1, size)
		if _, err := io.ReadAll(r); !errors.Is(err, boom) {
			t.Fatalf("size %d: got %v, want the source's error", size, err)
		}
	}
}

func TestFreshSaltPerSegment(t *testing.T) {
	key, plain := testKey(1), pattern(100)
	a, _ := NewEncryptReader(bytes.NewReader(plain), key, 1, 100)
	b, _ := NewEncryptReader(bytes.NewReader(plain), key, 1, 100)
	sa, _ := io.ReadAll(a)
	sb, _ := io.ReadAll(b)
	if bytes.Equal(sa[8:32], sb[8:32]) || bytes.Equal(sa[32:], sb[32:]) {
		t.Fatal("two encryptions of the same part under one key share salt or ciphertext")
	}
}

func TestMultiSegmentRoundTrip(t *testing.T) {
	for _, f := range []Framing{FramingV1, FramingV2} {
		t.Run(fmt.Sprint("framing ", f), func(t *testing.T) { testMultiSegmentRoundTrip(t, f) })
	}
}

func testMultiSegmentRoundTrip(t *testing.T, f Framing) {
	key := testKey(2)
	sizes := [][]int64{
		{C, 1},
		{C, C},
		{2 * C, C, 17},
		{C, 0},
		{3 * C, 2 * C, C - 1},
		{C, C, C, C, 5},
	}
	for _, p := range sizes {
		l := Layout{Framing: f, Parts: p}
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			plain := pattern(l.PlaintextSize())
			stored := sealObject(t, key, plain, l)
			if int64(len(stored)) != l.CiphertextSize() {
				t.Fatalf("stored %d, CiphertextSize %d", len(stored), l.CiphertextSize())
			}
			got, err := ObjectPlaintextSize(int64(len(stored)), len(p))
			if err != nil || got != l.PlaintextSize() {
				t.Fatalf("ObjectPlaintextSize = %d, %v; want %d", got, err, l.PlaintextSize())
			}
			for _, want := range []int{0, len(p)} {
				out, err := io.ReadAll(NewDecryptReader(bytes.NewReader(stored), key, f, want))
				if err != nil || !bytes.Equal(out, plain) {
					t.Fatalf("wantSegments=%d: err %v, equal %v", want, err, bytes.Equal(out, plain))
				}
			}
			// The segment count is enforced when known.
			for _, want := range []int{len(p) - 1, len(p) + 1} {
				if want < 1 {
					continue
				}
				if _, err := io.ReadAll(NewDecryptReader(bytes.NewReader(stored), key, f, want)); err == nil {
					t.Fatalf("wantSegments=%d accepted a %d-segment object", want, len(p))
				}
			}
			// Read under the other framing, it fails.
			if _, err := io.ReadAll(NewDecryptReader(bytes.NewReader(stored), key, 3-f, 0)); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("read as framing %d: %v, want ErrAuthentication", 3-f, err)
			}
		})
	}
}

func TestPartDecryptReader(t *testing.T) {
	for _, f := range []Framing{FramingV1, FramingV2} {
		t.Run(fmt.Sprint("framing ", f), func(t *testing.T) { testPartDecryptReader(t, f) })
	}
}

func testPartDecryptReader(t *testing.T, f Framing) {
	key := testKey(3)
	l := Layout{Framing: f, Parts: []int64{2 * C, C, 17, 0}}
	plain := pattern(l.PlaintextSize())
	stored := sealObject(t, key, plain, l)
	var soff, poff int64
	var parts [][]byte
	for _, n := range l.Parts {
		parts = append(parts, stored[soff:soff+SegmentSize(n)])
		soff += SegmentSize(n)
	}
	for i, n := range l.Parts {
		got, err := io.ReadAll(NewPartDecryptReader(bytes.NewReader(parts[i]), key, f, uint32(i+1)))
		if err != nil || !bytes.Equal(got, plain[poff:poff+n]) {
			t.Fatalf("part %d: %v", i+1, err)
		}
		poff += n
		// At another position, or with a neighbour appended, it fails.
		if _, err := io.ReadAll(NewPartDecryptReader(bytes.NewReader(parts[i]), key, f, uint32(i+2))); err == nil {
			t.Errorf("part %d read as part %d", i+1, i+2)
		}
		if i+1 < len(parts) {
			two := append(append([]byte(nil), parts[i]...), parts[i+1]...)
			if _, err := io.ReadAll(NewPartDecryptReader(bytes.NewReader(two), key, f, uint32(i+1))); err == nil {
				t.Errorf("part %d with part %d appended accepted", i+1, i+2)
			}
		}
		if _, err := io.ReadAll(NewPartDecryptReader(bytes.NewReader(parts[i][:len(parts[i])-1]), key, f, uint32(i+1))); err == nil {
			t.Errorf("truncated part %d accepted", i+1)
		}
	}
}

// genReader yields n bytes of a 251-periodic pattern without holding them.
type genReader struct{ left, pos int64 }

var genBlock = func() []byte {
	b := make([]byte, C+251)
	for i := range b {
		b[i] = byte(i%251*7 + 3)
	}
	return b
}()

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), g.left, C))
	copy(p, genBlock[g.pos%251:][:n])
	g.left -= int64(n)
	g.pos += int64(n)
	return n, nil
}

// TestLargeStreamConstantMemory pushes 1 GiB through encryption and
// decryption (with io.Pipe, no WriteTo shortcuts) and checks that the bytes
// allocated on the way are independent of the stream's length.
func TestLargeStreamConstantMemory(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	key := testKey(3)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	enc, err := NewEncryptReader(&genReader{left: size}, key, 1, size)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 32<<10)
		_, err := io.CopyBuffer(pw, struct{ io.Reader }{enc}, buf)
		pw.CloseWithError(err)
	}()
	h := sha256.New()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{NewDecryptReader(pr, key, FramingV1, 1)}, make([]byte, 32<<10))
	if err != nil || n != size {
		t.Fatalf("decrypted %d bytes, err %v", n, err)
	}
	runtime.ReadMemStats(&after)
	want := sha256.New()
	io.Copy(want, &genReader{left: size})
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatal("large stream differs after round trip")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("allocated %d bytes for a %d-byte stream: not constant memory", alloc, size)
	}
}

// TestPooledBuffersConcurrent runs many streams at once, so that buffers
// handed back to the pool by finished streams are reused by others while
// the race detector watches, and reads a finished stream again.
func TestPooledBuffersConcurrent(t *testing.T) {
	key := testKey(13)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				size := int64((g*20 + i) * 7919 % (3 * C))
				plain := pattern(size)
				r, err := NewEncryptReader(bytes.NewReader(plain), key, 1, size)
				if err != nil {
					t.Error(err)
					return
				}
				stored, err := io.ReadAll(r)
				if err != nil {
					t.Error(err)
					return
				}
				dec := NewDecryptReader(bytes.NewReader(stored), key, FramingV1, 1)
				got, err := io.ReadAll(dec)
				if err != nil || !bytes.Equal(got, plain) {
					t.Errorf("size %d: err %v, equal %v", size, err, bytes.Equal(got, plain))
					return
				}
				// A finished stream stays finished and touches no buffer.
				if n, err := dec.Read(make([]byte, 10)); n != 0 || err != io.EOF {
					t.Errorf("read after EOF: %d, %v", n, err)
				}
				if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
					t.Errorf("encrypt read after EOF: %d, %v", n, err)
				}
			}
		}()
	}
	wg.Wait()
}

// v1 is a FramingV1 layout of the given part sizes.
func v1(parts ...int64) Layout { return Layout{Framing: FramingV1, Parts: parts} }

// objectSize is the stored size of a FramingV1 object of the given parts.
func objectSize(parts ...int64) int64 { return v1(parts...).CiphertextSize() }

// testRecord is the part checksum FramingV2 test segments record.
func testRecord(plain []byte) Checksum {
	v := crc32.Checksum(plain, crc32.MakeTable(crc32.Castagnoli))
	return Checksum{Algorithm: "CRC32C", Type: ChecksumComposite, Value: binary.BigEndian.AppendUint32(nil, v)}
}
