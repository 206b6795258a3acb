// Package recovery reads s3seal objects without a running proxy: Inspect
// describes one from the store alone, without decrypting anything, and
// Decrypt turns its stored bytes back into plaintext with the key service,
// from the store or from a copy of the bytes and the Report kept beside
// them. It is what `s3seal inspect` and `s3seal decrypt` run, and what
// docs/RECOVERY.md builds on: data written through s3seal never depends on
// s3seal to be read.
package recovery

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/internal/store"
)

// Report describes one stored object: everything needed, with the key
// service, to decrypt its bytes (docs/FORMAT.md §6, §7). It is printed as
// JSON by `s3seal inspect` and read back by `s3seal decrypt --metadata`.
type Report struct {
	Bucket            string            `json:"bucket"`
	Key               string            `json:"key"`
	VersionID         string            `json:"version_id,omitempty"`
	ETag              string            `json:"etag,omitempty"`
	FormatVersion     int               `json:"format_version"` // of the metadata: 2 with a client's context, 4 for FramingV2, 5 under a bucket key (§6)
	CMK               string            `json:"cmk"`
	EncryptionContext map[string]string `json:"encryption_context"`        // what WrappedKey is unwrapped under: the bucket's alone in version 5 (§6.3)
	WrappedKey        string            `json:"wrapped_key"`               // standard base64, as stored: the bucket key in version 5
	BucketKeySalt     string            `json:"bucket_key_salt,omitempty"` // version 5's s3seal-b, standard base64: the data key is derived from the bucket key with it and the name (§6.3)
	PartChecksum      string            `json:"part_checksum,omitempty"`   // version 4's s3seal-p, "ALGORITHM/TYPE": what the part records hold (§3.4)
	SealedChecksum    string            `json:"sealed_checksum,omitempty"` // version 3's s3seal-s, standard base64 (§6.2)
	StoredSize        int64             `json:"stored_size"`
	PlaintextSize     int64             `json:"plaintext_size"`
	Parts             []Part            `json:"parts"`
}

// Part is one segment (one multipart part) of an object.
type Part struct {
	Number        int   `json:"part"`
	StoredSize    int64 `json:"stored_size"`
	PlaintextSize int64 `json:"plaintext_size"`
}

// ErrNotSealed means the object has no s3seal metadata: it is stored as it
// was written, in plaintext.
var ErrNotSealed = errors.New("not an s3seal object (no x-amz-meta-s3seal-* metadata)")

// Inspect reads what the store holds about obj — its s3seal metadata, size
// and parts (one HEAD per part of a multipart object) — and checks that
// the sizes fit the format. Nothing is decrypted and no key service is
// asked.
func Inspect(ctx context.Context, st *store.Client, obj store.Object) (Report, error) {
	resp, err := st.Do(ctx, obj.Request(http.MethodHead, nil, http.Header{}))
	if err != nil {
		return Report{}, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Report{}, fmt.Errorf("s3://%s/%s: the store answered %d", obj.Bucket, obj.Key, resp.StatusCode)
	}
	meta, err := envelope.ParseHeader(resp.Header)
	if errors.Is(err, envelope.ErrNoMetadata) {
		return Report{}, fmt.Errorf("s3://%s/%s: %w", obj.Bucket, obj.Key, ErrNotSealed)
	}
	if err != nil {
		return Report{}, fmt.Errorf("s3://%s/%s: %w", obj.Bucket, obj.Key, err)
	}
	r := newReport(obj.Bucket, obj.Key, meta)
	r.VersionID = cmp.Or(obj.VersionID, resp.Header.Get("X-Amz-Version-Id"))
	r.ETag, r.StoredSize = resp.Header.Get("ETag"), resp.ContentLength
	if r.Parts, err = parts(ctx, st, obj, r.ETag, resp); err != nil {
		return Report{}, err
	}
	return r, r.Check()
}

