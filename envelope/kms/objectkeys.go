package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"

	"github.com/s3seal/s3seal/envelope"
)

// Encryption-context keys that bind a data key to its object. KMS (or the
// keyring) refuses to unwrap the key under any other bucket or key, so
// ciphertext moved to another name does not decrypt, and each unwrap is
// attributable to an object in the key service's audit log.
const (
	ContextBucket = "s3seal:bucket"
	ContextKey    = "s3seal:key"
)

// BindingContext is the encryption context of the object key in bucket,
// with a client's context extra (nil for none) beside it (FORMAT.md §6.1).
// A client's context cannot name s3seal's keys (envelope.DecodeContext).
func BindingContext(bucket, key string, extra ...map[string]string) map[string]string {
	c := map[string]string{}
	for _, e := range extra {
		maps.Copy(c, e)
	}
	c[ContextBucket], c[ContextKey] = bucket, key
	return c
}

// ObjectKeys makes, opens and rebinds per-object data keys. It is the one
// place that decides how a data key is tied to its object.
type ObjectKeys struct {
	Keys  KeyService
	KeyID string // the CMK for new objects and the target of rebinds
	// Context is a client's encryption context for new objects and the
	// target of rebinds (SSE-KMS's), bound beside bucket and key; nil for
	// none.
	Context map[string]string
	// Allowed is the CMKs objects may be opened and rebound under; it must
	// include KeyID. Nil refuses every operation.
	Allowed *AllowList
	// Grants makes every operation also ask the KeyGrant its context
	// carries (WithGrant) about each CMK it uses, and refuse a context that
	// carries none: the client a request is for may use fewer CMKs than
	// s3seal may. False: no per-client grants.
	Grants bool
	// BucketKeys, when set, makes New derive the data keys of objects
	// without a client's context from a bucket key (FORMAT.md §6.3), which
	// it reuses; nil makes one data key per object.
	BucketKeys *BucketKeys
}

// KeyGrant decides whether the client a request is for may use a CMK.
type KeyGrant interface {
	// MayUse returns nil if the client may use the CMK keyID (a canonical
	// id, as Wrapped.KeyID holds), an error wrapping ErrNotGranted if not,
	// and one wrapping ErrKMSUnavailable if that cannot be told now.
	MayUse(ctx context.Context, keyID string) error
}

// ErrNotGranted means the client may not use a CMK that s3seal may.
var ErrNotGranted = errors.New("CMK not granted to the client")

type grantKey struct{}

// WithGrant returns ctx carrying g, for ObjectKeys with Grants set.
func WithGrant(ctx context.Context, g KeyGrant) context.Context {
	return context.WithValue(ctx, grantKey{}, g)
}

// mayUse asks ctx's grant about keyID when o checks grants.
func (o ObjectKeys) mayUse(ctx context.Context, keyID string) error {
	if !o.Grants {
		return nil
	}
	g, ok := ctx.Value(grantKey{}).(KeyGrant)
	if !ok || g == nil {
		return fmt.Errorf("%w: the request carries no grants", ErrNotGranted)
	}
	return g.MayUse(ctx, keyID)
}

// mayUseTarget asks ctx's grant about o.KeyID, the CMK new objects and
// rebinds go under, before the key service is asked to use it.
func (o ObjectKeys) mayUseTarget(ctx context.Context) error {
	if !o.Grants {
		return nil
	}
	id, err := o.Allowed.Choose(ctx, o.KeyID)
	if err != nil {
		return err
	}
	return o.mayUse(ctx, id)
}

// WithContext is o with a client's encryption context for new objects and
// rebinds.
func (o ObjectKeys) WithContext(c map[string]string) ObjectKeys {
	o.Context = c
	return o
}

// Under is o with the CMK for new objects and rebinds set to keyID, a
// canonical id from Allowed.Choose (a client's choice) or a configured name.
func (o ObjectKeys) Under(keyID string) ObjectKeys {
	o.KeyID = keyID
	return o
}

// WithoutBucketKeys is o making one data key per object: for multipart
// uploads, whose many requests one key serves anyway.
func (o ObjectKeys) WithoutBucketKeys() ObjectKeys {
	o.BucketKeys = nil
	return o
}

