package envelope

// Part records: the CRC of one FramingV2 segment's plaintext, kept after its
// final chunk, encrypted, and authenticated as part of the final chunk's AAD
// (docs/FORMAT.md §3.4). A multipart upload's metadata is fixed before any
// part exists, so what is known only once a part has been read travels in
// the part's own bytes — in the 16 bytes FramingV2 saves on the header, so
// that no stored size changes.

import (
	"bytes"
	"fmt"
)

// RecordSize is the stored size of a part record.
const RecordSize = 16

// recordValueLen is the longest value a record holds: CRC64NVME's.
const recordValueLen = 8

// RecordAlgorithm reports whether a part record can hold checksums of the
// algorithm: the CRCs, whose values fit and combine into a whole object's.
func RecordAlgorithm(algorithm string) bool {
	_, size := algoCode(algorithm)
	return size > 0 && size <= recordValueLen && algorithm != "SHA1"
}

// recordPlain is a record's plaintext: algorithm ‖ type ‖ value, zero-padded.
func recordPlain(c Checksum) ([RecordSize]byte, error) {
	var b [RecordSize]byte
	code, size := algoCode(c.Algorithm)
	t := typeCode(c.Type)
	if !RecordAlgorithm(c.Algorithm) || t == 0 || len(c.Value) != size {
		return b, fmt.Errorf("part checksum %s %s of %d bytes cannot be recorded", c.Algorithm, c.Type, len(c.Value))
	}
	b[0], b[1] = code, t
	copy(b[2:], c.Value)
	return b, nil
}

// parseRecordPlain reads what recordPlain wrote. A record that authenticated
// and still fails here was written by something else.
func parseRecordPlain(b []byte) (Checksum, error) {
	name, size := algoName(b[0])
	typ := typeName(b[1])
	if !RecordAlgorithm(name) || typ == "" || bytes.Count(b[2+size:], []byte{0}) != RecordSize-2-size {
		return Checksum{}, fmt.Errorf("part record names algorithm %d, type %d: %w", b[0], b[1], ErrMalformedMetadata)
	}
	return Checksum{Algorithm: name, Type: typ, Value: bytes.Clone(b[2 : 2+size])}, nil
}

// recordStream XORs b with the record's keystream: AES-CTR under the segment
// key, through GCM with a nonce no chunk uses (its tag is not kept; the
// final chunk's authenticates the record).
func (s *segment) recordStream(b []byte) {
	s.setNonce(0, flagRecord)
	ks := s.aead.Seal(nil, s.nonce[:], make([]byte, RecordSize), nil)
	for i := range b {
		b[i] ^= ks[i]
	}
}

// setRecord encrypts c into the segment's record, which the final chunk
// then authenticates.
func (s *segment) setRecord(c Checksum) error {
	plain, err := recordPlain(c)
	if err != nil {
		return err
	}
	rec := s.record()
	copy(rec, plain[:])
	s.recordStream(rec)
	return nil
}

// record is the segment's stored record (FramingV2).
func (s *segment) record() []byte { return s.aad[s.framing.HeaderLen():] }

// readRecord decrypts the record. Only a record the final chunk has
// authenticated may be read.
func (s *segment) readRecord() (Checksum, error) {
	b := bytes.Clone(s.record())
	s.recordStream(b)
	c, err := parseRecordPlain(b)
	if err != nil {
		return Checksum{}, fmt.Errorf("segment %d: %w", s.part(), err)
	}
	return c, nil
}

// OpenRecord reads the part record of segment part of a FramingV2 object,
// given the segment's stored header, its final chunk (index final, as stored
// with its tag) and the record after it: the final chunk is opened to
// authenticate the record. It returns the part's checksum, without Parts. A
// record from another segment, object or upload of the part fails
// authentication.
func OpenRecord(dataKey, header, finalChunk, record []byte, part uint32, final uint64) (Checksum, error) {
	seg, err := parseSegment(dataKey, header, FramingV2, part)
	if err != nil {
		return Checksum{}, err
	}
	if len(record) != RecordSize {
		return Checksum{}, fmt.Errorf("segment %d part record: %w", part, ErrTruncated)
	}
	copy(seg.record(), record)
	if _, err := seg.open(nil, finalChunk, final, true); err != nil {
		return Checksum{}, fmt.Errorf("segment %d final chunk and part record: %w", part, ErrAuthentication)
	}
	return seg.readRecord()
}
