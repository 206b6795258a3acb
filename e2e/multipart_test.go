package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/envelope"
)

const mib = 1 << 20

// multipartUpload uploads parts (part i+1 is parts[i]) through c in the
// given order of part numbers (all of them when order is nil), then
// completes the upload with every part in part-number order. It returns
// CompleteMultipartUpload's error; other failures end the test.
func multipartUpload(t *testing.T, c *s3.Client, bucket, key string, parts [][]byte, order []int) error {
	t.Helper()
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Metadata: map[string]string{"owner": "carol"},
	})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	if order == nil {
		for i := range parts {
			order = append(order, i+1)
		}
	}
	etags := make([]string, len(parts))
	for _, n := range order {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(n)), Body: bytes.NewReader(parts[n-1]),
		})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", n, err)
		}
		etags[n-1] = aws.ToString(out.ETag)
	}
	var done []types.CompletedPart
	for i, etag := range etags {
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(etag)})
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	})
	return err
}

// splitParts cuts plain into parts of the given sizes (the last takes the rest).
func splitParts(plain []byte, sizes ...int) [][]byte {
	var parts [][]byte
	for _, n := range sizes {
		parts, plain = append(parts, plain[:n]), plain[n:]
	}
	return append(parts, plain)
}

// readRange GETs bytes [from, to] through c.
func readRange(c *s3.Client, bucket, key string, from, to int) ([]byte, error) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String(fmt.Sprintf("bytes=%d-%d", from, to)),
	})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// readPart GETs ?partNumber=n through c.
func readPart(c *s3.Client, bucket, key string, n int) ([]byte, error) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), PartNumber: aws.Int32(int32(n)),
	})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// checkReadBack reads a whole object through c and checks it, its size in
// HEAD and in a listing, and the stored form.
func checkReadBack(t *testing.T, e testEnv, c *s3.Client, bucket, key string, plain []byte) {
	t.Helper()
	got, err := readThrough(c, bucket, key)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("GetObject %s: %d bytes (want %d), equal %v, err %v", key, len(got), len(plain), bytes.Equal(got, plain), err)
	}
	head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(plain)) {
		t.Fatalf("HeadObject %s: length %d, want %d (%v)", key, aws.ToInt64(head.ContentLength), len(plain), err)
	}
	list, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	found := false
	for _, o := range list.Contents {
		if aws.ToString(o.Key) == key {
			found = true
			if aws.ToInt64(o.Size) != int64(len(plain)) {
				t.Fatalf("ListObjectsV2 says %s is %d bytes, want %d", key, aws.ToInt64(o.Size), len(plain))
			}
		}
	}
	if !found {
		t.Fatalf("ListObjectsV2 does not list %s", key)
	}
	versions, err := c.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("ListObjectVersions: %v", err)
	}
	found = false
	for _, v := range versions.Versions {
		if aws.ToString(v.Key) == key && aws.ToBool(v.IsLatest) {
			found = true
			if aws.ToInt64(v.Size) != int64(len(plain)) {
				t.Fatalf("ListObjectVersions says %s is %d bytes, want %d", key, aws.ToInt64(v.Size), len(plain))
			}
		}
	}
	if !found {
		t.Fatalf("ListObjectVersions does not list %s", key)
	}
	checkStored(t, e, bucket, key, plain)
}