// newReport is the report of an object's metadata, without its sizes.
func newReport(bucket, key string, meta envelope.Metadata) Report {
	r := Report{Bucket: bucket, Key: key, FormatVersion: formatVersion(meta), CMK: meta.KeyID,
		EncryptionContext: kms.BindingContext(bucket, key, meta.Context),
		WrappedKey:        base64.StdEncoding.EncodeToString(meta.WrappedKey)}
	if len(meta.BucketKeySalt) > 0 {
		r.EncryptionContext = kms.BucketContext(bucket)
		r.BucketKeySalt = base64.StdEncoding.EncodeToString(meta.BucketKeySalt)
	}
	if meta.Framing == envelope.FramingV2 {
		r.PartChecksum = meta.PartAlgorithm + "/" + meta.PartType
	}
	if len(meta.Checksum) > 0 {
		r.SealedChecksum = base64.StdEncoding.EncodeToString(meta.Checksum)
	}
	return r
}

// parts lists the object's segments with the sizes the store gives: one
// for a single-part object, else one HEAD ?partNumber=k each. The count is
// the ETag's "-N" or, on a store that does not mark multipart ETags, what
// HEAD ?partNumber=1 says (docs/FORMAT.md §4.2, §11.3).
func parts(ctx context.Context, st *store.Client, obj store.Object, etag string, head *http.Response) ([]Part, error) {
	n, marked := envelope.ETagPartCount(etag)
	if !marked {
		first, err := st.HeadPart(ctx, obj, etag, 1)
		if err != nil {
			return nil, fmt.Errorf("s3://%s/%s: asking for its part count: %w", obj.Bucket, obj.Key, err)
		}
		if c, ok := envelope.ParsePartCount(first.Header.Get("X-Amz-Mp-Parts-Count")); ok {
			n = c
		} else if first.ContentLength != head.ContentLength {
			return nil, fmt.Errorf("s3://%s/%s: the store gives no part count", obj.Bucket, obj.Key)
		}
	}
	if n > envelope.MaxSegments {
		return nil, fmt.Errorf("s3://%s/%s: %d parts: %w", obj.Bucket, obj.Key, n, envelope.ErrImpossibleSize)
	}
	if n == 1 {
		return []Part{{Number: 1, StoredSize: head.ContentLength}}, nil
	}
	out := make([]Part, n)
	for k := 1; k <= n; k++ {
		resp, err := st.HeadPart(ctx, obj, etag, k)
		if err != nil {
			return nil, fmt.Errorf("s3://%s/%s part %d: %w", obj.Bucket, obj.Key, k, err)
		}
		out[k-1] = Part{Number: k, StoredSize: resp.ContentLength}
	}
	return out, nil
}

// Check checks the report's sizes, which a report read from a file (or
// edited) may get wrong, and fills in the plaintext sizes from the stored
// ones, refusing sizes the format cannot have (§4).
func (r *Report) Check() error {
	stored := make([]int64, len(r.Parts))
	for i, p := range r.Parts {
		stored[i] = p.StoredSize
	}
	layout, err := envelope.NewLayout(r.Framing(), stored, r.StoredSize)
	if err != nil {
		return fmt.Errorf("s3://%s/%s: sizes: %w", r.Bucket, r.Key, err)
	}
	for i := range r.Parts {
		r.Parts[i].PlaintextSize = layout.Parts[i]
	}
	r.PlaintextSize = layout.PlaintextSize()
	return nil
}

// recordVersion is the metadata version of FramingV2 objects (§6), and
// bucketKeyVersion, the highest, that of objects whose data key is derived
// from a bucket key (§6.3).
const (
	recordVersion    = 4
	bucketKeyVersion = 5
)

// Framing is how the object's segments are laid out, as its metadata
// version says: FramingV2, whose segments end in part records, for
// version 4; FramingV1 for the others. A report that names the wrong one
// fails authentication: every segment header's version byte is in its AAD.
func (r Report) Framing() envelope.Framing {
	if r.FormatVersion == recordVersion {
		return envelope.FramingV2
	}
	return envelope.FramingV1
}

