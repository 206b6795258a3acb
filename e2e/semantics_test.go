package e2e

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// TestS3EdgeSemantics checks, on every store, the answers S3 gives where
// an application relies on them: conditional writes, a copy onto itself,
// parts too small to complete, and error documents that name the request.
func TestS3EdgeSemantics(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		ctx := context.Background()
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		bucket := newBucket(t, e)
		put := func(key, body string, ifNone *string) error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
				Body: strings.NewReader(body), IfNoneMatch: ifNone})
			return err
		}

		// If-None-Match: * twice: the second is 412, the first object intact.
		if err := put("once", "the first", aws.String("*")); err != nil {
			t.Fatalf("first conditional PUT: %v", err)
		}
		if code, status := apiCode(put("once", "the second", aws.String("*"))); code != "PreconditionFailed" || status != 412 {
			t.Errorf("second conditional PUT: %s %d", code, status)
		}
		if got, err := readThrough(c, bucket, "once"); err != nil || string(got) != "the first" {
			t.Errorf("after a refused conditional PUT the object reads %q (%v)", got, err)
		}

		// A copy onto itself that changes nothing.
		_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("once"), CopySource: aws.String(bucket + "/once")})
		if code, status := apiCode(err); code != "InvalidRequest" || status != 400 {
			t.Errorf("copy onto itself: %s %d", code, status)
		}

		// A part under 5 MiB before the last: EntityTooSmall, the upload kept.
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp")})
		if err != nil {
			t.Fatal(err)
		}
		var parts []types.CompletedPart
		for n, size := range []int{1 << 20, 100} {
			p, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("mp"), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(n + 1)), Body: bytes.NewReader(make([]byte, size))})
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(n + 1)), ETag: p.ETag})
		}
		_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp"),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		if code, status := apiCode(err); code != "EntityTooSmall" || status != 400 {
			t.Errorf("Complete with a 1 MiB first part: %s %d", code, status)
		}
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp"), UploadId: up.UploadId}); err != nil {
			t.Errorf("the upload was not left open: %v", err)
		}

		checkPartReplacement(t, c, bucket)

		// A store's error, relayed, names s3seal's request id.
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("missing")})
		var re interface{ ServiceRequestID() string }
		var ae smithy.APIError
		if !errors.As(err, &re) || !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchKey" || re.ServiceRequestID() == "" {
			t.Fatalf("GET of a missing key: %v", err)
		}
		eventually(t, "the request id in s3seal's log", func() error { // logged once answered
			if !strings.Contains(in.logs.String(), `"request_id":"`+re.ServiceRequestID()+`"`) {
				return errors.New("not logged")
			}
			return nil
		})
	})
}

// checkPartReplacement uploads part 1 twice: Complete takes only the ETag
// of the last upload, a part listed twice is S3's InvalidPartOrder, and the
// object completed is the last upload's bytes.
func checkPartReplacement(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("again")})
	if err != nil {
		t.Fatal(err)
	}
	upload := func(n int, body []byte) *string {
		p, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("again"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(n)), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		return p.ETag
	}
	first := plaintext(5<<20, 1)
	last := plaintext(5<<20, 2)
	old := upload(1, first)
	etag1, etag2 := upload(1, last), upload(2, []byte("tail"))
	complete := func(parts ...types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("again"),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return err
	}
	part := func(n int, etag *string) types.CompletedPart {
		return types.CompletedPart{PartNumber: aws.Int32(int32(n)), ETag: etag}
	}
	if code, status := apiCode(complete(part(1, old), part(2, etag2))); code != "InvalidPart" || status != 400 {
		t.Errorf("Complete with the replaced part's ETag: %s %d", code, status)
	}
	if code, status := apiCode(complete(part(1, etag1), part(1, etag1), part(2, etag2))); code != "InvalidPartOrder" || status != 400 {
		t.Errorf("Complete listing a part twice: %s %d", code, status)
	}
	if err := complete(part(1, etag1), part(2, etag2)); err != nil {
		t.Fatalf("Complete with the last upload's ETag: %v", err)
	}
	got, err := readThrough(c, bucket, "again")
	if err != nil || !bytes.Equal(got, append(last, "tail"...)) {
		t.Errorf("the completed object is not the last upload's bytes (%v)", err)
	}
}
