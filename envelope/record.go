package envelope

// Part records: the CRC of one FramingV2 segment's plaintext, kept after its
// final chunk (docs/FORMAT.md §3.4). A multipart upload's metadata is fixed
// before any part exists, so what is known only once a part has been read
// travels in the part's own bytes — in the 16 bytes FramingV2 saves on the
// header, so that no stored size changes. The record is encrypted, carries
// its own MAC (so HEAD-like reads need only its 16 bytes and the header's),
// and is in the final chunk's AAD (so every read of the chunk checks it
// under the full GCM tag).

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// RecordSize is the stored size of a part record.
const RecordSize = recordValueLen + recordMACLen

const (
	recordValueLen = 8 // the longest value a record holds: CRC64NVME's
	recordMACLen   = 8
)

// RecordAlgorithm reports whether a part record can hold checksums of the
// algorithm: the CRCs, whose values fit and combine into a whole object's.
func RecordAlgorithm(algorithm string) bool {
	switch algorithm {
	case "CRC32", "CRC32C", "CRC64NVME":
		return true
	}
	return false
}

// recordStream XORs b with the record's keystream: AES-CTR under the segment
// key, through GCM with a nonce no chunk uses (its tag is not kept).
func (s *segment) recordStream(b []byte) {
	s.setNonce(0, flagRecord)
	ks := s.aead.Seal(nil, s.nonce[:], make([]byte, recordValueLen), nil)
	for i := range b {
		b[i] ^= ks[i]
	}
}

// recordMAC is the record's own MAC: HMAC-SHA256 under the segment's MAC key
// of the header, the segment's plaintext length (a FULL_OBJECT checksum is
// combined with it, so a reader's part sizes must be the writer's), the
// checksum's algorithm and type (which the object's metadata names), and
// the encrypted value, cut to recordMACLen.
func (s *segment) recordMAC(plainLen int64, algorithm, typ string, ct []byte) []byte {
	m := hmac.New(sha256.New, s.macKey)
	m.Write(s.header())
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(plainLen)))
	m.Write(binary.BigEndian.AppendUint16(nil, uint16(len(algorithm))))
	m.Write([]byte(algorithm))
	m.Write(binary.BigEndian.AppendUint16(nil, uint16(len(typ))))
	m.Write([]byte(typ))
	m.Write(ct)
	return m.Sum(nil)[:recordMACLen]
}

// setRecord makes c, the checksum of the segment's plainLen bytes, its
// record, which the final chunk's AAD then covers.
func (s *segment) setRecord(c Checksum, plainLen int64) error {
	if !RecordAlgorithm(c.Algorithm) || typeCode(c.Type) == 0 || len(c.Value) > recordValueLen {
		return fmt.Errorf("part checksum %s %s cannot be recorded", c.Algorithm, c.Type)
	}
	if _, size := algoCode(c.Algorithm); len(c.Value) != size {
		return fmt.Errorf("part checksum %s of %d bytes", c.Algorithm, len(c.Value))
	}
	rec := s.record()
	clear(rec)
	copy(rec, c.Value)
	s.recordStream(rec[:recordValueLen])
	copy(rec[recordValueLen:], s.recordMAC(plainLen, c.Algorithm, c.Type, rec[:recordValueLen]))
	return nil
}

// record is the segment's stored record (FramingV2).
func (s *segment) record() []byte { return s.aad[s.framing.HeaderLen():] }

// OpenRecord reads the part record of segment part of a FramingV2 object,
// given the segment's stored header and its last RecordSize bytes, the
// plaintext size the reader takes the segment to have, and the checksum
// algorithm and type the object's metadata declares. It returns the part's
// checksum, without Parts. A record of another segment, object, upload of
// the part, size or algorithm fails authentication.
func OpenRecord(dataKey, header, record []byte, part uint32, plainLen int64, algorithm, typ string) (Checksum, error) {
	seg, err := parseSegment(dataKey, header, FramingV2, part)
	if err != nil {
		return Checksum{}, err
	}
	if len(record) != RecordSize {
		return Checksum{}, fmt.Errorf("segment %d part record: %w", part, ErrTruncated)
	}
	ct, mac := record[:recordValueLen], record[recordValueLen:]
	if !hmac.Equal(mac, seg.recordMAC(plainLen, algorithm, typ, ct)) {
		return Checksum{}, fmt.Errorf("segment %d part record (%d bytes, %s %s): %w", part, plainLen, algorithm, typ, ErrAuthentication)
	}
	_, size := algoCode(algorithm)
	if !RecordAlgorithm(algorithm) || typeCode(typ) == 0 {
		return Checksum{}, fmt.Errorf("segment %d part record of %s %s: %w", part, algorithm, typ, ErrMalformedMetadata)
	}
	v := append([]byte(nil), ct...)
	seg.recordStream(v)
	for _, b := range v[size:] {
		if b != 0 {
			return Checksum{}, fmt.Errorf("segment %d part record is no %s value: %w", part, algorithm, ErrAuthentication)
		}
	}
	return Checksum{Algorithm: algorithm, Type: typ, Value: v[:size]}, nil
}
