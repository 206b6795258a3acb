package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/envelope/kms"
)

// generations counts GenerateDataKey calls that reach the key service.
type generations struct {
	kms.KeyService
	n atomic.Int64
}

func (g *generations) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	g.n.Add(1)
	return g.KeyService.GenerateDataKey(ctx, keyID, encCtx)
}

// withBucketKeys gives the proxy bucket keys, used by default or where
// asked for, counting the key service's GenerateDataKey calls in g.
func withBucketKeys(t *testing.T, g *generations, byDefault bool) envOption {
	return func(c *Config) {
		bks, err := kms.NewBucketKeys(time.Hour, 1000)
		if err != nil {
			t.Fatal(err)
		}
		g.KeyService = c.Keys.Keys
		c.Keys.Keys, c.Keys.BucketKeys = g, bks
		c.BucketKeysByDefault = byDefault
	}
}

// TestBucketKeyPuts: with bucket keys, many PUTs cost one GenerateDataKey;
// each object reads back, says so as S3 does, and is bound to its name. In
// the same bucket, objects with a client's context and multipart objects
// keep keys of their own, and a copy gets its own.
func TestBucketKeyPuts(t *testing.T) {
	g := &generations{}
	e := newEnv(t, withBucketKeys(t, g, true))
	objects := map[string][]byte{}
	for i := range 20 {
		key := fmt.Sprintf("small/%d", i)
		objects[key] = randomBytes(4*kib+i, uint64(i))
		out := e.put(t, key, objects[key], nil)
		if aws.ToBool(out.BucketKeyEnabled) != true {
			t.Fatalf("PUT %s: bucket key not enabled in the answer", key)
		}
	}
	if n := g.n.Load(); n != 1 {
		t.Fatalf("20 PUTs made %d GenerateDataKey calls, want 1", n)
	}
	for key, want := range objects {
		got, out, err := e.get(t, key)
		if err != nil || !bytes.Equal(got, want) || !aws.ToBool(out.BucketKeyEnabled) {
			t.Fatalf("GET %s: %d bytes, bucket key %v, %v", key, len(got), aws.ToBool(out.BucketKeyEnabled), err)
		}
		if v := e.store.get(testBucket, key).header.Get("X-Amz-Meta-S3seal-V"); v != "5" {
			t.Fatalf("%s stored as version %q", key, v)
		}
	}
	// Same bucket: a client's context, and a multipart upload.
	encCtx := map[string]string{"team": "a"}
	if _, err := e.client.PutObject(bg(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("ctx"), Body: bytes.NewReader([]byte("c")),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSEncryptionContext: aws.String(envelope.EncodeContext(encCtx))}); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(128*kib+5, 3)
	e.multipartPut(t, "mp", splitParts(data, 128*kib, 5))
	// A client's opt-out (as on S3) gets a key of its own too.
	if _, err := e.client.PutObject(bg(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("own"), Body: bytes.NewReader([]byte("o")),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, BucketKeyEnabled: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	if n := g.n.Load(); n != 4 {
		t.Fatalf("a PUT with a context, one opting out and a multipart upload made %d more calls, want 3", n-1)
	}
	if h := e.store.get(testBucket, "own").header; h.Get("X-Amz-Meta-S3seal-V") == "5" || h.Get("X-Amz-Meta-S3seal-B") != "" {
		t.Fatalf("an opted-out object stored under a bucket key: version %q", h.Get("X-Amz-Meta-S3seal-V"))
	}
	if got, _, err := e.get(t, "mp"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("multipart object: %v", err)
	}
	// A copy gets a data key of its own, the same bytes.
	if _, err := e.client.CopyObject(bg(), &s3.CopyObjectInput{Bucket: aws.String(testBucket), Key: aws.String("copy"),
		CopySource: aws.String(testBucket + "/small/3")}); err != nil {
		t.Fatal(err)
	}
	if got, out, err := e.get(t, "copy"); err != nil || !bytes.Equal(got, objects["small/3"]) || aws.ToBool(out.BucketKeyEnabled) {
		t.Fatalf("copy: %v, bucket key %v", err, aws.ToBool(out.BucketKeyEnabled))
	}
	enc, err := e.client.GetBucketEncryption(bg(), &s3.GetBucketEncryptionInput{Bucket: aws.String(testBucket)})
	if err != nil || !aws.ToBool(enc.ServerSideEncryptionConfiguration.Rules[0].BucketKeyEnabled) {
		t.Fatalf("GetBucketEncryption does not say bucket keys are on: %v", err)
	}
	// Moved to another name by the store, an object does not decrypt.
	src := e.store.get(testBucket, "small/4")
	e.store.put(testBucket, "moved", src.data, src.header.Clone())
	if _, _, err := e.get(t, "moved"); err == nil {
		t.Fatal("an object moved to another name decrypted")
	} else if code, status := apiError(t, err); code != codeStoredObjectCorrupt || status != http.StatusBadGateway {
		t.Fatalf("moved object: %s %d", code, status)
	}
}

// TestBucketKeySettings: which writes use bucket keys — the request's
// header, else the bucket's BucketKeyEnabled (kept through the client's tag
// changes and seen by another replica), else the default.
func TestBucketKeySettings(t *testing.T) {
	for _, byDefault := range []bool{false, true} {
		t.Run(fmt.Sprintf("default %v", byDefault), func(t *testing.T) {
			e := newEnv(t, withBucketKeys(t, &generations{}, byDefault))
			steps := []struct {
				name   string
				bucket *bool // PutBucketEncryption's BucketKeyEnabled; nil: DeleteBucketEncryption
				header *bool // the PUT's x-amz-server-side-encryption-bucket-key-enabled
				want   bool
			}{
				{"no setting", nil, nil, byDefault},
				{"no setting, the request asks", nil, aws.Bool(true), true},
				{"no setting, the request opts out", nil, aws.Bool(false), false},
				{"bucket on", aws.Bool(true), nil, true},
				{"bucket on, the request opts out", aws.Bool(true), aws.Bool(false), false},
				{"bucket off", aws.Bool(false), nil, false},
				{"bucket off, the request asks", aws.Bool(false), aws.Bool(true), true},
			}
			for i, st := range steps {
				setBucketKey(t, e, st.bucket)
				if i%2 == 1 {
					clientTagChurn(t, e)
				}
				if got := bucketKeyEnabled(t, e); got != (st.bucket == nil && byDefault || st.bucket != nil && *st.bucket) {
					t.Errorf("%s: GetBucketEncryption says bucket keys %v", st.name, got)
				}
				key := fmt.Sprintf("o%d", i)
				out, err := e.client.PutObject(bg(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key),
					Body: bytes.NewReader([]byte(key)), BucketKeyEnabled: st.header})
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				stored := e.store.get(testBucket, key).header.Get("X-Amz-Meta-S3seal-V") == "5"
				if stored != st.want || aws.ToBool(out.BucketKeyEnabled) != st.want {
					t.Errorf("%s: stored under a bucket key %v, answered %v, want %v", st.name, stored, aws.ToBool(out.BucketKeyEnabled), st.want)
				}
			}
		})
	}
}

// TestBucketKeysNotConfigured: where s3seal has no bucket keys, a bucket
// setting asking for them is refused, and a PUT asking for one gets a key
// of its own and an answer that says so.
func TestBucketKeysNotConfigured(t *testing.T) {
	e := newEnv(t)
	err := putBucketKeySetting(e, true)
	if code, status := apiError(t, err); code != "NotImplemented" || status != http.StatusNotImplemented {
		t.Errorf("PutBucketEncryption with BucketKeyEnabled: %s %d", code, status)
	}
	if bucketKeyEnabled(t, e) {
		t.Error("GetBucketEncryption says bucket keys are on")
	}
	out, err := e.client.PutObject(bg(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"),
		Body: bytes.NewReader([]byte("k")), BucketKeyEnabled: aws.Bool(true)})
	if err != nil || aws.ToBool(out.BucketKeyEnabled) || e.store.get(testBucket, "k").header.Get("X-Amz-Meta-S3seal-V") == "5" {
		t.Fatalf("PUT asking for a bucket key: %v, answered bucket key %v", err, out != nil && aws.ToBool(out.BucketKeyEnabled))
	}
}

// setBucketKey sets the bucket's BucketKeyEnabled, or deletes its
// encryption setting (nil), and forgets what the proxy remembered of it,
// as another replica would see it.
func setBucketKey(t *testing.T, e *env, on *bool) {
	t.Helper()
	var err error
	if on == nil {
		_, err = e.client.DeleteBucketEncryption(bg(), &s3.DeleteBucketEncryptionInput{Bucket: aws.String(testBucket)})
	} else {
		err = putBucketKeySetting(e, *on)
	}
	if err != nil {
		t.Fatal(err)
	}
	e.proxy.settings = newBucketSettings()
}

func putBucketKeySetting(e *env, on bool) error {
	_, err := e.client.PutBucketEncryption(bg(), &s3.PutBucketEncryptionInput{Bucket: aws.String(testBucket),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms},
			BucketKeyEnabled:                   aws.Bool(on)}}}})
	return err
}

// clientTagChurn replaces and deletes the client's bucket tags, which must
// leave s3seal's alone, and checks s3seal's stay hidden.
func clientTagChurn(t *testing.T, e *env) {
	t.Helper()
	if _, err := e.client.PutBucketTagging(bg(), &s3.PutBucketTaggingInput{Bucket: aws.String(testBucket),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.client.GetBucketTagging(bg(), &s3.GetBucketTaggingInput{Bucket: aws.String(testBucket)})
	if err != nil || len(tags.TagSet) != 1 {
		t.Fatalf("the client's tags: %+v, %v", tags, err)
	}
	if _, err := e.client.DeleteBucketTagging(bg(), &s3.DeleteBucketTaggingInput{Bucket: aws.String(testBucket)}); err != nil {
		t.Fatal(err)
	}
}

func bucketKeyEnabled(t *testing.T, e *env) bool {
	t.Helper()
	out, err := e.client.GetBucketEncryption(bg(), &s3.GetBucketEncryptionInput{Bucket: aws.String(testBucket)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToBool(out.ServerSideEncryptionConfiguration.Rules[0].BucketKeyEnabled)
}
