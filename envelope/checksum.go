package envelope

// Sealed checksums: a client's checksum of an object's plaintext, kept in
// the object's metadata and authenticated under its data key
// (docs/FORMAT.md §6.2).

import (
	"crypto/hkdf"
	"crypto/hmac"
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
	checksumHeadLen = 4 // algorithm, type, uint16 part count
	checksumTagLen  = 16
	checksumInfo    = "s3seal v3 checksum"
	typeFullObject  = 1
	typeComposite   = 2
)

// ErrChecksumAuthentication means a sealed checksum whose tag does not
// verify under the object's data key: not what s3seal stored.
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
// with "-N" for a composite checksum.
func (c Checksum) Encoded() string {
	s := base64.StdEncoding.EncodeToString(c.Value)
	if c.Type == ChecksumComposite {
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

// SealChecksum encodes c and authenticates it under the object's data key
// (§6.2).
func SealChecksum(dataKey []byte, c Checksum) ([]byte, error) {
	code, size := algoCode(c.Algorithm)
	typ := map[string]byte{ChecksumFullObject: typeFullObject, ChecksumComposite: typeComposite}[c.Type]
	if code == 0 || len(c.Value) != size || typ == 0 || c.Parts < 0 || c.Parts > MaxSegments {
		return nil, errors.New("checksum cannot be sealed: unknown algorithm or type, or wrong size")
	}
	b := []byte{code, typ}
	b = binary.BigEndian.AppendUint16(b, uint16(c.Parts))
	b = append(b, c.Value...)
	tag, err := checksumTag(dataKey, b)
	if err != nil {
		return nil, err
	}
	return append(b, tag...), nil
}

// OpenChecksum verifies a sealed checksum under the object's data key and
// decodes it.
func OpenChecksum(dataKey, sealed []byte) (Checksum, error) {
	c, err := parseSealedChecksum(sealed)
	if err != nil {
		return Checksum{}, err
	}
	body := sealed[:len(sealed)-checksumTagLen]
	want, err := checksumTag(dataKey, body)
	if err != nil {
		return Checksum{}, err
	}
	if !hmac.Equal(want, sealed[len(body):]) {
		return Checksum{}, ErrChecksumAuthentication
	}
	return c, nil
}

// parseSealedChecksum decodes a sealed checksum's fields without checking
// its tag: what metadata parsing can check without the data key.
func parseSealedChecksum(b []byte) (Checksum, error) {
	if len(b) < checksumHeadLen+checksumTagLen {
		return Checksum{}, errors.New("sealed checksum too short")
	}
	var c Checksum
	var size int
	for _, a := range checksumAlgos {
		if a.code == b[0] {
			c.Algorithm, size = a.name, a.size
		}
	}
	c.Parts = int(binary.BigEndian.Uint16(b[2:4]))
	switch {
	case b[1] == typeFullObject:
		c.Type = ChecksumFullObject
	case b[1] == typeComposite && c.Parts >= 1:
		c.Type = ChecksumComposite
	}
	if c.Algorithm == "" || c.Type == "" || c.Parts > MaxSegments ||
		len(b) != checksumHeadLen+size+checksumTagLen {
		return Checksum{}, errors.New("sealed checksum has an unknown algorithm or type, or the wrong size")
	}
	c.Value = append([]byte(nil), b[checksumHeadLen:checksumHeadLen+size]...)
	return c, nil
}

func checksumTag(dataKey, body []byte) ([]byte, error) {
	mk, err := hkdf.Key(sha256.New, dataKey, nil, checksumInfo, 32)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, mk)
	m.Write(body)
	return m.Sum(nil)[:checksumTagLen], nil
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
