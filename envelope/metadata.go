package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// s3seal's own user metadata. Short names leave users nearly all of the
// 2 KB S3 allows for user metadata (docs/FORMAT.md, "Metadata").
const (
	metaPrefix = "s3seal-"
	metaV      = "s3seal-v" // format version, decimal
	metaC      = "s3seal-c" // CMK that wrapped the data key, as the key service names it
	metaK      = "s3seal-k" // wrapped data key, standard base64
	metaX      = "s3seal-x" // the client's encryption context (version 2), base64 of a JSON object
	metaS      = "s3seal-s" // the sealed checksum of the plaintext (version 3), standard base64
	metaP      = "s3seal-p" // the part checksums a multipart upload declared (version 4), "ALGORITHM/TYPE"
	metaB      = "s3seal-b" // the salt of a data key derived from a bucket key (version 5), standard base64

	// contextVersion is the metadata version of objects with a client's
	// encryption context: their stored bytes are version 1's (§6).
	contextVersion = 2
	// checksumVersion is the metadata version of objects with a sealed
	// checksum, with or without a client's context: their stored bytes too
	// are version 1's (§6).
	checksumVersion = 3
	// recordVersion is the metadata version of FramingV2 objects, whose
	// segments end in part records (§3.4): multipart uploads.
	recordVersion = 4
	// bucketKeyVersion is the metadata version of objects whose data key
	// is derived from a bucket key (§6.3); their stored bytes are version
	// 1's.
	bucketKeyVersion = 5

	// MaxContextLen bounds the encoded s3seal-x: S3 allows 2 KB of user
	// metadata in all, and s3seal's own fields take up to about 350 bytes.
	MaxContextLen = 1024

	// ReservedContextPrefix starts the encryption-context keys s3seal sets
	// itself (§6.1); a client's context may not use it.
	ReservedContextPrefix = "s3seal:"

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
	WrappedKey []byte // the data key, wrapped under KeyID and bound to bucket, key and Context
	// Context is the client's encryption context (SSE-KMS's), bound with
	// bucket and key (§6.1); nil for none.
	Context map[string]string
	// Checksum is the sealed checksum of the plaintext (§6.2), opened with
	// OpenChecksum and the data key; nil for none. FramingV1 only.
	Checksum []byte
	// Framing is how the object's segments are laid out (FramingV1 when
	// zero). FramingV2 objects are version 4.
	Framing Framing
	// PartAlgorithm and PartType are the checksum a FramingV2 object's
	// upload declared (a CRC; RecordAlgorithm): its part records hold the
	// values (§3.4).
	PartAlgorithm, PartType string
	// BucketKeySalt, when set, makes WrappedKey a bucket key, bound to the
	// bucket alone, from which the object's data key is derived with this
	// salt and the object's name (DeriveObjectKey, §6.3). Version 5: single
	// FramingV1 objects without a client's context.
	BucketKeySalt []byte
}

// UserMetadata returns the metadata as S3 user metadata keys without the
// "x-amz-meta-" prefix, as minio-go's UserMetadata takes them: version 1,
// 2 when there is a client's context, 3 when there is a sealed checksum.
func (m Metadata) UserMetadata() map[string]string {
	u := map[string]string{
		metaV: strconv.Itoa(FormatVersion),
		metaC: m.KeyID,
		metaK: base64.StdEncoding.EncodeToString(m.WrappedKey),
	}
	if len(m.Context) > 0 {
		u[metaV] = strconv.Itoa(contextVersion)
		u[metaX] = EncodeContext(m.Context)
	}
	if len(m.BucketKeySalt) > 0 {
		u[metaV] = strconv.Itoa(bucketKeyVersion)
		u[metaB] = base64.StdEncoding.EncodeToString(m.BucketKeySalt)
		if len(m.Checksum) > 0 {
			u[metaS] = base64.StdEncoding.EncodeToString(m.Checksum)
		}
		return u
	}
	switch {
	case m.Framing == FramingV2:
		u[metaV] = strconv.Itoa(recordVersion)
		u[metaP] = m.PartAlgorithm + "/" + m.PartType
	case len(m.Checksum) > 0:
		u[metaV] = strconv.Itoa(checksumVersion)
		u[metaS] = base64.StdEncoding.EncodeToString(m.Checksum)
	}
	return u
}

