package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"testing"
)

// v2Object is a FramingV2 object of the given parts and its plaintext.
func v2Object(t *testing.T, key []byte, parts ...int64) (Layout, []byte, []byte) {
	t.Helper()
	l := Layout{Framing: FramingV2, Parts: parts}
	plain := pattern(l.PlaintextSize())
	return l, plain, sealObject(t, key, plain, l)
}

// recordOf cuts the header and record of segment i out of a stored object.
func recordOf(stored []byte, l Layout, i int) (header, record []byte) {
	offs := l.StoredOffsets()
	return stored[offs[i] : offs[i]+int64(l.Framing.HeaderLen())], stored[offs[i+1]-RecordSize : offs[i+1]]
}

// TestRecordsOpen: each segment's record opens, alone, to the checksum
// written, and not as another part's, under another key, or as another
// algorithm's.
func TestRecordsOpen(t *testing.T) {
	key := testKey(20)
	l, plain, stored := v2Object(t, key, 2*C, C, 17, 0)
	if int64(len(stored)) != v1(l.Parts...).CiphertextSize() {
		t.Fatalf("FramingV2 stores %d bytes, FramingV1 %d: sizes must not depend on framing", len(stored), v1(l.Parts...).CiphertextSize())
	}
	var poff int64
	for i, n := range l.Parts {
		h, rec := recordOf(stored, l, i)
		open := func(key, rec []byte, part uint32, n int64, algo, typ string) (Checksum, error) {
			return OpenRecord(key, h, rec, part, n, algo, typ)
		}
		got, err := open(key, rec, uint32(i+1), n, "CRC32C", ChecksumComposite)
		want := testRecord(plain[poff : poff+n])
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("part %d: OpenRecord = %+v, %v; want %+v", i+1, got, err, want)
		}
		poff += n
		for _, tc := range []struct {
			name     string
			key, rec []byte
			part     uint32
			n        int64
			algo     string
			typ      string
		}{
			{"as the next part", key, rec, uint32(i + 2), n, "CRC32C", ChecksumComposite},
			{"under another key", testKey(21), rec, uint32(i + 1), n, "CRC32C", ChecksumComposite},
			{"as one byte longer", key, rec, uint32(i + 1), n + 1, "CRC32C", ChecksumComposite},
			{"as a chunk shorter", key, rec, uint32(i + 1), n - C, "CRC32C", ChecksumComposite},
			{"as CRC32", key, rec, uint32(i + 1), n, "CRC32", ChecksumComposite},
			{"as FULL_OBJECT", key, rec, uint32(i + 1), n, "CRC32C", ChecksumFullObject},
			{"with a flipped value", key, flipped(rec, 0), uint32(i + 1), n, "CRC32C", ChecksumComposite},
			{"with a flipped MAC", key, flipped(rec, RecordSize-1), uint32(i + 1), n, "CRC32C", ChecksumComposite},
		} {
			if _, err := open(tc.key, tc.rec, tc.part, tc.n, tc.algo, tc.typ); !errors.Is(err, ErrAuthentication) {
				t.Errorf("part %d's record opened %s: %v", i+1, tc.name, err)
			}
		}
	}
	// Part 1's record with part 2's header (same data key).
	h2, _ := recordOf(stored, l, 1)
	_, rec1 := recordOf(stored, l, 0)
	if _, err := OpenRecord(key, h2, rec1, 2, l.Parts[0], "CRC32C", ChecksumComposite); !errors.Is(err, ErrAuthentication) {
		t.Errorf("part 1's record opened with part 2's header: %v", err)
	}
}

func flipped(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}

