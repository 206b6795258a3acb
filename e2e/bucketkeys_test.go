package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/envelope"
)

// TestBucketKeys runs S3SEAL_BUCKET_KEY=true beside s3seal processes
// without it, over one store and one KMS: 200 PUTs through it cost at most
// two GenerateDataKey calls (one bucket key, and one more should it be
// replaced mid-way), are stored as version 5 ciphertext, and read back byte
// for byte through a replica that never made the bucket key, as the
// objects written without it (a mixed bucket) do. A copy of a bucket-key
// object, and a multipart upload and an object with a client's context
// through the bucket-key s3seal, get keys of their own.
func TestBucketKeys(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		// On the embedded store the first runs the store; the others use it
		// as their upstream.
		plain := startS3seal(t, e, e.kmsURL, "")
		bk := startS3seal(t, e, e.kmsURL, plain.KeyAlias, "S3SEAL_BUCKET_KEY=true")
		replica := startReplica(t, plain)
		checkBucketKeys(t, e, plain, bk, replica)
	})
}

// TestBucketKeysKeyring is TestBucketKeys with the embedded keyring: the
// s3seal with bucket keys uses the keyring in-process, and the one without
// reaches it through the first's KMS API as a key-user, as a replica on
// another machine would (TestKMSAPIServesAnotherS3seal). The keyring must
// unwrap a bucket key under its bucket's context alone, asked by a process
// that never made it.
func TestBucketKeysKeyring(t *testing.T) {
	e := embeddedEnv(t)
	bk := startS3seal(t, e, e.kmsURL, "alias/s3seal", "S3SEAL_KMS_PROVIDER=keyring",
		"S3SEAL_KMS_ENDPOINT=", "S3SEAL_KMS_REGION=", "S3SEAL_BUCKET_KEY=true")
	user := addUser(t, bk, e.emb.dataDir, "replicas", "-role", "key-user", "-keys", "alias/s3seal")
	time.Sleep(2500 * time.Millisecond) // serve takes in users.json every 2 s
	replica := startS3seal(t, e, bk.KMSAPIURL, "alias/s3seal",
		"AWS_ACCESS_KEY_ID="+user.AccessKey, "AWS_SECRET_ACCESS_KEY="+user.SecretKey)
	checkBucketKeys(t, e, replica, bk, replica)
	if n := metric(t, bk, "s3seal_kms_api_requests_total", "operation=Decrypt", "result=ok"); n < 1 {
		t.Errorf("the KMS API answered %v Decrypt calls: the replica read the bucket-key objects without it?", n)
	}
}

// mixedObjects are what an s3seal without bucket keys writes into the
// bucket first: sizes, one with a client's context.
var mixedObjects = []struct {
	key     string
	size    int
	context string // a client's encryption context, base64 JSON; "" for none
}{
	{"plain/empty", 0, ""},
	{"plain/small", 4096, ""},
	{"plain/chunks", 3*envelope.ChunkSize + 7, ""},
	{"plain/context", 5000, `eyJ0ZWFtIjoiYSJ9`}, // {"team":"a"}
}

const bucketKeyObjects = 200