// TestSDKMultipartOutOfOrder uploads parts in the order 3, 1, 2 (part 2
// first uploaded with other bytes, then again), completes, and reads the
// object back whole, by ranges across part boundaries and by part number.
func TestSDKMultipartOutOfOrder(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		ctx := context.Background()
		bucket := newBucket(t, e)
		key := "mp/out of order ü"
		plain := plaintext(2*5*mib+12345, 21)
		parts := splitParts(plain, 5*mib, 5*mib)

		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(bucket), Key: aws.String(key), Metadata: map[string]string{"owner": "carol"},
			ContentType: aws.String("application/x-mp"),
		})
		if err != nil {
			t.Fatalf("CreateMultipartUpload: %v", err)
		}
		upload := func(n int, body []byte) string {
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key),
				UploadId: up.UploadId, PartNumber: aws.Int32(int32(n)), Body: bytes.NewReader(body)})
			if err != nil {
				t.Fatalf("UploadPart %d: %v", n, err)
			}
			return aws.ToString(out.ETag)
		}
		etags := map[int]string{}
		etags[3] = upload(3, parts[2])
		upload(2, plaintext(5*mib, 99)) // replaced below
		etags[1] = upload(1, parts[0])
		etags[2] = upload(2, parts[1])

		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId})
		if err != nil {
			t.Fatalf("ListParts: %v", err)
		}
		if len(lp.Parts) != 3 {
			t.Fatalf("ListParts: %d parts, want 3", len(lp.Parts))
		}
		for _, p := range lp.Parts {
			n := aws.ToInt32(p.PartNumber)
			if aws.ToInt64(p.Size) != int64(len(parts[n-1])) {
				t.Errorf("ListParts: part %d is %d bytes, want the plaintext size %d", n, aws.ToInt64(p.Size), len(parts[n-1]))
			}
		}
		lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatalf("ListMultipartUploads: %v", err)
		}
		if len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].Key) != key {
			t.Fatalf("ListMultipartUploads: %d uploads", len(lu.Uploads))
		}
		var done []types.CompletedPart
		for n := 1; n <= 3; n++ {
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(n)), ETag: aws.String(etags[n])})
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		checkReadBack(t, e, c, bucket, key, plain)
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if head.Metadata["owner"] != "carol" || len(head.Metadata) != 1 || aws.ToString(head.ContentType) != "application/x-mp" ||
			head.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
			t.Fatalf("HeadObject: metadata %v, type %q, sse %q", head.Metadata, aws.ToString(head.ContentType), head.ServerSideEncryption)
		}
		for _, r := range [][2]int{
			{5*mib - 10, 5*mib + 10},         // across the 1|2 boundary
			{5*mib - 1, 10 * mib},            // last byte of 1 to first of 3
			{65530, 2*5*mib + 100},           // three parts
			{10 * mib, 10*mib + 12000},       // start of the last part
			{len(plain) - 7, len(plain) - 1}, // tail
		} {
			got, err := readRange(c, bucket, key, r[0], r[1])
			if err != nil || !bytes.Equal(got, plain[r[0]:r[1]+1]) {
				t.Fatalf("range %d-%d: %d bytes, err %v", r[0], r[1], len(got), err)
			}
		}
		for n := 1; n <= 3; n++ {
			got, err := readPart(c, bucket, key, n)
			if err != nil || !bytes.Equal(got, parts[n-1]) {
				t.Fatalf("partNumber=%d: %d bytes (want %d), err %v", n, len(got), len(parts[n-1]), err)
			}
		}
	})
}

// TestMultipartAbort: an aborted upload leaves nothing in the store.
func TestMultipartAbort(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		ctx := context.Background()
		bucket := newBucket(t, e)
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("aborted")})
		if err != nil {
			t.Fatalf("CreateMultipartUpload: %v", err)
		}
		if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("aborted"),
			UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(plaintext(5*mib, 1))}); err != nil {
			t.Fatalf("UploadPart: %v", err)
		}
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("aborted"), UploadId: up.UploadId}); err != nil {
			t.Fatalf("AbortMultipartUpload: %v", err)
		}
		checkNothingUpstream(t, e, bucket, "aborted")
	})
}

// checkNothingUpstream asserts that the store has neither an object nor an
// upload in progress at key.
func checkNothingUpstream(t *testing.T, e testEnv, bucket, key string) {
	t.Helper()
	ctx := context.Background()
	st := store(t, e)
	if _, err := st.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); err == nil {
		t.Fatalf("the store has an object at %s", key)
	}
	res, err := minio.Core{Client: st}.ListMultipartUploads(ctx, bucket, key, "", "", "", 1000)
	if err != nil {
		t.Fatalf("ListMultipartUploads in the store: %v", err)
	}
	for _, u := range res.Uploads {
		if u.Key == key {
			t.Fatalf("the store still has an upload in progress at %s (%s)", key, u.UploadID)
		}
	}
}

