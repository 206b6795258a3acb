package envelope

// A multipart object's checksum from its parts' checksums, as S3 computes
// it: what a gateway answers for an object whose plaintext it never holds
// whole.

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"

	"github.com/minio/crc64nvme"
)

// ObjectChecksum is the checksum S3 reports for a multipart object whose
// parts have the given checksums (all of one algorithm, Type of the parts
// ignored) and plaintext sizes, of type typ:
//   - COMPOSITE (any algorithm but CRC64NVME): the algorithm's hash of the
//     concatenated raw part values, Parts = len(parts) (answered "-N").
//   - FULL_OBJECT (CRC32, CRC32C, CRC64NVME only): the CRC of the whole
//     object, computed from the parts' CRCs and sizes without the data
//     (zlib's crc32_combine, generalised to the 64-bit CRC64NVME),
//     Parts = len(parts).
//
// Any other combination, an empty list, a part of another algorithm or of
// the wrong value length, len(sizes) != len(parts), or a negative size is
// an error.
func ObjectChecksum(typ string, parts []Checksum, sizes []int64) (Checksum, error) {
	if len(parts) == 0 {
		return Checksum{}, errors.New("object checksum of no parts")
	}
	if len(sizes) != len(parts) {
		return Checksum{}, fmt.Errorf("object checksum of %d parts with %d sizes", len(parts), len(sizes))
	}
	algo := parts[0].Algorithm
	if !ChecksumTypeAllowed(algo, typ) {
		return Checksum{}, fmt.Errorf("S3 has no %s checksum of type %q", algo, typ)
	}
	_, size := algoCode(algo)
	for i, p := range parts {
		switch {
		case p.Algorithm != algo:
			return Checksum{}, fmt.Errorf("part %d checksum is %s, part 0's is %s", i, p.Algorithm, algo)
		case len(p.Value) != size:
			return Checksum{}, fmt.Errorf("part %d %s checksum is %d bytes, not %d", i, algo, len(p.Value), size)
		case sizes[i] < 0:
			return Checksum{}, fmt.Errorf("part %d size %d is negative", i, sizes[i])
		}
	}
	c := Checksum{Algorithm: algo, Type: typ, Parts: len(parts)}
	if typ == ChecksumComposite {
		h := NewChecksumHash(algo)
		for _, p := range parts {
			h.Write(p.Value)
		}
		c.Value = h.Sum(nil)
		return c, nil
	}
	m := crcModels[algo]
	crc, n := crcValue(parts[0].Value), int64(-1)
	var shift uint64 // x^(8n) mod P, reused while part sizes repeat
	for i, p := range parts[1:] {
		if sizes[i+1] != n {
			n = sizes[i+1]
			shift = m.xpow8n(uint64(n))
		}
		crc = m.mulmod(shift, crc) ^ crcValue(p.Value)
	}
	c.Value = make([]byte, size)
	if size == 4 {
		binary.BigEndian.PutUint32(c.Value, uint32(crc))
	} else {
		binary.BigEndian.PutUint64(c.Value, crc)
	}
	return c, nil
}

// DefaultChecksumType is the type S3 gives a multipart upload that names
// only an algorithm: FULL_OBJECT for CRC64NVME (its only type), COMPOSITE
// for the other algorithms; "" for an unknown one.
func DefaultChecksumType(algorithm string) string {
	switch algorithm {
	case "CRC64NVME":
		return ChecksumFullObject
	case "CRC32", "CRC32C", "SHA1", "SHA256":
		return ChecksumComposite
	}
	return ""
}

// ChecksumTypeAllowed reports whether S3 accepts the type for the algorithm
// in a multipart upload: COMPOSITE for all but CRC64NVME; FULL_OBJECT for
// the CRCs, the only ones a whole-object value follows from part values.
func ChecksumTypeAllowed(algorithm, typ string) bool {
	switch typ {
	case ChecksumComposite:
		return algorithm == "CRC32" || algorithm == "CRC32C" || algorithm == "SHA1" || algorithm == "SHA256"
	case ChecksumFullObject:
		return crcModels[algorithm] != nil
	}
	return false
}

// NewChecksumHash is a fresh hash of an S3 checksum algorithm ("CRC32",
// ...), its Sum in S3's byte order (big-endian for the CRCs); nil for an
// unknown algorithm.
func NewChecksumHash(algorithm string) hash.Hash {
	switch algorithm {
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
	return nil
}

// crcValue is a CRC's big-endian value, 4 or 8 bytes, as an integer.
func crcValue(b []byte) uint64 {
	if len(b) == 4 {
		return uint64(binary.BigEndian.Uint32(b))
	}
	return binary.BigEndian.Uint64(b)
}

// crcModel is a reflected CRC of width 32 or 64 with init and xorout all
// ones, as S3's three are. For those, crc(A‖B) = crc(A)·x^(8|B|) + crc(B)
// mod P on the final values, so parts combine with one multiplication
// each; polynomials are held reflected: x^i at bit width-1-i.
type crcModel struct {
	width uint
	poly  uint64 // reflected
	// pow[j][d] is x^(8·d·16^j) mod P: x^(8n) for any uint64 n is the
	// product of one entry per nonzero hex digit of n.
	pow [16][16]uint64
}

// crcModels are S3's CRCs by name, polynomials as the hashes computing
// them define them.
var crcModels = map[string]*crcModel{
	"CRC32":     newCRCModel(32, crc32.IEEE),
	"CRC32C":    newCRCModel(32, crc32.Castagnoli),
	"CRC64NVME": newCRCModel(64, crc64nvme.NVME),
}

func newCRCModel(width uint, poly uint64) *crcModel {
	m := &crcModel{width: width, poly: poly}
	x8 := uint64(1) << (width - 9) // x^8
	for j := range m.pow {
		m.pow[j][0] = 1 << (width - 1) // 1
		m.pow[j][1] = x8
		for d := 2; d < 16; d++ {
			m.pow[j][d] = m.mulmod(m.pow[j][d-1], x8)
		}
		x8 = m.mulmod(m.pow[j][15], x8) // x^(8·16^(j+1))
	}
	return m
}

// mulmod is a·b mod P, by width branch-free shift-and-add steps.
func (m *crcModel) mulmod(a, b uint64) uint64 {
	var p uint64
	for i := int(m.width) - 1; i >= 0; i-- {
		p ^= b & -(a >> i & 1)
		b = b>>1 ^ m.poly&-(b&1)
	}
	return p
}

// xpow8n is x^(8n) mod P: the factor that appends n bytes to a CRC.
func (m *crcModel) xpow8n(n uint64) uint64 {
	p := m.pow[0][n&15]
	for j := 1; n > 15; j++ {
		n >>= 4
		if n&15 != 0 {
			p = m.mulmod(m.pow[j][n&15], p)
		}
	}
	return p
}