// checkBucketKeys writes the mixed objects through writer (bucket keys
// off), then bucketKeyObjects objects of 4 KiB through bk (bucket keys on),
// and checks bk's GenerateDataKey count and what the store holds; replica
// (bucket keys off, it never made the bucket key; it may be writer), bk and
// writer read everything back. Then a bucket-key object is copied through
// bk and through replica, and each copy read back through all three.
func checkBucketKeys(t *testing.T, e testEnv, writer, bk, replica *instance) {
	t.Helper()
	ctx := context.Background()
	bucket := newBucket(t, e)
	want := map[string][]byte{}
	wc := sdkClient(t, writer)
	for i, o := range mixedObjects {
		want[o.key] = plaintext(o.size, byte(100+i))
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key), Body: bytes.NewReader(want[o.key])}
		if o.context != "" {
			in.ServerSideEncryption, in.SSEKMSEncryptionContext = types.ServerSideEncryptionAwsKms, aws.String(o.context)
		}
		if _, err := wc.PutObject(ctx, in); err != nil {
			t.Fatalf("PUT %s without bucket keys: %v", o.key, err)
		}
	}
	if n := metric(t, replica, "s3seal_kms_requests_total", "operation=GenerateDataKey"); n != 0 && replica != writer {
		t.Fatalf("the replica made %v data keys before reading anything", n)
	}

	// 200 PUTs through bk, 8 at a time: they share one bucket key.
	gdk := func() float64 { return metric(t, bk, "s3seal_kms_requests_total", "operation=GenerateDataKey") }
	before := gdk()
	bc := sdkClient(t, bk)
	bkKeys := make([]string, bucketKeyObjects)
	for i := range bkKeys {
		bkKeys[i] = fmt.Sprintf("bk/%03d", i)
		want[bkKeys[i]] = plaintext(4096, byte(i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(bkKeys))
	next := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range next {
				out, err := bc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(want[key])})
				if err != nil {
					errs <- fmt.Errorf("PUT %s: %w", key, err)
				} else if !aws.ToBool(out.BucketKeyEnabled) {
					errs <- fmt.Errorf("PUT %s: the answer says no bucket key", key)
				}
			}
		}()
	}
	for _, key := range bkKeys {
		next <- key
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := gdk() - before
	if n < 1 || n > 2 {
		t.Fatalf("%d PUTs with bucket keys made %v GenerateDataKey calls, want 1 or 2", bucketKeyObjects, n)
	}
	t.Logf("%d PUTs with bucket keys: %v GenerateDataKey calls", bucketKeyObjects, n)

	// The store holds version 5 ciphertext, one salt each, under at most
	// as many bucket keys as were made; the others are not version 5.
	st := store(t, e)
	wrapped, salts := map[string]bool{}, map[string]bool{}
	for key, p := range want {
		checkStored(t, e, bucket, key, p)
		info, err := st.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v, salt := info.Metadata.Get("X-Amz-Meta-S3seal-V"), info.Metadata.Get("X-Amz-Meta-S3seal-B")
		if !strings.HasPrefix(key, "bk/") {
			if v == "5" || salt != "" {
				t.Fatalf("%s, written without bucket keys, is version %q with salt %q", key, v, salt)
			}
			continue
		}
		if v != "5" || salt == "" || info.Metadata.Get("X-Amz-Meta-S3seal-X") != "" {
			t.Fatalf("%s stored as version %q, salt %q: %v", key, v, salt, info.Metadata)
		}
		wrapped[info.Metadata.Get("X-Amz-Meta-S3seal-K")], salts[salt] = true, true
	}
	if len(wrapped) > 2 || len(salts) != bucketKeyObjects {
		t.Fatalf("%d objects under %d bucket keys with %d salts", bucketKeyObjects, len(wrapped), len(salts))
	}

	// Through the bucket-key s3seal, an object with a client's context and
	// a multipart upload keep keys of their own.
	ctxKey, mpKey := "bk-own/context", "bk-own/multipart"
	want[ctxKey], want[mpKey] = plaintext(3000, 201), plaintext(6<<20, 202)
	if _, err := bc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(ctxKey), Body: bytes.NewReader(want[ctxKey]),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSEncryptionContext: aws.String(`eyJ0ZWFtIjoiYiJ9`)}); err != nil {
		t.Fatal(err)
	}
	if err := multipartUpload(t, bc, bucket, mpKey, splitParts(want[mpKey], 5<<20), nil); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{ctxKey, mpKey} {
		checkStored(t, e, bucket, key, want[key])
		if info, err := st.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); err != nil || info.Metadata.Get("X-Amz-Meta-S3seal-V") == "5" {
			t.Fatalf("%s through the bucket-key s3seal: %v, metadata %v", key, err, info.Metadata)
		}
	}

	// Everything reads back through the replica, which never made the
	// bucket key, and through the s3seal that did. The replica's reads of
	// the bucket-key objects cost it a Decrypt per bucket key (its cache),
	// not one each.
	readers := []*instance{replica, bk}
	if writer != replica {
		readers = append(readers, writer)
	}
	clients := map[*instance]*s3.Client{}
	for _, in := range readers {
		clients[in] = sdkClient(t, in)
	}
	read := func(in *instance, b, key string, want []byte) {
		t.Helper()
		out, err := clients[in].GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GET %s/%s: %v", b, key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("GET %s/%s: %d bytes (%v), want the %d written", b, key, len(got), err, len(want))
		}
		if v5 := b == bucket && strings.HasPrefix(key, "bk/"); aws.ToBool(out.BucketKeyEnabled) != v5 {
			t.Fatalf("GET %s/%s: bucket key enabled %v", b, key, aws.ToBool(out.BucketKeyEnabled))
		}
	}
	for _, in := range readers {
		decrypts := metric(t, in, "s3seal_kms_requests_total", "operation=Decrypt")
		for _, key := range bkKeys {
			read(in, bucket, key, want[key])
		}
		if n := metric(t, in, "s3seal_kms_requests_total", "operation=Decrypt") - decrypts; in == replica {
			if n < 1 || n > float64(len(wrapped)) {
				t.Errorf("the replica made %v Decrypt calls for %d objects under %d bucket keys", n, bucketKeyObjects, len(wrapped))
			}
			t.Logf("the replica read %d bucket-key objects with %v Decrypt calls", bucketKeyObjects, n)
		}
		for key, p := range want {
			if !strings.HasPrefix(key, "bk/") {
				read(in, bucket, key, p)
			}
		}
	}

	// A copy of a bucket-key object, through either s3seal, in the bucket
	// and to another: a data key of its own, the object's bytes, read back
	// through each.
	other := newBucket(t, e)
	for i, c := range []*instance{bk, replica} {
		for _, dst := range []string{bucket, other} {
			src, key := bkKeys[10+i], fmt.Sprintf("copy/%d", i)
			if _, err := clients[c].CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst), Key: aws.String(key),
				CopySource: aws.String(bucket + "/" + src)}); err != nil {
				t.Fatalf("CopyObject %s to %s/%s through s3seal %d: %v", src, dst, key, i, err)
			}
			checkStored(t, e, dst, key, want[src])
			info, err := st.StatObject(ctx, dst, key, minio.StatObjectOptions{})
			if err != nil || info.Metadata.Get("X-Amz-Meta-S3seal-V") == "5" || info.Metadata.Get("X-Amz-Meta-S3seal-B") != "" {
				t.Fatalf("copy %s/%s: %v, metadata %v", dst, key, err, info.Metadata)
			}
			for _, in := range readers {
				read(in, dst, key, want[src])
			}
		}
	}
	for _, in := range readers {
		if n := metric(t, in, "s3seal_kms_requests_total", "operation=GenerateDataKey"); in == replica && n != float64(countIf(writer == replica, len(mixedObjects))) {
			t.Errorf("the replica made %v data keys", n)
		}
	}
}

