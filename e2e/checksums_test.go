package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/crc64nvme"
	"github.com/minio/minio-go/v7"
)

// checksumsOf are the checksums an SDK answer (or part, or attributes)
// holds in its Checksum<ALGORITHM> fields, by algorithm, empty ones left
// out: comparing all of them also catches a checksum of another algorithm,
// such as the store's own of the ciphertext.
func checksumsOf(v any) map[types.ChecksumAlgorithm]string {
	m := map[types.ChecksumAlgorithm]string{}
	rv := reflect.Indirect(reflect.ValueOf(v))
	if !rv.IsValid() {
		return m
	}
	for _, algo := range types.ChecksumAlgorithm("").Values() {
		if f := rv.FieldByName("Checksum" + string(algo)); f.IsValid() {
			if s, ok := f.Interface().(*string); ok && aws.ToString(s) != "" {
				m[algo] = *s
			}
		}
	}
	return m
}

// only is what checksumsOf gives for an answer holding value v of algo:
// nothing when v is "".
func only(algo types.ChecksumAlgorithm, v string) map[types.ChecksumAlgorithm]string {
	if v == "" {
		return map[types.ChecksumAlgorithm]string{}
	}
	return map[types.ChecksumAlgorithm]string{algo: v}
}

// newHash is algo's hash, from the standard library and minio/crc64nvme:
// the test's own implementation, not s3seal's.
func newHash(algo types.ChecksumAlgorithm) hash.Hash {
	switch algo {
	case types.ChecksumAlgorithmCrc32:
		return crc32.NewIEEE()
	case types.ChecksumAlgorithmCrc32c:
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case types.ChecksumAlgorithmCrc64nvme:
		return crc64nvme.New()
	case types.ChecksumAlgorithmSha256:
		return sha256.New()
	}
	panic("no hash for " + algo)
}

// wantChecksums are the checksums S3 answers for a multipart upload of
// parts declaring algo and typ: each part's, and the object's — for
// COMPOSITE algo's hash of the parts' raw checksums one after another, with
// "-N"; for FULL_OBJECT the CRC of the whole plaintext.
func wantChecksums(algo types.ChecksumAlgorithm, typ types.ChecksumType, parts [][]byte) (partSums []string, object string) {
	whole, composite := newHash(algo), newHash(algo)
	for _, p := range parts {
		h := newHash(algo)
		h.Write(p)
		whole.Write(p)
		composite.Write(h.Sum(nil))
		partSums = append(partSums, base64.StdEncoding.EncodeToString(h.Sum(nil)))
	}
	if typ == types.ChecksumTypeComposite {
		return partSums, fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(composite.Sum(nil)), len(parts))
	}
	return partSums, base64.StdEncoding.EncodeToString(whole.Sum(nil))
}

// uploadParts begins a multipart upload of parts declaring algo and typ
// ("" leaves the type to S3's default) and uploads them, each with its
// checksum from the client or, without clientSums, none, for s3seal to
// compute. It returns CreateMultipartUpload's answer and the parts as
// Complete lists them, with the checksums UploadPart answered.
func uploadParts(t *testing.T, c *s3.Client, bucket, key string, algo types.ChecksumAlgorithm, typ types.ChecksumType,
	parts [][]byte, clientSums bool) (*s3.CreateMultipartUploadOutput, []types.CompletedPart) {
	t.Helper()
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		ChecksumAlgorithm: algo, ChecksumType: typ})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		in := &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)}
		noSum := func(*s3.Options) {}
		if clientSums {
			in.ChecksumAlgorithm = algo
		} else {
			noSum = func(o *s3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired }
		}
		out, err := c.UploadPart(ctx, in, noSum)
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{PartNumber: in.PartNumber, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32,
			ChecksumCRC32C: out.ChecksumCRC32C, ChecksumCRC64NVME: out.ChecksumCRC64NVME, ChecksumSHA256: out.ChecksumSHA256})
	}
	return up, done
}

// checkNoChecksumStored: the store holds the checksum values only sealed,
// in no metadata value, encoded or decoded.
func checkNoChecksumStored(t *testing.T, st *minio.Client, bucket, key string, values ...string) {
	t.Helper()
	info, err := st.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sent := range values {
		if sent == "" {
			continue
		}
		raw, _ := base64.StdEncoding.DecodeString(strings.Split(sent, "-")[0])
		for k, vs := range info.Metadata {
			for _, v := range vs {
				decoded, _ := base64.StdEncoding.DecodeString(v)
				if strings.Contains(v, sent) || bytes.Contains([]byte(v), raw) || bytes.Contains(decoded, raw) {
					t.Errorf("the store has the plaintext's checksum in %s", k)
				}
			}
		}
	}
}

