package proxy

// Checksums of plaintext that s3seal keeps sealed in an object's metadata
// (FORMAT.md §6.2) and answers as S3 does. The store's checksums, of the
// ciphertext, are never answered (objectResponseHeader).

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// checksumMode reports whether a read asks for the object's checksum
// (x-amz-checksum-mode: ENABLED), without which S3 answers none.
func checksumMode(h http.Header) bool {
	return strings.EqualFold(strings.TrimSpace(h.Get("X-Amz-Checksum-Mode")), "ENABLED")
}

// openChecksum is the object's sealed checksum, verified under its data
// key dk; nil when it keeps none. A checksum that does not verify, or that
// describes another part count than the object's, was not sealed for this
// object: the read fails rather than vouch for a wrong value.
func openChecksum(info objectInfo, dk []byte) (*envelope.Checksum, error) {
	if info.plaintext || len(info.meta.Checksum) == 0 {
		return nil, nil
	}
	c, err := envelope.OpenChecksum(dk, info.meta.Checksum)
	if err != nil {
		return nil, errCorrupt(err)
	}
	if parts := max(c.Parts, 1); parts != info.segments {
		return nil, errCorrupt(errors.New("sealed checksum is of another part count than the object"))
	}
	return &c, nil
}

// readChecksum is openChecksum for a read that has not unwrapped the data
// key (HEAD, GetObjectAttributes): it unwraps it only for an object that
// keeps a checksum.
func (p *Proxy) readChecksum(ctx context.Context, info objectInfo, bucket, key string) (*envelope.Checksum, error) {
	if info.plaintext || len(info.meta.Checksum) == 0 {
		return nil, nil
	}
	dk, err := p.keys.Open(ctx, info.meta, bucket, key)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	return openChecksum(info, dk)
}

// setChecksumHeaders answers c as S3 does on a read with checksum mode.
func setChecksumHeaders(h http.Header, c *envelope.Checksum) {
	if c == nil {
		return
	}
	h.Set("X-Amz-Checksum-"+c.Algorithm, c.Encoded())
	h.Set("X-Amz-Checksum-Type", c.Type)
}

// attributesChecksum is c as GetObjectAttributes' <Checksum> gives it.
func attributesChecksum(c *envelope.Checksum) *objectChecksum {
	if c == nil {
		return nil
	}
	v := c.Encoded()
	oc := &objectChecksum{ChecksumType: c.Type}
	switch c.Algorithm {
	case "CRC32":
		oc.ChecksumCRC32 = v
	case "CRC32C":
		oc.ChecksumCRC32C = v
	case "CRC64NVME":
		oc.ChecksumCRC64NVME = v
	case "SHA1":
		oc.ChecksumSHA1 = v
	case "SHA256":
		oc.ChecksumSHA256 = v
	}
	return oc
}
