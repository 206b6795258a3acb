package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
)

// checksumValue is the value of algo's checksum among an answer's fields.
func checksumValue(algo types.ChecksumAlgorithm, crc32c, crc64, sha256 *string) string {
	switch algo {
	case types.ChecksumAlgorithmCrc32c:
		return aws.ToString(crc32c)
	case types.ChecksumAlgorithmCrc64nvme:
		return aws.ToString(crc64)
	case types.ChecksumAlgorithmSha256:
		return aws.ToString(sha256)
	}
	return ""
}

// TestChecksums: aws-sdk-go-v2, validating responses, uploads objects with
// each checksum algorithm and reads them back with the same checksum, which
// the SDK validates; the store holds none of it (docs/FORMAT.md §6.2).
// Multipart objects keep no checksum yet: they read back validated by
// nothing, and answer none.
func TestChecksums(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in, func(o *config.LoadOptions) error {
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
			return nil
		})
		ctx := context.Background()
		bucket := newBucket(t, e)
		st := store(t, e)
		plain := plaintext(300000, 9)
		for _, algo := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha256} {
			t.Run(string(algo), func(t *testing.T) {
				key := "single-" + string(algo)
				put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
					Body: bytes.NewReader(plain), ChecksumAlgorithm: algo})
				if err != nil {
					t.Fatal(err)
				}
				sent := checksumValue(algo, put.ChecksumCRC32C, put.ChecksumCRC64NVME, put.ChecksumSHA256)
				if sent == "" {
					t.Fatal("the PUT answered no checksum")
				}
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(out.Body) // fails if the SDK's validation does
				out.Body.Close()
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("GET: %v, %d bytes", err, len(got))
				}
				if back := checksumValue(algo, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA256); back != sent || out.ChecksumType != types.ChecksumTypeFullObject {
					t.Errorf("GET checksum %q %q, PUT's %q", back, out.ChecksumType, sent)
				}
				used, ok := s3.GetChecksumValidationMetadata(out.ResultMetadata)
				if !ok || !slices.Contains(used.AlgorithmsUsed, string(algo)) {
					t.Errorf("the SDK validated with %v, want %s", used.AlgorithmsUsed, algo)
				}

				head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
				if err != nil || checksumValue(algo, head.ChecksumCRC32C, head.ChecksumCRC64NVME, head.ChecksumSHA256) != sent {
					t.Errorf("HEAD: %v", err)
				}
				attrs, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String(bucket), Key: aws.String(key),
					ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesChecksum}})
				if err != nil || attrs.Checksum == nil ||
					checksumValue(algo, attrs.Checksum.ChecksumCRC32C, attrs.Checksum.ChecksumCRC64NVME, attrs.Checksum.ChecksumSHA256) != sent {
					t.Errorf("GetObjectAttributes: %v %+v", err, attrs)
				}

				// Without checksum mode, none, as S3.
				plainHead, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil || checksumValue(algo, plainHead.ChecksumCRC32C, plainHead.ChecksumCRC64NVME, plainHead.ChecksumSHA256) != "" {
					t.Errorf("HEAD without checksum mode: %v", err)
				}

				// The store has the checksum only sealed: not in any
				// metadata value, encoded or decoded.
				info, err := st.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := base64.StdEncoding.DecodeString(sent)
				for k, vs := range info.Metadata {
					for _, v := range vs {
						decoded, _ := base64.StdEncoding.DecodeString(v)
						if strings.Contains(v, sent) || bytes.Contains([]byte(v), raw) || bytes.Contains(decoded, raw) {
							t.Errorf("the store has the plaintext's checksum in %s", k)
						}
					}
				}
			})
		}

		t.Run("multipart", func(t *testing.T) {
			algo := types.ChecksumAlgorithmCrc32c
			key := "mp"
			up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumAlgorithm: algo})
			if err != nil {
				t.Fatal(err)
			}
			parts := [][]byte{plaintext(5<<20, 1), plaintext(1000, 2)}
			var done []types.CompletedPart
			for i, p := range parts {
				n := aws.Int32(int32(i + 1))
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
					PartNumber: n, Body: bytes.NewReader(p), ChecksumAlgorithm: algo})
				if err != nil {
					t.Fatalf("part %d: %v", i+1, err)
				}
				if aws.ToString(out.ChecksumCRC32C) == "" {
					t.Errorf("part %d answered no checksum", i+1)
				}
				done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: n, ChecksumCRC32C: out.ChecksumCRC32C})
			}
			if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
				UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
				t.Fatal(err)
			}
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil || !bytes.Equal(got, slices.Concat(parts...)) {
				t.Fatalf("GET: %v, %d bytes", err, len(got))
			}
			if v := aws.ToString(out.ChecksumCRC32C); v != "" {
				t.Errorf("multipart GET answered checksum %q: s3seal keeps none (FORMAT.md §6.2)", v)
			}
		})
	})
}
