package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testkms"
)

// sdkClient is an aws-sdk-go-v2 S3 client at its default checksum settings,
// pointed at s3seal.
func sdkClient(t *testing.T, in *instance, opts ...func(*config.LoadOptions) error) *s3.Client {
	t.Helper()
	opts = append([]func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithCredentialsProvider(awscreds.NewStaticCredentialsProvider(in.AccessKey, in.SecretKey, "")),
	}, opts...)
	cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(in.URL)
		o.UsePathStyle = true
	})
}

func plaintext(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31) ^ seed ^ byte(i>>8)
	}
	return p
}

// checkStored asserts that the store holds ciphertext of the format's exact
// size with s3seal metadata, and no trace of the plaintext. A multipart
// object (ETag "...-N") is N segments: its size must invert to the plaintext
// size (docs/FORMAT.md §4.2).
func checkStored(t *testing.T, e testEnv, bucket, key string, plain []byte) {
	t.Helper()
	ctx := context.Background()
	obj, err := store(t, e).GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	stored, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("reading %s/%s from the store: %v", bucket, key, err)
	}
	info, err := obj.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if parts := etagParts(info.ETag); parts > 1 {
		got, err := envelope.ObjectPlaintextSize(int64(len(stored)), parts)
		if err != nil || got != int64(len(plain)) {
			t.Fatalf("the store holds %d bytes in %d parts for %d plaintext bytes: format says %d (%v)", len(stored), parts, len(plain), got, err)
		}
	} else if want := envelope.SegmentSize(int64(len(plain))); int64(len(stored)) != want {
		t.Fatalf("the store holds %d bytes for %d plaintext bytes, format says %d", len(stored), len(plain), want)
	}
	if len(plain) >= 16 && bytes.Contains(stored, plain[:16]) {
		t.Fatalf("the store holds plaintext of %s/%s", bucket, key)
	}
	if _, err := envelope.ParseUserMetadata(info.UserMetadata); err != nil {
		t.Fatalf("stored metadata of %s/%s: %v (%v)", bucket, key, err, info.UserMetadata)
	}
}

// etagParts is the part count in a multipart ETag ("...-N"), 1 otherwise.
func etagParts(etag string) int {
	etag = strings.Trim(etag, `"`)
	i := strings.LastIndexByte(etag, '-')
	if i < 0 {
		return 1
	}
	n, err := strconv.Atoi(etag[i+1:])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

func TestSDKRoundTrip(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		ctx := context.Background()
		bucket := "sdk-" + randHex(4)
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("CreateBucket through s3seal: %v", err)
		}
		sizes := []int{0, 1, 65535, 65536, 65537, 1<<20 + 3}
		for _, n := range sizes {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				key := fmt.Sprintf("dir/obj %d ü+x", n)
				plain := plaintext(n, byte(n))
				_, err := c.PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(plain),
					ContentType: aws.String("application/x-test"),
					Metadata:    map[string]string{"owner": "alice"},
				})
				if err != nil {
					t.Fatalf("PutObject: %v", err)
				}
				checkStored(t, e, bucket, key, plain)

				head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil {
					t.Fatalf("HeadObject: %v", err)
				}
				if aws.ToInt64(head.ContentLength) != int64(n) || head.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
					t.Fatalf("HeadObject: length %d sse %q", aws.ToInt64(head.ContentLength), head.ServerSideEncryption)
				}
				if head.Metadata["owner"] != "alice" || len(head.Metadata) != 1 {
					t.Fatalf("user metadata %v: want only owner=alice", head.Metadata)
				}
				get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil {
					t.Fatalf("GetObject: %v", err)
				}
				got, err := io.ReadAll(get.Body)
				get.Body.Close()
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("GetObject: %d bytes, err %v, equal %v", len(got), err, bytes.Equal(got, plain))
				}
				if aws.ToString(get.ContentType) != "application/x-test" {
					t.Fatalf("Content-Type %q", aws.ToString(get.ContentType))
				}
				if n > 40 {
					for _, r := range []struct {
						header   string
						from, to int
					}{{"bytes=0-0", 0, 0}, {"bytes=10-20", 10, 20}, {fmt.Sprintf("bytes=%d-", n-7), n - 7, n - 1}, {"bytes=-5", n - 5, n - 1}} {
						out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String(r.header)})
						if err != nil {
							t.Fatalf("ranged GetObject %s: %v", r.header, err)
						}
						got, err := io.ReadAll(out.Body)
						out.Body.Close()
						if err != nil || !bytes.Equal(got, plain[r.from:r.to+1]) {
							t.Fatalf("range %s: wrong bytes (err %v)", r.header, err)
						}
						if want := fmt.Sprintf("bytes %d-%d/%d", r.from, r.to, n); aws.ToString(out.ContentRange) != want {
							t.Fatalf("Content-Range %q, want %q", aws.ToString(out.ContentRange), want)
						}
					}
				}
			})
		}
		list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatalf("ListObjectsV2: %v", err)
		}
		if len(list.Contents) != len(sizes) {
			t.Fatalf("listed %d objects, want %d", len(list.Contents), len(sizes))
		}
		for _, o := range list.Contents {
			var n int
			fmt.Sscanf(strings.TrimPrefix(aws.ToString(o.Key), "dir/obj "), "%d", &n)
			if aws.ToInt64(o.Size) != int64(n) {
				t.Errorf("listing says %s is %d bytes, want %d", aws.ToString(o.Key), aws.ToInt64(o.Size), n)
			}
		}
		// Reserved metadata cannot be set by clients.
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("reserved"),
			Body: strings.NewReader("x"), Metadata: map[string]string{"s3seal-k": "forged"}})
		if err == nil {
			t.Fatal("PutObject with x-amz-meta-s3seal-k succeeded")
		}
		if _, err := store(t, e).StatObject(ctx, bucket, "reserved", minio.StatObjectOptions{}); err == nil {
			t.Fatal("refused PUT still wrote an object")
		}
	})
}

