package envelope

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/minio/crc64nvme"
)

// testHash is each algorithm's hash straight from its library, apart from
// the code under test.
func testHash(t testing.TB, algo string) hash.Hash {
	switch algo {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "CRC64NVME":
		return crc64nvme.New()
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	t.Fatalf("no hash %s", algo)
	return nil
}

func testDigest(t testing.TB, algo string, b []byte) []byte {
	h := testHash(t, algo)
	h.Write(b)
	return h.Sum(nil)
}

// splitParts cuts data into parts of the given sizes and checksums each.
func splitParts(t testing.TB, algo string, data []byte, sizes []int64) []Checksum {
	var parts []Checksum
	for _, n := range sizes {
		parts = append(parts, Checksum{Algorithm: algo, Type: ChecksumFullObject, Value: testDigest(t, algo, data[:n])})
		data = data[n:]
	}
	return parts
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	return b
}

func sum(sizes []int64) (s int64) {
	for _, n := range sizes {
		s += n
	}
	return s
}

var crcAlgos = []string{"CRC32", "CRC32C", "CRC64NVME"}

func TestObjectChecksumFullObject(t *testing.T) {
	const K, M = 1 << 10, 1 << 20
	data := randomBytes(1, 3*M+200*K)
	r := rand.New(rand.NewPCG(2, 3))
	var random []int64 // 60 parts of 0 to 40 KiB, a third of them empty
	for range 60 {
		n := int64(r.IntN(40 * K))
		if r.IntN(3) == 0 {
			n = 0
		}
		random = append(random, n)
	}
	splits := []struct {
		name  string
		sizes []int64
	}{
		{"one empty part", []int64{0}},
		{"one byte", []int64{1}},
		{"empty parts", []int64{0, 0, 0}},
		{"empty around a byte", []int64{0, 1, 0}},
		{"one 64 KiB part", []int64{64 * K}},
		{"equal parts", []int64{64 * K, 64 * K, 64 * K}},
		{"mixed", []int64{1, 64 * K, 0, 7, 64*K - 1, 3}},
		{"MiB parts", []int64{M, 2 * M, 0, 1}},
		{"last part empty", []int64{3 * M, 100 * K, 0}},
		{"random", random},
	}
	for _, algo := range crcAlgos {
		for _, s := range splits {
			t.Run(algo+"/"+s.name, func(t *testing.T) {
				whole := data[:sum(s.sizes)]
				got, err := ObjectChecksum(ChecksumFullObject, splitParts(t, algo, whole, s.sizes), s.sizes)
				if err != nil {
					t.Fatal(err)
				}
				want := Checksum{Algorithm: algo, Type: ChecksumFullObject, Parts: len(s.sizes), Value: testDigest(t, algo, whole)}
				if got.Algorithm != want.Algorithm || got.Type != want.Type || got.Parts != want.Parts || !bytes.Equal(got.Value, want.Value) {
					t.Errorf("got %+v, want %+v", got, want)
				}
			})
		}
	}
}

func TestObjectChecksumComposite(t *testing.T) {
	data := randomBytes(4, 300<<10)
	splits := [][]int64{{0}, {1}, {100 << 10}, {0, 5, 0}, {64 << 10, 64 << 10, 1, 0, 100 << 10}}
	for _, algo := range []string{"CRC32", "CRC32C", "SHA1", "SHA256"} {
		for _, sizes := range splits {
			parts := splitParts(t, algo, data, sizes)
			var concat []byte
			for _, p := range parts {
				concat = append(concat, p.Value...)
			}
			got, err := ObjectChecksum(ChecksumComposite, parts, sizes)
			if err != nil {
				t.Fatalf("%s %v: %v", algo, sizes, err)
			}
			want := testDigest(t, algo, concat)
			if got.Algorithm != algo || got.Type != ChecksumComposite || got.Parts != len(sizes) || !bytes.Equal(got.Value, want) {
				t.Errorf("%s %v: got %+v, want value %x", algo, sizes, got, want)
			}
		}
	}
}

// TestObjectChecksumKnownAnswers checks values fixed outside this code:
// the CRC catalogue's check values of "123456789", a composite worked by
// hand, and one S3 itself answered.
func TestObjectChecksumKnownAnswers(t *testing.T) {
	hello, world := sha256.Sum256([]byte("hello ")), sha256.Sum256([]byte("world"))
	helloWorld := sha256.Sum256(append(hello[:], world[:]...))
	b64 := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	be := func(v uint64, n int) []byte {
		return binary.BigEndian.AppendUint64(nil, v)[8-n:]
	}
	check := []int64{4, 0, 5} // "123456789" in three parts
	tests := []struct {
		name  string
		typ   string
		parts []Checksum
		sizes []int64
		want  []byte
		enc   string // Encoded, if set
	}{
		{"CRC-32 check", ChecksumFullObject, splitParts(t, "CRC32", []byte("123456789"), check), check, be(0xCBF43926, 4), ""},
		{"CRC-32C check", ChecksumFullObject, splitParts(t, "CRC32C", []byte("123456789"), check), check, be(0xE3069283, 4), ""},
		{"CRC-64/NVME check", ChecksumFullObject, splitParts(t, "CRC64NVME", []byte("123456789"), check), check, be(0xAE8B14860A799888, 8), "rosUhgp5mIg="},
		{"SHA256 hello world", ChecksumComposite, []Checksum{
			{Algorithm: "SHA256", Value: hello[:]}, {Algorithm: "SHA256", Value: world[:]},
		}, []int64{6, 5}, helloWorld[:], base64.StdEncoding.EncodeToString(helloWorld[:]) + "-2"},
		// Answered by S3 (eu-west-1) for parts of 5, 5 and 1 MiB, as
		// reported in github.com/floci-io/floci/issues/3083.
		{"SHA256 from S3", ChecksumComposite, []Checksum{
			{Algorithm: "SHA256", Value: b64("lcKa6Boe7a167tUCN5C4OaFygGSYD8MBnBARTrdL+1w=")},
			{Algorithm: "SHA256", Value: b64("gHjhbUT4oo2tSCtSZJdlKi+jeNXJT+VImqdPXsXvkOc=")},
			{Algorithm: "SHA256", Value: b64("4l9PQ3zOPZ0oGFvknFX+J4zZwE4WMzO+l3r8XrbWOeM=")},
		}, []int64{5 << 20, 5 << 20, 1 << 20}, b64("rVWtNbadtsaKXJAcgWPWjifHzJaXde/iV4jaJAOdivc="), "rVWtNbadtsaKXJAcgWPWjifHzJaXde/iV4jaJAOdivc=-3"},
	}
	for _, tt := range tests {
		got, err := ObjectChecksum(tt.typ, tt.parts, tt.sizes)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !bytes.Equal(got.Value, tt.want) {
			t.Errorf("%s: %x, want %x", tt.name, got.Value, tt.want)
		}
		if tt.enc != "" && got.Encoded() != tt.enc {
			t.Errorf("%s: encoded %s, want %s", tt.name, got.Encoded(), tt.enc)
		}
	}
}

func TestObjectChecksumErrors(t *testing.T) {
	crc := func(algo string, n int) Checksum { return Checksum{Algorithm: algo, Value: make([]byte, n)} }
	sha := crc("SHA256", 32)
	tests := []struct {
		name  string
		typ   string
		parts []Checksum
		sizes []int64
	}{
		{"no parts", ChecksumFullObject, nil, nil},
		{"no parts composite", ChecksumComposite, []Checksum{}, []int64{}},
		{"mixed algorithms", ChecksumFullObject, []Checksum{crc("CRC32", 4), crc("CRC32C", 4)}, []int64{1, 1}},
		{"mixed algorithms composite", ChecksumComposite, []Checksum{sha, crc("SHA1", 20)}, []int64{1, 1}},
		{"FULL_OBJECT SHA256", ChecksumFullObject, []Checksum{sha}, []int64{1}},
		{"FULL_OBJECT SHA1", ChecksumFullObject, []Checksum{crc("SHA1", 20)}, []int64{1}},
		{"COMPOSITE CRC64NVME", ChecksumComposite, []Checksum{crc("CRC64NVME", 8)}, []int64{1}},
		{"no type", "", []Checksum{crc("CRC32", 4)}, []int64{1}},
		{"lower-case type", "composite", []Checksum{crc("CRC32", 4)}, []int64{1}},
		{"unknown algorithm", ChecksumComposite, []Checksum{crc("MD5", 16)}, []int64{1}},
		{"value too long", ChecksumFullObject, []Checksum{crc("CRC32", 8)}, []int64{1}},
		{"second value short", ChecksumFullObject, []Checksum{crc("CRC64NVME", 8), crc("CRC64NVME", 4)}, []int64{1, 1}},
		{"empty value composite", ChecksumComposite, []Checksum{crc("SHA256", 0)}, []int64{1}},
		{"fewer sizes", ChecksumFullObject, []Checksum{crc("CRC32", 4), crc("CRC32", 4)}, []int64{1}},
		{"more sizes", ChecksumFullObject, []Checksum{crc("CRC32", 4)}, []int64{1, 1}},
		{"no sizes composite", ChecksumComposite, []Checksum{sha}, nil},
		{"negative size", ChecksumFullObject, []Checksum{crc("CRC32", 4), crc("CRC32", 4)}, []int64{1, -1}},
		{"negative size composite", ChecksumComposite, []Checksum{sha}, []int64{-1}},
	}
	for _, tt := range tests {
		if c, err := ObjectChecksum(tt.typ, tt.parts, tt.sizes); err == nil {
			t.Errorf("%s: %+v, want an error", tt.name, c)
		}
	}
}

func TestChecksumTypeRules(t *testing.T) {
	tests := []struct {
		algo, def          string
		composite, fullObj bool
	}{
		{"CRC32", ChecksumComposite, true, true},
		{"CRC32C", ChecksumComposite, true, true},
		{"CRC64NVME", ChecksumFullObject, false, true},
		{"SHA1", ChecksumComposite, true, false},
		{"SHA256", ChecksumComposite, true, false},
		{"MD5", "", false, false},
		{"crc32", "", false, false},
		{"", "", false, false},
	}
	for _, tt := range tests {
		if got := DefaultChecksumType(tt.algo); got != tt.def {
			t.Errorf("DefaultChecksumType(%q) = %q, want %q", tt.algo, got, tt.def)
		}
		if tt.def != "" && !ChecksumTypeAllowed(tt.algo, tt.def) {
			t.Errorf("%s: default type %s not allowed", tt.algo, tt.def)
		}
		if got := ChecksumTypeAllowed(tt.algo, ChecksumComposite); got != tt.composite {
			t.Errorf("ChecksumTypeAllowed(%q, COMPOSITE) = %v", tt.algo, got)
		}
		if got := ChecksumTypeAllowed(tt.algo, ChecksumFullObject); got != tt.fullObj {
			t.Errorf("ChecksumTypeAllowed(%q, FULL_OBJECT) = %v", tt.algo, got)
		}
		for _, typ := range []string{"", "composite", "full_object", "FULL"} {
			if ChecksumTypeAllowed(tt.algo, typ) {
				t.Errorf("ChecksumTypeAllowed(%q, %q) = true", tt.algo, typ)
			}
		}
	}
}

// TestCombineLengths checks the combination at lengths no test can hash:
// appending B then C must equal appending B‖C, and x^(8a)·x^(8b) must be
// x^(8(a+b)), up to lengths near 2^63.
func TestCombineLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, algo := range crcAlgos {
		m := crcModels[algo]
		mask := uint64(1)<<m.width - 1
		if m.width == 64 {
			mask = ^uint64(0)
		}
		comb := func(a, b, n uint64) uint64 { return m.mulmod(m.xpow8n(n), a) ^ b }
		if one := uint64(1) << (m.width - 1); m.xpow8n(0) != one {
			t.Errorf("%s: x^0 = %x", algo, m.xpow8n(0))
		}
		for i := range 200 {
			a, b, c := r.Uint64()&mask, r.Uint64()&mask, r.Uint64()&mask
			lb, lc := r.Uint64N(1<<62), r.Uint64N(1<<62)
			if i%4 == 0 {
				lb = r.Uint64N(100)
			}
			if comb(a, 0, 0) != a {
				t.Fatalf("%s: an empty part changes the CRC", algo)
			}
			if x, y := comb(comb(a, b, lb), c, lc), comb(a, comb(b, c, lc), lb+lc); x != y {
				t.Fatalf("%s: lengths %d, %d: %x != %x", algo, lb, lc, x, y)
			}
			if x, y := m.mulmod(m.xpow8n(lb), m.xpow8n(lc)), m.xpow8n(lb+lc); x != y {
				t.Fatalf("%s: x^(8·%d)·x^(8·%d) = %x, not %x", algo, lb, lc, x, y)
			}
		}
	}
}

// BenchmarkCombine10000Parts is a FULL_OBJECT CRC64NVME of S3's most parts:
// equal 8 MiB parts (one shift, reused) and every size distinct.
func BenchmarkCombine10000Parts(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	parts := make([]Checksum, MaxSegments)
	for i := range parts {
		parts[i] = Checksum{Algorithm: "CRC64NVME", Value: binary.BigEndian.AppendUint64(nil, r.Uint64())}
	}
	equal, varied := make([]int64, len(parts)), make([]int64, len(parts))
	for i := range parts {
		equal[i], varied[i] = 8<<20, r.Int64N(5<<30)
	}
	equal[len(equal)-1] = 12345
	for _, bm := range []struct {
		name  string
		sizes []int64
	}{{"equal", equal}, {"varied", varied}} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ObjectChecksum(ChecksumFullObject, parts, bm.sizes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
