package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// cliAttributes is what `aws s3api get-object-attributes` prints.
type cliAttributes struct {
	ETag         string
	StorageClass string
	ObjectSize   int64
	Checksum     struct{ ChecksumCRC32C string } // the CLI here (2.9) knows no ChecksumType
	ObjectParts  *struct {
		TotalPartsCount int
		IsTruncated     bool
		Parts           []struct {
			PartNumber     int
			Size           int64
			ChecksumCRC32C string
		}
	}
}

// summary says what a CLI answer holds that a store could get wrong.
func (a cliAttributes) summary() string {
	s := fmt.Sprintf("size=%d class=%s", a.ObjectSize, a.StorageClass)
	if a.Checksum.ChecksumCRC32C != "" {
		s += " crc32c=" + a.Checksum.ChecksumCRC32C
	}
	if p := a.ObjectParts; p != nil {
		s += fmt.Sprintf(" total=%d truncated=%t parts=", p.TotalPartsCount, p.IsTruncated)
		for _, pt := range p.Parts {
			s += fmt.Sprintf("%d:%d", pt.PartNumber, pt.Size)
			if pt.ChecksumCRC32C != "" {
				s += ":" + pt.ChecksumCRC32C
			}
			s += ","
		}
	}
	return s
}

// TestGetObjectAttributes: real clients get plaintext values, never the
// stored ciphertext's: the AWS CLI the size of each part of a multipart
// object, paged as asked, and of one uploaded with CRC32C the checksums of
// the object and its parts; aws-sdk-go-v2 a single-part object's size.
func TestGetObjectAttributes(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		bucket := newBucket(t, e)
		c := sdkClient(t, in)
		ctx := context.Background()

		plain := plaintext(10*mib+100007, 13)
		parts := splitParts(plain, 5*mib, 5*mib)
		if err := multipartUpload(t, c, bucket, "mp.bin", parts, nil); err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		checkStored(t, e, bucket, "mp.bin", plain)
		// The same parts again, with CRC32C checksums (COMPOSITE).
		partSums, objSum := wantChecksums(types.ChecksumAlgorithmCrc32c, types.ChecksumTypeComposite, parts)
		up, done := uploadParts(t, c, bucket, "crc.bin", types.ChecksumAlgorithmCrc32c, "", parts, true)
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("crc.bin"),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		cli := func(key string, args ...string) cliAttributes {
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			out := run(t, clientEnv(in), "/usr/bin/aws", append([]string{"--endpoint-url", in.URL, "s3api", "get-object-attributes", "--bucket", bucket,
				"--key", key, "--object-attributes", "ETag", "StorageClass", "ObjectSize", "ObjectParts", "Checksum"}, args...)...)
			var a cliAttributes
			if err := json.Unmarshal([]byte(out), &a); err != nil {
				t.Fatalf("get-object-attributes printed %s: %v", out, err)
			}
			if a.ETag != strings.Trim(aws.ToString(head.ETag), `"`) {
				t.Errorf("ETag %s, GET says %s", a.ETag, aws.ToString(head.ETag))
			}
			return a
		}
		for _, tc := range []struct {
			key  string
			args []string
			want string
		}{
			{"mp.bin", nil, fmt.Sprintf("size=%d class=STANDARD total=3 truncated=false parts=1:%d,2:%d,3:100007,", len(plain), 5*mib, 5*mib)},
			{"mp.bin", []string{"--max-parts", "1", "--part-number-marker", "1"}, fmt.Sprintf("size=%d class=STANDARD total=3 truncated=true parts=2:%d,", len(plain), 5*mib)},
			{"crc.bin", nil, fmt.Sprintf("size=%d class=STANDARD crc32c=%s total=3 truncated=false parts=1:%d:%s,2:%d:%s,3:100007:%s,",
				len(plain), objSum, 5*mib, partSums[0], 5*mib, partSums[1], partSums[2])},
		} {
			if got := cli(tc.key, tc.args...).summary(); got != tc.want {
				t.Errorf("get-object-attributes %s %v:\n%s\nwant\n%s", tc.key, tc.args, got, tc.want)
			}
		}

		// The SDK's default checksum (CRC32, a header over http) is kept
		// sealed (docs/FORMAT.md §6.2) and answered as <Checksum>.
		small := plaintext(3*mib+17, 14)
		put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("small.bin"), Body: bytes.NewReader(small)})
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String(bucket), Key: aws.String("small.bin"),
			ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesObjectSize,
				types.ObjectAttributesStorageClass, types.ObjectAttributesObjectParts, types.ObjectAttributesChecksum}})
		if err != nil {
			t.Fatalf("GetObjectAttributes: %v", err)
		}
		if aws.ToInt64(out.ObjectSize) != int64(len(small)) || aws.ToString(out.ETag) != strings.Trim(aws.ToString(put.ETag), `"`) ||
			out.StorageClass != types.StorageClassStandard || out.ObjectParts != nil || out.LastModified == nil ||
			out.Checksum == nil || aws.ToString(out.Checksum.ChecksumCRC32) != aws.ToString(put.ChecksumCRC32) || aws.ToString(put.ChecksumCRC32) == "" {
			t.Errorf("GetObjectAttributes of %d bytes (ETag %s): size %d, ETag %s, class %q, parts %v, checksum %v, modified %v",
				len(small), aws.ToString(put.ETag), aws.ToInt64(out.ObjectSize), aws.ToString(out.ETag), out.StorageClass,
				out.ObjectParts, out.Checksum, out.LastModified)
		}
		_, err = c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String(bucket), Key: aws.String("nope"),
			ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectSize}})
		if code, status := apiCode(err); code != "NoSuchKey" || status != 404 {
			t.Errorf("GetObjectAttributes of a missing key: %s %d (%v)", code, status, err)
		}
	})
}