// New returns a fresh data key for bucket/key and the metadata to store
// with the object. The caller zeroes the key when done.
func (o ObjectKeys) New(ctx context.Context, bucket, key string) ([]byte, envelope.Metadata, error) {
	if err := o.haveAllowList(); err != nil {
		return nil, envelope.Metadata{}, fmt.Errorf("new data key for %s/%s: %w", bucket, key, err)
	}
	if err := o.mayUseTarget(ctx); err != nil {
		return nil, envelope.Metadata{}, fmt.Errorf("new data key for %s/%s: %w", bucket, key, err)
	}
	if o.BucketKeys != nil && len(o.Context) == 0 {
		return o.newUnderBucketKey(ctx, bucket, key)
	}
	dk, err := o.generate(ctx, BindingContext(bucket, key, o.Context))
	if err != nil {
		return nil, envelope.Metadata{}, fmt.Errorf("new data key for %s/%s: %w", bucket, key, err)
	}
	return dk.Plaintext, envelope.Metadata{KeyID: dk.KeyID, WrappedKey: dk.Ciphertext, Context: o.Context}, nil
}

// newUnderBucketKey derives a data key for bucket/key from the bucket's
// key, with a fresh salt (FORMAT.md §6.3).
func (o ObjectKeys) newUnderBucketKey(ctx context.Context, bucket, key string) ([]byte, envelope.Metadata, error) {
	id := bucketKeyID{bucket, o.KeyID}
	gen := func(ctx context.Context) (DataKey, error) { return o.generate(ctx, BucketContext(bucket)) }
	bk, meta, err := o.BucketKeys.get(ctx, id, gen)
	if err != nil {
		return nil, envelope.Metadata{}, fmt.Errorf("bucket key for %s: %w", bucket, err)
	}
	// A cached key's CMK is asked about again: the client's grants, or the
	// allow-list, may have changed since it was made. A key no longer
	// allowed is dropped and another made, once.
	if err := o.checkStored(ctx, meta.KeyID); errors.Is(err, ErrKeyNotAllowed) {
		clear(bk)
		o.BucketKeys.drop(id, nil)
		if bk, meta, err = o.BucketKeys.get(ctx, id, gen); err == nil {
			err = o.checkStored(ctx, meta.KeyID)
		}
	}
	defer clear(bk)
	if err != nil {
		return nil, envelope.Metadata{}, fmt.Errorf("bucket key for %s: %w", bucket, err)
	}
	meta.BucketKeySalt = make([]byte, envelope.BucketKeySaltSize)
	if _, err := rand.Read(meta.BucketKeySalt); err != nil {
		return nil, envelope.Metadata{}, err
	}
	dk, err := envelope.DeriveObjectKey(bk, meta.BucketKeySalt, bucket, key)
	if err != nil {
		return nil, envelope.Metadata{}, err
	}
	return dk, meta, nil
}

// generate makes a data key under o.KeyID for encCtx, checked to be one
// this process can read back.
func (o ObjectKeys) generate(ctx context.Context, encCtx map[string]string) (DataKey, error) {
	dk, err := o.Keys.GenerateDataKey(ctx, o.KeyID, encCtx)
	if err != nil {
		return DataKey{}, err
	}
	if len(dk.Plaintext) != DataKeySize {
		clear(dk.Plaintext)
		return DataKey{}, fmt.Errorf("key service returned a %d-byte data key", len(dk.Plaintext))
	}
	// An object this process could not read back must not be written.
	if err := o.checkIssued(ctx, dk.KeyID); err != nil {
		clear(dk.Plaintext)
		return DataKey{}, err
	}
	return dk, nil
}

// Open unwraps the data key of the object at bucket/key: its own, or one
// derived from its bucket's key (FORMAT.md §6.3).
func (o ObjectKeys) Open(ctx context.Context, m envelope.Metadata, bucket, key string) ([]byte, error) {
	if err := o.checkStored(ctx, m.KeyID); err != nil {
		return nil, fmt.Errorf("data key of %s/%s: %w", bucket, key, err)
	}
	encCtx := BindingContext(bucket, key, m.Context)
	if len(m.BucketKeySalt) > 0 {
		encCtx = BucketContext(bucket)
	}
	pt, err := o.Keys.Decrypt(ctx, m.KeyID, m.WrappedKey, encCtx)
	if err != nil {
		return nil, fmt.Errorf("data key of %s/%s: %w", bucket, key, err)
	}
	if len(pt) != DataKeySize {
		clear(pt)
		return nil, fmt.Errorf("data key of %s/%s is %d bytes: %w", bucket, key, len(pt), ErrInvalidCiphertext)
	}
	if len(m.BucketKeySalt) == 0 {
		return pt, nil
	}
	defer clear(pt)
	return envelope.DeriveObjectKey(pt, m.BucketKeySalt, bucket, key)
}

