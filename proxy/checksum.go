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

// keepsChecksum reports whether an object keeps a checksum: sealed in its
// metadata (§6.2), or recorded in its parts (FramingV2, §3.4).
func keepsChecksum(info objectInfo) bool {
	return !info.plaintext && (len(info.meta.Checksum) > 0 || info.framing() == envelope.FramingV2)
}

// objectChecksum is the checksum o keeps, verified under its data key dk;
// nil when it keeps none. A read that answers it and then decrypts the
// body has the body's records checked by check (nil: nothing to check).
func (p *Proxy) objectChecksum(ctx context.Context, o objRef, dk []byte) (c *envelope.Checksum, check func(uint32, []byte) error, err error) {
	if o.info.plaintext {
		return nil, nil, nil
	}
	if o.info.framing() == envelope.FramingV2 {
		c, recs, err := p.recordedChecksum(ctx, o, dk)
		if c == nil {
			return nil, nil, err
		}
		return c, recs.check, err
	}
	c, err = openChecksum(o.info, dk)
	return c, nil, err
}

// readChecksum is objectChecksum for a read that has not unwrapped the data
// key (HEAD, GetObjectAttributes): it unwraps it only for an object that
// keeps a checksum.
func (p *Proxy) readChecksum(ctx context.Context, o objRef) (*envelope.Checksum, error) {
	if !keepsChecksum(o.info) {
		return nil, nil
	}
	dk, err := p.keys.Open(ctx, o.info.meta, o.Bucket, o.Key)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	c, _, err := p.objectChecksum(ctx, o, dk)
	return c, err
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
	return &objectChecksum{checksumValues: valuesOf(*c), ChecksumType: c.Type}
}

// valuesOf is c in the element of its algorithm, as S3's documents give
// checksums (CopyPartResult, ObjectPart, <Checksum>).
func valuesOf(c envelope.Checksum) checksumValues {
	var v checksumValues
	s := c.Encoded()
	switch c.Algorithm {
	case "CRC32":
		v.ChecksumCRC32 = s
	case "CRC32C":
		v.ChecksumCRC32C = s
	case "CRC64NVME":
		v.ChecksumCRC64NVME = s
	case "SHA1":
		v.ChecksumSHA1 = s
	case "SHA256":
		v.ChecksumSHA256 = s
	}
	return v
}