// TestMultipartPartSizeRule: parts that are not multiples of 64 KiB (but the
// last) are refused at CompleteMultipartUpload with a 400 that says why,
// and nothing is left in the store.
func TestMultipartPartSizeRule(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		bucket := newBucket(t, e)
		plain := plaintext(2*(5*mib+1)+1000, 4)
		err := multipartUpload(t, c, bucket, "odd-parts", splitParts(plain, 5*mib+1, 5*mib+1), nil)
		var re interface{ HTTPStatusCode() int }
		var ae smithy.APIError
		if err == nil || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest || !errors.As(err, &ae) {
			t.Fatalf("CompleteMultipartUpload with 5 MiB + 1 byte parts: %v, want a 400 S3 error", err)
		}
		msg := strings.ToLower(ae.ErrorMessage())
		if !strings.Contains(msg, "part") || !(strings.Contains(msg, "64 kib") || strings.Contains(msg, "65536") || strings.Contains(msg, "multiple")) {
			t.Errorf("the refusal does not say why: %s: %s", ae.ErrorCode(), ae.ErrorMessage())
		}
		t.Logf("refused as %s: %s", ae.ErrorCode(), ae.ErrorMessage())
		checkNothingUpstream(t, e, bucket, "odd-parts")
		if _, err := readThrough(c, bucket, "odd-parts"); err == nil {
			t.Fatal("the refused object reads through s3seal")
		}
	})
}

// TestMinioGoUnknownSize: minio-go streams a body of unknown size as a
// multipart upload; ranged reads cross its part boundaries.
func TestMinioGoUnknownSize(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		u, _ := url.Parse(in.URL)
		c, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(in.AccessKey, in.SecretKey, ""), Region: region})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		bucket := newBucket(t, e)
		plain := plaintext(12*mib+100, 8)
		// io.MultiReader hides the size: -1 makes minio-go upload parts.
		info, err := c.PutObject(ctx, bucket, "unknown-size", io.MultiReader(bytes.NewReader(plain)), -1,
			minio.PutObjectOptions{PartSize: 5 * mib, UserMetadata: map[string]string{"Color": "green"}})
		if err != nil {
			t.Fatalf("PutObject of unknown size: %v", err)
		}
		if info.Size != int64(len(plain)) {
			t.Errorf("PutObject reports %d bytes, want %d", info.Size, len(plain))
		}
		checkStored(t, e, bucket, "unknown-size", plain)
		if n := etagParts(mustStat(t, store(t, e), bucket, "unknown-size").ETag); n != 3 {
			t.Fatalf("the store holds %d parts, want 3 (5 + 5 + 2 MiB)", n)
		}
		st, err := c.StatObject(ctx, bucket, "unknown-size", minio.StatObjectOptions{})
		if err != nil || st.Size != int64(len(plain)) || st.UserMetadata["Color"] != "green" {
			t.Fatalf("StatObject: size %d, metadata %v, err %v", st.Size, st.UserMetadata, err)
		}
		read := func(opts minio.GetObjectOptions) ([]byte, error) {
			obj, err := c.GetObject(ctx, bucket, "unknown-size", opts)
			if err != nil {
				return nil, err
			}
			defer obj.Close()
			return io.ReadAll(obj)
		}
		got, err := read(minio.GetObjectOptions{})
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("GetObject: %d bytes, err %v", len(got), err)
		}
		for _, r := range [][2]int64{
			{5*mib - 3, 5*mib + 3}, {10*mib - 65536, 10*mib + 65536}, {1, 12 * mib}, {0, 0},
			{10 * mib, 10 * mib}, {5*mib - 1, 5*mib - 1}, {int64(len(plain)) - 1, int64(len(plain)) - 1},
		} {
			var opts minio.GetObjectOptions
			if err := opts.SetRange(r[0], r[1]); err != nil {
				t.Fatal(err)
			}
			got, err := read(opts)
			if err != nil || !bytes.Equal(got, plain[r[0]:r[1]+1]) {
				t.Fatalf("range %d-%d: %d bytes, err %v", r[0], r[1], len(got), err)
			}
		}
		got, err = read(minio.GetObjectOptions{PartNumber: 2})
		if err != nil || !bytes.Equal(got, plain[5*mib:10*mib]) {
			t.Fatalf("partNumber=2: %d bytes, err %v", len(got), err)
		}
	})
}

