package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// getRecorder is the transfer manager's S3 client: it notes what each
// GetObject answered, since the manager's own output keeps neither the
// parts' checksums nor whether the SDK validated them.
type getRecorder struct {
	*s3.Client
	mu   sync.Mutex
	gets map[string]getAnswer // by "part N", or the Range asked
}

type getAnswer struct {
	sums      map[types.ChecksumAlgorithm]string
	validated []string // the algorithms the SDK validates the body with
}

func (r *getRecorder) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := r.Client.GetObject(ctx, in, opts...)
	if err == nil {
		used, _ := s3.GetChecksumValidationMetadata(out.ResultMetadata)
		what := aws.ToString(in.Range)
		if in.PartNumber != nil {
			what = fmt.Sprintf("part %d", *in.PartNumber)
		}
		r.mu.Lock()
		r.gets[what] = getAnswer{sums: checksumsOf(out), validated: used.AlgorithmsUsed}
		r.mu.Unlock()
	}
	return out, err
}

// TestTransferManager: aws-sdk-go-v2's transfer manager at its defaults
// (CRC32 checksums, multipart above its threshold, downloads with checksum
// validation) works through s3seal. The upload answers the object's
// COMPOSITE checksum, as HEAD does; a download by parts gets each part's
// own checksum, which the SDK validates; one by ranges gets none, as from
// S3.
func TestTransferManager(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		rec := &getRecorder{Client: sdkClient(t, in)}
		// Parts of the least size MinIO takes, so that 12 MiB makes three.
		tm := transfermanager.New(rec, func(o *transfermanager.Options) {
			o.PartSizeBytes, o.MultipartUploadThreshold = 5*mib, 8*mib
		})
		ctx := context.Background()
		bucket, key := newBucket(t, e), "tm.bin"
		plain := plaintext(12*mib, 17)
		partSums, objSum := wantChecksums(types.ChecksumAlgorithmCrc32, types.ChecksumTypeComposite, splitParts(plain, 5*mib, 5*mib))

		up, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(plain)})
		if err != nil {
			t.Fatalf("UploadObject: %v", err)
		}
		if got := checksumsOf(up); !maps.Equal(got, only(types.ChecksumAlgorithmCrc32, objSum)) || up.ChecksumType != tmtypes.ChecksumTypeComposite {
			t.Errorf("UploadObject answered %v %q, want CRC32 %s COMPOSITE", got, up.ChecksumType, objSum)
		}
		checkStored(t, e, bucket, key, plain)
		head, err := rec.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil || !maps.Equal(checksumsOf(head), only(types.ChecksumAlgorithmCrc32, objSum)) || head.ChecksumType != types.ChecksumTypeComposite {
			t.Errorf("HEAD: %v, answered %v %q", err, checksumsOf(head), head.ChecksumType)
		}

		for _, tc := range []struct {
			typ  tmtypes.GetObjectType
			want map[string]string // by GET: the CRC32 it answers and the SDK validates, "" for none
		}{
			{tmtypes.GetObjectParts, map[string]string{"part 1": partSums[0], "part 2": partSums[1], "part 3": partSums[2]}},
			{tmtypes.GetObjectRanges, map[string]string{fmt.Sprintf("bytes=0-%d", 5*mib-1): "",
				fmt.Sprintf("bytes=%d-%d", 5*mib, 10*mib-1): "", fmt.Sprintf("bytes=%d-%d", 10*mib, 12*mib-1): ""}},
		} {
			t.Run(string(tc.typ), func(t *testing.T) {
				rec.gets = map[string]getAnswer{}
				f, err := os.Create(filepath.Join(t.TempDir(), "tm.bin"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), WriterAt: f},
					func(o *transfermanager.Options) { o.GetObjectType = tc.typ }); err != nil {
					t.Fatalf("DownloadObject: %v", err)
				}
				sameFile(t, f.Name(), plain)
				if len(rec.gets) != len(tc.want) {
					t.Errorf("GETs %v, want %v", slices.Sorted(maps.Keys(rec.gets)), slices.Sorted(maps.Keys(tc.want)))
				}
				for what, sum := range tc.want {
					got, ok := rec.gets[what]
					if !ok || !maps.Equal(got.sums, only(types.ChecksumAlgorithmCrc32, sum)) ||
						slices.Contains(got.validated, string(types.ChecksumAlgorithmCrc32)) != (sum != "") {
						t.Errorf("GET %s: made %t, answered %v, validated with %v; want CRC32 %q", what, ok, got.sums, got.validated, sum)
					}
				}
			})
		}
	})
}
