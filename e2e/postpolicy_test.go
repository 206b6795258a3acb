package e2e

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
)

// presignedPost is what boto3's generate_presigned_post hands a browser.
type presignedPost struct {
	URL    string            `json:"url"`
	Fields map[string]string `json:"fields"`
}

// boto3PresignPosts makes presigned POSTs with boto3 for in, by name:
// "v4" (key post/${filename}, up to 32 MiB, success_action_status 201
// allowed), "v2" (the same, signed with SigV2), "expired" (a minute ago)
// and "small" (up to 100 bytes).
func boto3PresignPosts(t *testing.T, in *instance, bucket string) map[string]presignedPost {
	t.Helper()
	script := `
import boto3, json, sys
from botocore.config import Config
ep, bucket, region = sys.argv[1], sys.argv[2], sys.argv[3]
def client(sig):
    return boto3.client("s3", endpoint_url=ep, region_name=region,
                        config=Config(signature_version=sig, s3={"addressing_style": "path"}))
v4, v2 = client("s3v4"), client("s3")
key = "post/${filename}"
conds = [["starts-with", "$key", "post/"], ["content-length-range", 1, 32 << 20],
         ["starts-with", "$success_action_status", ""]]
print(json.dumps({
    "v4": v4.generate_presigned_post(bucket, key, Conditions=conds, ExpiresIn=300),
    "v2": v2.generate_presigned_post(bucket, key, Conditions=conds, ExpiresIn=300),
    "expired": v4.generate_presigned_post(bucket, key, Conditions=conds, ExpiresIn=-60),
    "small": v4.generate_presigned_post(bucket, key, Conditions=[["starts-with", "$key", "post/"],
                                                                 ["content-length-range", 1, 100]], ExpiresIn=300),
}))
`
	out := run(t, clientEnv(in), "/usr/bin/python3", "-c", script, in.URL, bucket, region)
	var posts map[string]presignedPost
	if err := json.Unmarshal([]byte(out), &posts); err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	return posts
}

// curlPost uploads file as a browser would, with curl -F: the fields, with
// key replaced and those in drop left out, then the file, last.
func curlPost(t *testing.T, p presignedPost, file string, set map[string]string, drop ...string) rawAnswer {
	t.Helper()
	fields := map[string]string{}
	for k, v := range p.Fields {
		fields[k] = v
	}
	for k, v := range set {
		fields[k] = v
	}
	args := []string{"-sS", "-w", "\n%{http_code}"}
	for k, v := range fields {
		if !contains(drop, k) {
			args = append(args, "--form-string", k+"="+v)
		}
	}
	args = append(args, "-F", "file=@"+file, p.URL)
	out := run(t, nil, "curl", args...)
	i := strings.LastIndexByte(out, '\n')
	status, err := strconv.Atoi(strings.TrimSpace(out[i+1:]))
	if err != nil {
		t.Fatalf("curl: %q", out)
	}
	return rawAnswer{status: status, body: []byte(out[:i])}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestPostPolicy: browser form uploads (boto3 generate_presigned_post, sent
// by curl -F) store the file encrypted, read back through s3seal, and each
// violated condition is refused with S3's error, storing nothing.
func TestPostPolicy(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		bucket := newBucket(t, e)
		posts := boto3PresignPosts(t, in, bucket)
		dir := t.TempDir()
		small := plaintext(1<<10+3, 41)
		large := plaintext(20<<20, 42)
		smallPath := writeFile(t, dir, "small.bin", small)
		largePath := writeFile(t, dir, "large.bin", large)

		accepted := []struct {
			name, post, path, key string
			plain                 []byte
			set                   map[string]string
			status                int
		}{
			{"small", "v4", smallPath, "post/small.bin", small, nil, 204},
			{"20 MiB", "v4", largePath, "post/large.bin", large, nil, 204},
			{"201", "v4", smallPath, "post/created.bin", small, map[string]string{"key": "post/created.bin", "success_action_status": "201"}, 201},
			{"sigv2", "v2", smallPath, "post/v2.bin", small, map[string]string{"key": "post/v2.bin"}, 204},
		}
		for _, tc := range accepted {
			a := curlPost(t, posts[tc.post], tc.path, tc.set)
			if a.status != tc.status {
				t.Fatalf("%s: %d %s", tc.name, a.status, a.body)
			}
			if tc.status == 201 && !strings.Contains(string(a.body), "<Key>"+tc.key+"</Key>") {
				t.Fatalf("%s: %s", tc.name, a.body)
			}
			checkStored(t, e, bucket, tc.key, tc.plain)
			readBack(t, in, bucket, tc.key, tc.plain)
		}

		refused := []struct {
			name, post   string
			set          map[string]string
			drop         string
			status       int
			code, detail string
		}{
			{"expired", "expired", map[string]string{"key": "post/expired.bin"}, "", 403, "AccessDenied", "Policy expired"},
			{"wrong key prefix", "v4", map[string]string{"key": "other/x.bin"}, "", 403, "AccessDenied", "Policy Condition failed"},
			{"too large", "small", map[string]string{"key": "post/toolarge.bin"}, "", 400, "EntityTooLarge", ""},
			{"bad signature", "v4", map[string]string{"key": "post/badsig.bin", "x-amz-signature": strings.Repeat("0", 64)}, "", 403, "SignatureDoesNotMatch", ""},
			{"missing field", "v4", map[string]string{"key": "post/missing.bin"}, "x-amz-credential", 400, "InvalidArgument", "x-amz-credential"},
			{"extra field", "v4", map[string]string{"key": "post/extra.bin", "x-amz-meta-extra": "x"}, "", 403, "AccessDenied", "Extra input fields"},
		}
		for _, tc := range refused {
			a := curlPost(t, posts[tc.post], smallPath, tc.set, tc.drop)
			if a.status != tc.status || a.code() != tc.code || !strings.Contains(string(a.body), tc.detail) {
				t.Fatalf("%s: %d %s, want %d %s", tc.name, a.status, a.body, tc.status, tc.code)
			}
		}
		storedKeys(t, e, bucket, "post/small.bin", "post/large.bin", "post/created.bin", "post/v2.bin")
	})
}

// readBack reads key through s3seal and compares it with plain.
func readBack(t *testing.T, in *instance, bucket, key string, plain []byte) {
	t.Helper()
	out, err := sdkClient(t, in).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil || string(got) != string(plain) {
		t.Fatalf("GetObject %s: %d bytes, %v", key, len(got), err)
	}
}

// storedKeys checks that the store holds exactly keys in bucket.
func storedKeys(t *testing.T, e testEnv, bucket string, keys ...string) {
	t.Helper()
	var got []string
	for o := range store(t, e).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		got = append(got, o.Key)
	}
	if len(got) != len(keys) {
		t.Fatalf("the store holds %v, want %v", got, keys)
	}
	for _, k := range keys {
		if !contains(got, k) {
			t.Fatalf("the store holds %v, want %v", got, keys)
		}
	}
}