// Rebind returns metadata for a server-side copy of the object at
// srcBucket/srcKey to dstBucket/dstKey: the same data key (so the stored
// bytes are copied unchanged), re-wrapped under the current CMK and bound to
// the new name and o's context (a copy gets the context its request names,
// as on S3). A key of the object's own never leaves the key service; one
// derived from a bucket key is wrapped for the copy (rewrap). The sealed
// checksum and part records go with it unopened: they are sealed under the
// same data key and describe the same plaintext (FORMAT.md §3.4, §6.2).
func (o ObjectKeys) Rebind(ctx context.Context, m envelope.Metadata, srcBucket, srcKey, dstBucket, dstKey string) (envelope.Metadata, error) {
	fail := func(err error) (envelope.Metadata, error) {
		return envelope.Metadata{}, fmt.Errorf("rebinding %s/%s to %s/%s: %w", srcBucket, srcKey, dstBucket, dstKey, err)
	}
	if err := o.checkStored(ctx, m.KeyID); err != nil {
		return fail(err)
	}
	if err := o.mayUseTarget(ctx); err != nil {
		return fail(err)
	}
	w, err := o.rewrap(ctx, m, srcBucket, srcKey, BindingContext(dstBucket, dstKey, o.Context))
	if err != nil {
		return fail(err)
	}
	if err := o.checkIssued(ctx, w.KeyID); err != nil {
		return fail(err)
	}
	// The sealed checksum and the framing, with its part checksums'
	// algorithm, describe the unchanged bytes.
	rebound := m
	rebound.KeyID, rebound.WrappedKey, rebound.Context, rebound.BucketKeySalt = w.KeyID, w.Ciphertext, o.Context, nil
	return rebound, nil
}

// rewrap wraps the data key of m (the object at srcBucket/srcKey) for
// dstCtx under o.KeyID. A key of its own is re-encrypted inside the key
// service; one derived from a bucket key, which only its name gives, is
// derived and wrapped as the copy's own (FORMAT.md §6.3).
func (o ObjectKeys) rewrap(ctx context.Context, m envelope.Metadata, srcBucket, srcKey string, dstCtx map[string]string) (Wrapped, error) {
	if len(m.BucketKeySalt) == 0 {
		return o.Keys.ReEncrypt(ctx, m.WrappedKey, m.KeyID, BindingContext(srcBucket, srcKey, m.Context), o.KeyID, dstCtx)
	}
	dk, err := o.Open(ctx, m, srcBucket, srcKey)
	if err != nil {
		return Wrapped{}, err
	}
	defer clear(dk)
	return o.Keys.Encrypt(ctx, o.KeyID, dk, dstCtx)
}

// haveAllowList fails closed: without a list every CMK s3seal's role may
// use would be trusted, which is the hole the list closes.
func (o ObjectKeys) haveAllowList() error {
	if o.Allowed == nil {
		return fmt.Errorf("no CMK allow-list configured: %w", ErrInvalidKMSRequest)
	}
	return nil
}

// checkStored checks the CMK an object's metadata names. Decrypt and
// ReEncrypt are pinned to that id, so an allowed id means an allowed key.
func (o ObjectKeys) checkStored(ctx context.Context, keyID string) error {
	if err := o.haveAllowList(); err != nil {
		return err
	}
	if err := o.Allowed.Check(ctx, keyID); err != nil {
		return err
	}
	return o.mayUse(ctx, keyID)
}

// checkIssued checks the CMK the key service just wrapped under. A miss
// refreshes the list once: the alias for new objects may have been
// re-pointed since it was resolved.
func (o ObjectKeys) checkIssued(ctx context.Context, keyID string) error {
	err := o.Allowed.Check(ctx, keyID)
	if err == nil {
		return o.mayUse(ctx, keyID)
	}
	if !errors.Is(err, ErrKeyNotAllowed) {
		return err
	}
	if err := o.Allowed.Refresh(ctx); err != nil {
		return err
	}
	if err := o.Allowed.Check(ctx, keyID); err != nil {
		return err
	}
	return o.mayUse(ctx, keyID)
}
