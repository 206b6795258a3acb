package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSegmentSizeInverse checks every stored size up to four chunks: each is
// either the size of exactly one plaintext length or rejected.
func TestSegmentSizeInverse(t *testing.T) {
	valid := make(map[int64]int64)
	for p := int64(0); p <= 4*C; p++ {
		valid[SegmentSize(p)] = p
	}
	for s := int64(0); s <= SegmentSize(4*C); s++ {
		got, err := SegmentPlaintextSize(s)
		want, ok := valid[s]
		switch {
		case ok && (err != nil || got != want):
			t.Fatalf("SegmentPlaintextSize(%d) = %d, %v; want %d", s, got, err, want)
		case !ok && !errors.Is(err, ErrImpossibleSize):
			t.Fatalf("SegmentPlaintextSize(%d) = %d, %v; want ErrImpossibleSize", s, got, err)
		}
	}
}

func TestSegmentSizeExamples(t *testing.T) {
	tests := []struct{ plain, stored int64 }{
		{0, 48},
		{1, 49},
		{C, 32 + C + 16},
		{C + 1, 32 + C + 1 + 32},
		{5 << 20, 32 + 5<<20 + 16*80},
		{5 << 40, 32 + 5<<40 + 16*(5<<40/C)}, // the S3 object size limit
	}
	for _, tt := range tests {
		if got := SegmentSize(tt.plain); got != tt.stored {
			t.Errorf("SegmentSize(%d) = %d, want %d", tt.plain, got, tt.stored)
		}
		if got, err := SegmentPlaintextSize(tt.stored); err != nil || got != tt.plain {
			t.Errorf("SegmentPlaintextSize(%d) = %d, %v", tt.stored, got, err)
		}
	}
}

// TestObjectPlaintextSize: sizes are the same under every framing
// (round trips of both check what is stored against them).
func TestObjectPlaintextSize(t *testing.T) {
	const MiB = 1 << 20
	sizes := [][]int64{
		{0}, {1}, {C}, {C, 0}, {C, 1}, {C, C}, {C, C, C - 1},
		{5 * MiB, 5 * MiB, 0}, {8 * MiB, 8 * MiB, 3*MiB + 7}, {16 * MiB, 1},
		{5 * MiB, 5 * MiB, 5 * MiB, 5 * MiB, 5 * MiB},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + rng.IntN(6)
		l := make([]int64, n)
		for i := range n - 1 {
			l[i] = C * (1 + rng.Int64N(200))
		}
		l[n-1] = rng.Int64N(200 * C)
		sizes = append(sizes, l)
	}
	for _, parts := range sizes {
		l := v1(parts...)
		got, err := ObjectPlaintextSize(l.CiphertextSize(), len(parts))
		if err != nil || got != l.PlaintextSize() {
			t.Fatalf("layout %v: ObjectPlaintextSize = %d, %v; want %d", l, got, err, l.PlaintextSize())
		}
	}
	// Exhaustively near the small end: an aligned object is stored as
	// 32·segs + K·(C+16) + SegmentSize(last)-32 for K non-last chunks, so
	// enumerate K and the last part's size, and check that every stored size
	// inverts to its one plaintext size and that no other size inverts.
	for segs := 2; segs <= 4; segs++ {
		base := int64(HeaderSize * segs)
		maxK := int64(segs + 2)
		images := make(map[int64]int64)
		for k := int64(segs - 1); k <= maxK; k++ {
			for last := int64(0); last <= 3*C; last++ {
				s := base + k*encChunkSize + SegmentSize(last) - HeaderSize
				p := k*C + last
				if prev, dup := images[s]; dup && prev != p {
					t.Fatalf("%d segments: stored size %d is both %d and %d", segs, s, prev, p)
				}
				images[s] = p
			}
		}
		// Sizes below this come only from K <= maxK.
		limit := base + (maxK+1)*encChunkSize + TagSize
		for s := int64(0); s < limit; s++ {
			got, err := ObjectPlaintextSize(s, segs)
			want, ok := images[s]
			if ok && (err != nil || got != want) {
				t.Fatalf("%d segments, %d bytes: got %d, %v; want %d", segs, s, got, err, want)
			}
			if !ok && err == nil {
				t.Fatalf("%d segments, %d bytes: got %d for a size no aligned object has", segs, s, got)
			}
		}
	}
	for _, bad := range []struct {
		stored int64
		segs   int
	}{{0, 1}, {47, 1}, {C + 49, 1}, {100, 2}, {2 * 48, 2}, {48, 0}} {
		if got, err := ObjectPlaintextSize(bad.stored, bad.segs); !errors.Is(err, ErrImpossibleSize) {
			t.Errorf("ObjectPlaintextSize(%d, %d) = %d, %v; want ErrImpossibleSize", bad.stored, bad.segs, got, err)
		}
	}
}