// TestChecksums: aws-sdk-go-v2, validating responses, uploads objects with
// each checksum algorithm, in one part and multipart, and reads back the
// checksums S3 would answer, which the SDK validates where S3's would be;
// the store holds none of them in the clear (docs/FORMAT.md §3.4, §6.2).
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
				sent := checksumsOf(put)[algo]
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
				if back := checksumsOf(out)[algo]; back != sent || out.ChecksumType != types.ChecksumTypeFullObject {
					t.Errorf("GET checksum %q %q, PUT's %q", back, out.ChecksumType, sent)
				}
				used, ok := s3.GetChecksumValidationMetadata(out.ResultMetadata)
				if !ok || !slices.Contains(used.AlgorithmsUsed, string(algo)) {
					t.Errorf("the SDK validated with %v, want %s", used.AlgorithmsUsed, algo)
				}

				head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
				if err != nil || checksumsOf(head)[algo] != sent {
					t.Errorf("HEAD: %v", err)
				}
				attrs, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String(bucket), Key: aws.String(key),
					ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesChecksum}})
				if err != nil || attrs.Checksum == nil || checksumsOf(attrs.Checksum)[algo] != sent {
					t.Errorf("GetObjectAttributes: %v %+v", err, attrs)
				}

				// Without checksum mode, none, as S3.
				plainHead, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil || checksumsOf(plainHead)[algo] != "" {
					t.Errorf("HEAD without checksum mode: %v", err)
				}
				checkNoChecksumStored(t, st, bucket, key, sent)
			})
		}

		// Multipart uploads (FORMAT.md §3.4): one declaring a CRC keeps each
		// part's checksum sealed in the part's stored bytes and answers them
		// as S3 does; SHA256 parts are verified on upload and nothing is
		// kept.
		parts := splitParts(plaintext(11*mib, 10), 5*mib, 5*mib) // MinIO refuses parts under 5 MiB but the last
		whole := slices.Concat(parts...)
		for _, tc := range []struct {
			algo       types.ChecksumAlgorithm
			typ        types.ChecksumType // "" leaves it to S3's default
			upload     types.ChecksumType // the upload's type
			kept       bool               // the object keeps a checksum: only CRCs do
			clientSums bool               // the client sends each part's checksum, else s3seal computes it
		}{
			{types.ChecksumAlgorithmCrc32c, types.ChecksumTypeComposite, types.ChecksumTypeComposite, true, false},
			{types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject, types.ChecksumTypeFullObject, true, true},
			{types.ChecksumAlgorithmCrc64nvme, "", types.ChecksumTypeFullObject, true, true},
			{types.ChecksumAlgorithmSha256, "", types.ChecksumTypeComposite, false, true},
		} {
			t.Run("multipart "+string(tc.algo)+" "+string(tc.upload), func(t *testing.T) {
				key := "mp-" + string(tc.algo) + "-" + string(tc.upload)
				partSums, objSum := wantChecksums(tc.algo, tc.upload, parts)
				objType := tc.upload
				if !tc.kept {
					objSum, objType = "", ""
				}
				composite := tc.kept && tc.upload == types.ChecksumTypeComposite
				up, done := uploadParts(t, c, bucket, key, tc.algo, tc.typ, parts, tc.clientSums)
				if up.ChecksumAlgorithm != tc.algo || up.ChecksumType != tc.upload {
					t.Errorf("CreateMultipartUpload answered %q %q", up.ChecksumAlgorithm, up.ChecksumType)
				}
				for i, p := range done {
					if got := checksumsOf(p); !maps.Equal(got, only(tc.algo, partSums[i])) {
						t.Errorf("UploadPart %d answered %v, want %s", i+1, got, partSums[i])
					}
				}
				// Until Complete the parts' checksums are sealed where s3seal
				// cannot read them, and the store's are of the ciphertext:
				// ListParts shows no checksum at all.
				lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId})
				if err != nil || len(lp.Parts) != len(parts) || lp.ChecksumAlgorithm != "" || lp.ChecksumType != "" {
					t.Fatalf("ListParts: %v, %d parts, %q %q", err, len(lp.Parts), lp.ChecksumAlgorithm, lp.ChecksumType)
				}
				for _, p := range lp.Parts {
					if got := checksumsOf(p); len(got) > 0 {
						t.Errorf("ListParts shows part %d's checksums %v", aws.ToInt32(p.PartNumber), got)
					}
				}

				fin, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
					UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
				if err != nil {
					t.Fatal(err)
				}
				if got := checksumsOf(fin); !maps.Equal(got, only(tc.algo, objSum)) || fin.ChecksumType != objType {
					t.Errorf("Complete answered %v %q, want %q %q", got, fin.ChecksumType, objSum, objType)
				}
				checkStored(t, e, bucket, key, whole)
				checkNoChecksumStored(t, st, bucket, key, append(partSums, objSum)...)

				// GET validates a FULL_OBJECT checksum while reading the
				// body; the SDK skips a COMPOSITE one ("-N").
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(out.Body)
				out.Body.Close()
				if err != nil || !bytes.Equal(got, whole) {
					t.Fatalf("GET: %v, %d bytes", err, len(got))
				}
				if sums := checksumsOf(out); !maps.Equal(sums, only(tc.algo, objSum)) || out.ChecksumType != objType {
					t.Errorf("GET answered %v %q, want %q %q", sums, out.ChecksumType, objSum, objType)
				}
				validated := tc.kept && !composite
				if used, _ := s3.GetChecksumValidationMetadata(out.ResultMetadata); slices.Contains(used.AlgorithmsUsed, string(tc.algo)) != validated {
					t.Errorf("the SDK validated the GET with %v; validated by %s: %t", used.AlgorithmsUsed, tc.algo, validated)
				}
				head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
				if err != nil || !maps.Equal(checksumsOf(head), only(tc.algo, objSum)) || head.ChecksumType != objType {
					t.Errorf("HEAD: %v, answered %v %q", err, checksumsOf(head), head.ChecksumType)
				}

				// A part of a COMPOSITE object answers its own checksum, which
				// the SDK validates; of others, none.
				wantPart := ""
				if composite {
					wantPart = partSums[1]
				}
				part, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
					PartNumber: aws.Int32(2), ChecksumMode: types.ChecksumModeEnabled})
				if err != nil {
					t.Fatal(err)
				}
				got, err = io.ReadAll(part.Body)
				part.Body.Close()
				if err != nil || !bytes.Equal(got, parts[1]) {
					t.Fatalf("GET part 2: %v, %d bytes", err, len(got))
				}
				if sums := checksumsOf(part); !maps.Equal(sums, only(tc.algo, wantPart)) {
					t.Errorf("GET part 2 answered %v, want %q", sums, wantPart)
				}
				if used, _ := s3.GetChecksumValidationMetadata(part.ResultMetadata); slices.Contains(used.AlgorithmsUsed, string(tc.algo)) != composite {
					t.Errorf("the SDK validated part 2 with %v; validated by %s: %t", used.AlgorithmsUsed, tc.algo, composite)
				}
				partHead, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
					PartNumber: aws.Int32(2), ChecksumMode: types.ChecksumModeEnabled})
				if err != nil || !maps.Equal(checksumsOf(partHead), only(tc.algo, wantPart)) {
					t.Errorf("HEAD part 2: %v, answered %v, want %q", err, checksumsOf(partHead), wantPart)
				}

				attrs, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String(bucket), Key: aws.String(key),
					ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesChecksum, types.ObjectAttributesObjectParts}})
				if err != nil || attrs.ObjectParts == nil || len(attrs.ObjectParts.Parts) != len(parts) {
					t.Fatalf("GetObjectAttributes: %v %+v", err, attrs)
				}
				if attrs.Checksum != nil && attrs.Checksum.ChecksumType != objType || !maps.Equal(checksumsOf(attrs.Checksum), only(tc.algo, objSum)) {
					t.Errorf("GetObjectAttributes Checksum %+v, want %q %q", attrs.Checksum, objSum, objType)
				}
				for i, p := range attrs.ObjectParts.Parts {
					want := partSums[i]
					if !tc.kept {
						want = ""
					}
					if got := checksumsOf(p); !maps.Equal(got, only(tc.algo, want)) {
						t.Errorf("GetObjectAttributes part %d: %v, want %q", i+1, got, want)
					}
				}
			})
		}

		// A whole-object checksum on Complete (the right one, of a
		// FULL_OBJECT upload) is refused before anything is written: s3seal
		// could check it only once the object exists. The upload stays, and
		// completes without one, answering that same checksum.
		t.Run("complete with object checksum", func(t *testing.T) {
			key := "mp-refused"
			small := splitParts(plaintext(5*mib+1000, 11), 5*mib)
			_, objSum := wantChecksums(types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject, small)
			up, done := uploadParts(t, c, bucket, key, types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject, small, true)
			complete := &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
				ChecksumCRC32C: aws.String(objSum), ChecksumType: types.ChecksumTypeFullObject,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}
			_, err := c.CompleteMultipartUpload(ctx, complete)
			if code, status := apiCode(err); code != "NotImplemented" || status != 501 {
				t.Errorf("Complete with x-amz-checksum-crc32c: %s %d (%v)", code, status, err)
			}
			if _, err := st.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
				t.Errorf("after the refused Complete the store has %s: %v", key, err)
			}
			complete.ChecksumCRC32C = nil
			if fin, err := c.CompleteMultipartUpload(ctx, complete); err != nil || aws.ToString(fin.ChecksumCRC32C) != objSum {
				t.Errorf("Complete without it: %v", err)
			}
		})
	})
}