// EncodeContext is an encryption context as S3's
// x-amz-server-side-encryption-context and §6's s3seal-x carry it: base64
// of a JSON object, keys in byte order, nothing HTML-escaped.
func EncodeContext(c map[string]string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(c) // a string map cannot fail; it is written sorted by key
	return base64.StdEncoding.EncodeToString(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// DecodeContext reads an encryption context as a client or §6's s3seal-x
// gives it, and checks it as §6.1 requires: a non-empty JSON object whose
// keys are distinct and not in s3seal's namespace and whose values are
// non-empty strings, all valid UTF-8, at most MaxContextLen encoded as
// given and as EncodeContext writes it (what is stored must read back).
func DecodeContext(s string) (map[string]string, error) {
	if s == "" || len(s) > MaxContextLen {
		return nil, fmt.Errorf("encryption context empty or over %d bytes encoded", MaxContextLen)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("encryption context is not base64")
	}
	c, err := contextObject(b)
	if err != nil {
		return nil, err
	}
	if len(EncodeContext(c)) > MaxContextLen {
		return nil, fmt.Errorf("encryption context over %d bytes encoded", MaxContextLen)
	}
	return c, nil
}

// contextObject parses b as a JSON object of distinct, non-reserved keys
// and non-empty string values, refusing what JSON decoders disagree on
// (duplicate keys, invalid UTF-8).
func contextObject(b []byte) (map[string]string, error) {
	bad := errors.New("encryption context is not a JSON object of distinct keys and non-empty strings")
	if !utf8.Valid(b) {
		return nil, bad
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, bad
	}
	c := map[string]string{}
	for dec.More() {
		k, err1 := dec.Token()
		v, err2 := dec.Token()
		key, ok1 := k.(string)
		val, ok2 := v.(string)
		if err1 != nil || err2 != nil || !ok1 || !ok2 || val == "" || key == "" {
			return nil, bad
		}
		if _, dup := c[key]; dup {
			return nil, bad
		}
		if strings.HasPrefix(strings.ToLower(key), ReservedContextPrefix) {
			return nil, fmt.Errorf("encryption context key %q is reserved (%s*)", key, ReservedContextPrefix)
		}
		c[key] = val
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') || len(c) == 0 || dec.More() {
		return nil, bad
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad
	}
	return c, nil
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
	// Each version has exactly its fields: one that changes how an object
	// is read must come with a new version, so unknown ones are refused
	// rather than ignored.
	want := map[string][]string{
		strconv.Itoa(FormatVersion):    {metaV, metaC, metaK},
		strconv.Itoa(contextVersion):   {metaV, metaC, metaK, metaX},
		strconv.Itoa(checksumVersion):  {metaV, metaC, metaK, metaS, metaX},
		strconv.Itoa(recordVersion):    {metaV, metaC, metaK, metaX, metaP},
		strconv.Itoa(bucketKeyVersion): {metaV, metaC, metaK, metaB, metaS},
	}[v]
	if want == nil {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Metadata{}, fmt.Errorf("%q is not a version number: %w", metaV, ErrMalformedMetadata)
		}
		return Metadata{}, fmt.Errorf("metadata version %d: %w", n, ErrUnsupportedVersion)
	}
	for k := range fields {
		if !slices.Contains(want, k) {
			return Metadata{}, fmt.Errorf("unknown field %q in version %s: %w", k, v, ErrMalformedMetadata)
		}
	}
	m := Metadata{Framing: FramingV1}
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
	if v == strconv.Itoa(bucketKeyVersion) {
		if m.BucketKeySalt, err = base64.StdEncoding.Strict().DecodeString(fields[metaB]); err != nil || len(m.BucketKeySalt) != BucketKeySaltSize {
			return Metadata{}, fmt.Errorf("%q is not a %d-byte salt: %w", metaB, BucketKeySaltSize, ErrMalformedMetadata)
		}
	}
	if _, ok := fields[metaS]; ok || v == strconv.Itoa(checksumVersion) {
		if m.Checksum, err = decodeSealedChecksum(fields[metaS]); err != nil {
			return Metadata{}, fmt.Errorf("%q: %v: %w", metaS, err, ErrMalformedMetadata)
		}
	}
	if v == strconv.Itoa(recordVersion) {
		m.Framing = FramingV2
		if m.PartAlgorithm, m.PartType, err = parsePartChecksum(fields[metaP]); err != nil {
			return Metadata{}, fmt.Errorf("%q: %v: %w", metaP, err, ErrMalformedMetadata)
		}
	}
	if _, ok := fields[metaX]; ok || v == strconv.Itoa(contextVersion) {
		if m.Context, err = DecodeContext(fields[metaX]); err != nil {
			return Metadata{}, fmt.Errorf("%q: %v: %w", metaX, err, ErrMalformedMetadata)
		}
	}
	return m, nil
}

// decodeSealedChecksum reads §6.2's s3seal-s, whose tag only the data key
// checks (OpenChecksum).
func decodeSealedChecksum(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64")
	}
	if _, err := parseSealedChecksum(b); err != nil {
		return nil, err
	}
	return b, nil
}

// parsePartChecksum reads §6's s3seal-p, "ALGORITHM/TYPE".
func parsePartChecksum(s string) (algorithm, typ string, err error) {
	algorithm, typ, _ = strings.Cut(s, "/")
	if !RecordAlgorithm(algorithm) || !ChecksumTypeAllowed(algorithm, typ) {
		return "", "", fmt.Errorf("%q is no CRC algorithm and type a record holds", s)
	}
	return algorithm, typ, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
