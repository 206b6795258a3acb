package envelope

import (
	"context"
	"fmt"
)

// Encryption-context keys that bind a data key to its object. KMS (or the
// keyring) refuses to unwrap the key under any other bucket or key, so
// ciphertext moved to another name does not decrypt, and each unwrap is
// attributable to an object in the key service's audit log.
const (
	ContextBucket = "s3seal:bucket"
	ContextKey    = "s3seal:key"
)

// BindingContext is the encryption context of the object key in bucket.
func BindingContext(bucket, key string) map[string]string {
	return map[string]string{ContextBucket: bucket, ContextKey: key}
}

// ObjectKeys makes, opens and rebinds per-object data keys. It is the one
// place that decides how a data key is tied to its object.
type ObjectKeys struct {
	Keys  KeyService
	KeyID string // the CMK for new objects and the target of rebinds
}

// New returns a fresh data key for bucket/key and the metadata to store
// with the object. The caller zeroes the key when done.
func (o ObjectKeys) New(ctx context.Context, bucket, key string) ([]byte, Metadata, error) {
	dk, err := o.Keys.GenerateDataKey(ctx, o.KeyID, BindingContext(bucket, key))
	if err != nil {
		return nil, Metadata{}, fmt.Errorf("new data key for %s/%s: %w", bucket, key, err)
	}
	if len(dk.Plaintext) != DataKeySize {
		return nil, Metadata{}, fmt.Errorf("key service returned a %d-byte data key", len(dk.Plaintext))
	}
	return dk.Plaintext, Metadata{KeyID: dk.KeyID, WrappedKey: dk.Ciphertext}, nil
}

// Open unwraps the data key of the object at bucket/key.
func (o ObjectKeys) Open(ctx context.Context, m Metadata, bucket, key string) ([]byte, error) {
	pt, err := o.Keys.Decrypt(ctx, m.KeyID, m.WrappedKey, BindingContext(bucket, key))
	if err != nil {
		return nil, fmt.Errorf("data key of %s/%s: %w", bucket, key, err)
	}
	if len(pt) != DataKeySize {
		return nil, fmt.Errorf("data key of %s/%s is %d bytes: %w", bucket, key, len(pt), ErrInvalidCiphertext)
	}
	return pt, nil
}

// Rebind returns metadata for a server-side copy of the object at
// srcBucket/srcKey to dstBucket/dstKey: the same data key (so the stored
// bytes are copied unchanged), re-wrapped under the current CMK and bound to
// the new name. The data key never leaves the key service.
func (o ObjectKeys) Rebind(ctx context.Context, m Metadata, srcBucket, srcKey, dstBucket, dstKey string) (Metadata, error) {
	w, err := o.Keys.ReEncrypt(ctx, m.WrappedKey, m.KeyID, BindingContext(srcBucket, srcKey), o.KeyID, BindingContext(dstBucket, dstKey))
	if err != nil {
		return Metadata{}, fmt.Errorf("rebinding %s/%s to %s/%s: %w", srcBucket, srcKey, dstBucket, dstKey, err)
	}
	return Metadata{KeyID: w.KeyID, WrappedKey: w.Ciphertext}, nil
}