func mustStat(t *testing.T, c *minio.Client, bucket, key string) minio.ObjectInfo {
	t.Helper()
	info, err := c.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("StatObject %s/%s: %v", bucket, key, err)
	}
	return info
}

// TestMultipartAcrossProcesses: two s3seal processes with one configuration
// serve alternate requests of one upload, and one of them is restarted
// between two parts. Nothing ties an upload to a process.
func TestMultipartAcrossProcesses(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		a := startS3seal(t, e, e.kmsURL, "")
		b := startReplica(t, a)
		ca, cb := sdkClient(t, a), sdkClient(t, b)
		ctx := context.Background()
		bucket := newBucket(t, e)
		key := "replicas"
		plain := plaintext(3*5*mib+777, 12)
		parts := splitParts(plain, 5*mib, 5*mib, 5*mib)

		up, err := ca.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("CreateMultipartUpload on A: %v", err)
		}
		var done []types.CompletedPart
		upload := func(c *s3.Client, who string, n int) {
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key),
				UploadId: up.UploadId, PartNumber: aws.Int32(int32(n)), Body: bytes.NewReader(parts[n-1])})
			if err != nil {
				t.Fatalf("UploadPart %d on %s: %v", n, who, err)
			}
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(n)), ETag: out.ETag})
		}
		upload(cb, "B", 1)
		upload(ca, "A", 2)
		a.restart(t)
		if e.isEmbedded() {
			// A's restart restarted the store it runs, at another address
			// with another credential: B learns them as a replica on
			// another machine would, by a restart with the new upstream.
			b.restart(t)
		}
		upload(ca, "A after its restart", 3)
		upload(cb, "B", 4)
		lp, err := ca.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId})
		if err != nil || len(lp.Parts) != 4 {
			t.Fatalf("ListParts on A: %v", err)
		}
		if _, err := cb.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
			t.Fatalf("CompleteMultipartUpload on B: %v", err)
		}
		checkReadBack(t, e, ca, bucket, key, plain)
		checkReadBack(t, e, cb, bucket, key, plain)
		got, err := readRange(cb, bucket, key, 10*mib-5, 15*mib+5)
		if err != nil || !bytes.Equal(got, plain[10*mib-5:15*mib+6]) {
			t.Fatalf("range on B: %v", err)
		}
	})
}