// interesting returns the plaintext offsets around every chunk and segment
// boundary of a layout: the classes where range math can go wrong.
func interesting(l Layout) []int64 {
	set := map[int64]bool{}
	var start int64
	total := l.PlaintextSize()
	add := func(o int64) {
		if o >= 0 && o < total {
			set[o] = true
		}
	}
	for _, size := range l.Parts {
		for c := int64(0); c <= chunks(size); c++ {
			b := start + c*C
			add(b - 1)
			add(b)
			add(b + 1)
			add(b + C/2)
		}
		start += size
	}
	add(total - 1)
	out := make([]int64, 0, len(set))
	for o := range set {
		out = append(out, o)
	}
	return out
}

// readRange reads a range through OpenRange, fetching from stored; every
// fetch must stay within it.
func readRange(t testing.TB, stored, key []byte, l Layout, off, n int64) ([]byte, error) {
	t.Helper()
	fetch := func(at, m int64) (io.ReadCloser, error) {
		if at < 0 || m < 1 || at+m > int64(len(stored)) {
			t.Fatalf("fetch of %d+%d from %d stored bytes", at, m, len(stored))
		}
		return io.NopCloser(bytes.NewReader(stored[at : at+m])), nil
	}
	rr, err := OpenRange(fetch, key, l, off, n, nil)
	if err != nil {
		return nil, err
	}
	defer rr.Close()
	return io.ReadAll(rr)
}

// TestRanges decrypts every range whose ends fall in each boundary class of
// single- and multi-segment objects and compares it with the plaintext.
func TestRanges(t *testing.T) {
	key := testKey(4)
	sizes := [][]int64{
		{1}, {100}, {C}, {3*C + 100},
		{C, C, 10}, {2 * C, C + 5}, {C, 0}, {C, 2 * C, C},
		{10, 20, 5}, {C + 7, 3, 2*C + 1}, // unaligned layouts: the range reader knows each size
	}
	var layouts []Layout
	for _, f := range []Framing{FramingV1, FramingV2} {
		for _, p := range sizes {
			layouts = append(layouts, Layout{Framing: f, Parts: p})
		}
	}
	for _, l := range layouts {
		t.Run(fmt.Sprint(l), func(t *testing.T) {
			plain := pattern(l.PlaintextSize())
			stored := sealObject(t, key, plain, l)
			points := interesting(l)
			for _, a := range points {
				for _, b := range points {
					if b < a {
						continue
					}
					got, err := readRange(t, stored, key, l, a, b-a+1)
					if err != nil {
						t.Fatalf("range [%d,%d]: %v", a, b, err)
					}
					if !bytes.Equal(got, plain[a:b+1]) {
						t.Fatalf("range [%d,%d]: wrong bytes", a, b)
					}
				}
			}
		})
	}
}