// TestRecordTamper: every way of changing a record fails every reader that
// passes it — whole, part and range — and never yields other bytes.
func TestRecordTamper(t *testing.T) {
	key := testKey(22)
	l, plain, stored := v2Object(t, key, C, C, 50)
	offs := l.StoredOffsets()
	rec := func(i int) (int64, int64) { return offs[i+1] - RecordSize, offs[i+1] }
	// Part 2 uploaded again under the same data key: another salt.
	again2 := sealSalted(t, FramingV2, key, plain[C:2*C], 2, C, bytes.Repeat([]byte{0x77}, saltSize))
	replaceRecord := func(i int, with []byte) []byte {
		out := bytes.Clone(stored)
		a, b := rec(i)
		copy(out[a:b], with)
		return out
	}
	a0, b0 := rec(0)
	a1, b1 := rec(1)
	flip := func(at int64) []byte { b := bytes.Clone(stored); b[at] ^= 1; return b }
	tests := []struct {
		name   string
		stored []byte
	}{
		{"record byte flipped", flip(a1 + 3)},
		{"record's last byte flipped", flip(b1 - 1)},
		{"records of parts 1 and 2 swapped", func() []byte {
			b := replaceRecord(0, stored[a1:b1])
			copy(b[a1:b1], stored[a0:b0])
			return b
		}()},
		{"record from a re-upload of the part", replaceRecord(1, again2[len(again2)-RecordSize:])},
		{"last record cut", stored[:len(stored)-1]},
		{"last record dropped", stored[:len(stored)-RecordSize]},
		{"a record added", append(bytes.Clone(stored), stored[a0:b0]...)},
	}
	for _, tt := range tests {
		got, err := io.ReadAll(NewDecryptReader(bytes.NewReader(tt.stored), key, FramingV2, 3))
		if err == nil || !bytes.HasPrefix(plain, got) {
			t.Errorf("%s: whole read = %d bytes, %v", tt.name, len(got), err)
		}
	}
	// The whole re-uploaded part, record and all, is a clean replacement.
	mixed := append(append(bytes.Clone(stored[:offs[1]]), again2...), stored[offs[2]:]...)
	if got, err := io.ReadAll(NewDecryptReader(bytes.NewReader(mixed), key, FramingV2, 3)); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("re-uploaded part: %v", err)
	}
	// Ranges through a final chunk check the record after it.
	bad := flip(a0 + 5)
	for _, r := range [][2]int64{{C - 5, 10}, {C - 5, 5}, {0, C}} {
		if got, err := readRange(t, bad, key, l, r[0], r[1]); err == nil {
			t.Errorf("range %v over a flipped record = %d bytes, nil", r, len(got))
		}
	}
	// A part read checks its own record.
	part2 := bytes.Clone(stored[offs[1]:offs[2]])
	part2[len(part2)-1] ^= 1
	if _, err := io.ReadAll(NewPartDecryptReader(bytes.NewReader(part2), key, FramingV2, 2)); !errors.Is(err, ErrAuthentication) {
		t.Errorf("part with a flipped record: %v", err)
	}
}

