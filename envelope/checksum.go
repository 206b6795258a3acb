package envelope

// Sealed checksums: a client's checksum of an object's plaintext, kept in
// the object's metadata encrypted and authenticated under its data key
// (docs/FORMAT.md §6.2).

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Checksum types, as S3 names them in x-amz-checksum-type.
const (
	ChecksumFullObject = "FULL_OBJECT"
	ChecksumComposite  = "COMPOSITE"
)

// checksumAlgos are the algorithms S3 knows, by their code in a sealed
// checksum (§6.2), with the size of their value.
var checksumAlgos = []struct {
	code byte
	name string
	size int
}{
	{1, "CRC32", 4}, {2, "CRC32C", 4}, {3, "CRC64NVME", 8}, {4, "SHA1", 20}, {5, "SHA256", 32},
}

const (
	checksumHeadLen  = 4 // algorithm, type, uint16 part count
	checksumNonceLen = 12
	checksumTagLen   = 16
	checksumInfo     = "s3seal v3 checksum"
	typeFullObject   = 1
	typeComposite    = 2
)

// ErrChecksumAuthentication means a sealed checksum that does not open
// under the object's data key: not what s3seal stored.
var ErrChecksumAuthentication = errors.New("sealed checksum does not authenticate")

// Checksum is a checksum of an object's plaintext as S3 reports it.
type Checksum struct {
	Algorithm string // "CRC32", "CRC32C", "CRC64NVME", "SHA1" or "SHA256"
	Type      string // ChecksumFullObject or ChecksumComposite
	// Parts is the part count of a multipart object's checksum (the "-N"
	// of a composite one); 0 for a single-part object.
	Parts int
	Value []byte // the checksum, as x-amz-checksum-* carries it decoded
}

// Encoded is the checksum as S3 answers it in x-amz-checksum-*: base64,
// with "-N" for a composite checksum of an object (a part's, Parts 0, has
// none).
func (c Checksum) Encoded() string {
	s := base64.StdEncoding.EncodeToString(c.Value)
	if c.Type == ChecksumComposite && c.Parts > 0 {
		s += "-" + strconv.Itoa(c.Parts)
	}
	return s
}

// NewChecksum is the full-object checksum of a single-part object from a
// client's x-amz-checksum-<algorithm> value (base64).
func NewChecksum(algorithm, value string) (Checksum, error) {
	code, size := algoCode(algorithm)
	v, err := base64.StdEncoding.Strict().DecodeString(value)
	if code == 0 || err != nil || len(v) != size {
		return Checksum{}, fmt.Errorf("checksum %s %q is invalid", algorithm, value)
	}
	return Checksum{Algorithm: algorithm, Type: ChecksumFullObject, Value: v}, nil
}

// SealChecksum encodes c, its value encrypted and the whole authenticated
// under the object's data key (§6.2): a checksum of the plaintext is
// itself about the plaintext, so the store sees only its algorithm.
func SealChecksum(dataKey []byte, c Checksum) ([]byte, error) {
	code, size := algoCode(c.Algorithm)
	typ := typeCode(c.Type)
	if code == 0 || len(c.Value) != size || typ == 0 || c.Parts < 0 || c.Parts > MaxSegments {
		return nil, errors.New("checksum cannot be sealed: unknown algorithm or type, or wrong size")
	}
	aead, err := checksumAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	b := []byte{code, typ}
	b = binary.BigEndian.AppendUint16(b, uint16(c.Parts))
	nonce := make([]byte, checksumNonceLen)
	rand.Read(nonce)
	b = append(b, nonce...)
	return aead.Seal(b, nonce, c.Value, b[:checksumHeadLen]), nil
}

// OpenChecksum authenticates and decrypts a sealed checksum under the
// object's data key.
func OpenChecksum(dataKey, sealed []byte) (Checksum, error) {
	c, err := parseSealedChecksum(sealed)
	if err != nil {
		return Checksum{}, err
	}
	aead, err := checksumAEAD(dataKey)
	if err != nil {
		return Checksum{}, err
	}
	nonce := sealed[checksumHeadLen : checksumHeadLen+checksumNonceLen]
	value, err := aead.Open(nil, nonce, sealed[checksumHeadLen+checksumNonceLen:], sealed[:checksumHeadLen])
	if err != nil {
		return Checksum{}, ErrChecksumAuthentication
	}
	c.Value = value
	return c, nil
}

// parseSealedChecksum decodes a sealed checksum's clear fields (all but
// its value) and checks its length: what metadata parsing can check
// without the data key.
func parseSealedChecksum(b []byte) (Checksum, error) {
	if len(b) < checksumHeadLen+checksumNonceLen+checksumTagLen {
		return Checksum{}, errors.New("sealed checksum too short")
	}
	var c Checksum
	var size int
	c.Algorithm, size = algoName(b[0])
	c.Parts = int(binary.BigEndian.Uint16(b[2:4]))
	if c.Type = typeName(b[1]); c.Type == ChecksumComposite && c.Parts < 1 {
		c.Type = ""
	}
	if c.Algorithm == "" || c.Type == "" || c.Parts > MaxSegments ||
		len(b) != checksumHeadLen+checksumNonceLen+size+checksumTagLen {
		return Checksum{}, errors.New("sealed checksum has an unknown algorithm or type, or the wrong size")
	}
	return c, nil
}

// checksumAEAD is AES-256-GCM under the checksum key derived from the data
// key (§6.2).
func checksumAEAD(dataKey []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, dataKey, nil, checksumInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ChecksumAlgorithms are S3's x-amz-checksum-* algorithms.
var ChecksumAlgorithms = func() []string {
	var names []string
	for _, a := range checksumAlgos {
		names = append(names, a.name)
	}
	return names
}()

// ChecksumSize is the size of an S3 checksum algorithm's value; 0 for an
// unknown algorithm.
func ChecksumSize(algorithm string) int {
	_, size := algoCode(algorithm)
	return size
}

// algoCode is an algorithm's code in a sealed checksum and its value's
// size; 0, 0 for an unknown one.
func algoCode(name string) (byte, int) {
	for _, a := range checksumAlgos {
		if a.name == name {
			return a.code, a.size
		}
	}
	return 0, 0
}

// algoName is the algorithm of a code and its value's size; "", 0 for an
// unknown code.
func algoName(code byte) (string, int) {
	for _, a := range checksumAlgos {
		if a.code == code {
			return a.name, a.size
		}
	}
	return "", 0
}

// typeCode is a checksum type's code (§6.2, §3.4); 0 for an unknown type.
func typeCode(t string) byte {
	switch t {
	case ChecksumFullObject:
		return typeFullObject
	case ChecksumComposite:
		return typeComposite
	}
	return 0
}

// typeName is the checksum type of a code; "" for an unknown code.
func typeName(code byte) string {
	switch code {
	case typeFullObject:
		return ChecksumFullObject
	case typeComposite:
		return ChecksumComposite
	}
	return ""
}