func TestSpanFetchesOnlyCoveringChunks(t *testing.T) {
	l := v1(2*C, C, 10)
	tests := []struct {
		off, n             int64
		offset, length     int64
		needHeader         bool
		headerOffset, skip int64
	}{
		{0, 1, 0, HeaderSize + encChunkSize, false, 0, 0},
		{C, 1, HeaderSize + encChunkSize, encChunkSize, true, 0, 0},
		{C + 5, C - 5, HeaderSize + encChunkSize, encChunkSize, true, 0, 5},
		// Crossing into segment 2 fetches its header inline.
		{2*C - 1, 2, HeaderSize + encChunkSize, encChunkSize + HeaderSize + encChunkSize, true, 0, C - 1},
		// Starting at segment 2's first chunk fetches from its header.
		{2 * C, 1, SegmentSize(2 * C), HeaderSize + encChunkSize, false, SegmentSize(2 * C), 0},
		{3*C + 9, 1, SegmentSize(2*C) + SegmentSize(C), HeaderSize + 10 + TagSize, false, SegmentSize(2*C) + SegmentSize(C), 9},
	}
	for _, tt := range tests {
		sp, err := l.span(tt.off, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if sp.Offset != tt.offset || sp.Length != tt.length || sp.NeedHeader != tt.needHeader ||
			sp.HeaderOffset != tt.headerOffset || sp.skip != tt.skip || sp.plain != tt.n {
			t.Errorf("Span(%d,%d) = %+v, want offset %d length %d needHeader %v headerOffset %d skip %d",
				tt.off, tt.n, sp, tt.offset, tt.length, tt.needHeader, tt.headerOffset, tt.skip)
		}
	}
	for _, bad := range [][2]int64{{-1, 1}, {0, 0}, {3*C + 10, 1}, {3*C + 9, 2}, {0, 3*C + 11}} {
		if _, err := l.span(bad[0], bad[1]); !errors.Is(err, ErrRange) {
			t.Errorf("Span(%d,%d): got %v, want ErrRange", bad[0], bad[1], err)
		}
	}
}

// TestNewLayout: store-reported sizes are accepted only when they follow the
// multipart rule and add up to the object; a lie that keeps the stored total
// while breaking the rule is refused.
func TestNewLayout(t *testing.T) {
	for _, f := range []Framing{FramingV1, FramingV2} {
		t.Run(fmt.Sprint("framing ", f), func(t *testing.T) { testNewLayout(t, f) })
	}
}

func testNewLayout(t *testing.T, f Framing) {
	objectSize, v1 := framingHelpers(f)
	const MiB = 1 << 20
	stored := func(l ...int64) []int64 {
		out := make([]int64, len(l))
		for i, n := range l {
			out[i] = SegmentSize(n)
		}
		return out
	}
	tests := []struct {
		name   string
		parts  []int64
		total  int64
		want   Layout
		wantOK bool
	}{
		{"one part", stored(5), SegmentSize(5), v1(5), true},
		{"client parts", stored(8*MiB, 8*MiB, 3), objectSize(8*MiB, 8*MiB, 3), v1(8*MiB, 8*MiB, 3), true},
		{"empty last", stored(C, 0), objectSize(C, 0), v1(C, 0), true},
		{"uneven but aligned", stored(2*C, C, 7), objectSize(2*C, C, 7), v1(2*C, C, 7), true},
		{"rule broken, same total", stored(C-16, C+1+16, 7), objectSize(C, C+1, 7), Layout{}, false},
		{"partial middle", stored(C, C+5, C), objectSize(C, C+5, C), Layout{}, false},
		{"empty middle", stored(C, 0, C), objectSize(C, 0, C), Layout{}, false},
		{"wrong total", stored(C, C), objectSize(C, C) + 1, Layout{}, false},
		{"impossible size", []int64{SegmentSize(C), 40}, SegmentSize(C) + 40, Layout{}, false},
		{"no parts", nil, 0, Layout{}, false},
		{"too many parts", make([]int64, MaxSegments+1), 0, Layout{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewLayout(f, tt.parts, tt.total)
			if !tt.wantOK {
				if !errors.Is(err, ErrImpossibleSize) {
					t.Fatalf("NewLayout = %v, %v; want ErrImpossibleSize", got, err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("NewLayout = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestGuessLayout(t *testing.T) {
	for _, f := range []Framing{FramingV1, FramingV2} {
		t.Run(fmt.Sprint("framing ", f), func(t *testing.T) { testGuessLayout(t, f) })
	}
}

func testGuessLayout(t *testing.T, f Framing) {
	objectSize, v1 := framingHelpers(f)
	const MiB = 1 << 20
	tests := []struct {
		name  string
		first int64
		n     int
		total int64
		want  Layout
	}{
		{"aws cli", SegmentSize(8 * MiB), 3, objectSize(8*MiB, 8*MiB, 5), v1(8*MiB, 8*MiB, 5)},
		{"two parts", SegmentSize(C), 2, objectSize(C, 0), v1(C, 0)},
		{"first not aligned", SegmentSize(C + 1), 2, objectSize(C, C+1), Layout{}},
		// Same sizes as C, 2C, 1: a guess, which reads must confirm (§11.3).
		{"uneven parts", SegmentSize(C), 3, objectSize(C, 2*C, 1), v1(C, C, C+1)},
		{"first too big", SegmentSize(4 * C), 3, objectSize(C, C, C), Layout{}},
		{"huge count", SegmentSize(C), 1 << 40, 0, Layout{}},
	}
	for _, tt := range tests {
		got, ok := GuessLayout(f, tt.first, tt.n, tt.total)
		if ok != (tt.want.Parts != nil) || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: GuessLayout = %v, %v; want %v", tt.name, got, ok, tt.want)
		}
	}
}

// framingHelpers are objectSize and v1 for framing f.
func framingHelpers(f Framing) (func(...int64) int64, func(...int64) Layout) {
	lay := func(p ...int64) Layout { return Layout{Framing: f, Parts: p} }
	return func(p ...int64) int64 { return lay(p...).CiphertextSize() }, lay
}

func TestSegmentOffset(t *testing.T) {
	for _, f := range []Framing{FramingV1, FramingV2} {
		var stored, plain int64
		for i, n := range []int64{C, 3 * C, 2 * C, 9} {
			got, err := SegmentOffset(i+1, stored)
			if err != nil || got != plain {
				t.Fatalf("framing %d: SegmentOffset(%d, %d) = %d, %v; want %d", f, i+1, stored, got, err, plain)
			}
			stored += SegmentSize(n)
			plain += n
		}
	}
	for _, bad := range []struct {
		k      int
		stored int64
	}{{1, SegmentSize(C)}, {2, 0}, {2, SegmentSize(C) + 1}, {3, SegmentSize(C)}, {0, 0}, {MaxSegments + 1, 0}} {
		if _, err := SegmentOffset(bad.k, bad.stored); !errors.Is(err, ErrImpossibleSize) {
			t.Errorf("SegmentOffset(%d, %d) = %v; want ErrImpossibleSize", bad.k, bad.stored, err)
		}
	}
}

func TestCheckSegment(t *testing.T) {
	tests := []struct {
		k, n            int
		off, plain, tot int64
		ok              bool
	}{
		{1, 1, 0, 5, 5, true},
		{1, 3, 0, C, 2*C + 1, true},
		{2, 3, C, C, 2*C + 1, true},
		{3, 3, 2 * C, 1, 2*C + 1, true},
		{2, 3, C, C + 1, 3 * C, false},   // middle part not whole chunks
		{3, 3, 2 * C, 1, 2*C + 2, false}, // last part does not end the object
		{1, 3, 0, 2 * C, 2 * C, false},   // leaves no chunk for part 2
		{4, 3, 0, 0, 0, false},
		{1, MaxSegments + 1, 0, C, C, false},
	}
	for _, tt := range tests {
		err := CheckSegment(tt.k, tt.n, tt.off, tt.plain, tt.tot)
		if (err == nil) != tt.ok {
			t.Errorf("CheckSegment(%d, %d, %d, %d, %d) = %v; want ok=%v", tt.k, tt.n, tt.off, tt.plain, tt.tot, err, tt.ok)
		}
	}
}

func TestStoredOffsetsAndNotLast(t *testing.T) {
	l := v1(2*C, C, 5)
	offs := l.StoredOffsets()
	want := []int64{0, SegmentSize(2 * C), SegmentSize(2*C) + SegmentSize(C), l.CiphertextSize()}
	if !slices.Equal(offs, want) {
		t.Errorf("StoredOffsets = %v, want %v", offs, want)
	}
	for _, tt := range []struct {
		plain int64
		ok    bool
	}{{0, false}, {1, false}, {C - 1, false}, {C, true}, {C + 1, false}, {3 * C, true}, {-C, false}} {
		if got := NotLast(tt.plain); got != tt.ok {
			t.Errorf("NotLast(%d) = %v", tt.plain, got)
		}
	}
}

// OpenRange's reader keeps the fast path io.Copy takes.
func TestOpenRangeWriterTo(t *testing.T) {
	key := testKey(9)
	plain := make([]byte, 3*C)
	enc, err := NewEncryptReader(bytes.NewReader(plain), key, 1, int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(enc)
	fetch := func(at, n int64) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(stored[at : at+n])), nil
	}
	r, err := OpenRange(fetch, key, v1(3*C), 10, 2*C, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(io.WriterTo); !ok {
		t.Fatal("OpenRange's reader hides WriteTo")
	}
	var out bytes.Buffer
	if n, err := io.Copy(&out, r); err != nil || n != 2*C || !bytes.Equal(out.Bytes(), plain[10:10+2*C]) {
		t.Fatalf("copied %d, %v", n, err)
	}
}

func TestETagPartCount(t *testing.T) {
	tests := []struct {
		etag   string
		n      int
		marked bool
	}{
		{`"abc"`, 1, false},
		{`"abc-3"`, 3, true},
		{`W/"abc-12"`, 12, true},
		{`"abc-0"`, 1, false},
		{`"abc-x"`, 1, false},
		{`"abc-10001"`, MaxSegments + 1, true},
		{`"abc-99999999999999999999999"`, MaxSegments + 1, true},
		{`"a-b-7"`, 7, true},
	}
	for _, tc := range tests {
		if n, marked := ETagPartCount(tc.etag); n != tc.n || marked != tc.marked {
			t.Errorf("%s: %d %v, want %d %v", tc.etag, n, marked, tc.n, tc.marked)
		}
	}
}