// TestRecordFuncSeesWholeSource: the record is asked for only after the
// source ended, and its error fails the stream before the segment is whole.
func TestRecordFuncSeesWholeSource(t *testing.T) {
	key := testKey(23)
	for _, size := range []int64{0, 5, C, 2*C + 3} {
		plain := pattern(size)
		src := bytes.NewReader(plain)
		asked := false
		r, err := NewRecordEncryptReader(src, key, 1, size, func() (Checksum, error) {
			asked = true
			if src.Len() != 0 {
				t.Errorf("size %d: record asked with %d bytes unread", size, src.Len())
			}
			return testRecord(plain), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(r)
		if err != nil || !asked || int64(len(out)) != SegmentSize(size) {
			t.Fatalf("size %d: %d bytes, asked %v, %v", size, len(out), asked, err)
		}
	}
	boom := errors.New("client checksum mismatch")
	r, _ := NewRecordEncryptReader(bytes.NewReader(pattern(C+1)), key, 1, C+1, func() (Checksum, error) { return Checksum{}, boom })
	out, err := io.ReadAll(r)
	if !errors.Is(err, boom) || int64(len(out)) >= SegmentSize(C+1) {
		t.Fatalf("failing record: %d bytes, %v", len(out), err)
	}
	if _, err := NewRecordEncryptReader(bytes.NewReader(nil), key, 1, 0, nil); err == nil {
		t.Fatal("a FramingV2 segment without a record func was made")
	}
	if _, err := NewRecordEncryptReader(bytes.NewReader(nil), key, MaxSegments+1, 0, func() (Checksum, error) { return Checksum{}, nil }); err == nil {
		t.Fatal("a FramingV2 segment past part 10000 was made")
	}
}

func TestSetRecord(t *testing.T) {
	crc := binary.BigEndian.AppendUint32(nil, 0xdeadbeef)
	seg, err := newSegment(testKey(24), FramingV2, 1, make([]byte, saltSize))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Checksum{
		{Algorithm: "CRC32C", Type: ChecksumComposite, Value: crc},
		{Algorithm: "CRC32", Type: ChecksumFullObject, Value: crc},
		{Algorithm: "CRC64NVME", Type: ChecksumFullObject, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
	} {
		if err := seg.setRecord(c, 7); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		got, err := OpenRecord(testKey(24), seg.header(), seg.record(), 1, 7, c.Algorithm, c.Type)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c) {
			t.Fatalf("%+v: opened %+v, %v", c, got, err)
		}
	}
	for _, c := range []Checksum{
		{},
		{Algorithm: "CRC32C", Type: ChecksumComposite, Value: crc[:3]},
		{Algorithm: "CRC32C", Type: ChecksumComposite, Value: append(crc, 0)},
		{Algorithm: "SHA256", Type: ChecksumComposite, Value: make([]byte, 32)},
		{Algorithm: "SHA1", Type: ChecksumComposite, Value: make([]byte, 20)},
		{Algorithm: "CRC32C", Type: "PARTIAL", Value: crc},
	} {
		if err := seg.setRecord(c, 7); err == nil {
			t.Errorf("%+v: recorded", c)
		}
	}
}

func TestMetadataVersion4(t *testing.T) {
	tests := []Metadata{
		{KeyID: "k", WrappedKey: []byte{1}, Framing: FramingV2, PartAlgorithm: "CRC32", PartType: ChecksumComposite},
		{KeyID: "k", WrappedKey: []byte{1}, Framing: FramingV2, PartAlgorithm: "CRC64NVME", PartType: ChecksumFullObject,
			Context: map[string]string{"team": "a"}},
	}
	for _, m := range tests {
		u := m.UserMetadata()
		if u["s3seal-v"] != "4" {
			t.Fatalf("%+v: version %q", m, u["s3seal-v"])
		}
		got, err := ParseUserMetadata(u)
		if err != nil || got.Framing != FramingV2 || got.PartAlgorithm != m.PartAlgorithm ||
			got.PartType != m.PartType || !maps.Equal(got.Context, m.Context) {
			t.Fatalf("%+v: parsed %+v, %v", m, got, err)
		}
	}
	if got, _ := ParseUserMetadata((Metadata{KeyID: "k", WrappedKey: []byte{1}}).UserMetadata()); got.Framing != FramingV1 {
		t.Fatalf("version 1 parsed as framing %d", got.Framing)
	}
	base := tests[0].UserMetadata()
	for name, change := range map[string][2]string{
		"SHA256":              {"s3seal-p", "SHA256/COMPOSITE"},
		"CRC64NVME composite": {"s3seal-p", "CRC64NVME/COMPOSITE"},
		"bad type":            {"s3seal-p", "CRC32/FULL"},
		"no type":             {"s3seal-p", "CRC32"},
		"none":                {"s3seal-p", ""},
		"sealed checksum too": {"s3seal-s", "AAAA"},
	} {
		u := maps.Clone(base)
		u[change[0]] = change[1]
		if _, err := ParseUserMetadata(u); !errors.Is(err, ErrMalformedMetadata) {
			t.Errorf("%s: %v, want ErrMalformedMetadata", name, err)
		}
	}
	delete(base, "s3seal-p")
	if _, err := ParseUserMetadata(base); !errors.Is(err, ErrMalformedMetadata) {
		t.Errorf("version 4 without s3seal-p: %v", err)
	}
}