// countIf is n if cond, else 0.
func countIf(cond bool, n int) int {
	if cond {
		return n
	}
	return 0
}

// TestBucketKeyLimits: S3SEAL_BUCKET_KEY_USES and S3SEAL_BUCKET_KEY_TTL
// bound how many objects, and for how long, one bucket key serves; each
// object still reads back, through a replica too.
func TestBucketKeyLimits(t *testing.T) {
	e := embeddedEnv(t)
	ctx := context.Background()
	in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_BUCKET_KEY=true", "S3SEAL_BUCKET_KEY_USES=10", "S3SEAL_BUCKET_KEY_TTL=3s")
	c := sdkClient(t, in)
	bucket := newBucket(t, e)
	gdk := func() float64 { return metric(t, in, "s3seal_kms_requests_total", "operation=GenerateDataKey") }
	put := func(key string) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte("body of " + key))}); err != nil {
			t.Fatal(err)
		}
	}
	before, start := gdk(), time.Now()
	for i := range 25 {
		put(fmt.Sprintf("uses/%02d", i))
	}
	put("ttl/a") // the third key's sixth use
	if time.Since(start) > 3*time.Second {
		t.Skip("26 PUTs took longer than a bucket key lives: the counts below would not hold")
	}
	if n := gdk() - before; n != 3 {
		t.Errorf("26 PUTs with 10 uses a bucket key made %v GenerateDataKey calls, want 3", n)
	}
	time.Sleep(3100 * time.Millisecond)
	before = gdk()
	put("ttl/b")
	if n := gdk() - before; n != 1 {
		t.Errorf("a PUT after the bucket key's lifetime made %v GenerateDataKey calls, want 1", n)
	}
	wrapped := map[string]bool{}
	st := store(t, e)
	replica := sdkClient(t, startReplica(t, in))
	for obj := range st.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		info, err := st.StatObject(ctx, bucket, obj.Key, minio.StatObjectOptions{})
		if err != nil || info.Metadata.Get("X-Amz-Meta-S3seal-V") != "5" {
			t.Fatalf("%s: %v, metadata %v", obj.Key, err, info.Metadata)
		}
		wrapped[info.Metadata.Get("X-Amz-Meta-S3seal-K")] = true
		out, err := replica.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(obj.Key)})
		if err != nil {
			t.Fatalf("GET %s through the replica: %v", obj.Key, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(got) != "body of "+obj.Key {
			t.Fatalf("GET %s through the replica: %q", obj.Key, got)
		}
	}
	if len(wrapped) != 4 {
		t.Errorf("27 objects under %d bucket keys, want 4", len(wrapped))
	}
}

