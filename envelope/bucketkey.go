package envelope

// Bucket keys (docs/FORMAT.md §6.3): one key, wrapped by the key service
// for a bucket, from which each object's data key is derived locally, so
// that many small objects cost one key-service call instead of one each.

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// BucketKeySaltSize is the size of an object's salt under a bucket key:
// random, so no two objects' data keys are the same.
const BucketKeySaltSize = 32

// DeriveObjectKey is the data key of the object bucket/key whose salt is
// salt, under bucketKey. Binding the name means an object moved to another
// key in the same bucket does not decrypt, as a per-object key's
// encryption context ensures (§6.1).
func DeriveObjectKey(bucketKey, salt []byte, bucket, key string) ([]byte, error) {
	if len(bucketKey) != DataKeySize || len(salt) != BucketKeySaltSize {
		return nil, fmt.Errorf("bucket key of %d bytes, salt of %d", len(bucketKey), len(salt))
	}
	info := []byte("s3seal v5 object key")
	info = binary.BigEndian.AppendUint32(info, uint32(len(bucket)))
	info = append(info, bucket...)
	info = binary.BigEndian.AppendUint32(info, uint32(len(key)))
	info = append(info, key...)
	return hkdf.Key(sha256.New, bucketKey, salt, string(info), DataKeySize)
}
