package envelope

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// s3seal's own user metadata. Short names leave users nearly all of the
// 2 KB S3 allows for user metadata (docs/FORMAT.md, "Metadata").
const (
	metaPrefix = "s3seal-"
	metaV      = "s3seal-v" // format version, decimal
	metaC      = "s3seal-c" // CMK that wrapped the data key, as the key service names it
	metaK      = "s3seal-k" // wrapped data key, standard base64

	amzMetaPrefix = "x-amz-meta-"

	maxKeyIDLen   = 2048 // AWS ARNs with long alias names stay far below
	maxWrappedLen = 6144 // the AWS KMS ciphertext blob limit
)

var (
	// ErrNoMetadata means an object without s3seal metadata: not written by
	// s3seal, so its body is not ciphertext s3seal can vouch for.
	ErrNoMetadata = errors.New("object has no s3seal metadata")
	// ErrMalformedMetadata means s3seal metadata that is incomplete or
	// cannot be parsed.
	ErrMalformedMetadata = errors.New("malformed s3seal metadata")
)

// Metadata is what s3seal keeps beside each object's ciphertext.
type Metadata struct {
	KeyID      string // the CMK that wrapped WrappedKey
	WrappedKey []byte // the data key, wrapped under KeyID and bound to bucket and key
}

// UserMetadata returns the metadata as S3 user metadata keys without the
// "x-amz-meta-" prefix, as minio-go's UserMetadata takes them.
func (m Metadata) UserMetadata() map[string]string {
	return map[string]string{
		metaV: strconv.Itoa(FormatVersion),
		metaC: m.KeyID,
		metaK: base64.StdEncoding.EncodeToString(m.WrappedKey),
	}
}

// IsReserved reports whether an S3 user-metadata name (with or without the
// "x-amz-meta-" prefix, any case) belongs to s3seal. Clients may neither set
// nor see such names.
func IsReserved(name string) bool {
	name = strings.ToLower(name)
	name = strings.TrimPrefix(name, amzMetaPrefix)
	return strings.HasPrefix(name, metaPrefix)
}

// ParseHeader reads the metadata from the headers of a store's answer
// about an object (x-amz-meta-s3seal-*, §6); other headers are ignored.
func ParseHeader(h http.Header) (Metadata, error) {
	user := map[string]string{}
	for k, v := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") && IsReserved(k) && len(v) > 0 {
			user[k] = v[0]
		}
	}
	return ParseUserMetadata(user)
}

// ParseUserMetadata reads the metadata from user metadata, keyed with or
// without the "x-amz-meta-" prefix in any case; other entries are ignored.
func ParseUserMetadata(user map[string]string) (Metadata, error) {
	fields := make(map[string]string, 3)
	for k, v := range user {
		k = strings.TrimPrefix(strings.ToLower(k), amzMetaPrefix)
		if !strings.HasPrefix(k, metaPrefix) {
			continue
		}
		if _, dup := fields[k]; dup {
			return Metadata{}, fmt.Errorf("%q given twice: %w", k, ErrMalformedMetadata)
		}
		fields[k] = v
	}
	if len(fields) == 0 {
		return Metadata{}, ErrNoMetadata
	}
	v, ok := fields[metaV]
	if !ok {
		return Metadata{}, fmt.Errorf("%q missing: %w", metaV, ErrMalformedMetadata)
	}
	if v != strconv.Itoa(FormatVersion) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Metadata{}, fmt.Errorf("%q is not a version number: %w", metaV, ErrMalformedMetadata)
		}
		return Metadata{}, fmt.Errorf("metadata version %d: %w", n, ErrUnsupportedVersion)
	}
	// Version 1 has exactly these fields: one that changes how an object
	// is read must come with a new version, so unknown ones are refused
	// rather than ignored.
	for k := range fields {
		if k != metaV && k != metaC && k != metaK {
			return Metadata{}, fmt.Errorf("unknown field %q in version 1: %w", k, ErrMalformedMetadata)
		}
	}
	var m Metadata
	m.KeyID = fields[metaC]
	if m.KeyID == "" || len(m.KeyID) > maxKeyIDLen || !printableASCII(m.KeyID) {
		return Metadata{}, fmt.Errorf("%q missing or invalid: %w", metaC, ErrMalformedMetadata)
	}
	k := fields[metaK]
	if k == "" || len(k) > base64.StdEncoding.EncodedLen(maxWrappedLen) {
		return Metadata{}, fmt.Errorf("%q missing or too long: %w", metaK, ErrMalformedMetadata)
	}
	wrapped, err := base64.StdEncoding.Strict().DecodeString(k)
	if err != nil {
		return Metadata{}, fmt.Errorf("%q is not base64: %w", metaK, ErrMalformedMetadata)
	}
	m.WrappedKey = wrapped
	return m, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