// TestTamperedMultipartFails rebuilds multipart objects in the store (as
// someone with write access to it can) and checks that reads through s3seal
// fail: an error or a body cut short, never bytes that are not the
// plaintext.
func TestTamperedMultipartFails(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		ctx := context.Background()
		bucket := newBucket(t, e)
		st := store(t, e)
		core := minio.Core{Client: st}
		// Three parts of one size, so that a reordering keeps every size.
		const partSize = 5 * mib
		storedPart := envelope.SegmentSize(partSize)
		put := func(key string, seed byte) []byte {
			plain := plaintext(3*partSize, seed)
			if err := multipartUpload(t, c, bucket, key, splitParts(plain, partSize, partSize), nil); err != nil {
				t.Fatalf("CompleteMultipartUpload: %v", err)
			}
			if got, err := readThrough(c, bucket, key); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("before damage: %v", err)
			}
			info := mustStat(t, st, bucket, key)
			if info.Size != 3*storedPart || etagParts(info.ETag) != 3 {
				t.Fatalf("stored: %d bytes, ETag %s; want 3 parts of %d", info.Size, info.ETag, storedPart)
			}
			return plain
		}
		// rebuild replaces key in the store by a new upload with the same
		// metadata whose part i is what src(i) makes.
		type source struct {
			key  string // copy part `part` of this object, or
			part int
			body []byte // upload these bytes
		}
		rebuild := func(key string, src func(i int) source) {
			info := mustStat(t, st, bucket, key)
			id, err := core.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{UserMetadata: info.UserMetadata, ContentType: info.ContentType})
			if err != nil {
				t.Fatalf("NewMultipartUpload in the store: %v", err)
			}
			var parts []minio.CompletePart
			for i := 1; i <= 3; i++ {
				s := src(i)
				var p minio.CompletePart
				if s.body != nil {
					op, err := core.PutObjectPart(ctx, bucket, key, id, i, bytes.NewReader(s.body), int64(len(s.body)), minio.PutObjectPartOptions{})
					if err != nil {
						t.Fatalf("PutObjectPart in the store: %v", err)
					}
					p = minio.CompletePart{PartNumber: i, ETag: op.ETag}
				} else {
					p, err = core.CopyObjectPart(ctx, bucket, s.key, bucket, key, id, i, int64(s.part-1)*storedPart, storedPart, nil)
					if err != nil {
						t.Fatalf("UploadPartCopy in the store: %v", err)
					}
				}
				parts = append(parts, p)
			}
			if _, err := core.CompleteMultipartUpload(ctx, bucket, key, id, parts, minio.PutObjectOptions{}); err != nil {
				t.Fatalf("CompleteMultipartUpload in the store: %v", err)
			}
			if info := mustStat(t, st, bucket, key); info.Size != 3*storedPart || etagParts(info.ETag) != 3 {
				t.Fatalf("rebuilt: %d bytes, ETag %s; want 3 parts of %d", info.Size, info.ETag, storedPart)
			}
		}
		storedPartBytes := func(key string, part int) []byte {
			var opts minio.GetObjectOptions
			opts.SetRange(int64(part-1)*storedPart, int64(part)*storedPart-1)
			return storedBytes(t, e, bucket, key, opts)
		}

		tests := []struct {
			name    string
			damage  func(key string)
			intact  int // a part that still reads (0: none)
			damaged int // a part whose reads must fail
		}{
			{"byte flipped in the middle part", func(key string) {
				b := storedPartBytes(key, 2)
				b[envelope.HeaderSize+3*(envelope.ChunkSize+envelope.TagSize)+100] ^= 0x20
				rebuild(key, func(i int) source {
					if i == 2 {
						return source{body: b}
					}
					return source{key: key, part: i}
				})
			}, 1, 2},
			{"parts 1 and 2 swapped", func(key string) {
				rebuild(key, func(i int) source {
					return source{key: key, part: map[int]int{1: 2, 2: 1, 3: 3}[i]}
				})
			}, 3, 1},
			{"part 2 from another object", func(key string) {
				other := key + ".other"
				put(other, 77)
				rebuild(key, func(i int) source {
					if i == 2 {
						return source{key: other, part: 2}
					}
					return source{key: key, part: i}
				})
			}, 1, 2},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				key := "mp-victim-" + randHex(3)
				plain := put(key, 31)
				tt.damage(key)
				got, err := readThrough(c, bucket, key)
				if err == nil {
					t.Fatalf("damaged object read back without error (%d bytes, equal to original: %v)", len(got), bytes.Equal(got, plain))
				}
				if len(got) > 0 && !bytes.HasPrefix(plain, got) {
					t.Fatalf("damaged object yielded %d bytes that are not the plaintext", len(got))
				}
				// A range over the first 300000 bytes of the damaged part
				// (the flipped byte is in its fourth chunk).
				from := (tt.damaged-1)*partSize + 1000
				got, err = readRange(c, bucket, key, from, from+300000)
				if err == nil || (len(got) > 0 && !bytes.HasPrefix(plain[from:], got)) {
					t.Fatalf("range in damaged part %d: %d bytes, err %v", tt.damaged, len(got), err)
				}
				got, err = readPart(c, bucket, key, tt.damaged)
				if err == nil || (len(got) > 0 && !bytes.HasPrefix(plain[(tt.damaged-1)*partSize:], got)) {
					t.Fatalf("partNumber=%d: %d bytes, err %v", tt.damaged, len(got), err)
				}
				if tt.intact > 0 {
					from := (tt.intact-1)*partSize + 5
					if got, err := readRange(c, bucket, key, from, from+1000); err != nil || !bytes.Equal(got, plain[from:from+1001]) {
						t.Errorf("range in intact part %d: err %v", tt.intact, err)
					}
				}
			})
		}
	})
}