// Metadata is the s3seal metadata the report carries, checked as a store's
// would be: a report edited to bind other names is refused here, and one
// with another key or CMK fails in the key service (or, under a bucket
// key, in authenticating the bytes: the name is in the data key's
// derivation).
func (r Report) Metadata() (envelope.Metadata, error) {
	if r.FormatVersion < 1 || r.FormatVersion > bucketKeyVersion {
		return envelope.Metadata{}, fmt.Errorf("format version %d: %w", r.FormatVersion, envelope.ErrUnsupportedVersion)
	}
	var clientCtx map[string]string
	if r.FormatVersion == bucketKeyVersion || r.BucketKeySalt != "" {
		// A bucket key is bound to its bucket alone, and never to a
		// client's context (§6.3).
		if !maps.Equal(r.EncryptionContext, kms.BucketContext(r.Bucket)) {
			return envelope.Metadata{}, fmt.Errorf("the encryption context is not the bucket key's of s3://%s (docs/FORMAT.md §6.3)", r.Bucket)
		}
	} else {
		// The client's part is everything but s3seal's own keys, which
		// must bind this bucket and key.
		clientCtx = maps.Clone(r.EncryptionContext)
		delete(clientCtx, kms.ContextBucket)
		delete(clientCtx, kms.ContextKey)
		if len(clientCtx) == 0 {
			clientCtx = nil
		}
		if !maps.Equal(r.EncryptionContext, kms.BindingContext(r.Bucket, r.Key, clientCtx)) {
			return envelope.Metadata{}, fmt.Errorf("the encryption context does not bind s3://%s/%s (docs/FORMAT.md §6.1)", r.Bucket, r.Key)
		}
	}
	m := envelope.Metadata{KeyID: r.CMK, WrappedKey: mustBase64(r.WrappedKey), Context: clientCtx, Framing: r.Framing()}
	if r.BucketKeySalt != "" {
		// A salt that is not base64 leaves version 5 without one, which
		// the version check below refuses.
		m.BucketKeySalt = mustBase64(r.BucketKeySalt)
	}
	if (r.PartChecksum != "") != (m.Framing == envelope.FramingV2) {
		return envelope.Metadata{}, fmt.Errorf("format version %d with part checksum %q: %w", r.FormatVersion, r.PartChecksum, envelope.ErrMalformedMetadata)
	}
	m.PartAlgorithm, m.PartType, _ = strings.Cut(r.PartChecksum, "/") // ParseUserMetadata checks them
	if r.SealedChecksum != "" {
		m.Checksum = mustBase64(r.SealedChecksum)
	}
	if formatVersion(m) != r.FormatVersion {
		return envelope.Metadata{}, fmt.Errorf("format version %d with that encryption context: %w", r.FormatVersion, envelope.ErrMalformedMetadata)
	}
	return envelope.ParseUserMetadata(m.UserMetadata())
}

func mustBase64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil // ParseUserMetadata then refuses the empty key
	}
	return b
}

// Decrypt writes the plaintext of the object r describes, read from
// ciphertext (its stored bytes), to out, after unwrapping its data key
// with keys. Only authenticated bytes are written; on an error out may
// hold a prefix of the true plaintext, never other bytes, and a stream
// that ends early, or holds other than r's parts, is an error.
func Decrypt(ctx context.Context, keys kms.ObjectKeys, r Report, ciphertext io.Reader, out io.Writer) (int64, error) {
	meta, err := r.Metadata()
	if err != nil {
		return 0, err
	}
	if err := r.Check(); err != nil {
		return 0, err
	}
	dk, err := keys.Open(ctx, meta, r.Bucket, r.Key)
	if err != nil {
		return 0, err
	}
	defer clear(dk)
	dec := envelope.NewDecryptReader(ciphertext, dk, meta.Framing, len(r.Parts))
	n, err := io.Copy(out, dec)
	if err != nil {
		return n, err
	}
	if n != r.PlaintextSize {
		return n, fmt.Errorf("decrypted %d bytes, the report says %d: %w", n, r.PlaintextSize, envelope.ErrTruncated)
	}
	return n, nil
}

// Open reads the stored bytes of the object r describes, pinned to its
// ETag so that they are the bytes inspected.
func Open(ctx context.Context, st *store.Client, r Report) (io.ReadCloser, error) {
	obj := store.Object{Bucket: r.Bucket, Key: r.Key, VersionID: r.VersionID}
	return st.GetRange(ctx, obj, r.ETag, 0, r.StoredSize)
}

// formatVersion is the metadata version m is stored with (§6).
func formatVersion(m envelope.Metadata) int {
	v, _ := strconv.Atoi(m.UserMetadata()["s3seal-v"])
	return v
}