// readThrough GETs an object through s3seal and returns the body or the
// error, whichever the client saw first.
func readThrough(c *s3.Client, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func TestTamperedObjectsFail(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		ctx := context.Background()
		bucket := newBucket(t, e)
		st := store(t, e)
		put := func(key string, plain []byte) {
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(plain)}); err != nil {
				t.Fatal(err)
			}
		}
		raw := func(key string) ([]byte, map[string]string) {
			obj, err := st.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			b, err := io.ReadAll(obj)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := obj.Stat()
			return b, info.UserMetadata
		}
		rawPut := func(key string, b []byte, meta map[string]string) {
			if _, err := st.PutObject(ctx, bucket, key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{UserMetadata: meta}); err != nil {
				t.Fatal(err)
			}
		}
		plain := plaintext(200000, 9)
		tests := []struct {
			name   string
			damage func(key string)
		}{
			{"byte flipped in a middle chunk", func(key string) {
				b, m := raw(key)
				b[envelope.HeaderSize+70000] ^= 1
				rawPut(key, b, m)
			}},
			{"byte flipped in the header", func(key string) {
				b, m := raw(key)
				b[10] ^= 1
				rawPut(key, b, m)
			}},
			{"truncated at a chunk boundary", func(key string) {
				b, m := raw(key)
				rawPut(key, b[:envelope.HeaderSize+2*(envelope.ChunkSize+envelope.TagSize)], m)
			}},
			{"last byte cut", func(key string) {
				b, m := raw(key)
				rawPut(key, b[:len(b)-1], m)
			}},
			{"ciphertext and metadata moved here from another key", func(key string) {
				other := key + ".src"
				put(other, plaintext(1000, 1))
				b, m := raw(other)
				rawPut(key, b, m)
			}},
			{"plaintext object planted", func(key string) {
				rawPut(key, []byte("planted by someone with store access"), nil)
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				key := "victim-" + randHex(3)
				put(key, plain)
				if got, err := readThrough(c, bucket, key); err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("before damage: %v", err)
				}
				tt.damage(key)
				got, err := readThrough(c, bucket, key)
				if err == nil {
					t.Fatalf("damaged object read back without error (%d bytes, equal to original: %v)", len(got), bytes.Equal(got, plain))
				}
				if len(got) > 0 && !bytes.HasPrefix(plain, got) {
					t.Fatalf("damaged object yielded %d bytes that are not the plaintext", len(got))
				}
			})
		}
	})
}

// TestKMSDownWritesNothing runs s3seal against a KMS of its own, stops that
// KMS, and checks that a PUT fails with 503 and leaves nothing upstream.
func TestKMSDownWritesNothing(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		kmsURL, stopKMS := testkms.Start(t)
		in := startS3seal(t, e, kmsURL, "")
		c := sdkClient(t, in)
		ctx := context.Background()
		bucket := newBucket(t, e)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("before"), Body: strings.NewReader("kms is up")}); err != nil {
			t.Fatalf("PUT with the KMS up: %v", err)
		}
		stopKMS()
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("after"), Body: strings.NewReader("kms is down")})
		var re interface{ HTTPStatusCode() int }
		if err == nil || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable {
			t.Fatalf("PUT with the KMS down: %v, want 503", err)
		}
		if _, err := store(t, e).StatObject(ctx, bucket, "after", minio.StatObjectOptions{}); err == nil {
			t.Fatal("a PUT that failed for want of the KMS left an object upstream")
		}
		// The proxy is still serving.
		if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("listing after the KMS went down: %v", err)
		}
	})
}