// TestBucketKeySetting: with S3SEAL_BUCKET_KEY=allowed, a bucket whose
// encryption setting the AWS CLI turned to BucketKeyEnabled gets bucket
// keys through every replica (the setting is in the store), counted by the
// replica's KMS metrics; another bucket keeps a key per object, and
// delete-bucket-encryption turns them off again.
func TestBucketKeySetting(t *testing.T) {
	e := minioEnv(t)
	in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_BUCKET_KEY=allowed")
	replica := startReplica(t, in)
	on, off := newBucket(t, e), newBucket(t, e)
	env := clientEnv(in)
	conf := `{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"},"BucketKeyEnabled":true}]}`
	run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3api", "put-bucket-encryption", "--bucket", on, "--server-side-encryption-configuration", conf)
	if got := run(t, env, "/usr/bin/aws", "--endpoint-url", replica.URL, "s3api", "get-bucket-encryption", "--bucket", on); !strings.Contains(got, `"BucketKeyEnabled": true`) {
		t.Fatalf("the replica's get-bucket-encryption:\n%s", got)
	}
	puts := func(bucket string, n int) float64 {
		t.Helper()
		before := metric(t, replica, "s3seal_kms_requests_total", "operation=GenerateDataKey")
		w, r := sdkClient(t, replica), sdkClient(t, in)
		for i := range n {
			key, want := fmt.Sprintf("o%d", i), plaintext(4096, byte(i))
			if _, err := w.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(want)}); err != nil {
				t.Fatalf("PUT %s/%s: %v", bucket, key, err)
			}
			checkStored(t, e, bucket, key, want)
			out, err := r.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("GET %s/%s through the other replica: %v", bucket, key, err)
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("GET %s/%s through the other replica: %d bytes, %v", bucket, key, len(got), err)
			}
		}
		return metric(t, replica, "s3seal_kms_requests_total", "operation=GenerateDataKey") - before
	}
	if n := puts(on, 20); n != 1 {
		t.Errorf("20 PUTs in a bucket with BucketKeyEnabled made %v GenerateDataKey calls, want 1", n)
	}
	if n := puts(off, 5); n != 5 {
		t.Errorf("5 PUTs in a bucket without made %v GenerateDataKey calls, want 5", n)
	}
	run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3api", "delete-bucket-encryption", "--bucket", on)
	replica.restart(t) // nothing kept in the process: the restarted one reads the store
	if n := puts(on, 3); n != 3 {
		t.Errorf("after delete-bucket-encryption, 3 PUTs made %v GenerateDataKey calls, want 3", n)
	}
}