// TestCopyObject: server-side copies, with the metadata kept (COPY) or
// replaced (REPLACE), of single-part and multipart objects, to another key
// and another bucket, and conditional copies.
func TestCopyObject(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		ctx := context.Background()
		bucket, other := newBucket(t, e), newBucket(t, e)
		small := plaintext(100000, 2)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("src/small"),
			Body: bytes.NewReader(small), Metadata: map[string]string{"owner": "dave"}}); err != nil {
			t.Fatal(err)
		}
		big := plaintext(2*5*mib+3, 3)
		if err := multipartUpload(t, c, bucket, "src/big", splitParts(big, 5*mib, 5*mib), nil); err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		for _, src := range []struct {
			key   string
			plain []byte
			owner string
		}{{"src/small", small, "dave"}, {"src/big", big, "carol"}} {
			for _, dst := range []struct{ bucket, key string }{{bucket, "copy/" + src.key}, {other, src.key + " copy ü"}} {
				_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst.bucket), Key: aws.String(dst.key),
					CopySource: aws.String(bucket + "/" + url.PathEscape(src.key))})
				if err != nil {
					t.Fatalf("CopyObject %s -> %s/%s: %v", src.key, dst.bucket, dst.key, err)
				}
				checkReadBack(t, e, c, dst.bucket, dst.key, src.plain)
				head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(dst.bucket), Key: aws.String(dst.key)})
				if err != nil || head.Metadata["owner"] != src.owner {
					t.Fatalf("copy of %s: metadata %v (%v), want owner=%s", src.key, head.Metadata, err, src.owner)
				}
				if len(src.plain) > 5*mib {
					if got, err := readRange(c, dst.bucket, dst.key, 5*mib-2, 5*mib+2); err != nil || !bytes.Equal(got, src.plain[5*mib-2:5*mib+3]) {
						t.Fatalf("range across parts of the copy: %v", err)
					}
				}
			}
			// REPLACE: new metadata, same bytes, in place.
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(src.key),
				CopySource: aws.String(bucket + "/" + src.key), MetadataDirective: types.MetadataDirectiveReplace,
				Metadata: map[string]string{"owner": "erin"}, ContentType: aws.String("text/x-replaced")}); err != nil {
				t.Fatalf("CopyObject REPLACE in place: %v", err)
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(src.key)})
			if err != nil || head.Metadata["owner"] != "erin" || len(head.Metadata) != 1 || aws.ToString(head.ContentType) != "text/x-replaced" {
				t.Fatalf("after REPLACE: metadata %v, type %q (%v)", head.Metadata, aws.ToString(head.ContentType), err)
			}
			checkReadBack(t, e, c, bucket, src.key, src.plain)
			// Conditional copies.
			_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("cond"),
				CopySource: aws.String(bucket + "/" + src.key), CopySourceIfMatch: aws.String(`"0123456789abcdef0123456789abcdef"`)})
			var re interface{ HTTPStatusCode() int }
			if err == nil || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
				t.Fatalf("CopyObject with a wrong x-amz-copy-source-if-match: %v, want 412", err)
			}
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("cond"),
				CopySource: aws.String(bucket + "/" + src.key), CopySourceIfMatch: head.ETag}); err != nil {
				t.Fatalf("CopyObject with the right x-amz-copy-source-if-match: %v", err)
			}
			checkReadBack(t, e, c, bucket, "cond", src.plain)
		}
		// Reserved metadata cannot be set through a copy either.
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("forged"),
			CopySource: aws.String(bucket + "/src/small"), MetadataDirective: types.MetadataDirectiveReplace,
			Metadata: map[string]string{"s3seal-k": "forged"}}); err == nil {
			t.Fatal("CopyObject REPLACE with x-amz-meta-s3seal-k succeeded")
		}
	})
}
