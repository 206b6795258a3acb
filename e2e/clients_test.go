package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// run executes a real client and fails the test with its output on error.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func clientEnv(in *instance) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + in.AccessKey, "AWS_SECRET_ACCESS_KEY=" + in.SecretKey,
		"AWS_DEFAULT_REGION=" + region, "AWS_REGION=" + region, "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER="}
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, differs from the %d uploaded", path, len(got), len(want))
	}
}

func TestRealClients(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		dir := t.TempDir()
		plain := plaintext(3<<20+17, 5) // under the CLI's 8 MiB multipart threshold
		src := writeFile(t, dir, "src.bin", plain)
		env := clientEnv(in)

		t.Run("aws-cli", func(t *testing.T) {
			aws := func(args ...string) string {
				return run(t, env, "/usr/bin/aws", append([]string{"--endpoint-url", in.URL}, args...)...)
			}
			bucket := "cli-" + randHex(4)
			aws("s3", "mb", "s3://"+bucket)
			aws("s3", "cp", src, "s3://"+bucket+"/a/src.bin")
			checkStored(t, e, bucket, "a/src.bin", plain)
			aws("s3", "cp", "s3://"+bucket+"/a/src.bin", filepath.Join(dir, "cli-down.bin"))
			sameFile(t, filepath.Join(dir, "cli-down.bin"), plain)
			if ls := aws("s3", "ls", "s3://"+bucket+"/a/"); !strings.Contains(ls, fmt.Sprint(len(plain))) {
				t.Fatalf("aws s3 ls does not show the plaintext size %d:\n%s", len(plain), ls)
			}
			aws("s3api", "put-object", "--bucket", bucket, "--key", "api.bin", "--body", src, "--checksum-algorithm", "CRC32")
			head := aws("s3api", "head-object", "--bucket", bucket, "--key", "api.bin")
			if !strings.Contains(head, fmt.Sprintf(`"ContentLength": %d`, len(plain))) || !strings.Contains(head, "aws:kms") {
				t.Fatalf("head-object:\n%s", head)
			}
			aws("s3api", "get-object", "--bucket", bucket, "--key", "api.bin", filepath.Join(dir, "api-down.bin"))
			sameFile(t, filepath.Join(dir, "api-down.bin"), plain)
			aws("s3", "rm", "s3://"+bucket+"/api.bin")
			checkCLIMissingKey(t, env, in.URL, bucket)
		})

		t.Run("boto3", func(t *testing.T) {
			bucket := newBucket(t, e)
			script := `
import boto3, sys
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(s3={"addressing_style": "path"}))
data = open(sys.argv[3], "rb").read()
s3.put_object(Bucket=sys.argv[2], Key="boto/obj", Body=data, Metadata={"owner": "bob"})
got = s3.get_object(Bucket=sys.argv[2], Key="boto/obj")
body = got["Body"].read()
assert body == data, "body differs"
assert got["Metadata"] == {"owner": "bob"}, got["Metadata"]
assert got["ServerSideEncryption"] == "aws:kms"
r = s3.get_object(Bucket=sys.argv[2], Key="boto/obj", Range="bytes=100-199")["Body"].read()
assert r == data[100:200], "range differs"
sizes = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=sys.argv[2])["Contents"]}
assert sizes == {"boto/obj": len(data)}, sizes
print("ok")
`
			out := run(t, env, "/usr/bin/python3", "-c", script, in.URL, bucket, src)
			if strings.TrimSpace(out) != "ok" {
				t.Fatalf("boto3: %s", out)
			}
			checkStored(t, e, bucket, "boto/obj", plain)
		})

		t.Run("s3cmd", func(t *testing.T) {
			bucket := newBucket(t, e)
			host := strings.TrimPrefix(in.URL, "http://")
			cfg := writeFile(t, dir, "s3cfg", []byte(fmt.Sprintf(
				"[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nbucket_location = %s\nsignature_v2 = False\n",
				in.AccessKey, in.SecretKey, host, host, region)))
			s3cmd := func(args ...string) string { return run(t, nil, "s3cmd", append([]string{"-c", cfg}, args...)...) }
			s3cmd("put", src, "s3://"+bucket+"/s3cmd.bin")
			checkStored(t, e, bucket, "s3cmd.bin", plain)
			s3cmd("get", "--force", "s3://"+bucket+"/s3cmd.bin", filepath.Join(dir, "s3cmd-down.bin"))
			sameFile(t, filepath.Join(dir, "s3cmd-down.bin"), plain)
			if ls := s3cmd("ls", "s3://"+bucket+"/"); !strings.Contains(ls, fmt.Sprint(len(plain))) {
				t.Fatalf("s3cmd ls does not show %d:\n%s", len(plain), ls)
			}
		})

		t.Run("curl-presigned", func(t *testing.T) {
			bucket := newBucket(t, e)
			pc := s3.NewPresignClient(sdkClient(t, in))
			ctx := context.Background()
			put, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("pre/signed.bin")},
				s3.WithPresignExpires(5*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			run(t, nil, "curl", "-sSf", "-X", "PUT", "-T", src, put.URL)
			checkStored(t, e, bucket, "pre/signed.bin", plain)
			get, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("pre/signed.bin")},
				s3.WithPresignExpires(5*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			down := filepath.Join(dir, "curl-down.bin")
			run(t, nil, "curl", "-sSf", "-o", down, get.URL)
			sameFile(t, down, plain)
			// A tampered URL is refused.
			bad := strings.Replace(get.URL, "pre/signed.bin", "pre/other.bin", 1)
			out, err := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", bad).Output()
			if err != nil || string(out) != "403" {
				t.Fatalf("tampered presigned URL: status %s, err %v", out, err)
			}
		})
	})
}

// checkCLIMissingKey: `aws s3api get-object` of a missing key prints S3's
// message, and the answer's document names the request as its
// x-amz-request-id and x-amz-id-2 headers do, whatever the store left out.
func checkCLIMissingKey(t *testing.T, env []string, endpoint, bucket string) {
	t.Helper()
	cmd := exec.Command("/usr/bin/aws", "--debug", "--endpoint-url", endpoint, "s3api", "get-object",
		"--bucket", bucket, "--key", "no-such-key", filepath.Join(t.TempDir(), "out"))
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	const want = "An error occurred (NoSuchKey) when calling the GetObject operation: The specified key does not exist."
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("get-object of a missing key (%v): want %q in:\n%s", err, want, tail(out, 4000))
	}
	reqID := regexp.MustCompile(`'X-Amz-Request-Id': '([0-9A-F]{16})'`).FindSubmatch(out)
	hostID := regexp.MustCompile(`'X-Amz-Id-2': '([^']+)'`).FindSubmatch(out)
	if reqID == nil || hostID == nil {
		t.Fatalf("get-object of a missing key: no x-amz-request-id or x-amz-id-2 header in:\n%s", tail(out, 4000))
	}
	doc := fmt.Sprintf("<Resource>/%s/no-such-key</Resource><RequestId>%s</RequestId><HostId>%s</HostId></Error>", bucket, reqID[1], hostID[1])
	if !strings.Contains(string(out), doc) {
		t.Fatalf("get-object of a missing key: the error document does not end %s:\n%s", doc, tail(out, 4000))
	}
}

// tail is the last n bytes of b, for messages.
func tail(b []byte, n int) string {
	return string(b[max(0, len(b)-n):])
}

// writeTree writes files of the given sizes under dir and returns their
// contents by relative path. The files are dated an hour back: stores may
// keep LastModified to the second (AWS and versitygw do), and `aws s3 sync`
// uploads again a file whose modification time is later than that.
// rcloneFor runs rclone against in as the remote "s3seal:", with parts of
// 5 MiB from 5 MiB on. rclone refuses to start with AWS_CA_BUNDLE set (it
// is, on these machines). s3seal encrypts like SSE-KMS, whose ETags are not
// MD5s of the content: server_side_encryption = aws:kms tells rclone so (it
// then keeps its own MD5 in the object's metadata).
func rcloneFor(t *testing.T, in *instance) func(args ...string) string {
	renv := []string{"RCLONE_CONFIG_S3SEAL_TYPE=s3", "RCLONE_CONFIG_S3SEAL_PROVIDER=Other",
		"RCLONE_CONFIG_S3SEAL_ENDPOINT=" + in.URL, "RCLONE_CONFIG_S3SEAL_REGION=" + region,
		"RCLONE_CONFIG_S3SEAL_ACCESS_KEY_ID=" + in.AccessKey, "RCLONE_CONFIG_S3SEAL_SECRET_ACCESS_KEY=" + in.SecretKey,
		"RCLONE_CONFIG_S3SEAL_SERVER_SIDE_ENCRYPTION=aws:kms", "RCLONE_CONFIG=/dev/null"}
	return func(args ...string) string {
		args = append([]string{"-u", "AWS_CA_BUNDLE", "rclone", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M",
			"--s3-upload-concurrency", "4", "--retries", "1", "--low-level-retries", "1"}, args...)
		return run(t, renv, "env", args...)
	}
}

func writeTree(t *testing.T, dir string, sizes map[string]int) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	seed := byte(1)
	past := time.Now().Add(-time.Hour)
	for name, n := range sizes {
		b := plaintext(n, seed)
		seed++
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		p := writeFile(t, dir, name, b)
		if err := os.Chtimes(p, past, past); err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	return files
}

// sameTree checks that dir holds exactly files.
func sameTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		want, ok := files[filepath.ToSlash(rel)]
		if !ok {
			t.Errorf("%s: not uploaded", rel)
			return nil
		}
		n++
		sameFile(t, p, want)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(files) {
		t.Fatalf("%s holds %d files, want %d", dir, n, len(files))
	}
}

// treeSizes: a few files of different sizes, one above every client's
// multipart threshold, one empty.
var treeSizes = map[string]int{
	"small.txt": 100, "one-chunk.bin": 65536, "mid.bin": 1<<20 + 3,
	"sub/big.bin": 9*mib + 5, "sub/deeper/empty": 0,
}

// TestRealClientsMultipart drives the real clients above their multipart
// thresholds: uploads in parts, downloads by parallel ranged GETs,
// server-side copies by UploadPartCopy, and syncs.
func TestRealClientsMultipart(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		dir := t.TempDir()
		env := clientEnv(in)

		t.Run("aws-cli", func(t *testing.T) {
			aws := func(args ...string) string {
				return run(t, env, "/usr/bin/aws", append([]string{"--endpoint-url", in.URL}, args...)...)
			}
			bucket := newBucket(t, e)
			plain := plaintext(50*mib, 6)
			src := writeFile(t, dir, "cli-50m.bin", plain)
			// 50 MiB: CreateMultipartUpload and 7 UploadParts of 8 MiB (the
			// CLI's default chunk size), 10 at a time.
			aws("s3", "cp", src, "s3://"+bucket+"/big/50m.bin")
			checkStored(t, e, bucket, "big/50m.bin", plain)
			if n := etagParts(mustStat(t, store(t, e), bucket, "big/50m.bin").ETag); n != 7 {
				t.Fatalf("the store holds %d parts, want 7 (8 MiB parts)", n)
			}
			if ls := aws("s3", "ls", "s3://"+bucket+"/big/"); !strings.Contains(ls, fmt.Sprint(len(plain))) {
				t.Fatalf("aws s3 ls does not show the plaintext size %d:\n%s", len(plain), ls)
			}
			// Down: parallel ranged GETs of 8 MiB.
			down := filepath.Join(dir, "cli-50m-down.bin")
			aws("s3", "cp", "s3://"+bucket+"/big/50m.bin", down)
			sameFile(t, down, plain)
			// Server-side copy: CreateMultipartUpload and UploadPartCopy.
			aws("s3", "cp", "s3://"+bucket+"/big/50m.bin", "s3://"+bucket+"/big/copy.bin")
			checkStored(t, e, bucket, "big/copy.bin", plain)
			copyDown := filepath.Join(dir, "cli-copy-down.bin")
			aws("s3", "cp", "s3://"+bucket+"/big/copy.bin", copyDown)
			sameFile(t, copyDown, plain)
			os.Remove(src)
			os.Remove(down)
			os.Remove(copyDown)

			// sync up twice (the second finds nothing to do), then down
			// twice. The empty file matters: aws-cli 2.9 sends it with
			// "Expect: 100-continue" and stalls for a minute unless the
			// server says Continue first (see proxy.ServeHTTP).
			cliTree := treeSizes
			tree := filepath.Join(dir, "cli-tree")
			files := writeTree(t, tree, cliTree)
			if out := aws("s3", "sync", "--no-progress", tree, "s3://"+bucket+"/tree/"); strings.Count(out, "upload:") != len(files) {
				t.Fatalf("first sync up:\n%s", out)
			}
			if out := aws("s3", "sync", "--no-progress", tree, "s3://"+bucket+"/tree/"); strings.TrimSpace(out) != "" {
				t.Fatalf("second sync up transferred something:\n%s", out)
			}
			for name, b := range files {
				checkStored(t, e, bucket, "tree/"+name, b)
			}
			back := filepath.Join(dir, "cli-tree-down")
			aws("s3", "sync", "--no-progress", "s3://"+bucket+"/tree/", back)
			sameTree(t, back, files)
			if out := aws("s3", "sync", "--no-progress", "s3://"+bucket+"/tree/", back); strings.TrimSpace(out) != "" {
				t.Fatalf("second sync down transferred something:\n%s", out)
			}
		})

		t.Run("rclone", func(t *testing.T) {
			bucket := newBucket(t, e)
			rclone := rcloneFor(t, in)
			tree := filepath.Join(dir, "rclone-tree")
			sizes := map[string]int{"big.bin": 12*mib + 7}
			for k, v := range treeSizes {
				sizes[k] = v
			}
			files := writeTree(t, tree, sizes)
			rclone("copy", tree, "s3seal:"+bucket+"/rc")
			for name, b := range files {
				checkStored(t, e, bucket, "rc/"+name, b)
			}
			if n := etagParts(mustStat(t, store(t, e), bucket, "rc/big.bin").ETag); n != 3 {
				t.Fatalf("rclone stored big.bin in %d parts, want 3", n)
			}
			rclone("check", tree, "s3seal:"+bucket+"/rc")
			rclone("check", "--download", tree, "s3seal:"+bucket+"/rc")
			back := filepath.Join(dir, "rclone-down")
			rclone("copy", "s3seal:"+bucket+"/rc", back)
			sameTree(t, back, files)
			rclone("check", back, "s3seal:"+bucket+"/rc")
		})

		t.Run("s3cmd", func(t *testing.T) {
			bucket := newBucket(t, e)
			host := strings.TrimPrefix(in.URL, "http://")
			cfg := writeFile(t, dir, "s3cfg-mp", []byte(fmt.Sprintf(
				"[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nbucket_location = %s\nsignature_v2 = False\n",
				in.AccessKey, in.SecretKey, host, host, region)))
			s3cmd := func(args ...string) string { return run(t, nil, "s3cmd", append([]string{"-c", cfg}, args...)...) }
			plain := plaintext(12*mib+11, 13)
			src := writeFile(t, dir, "s3cmd-12m.bin", plain)
			s3cmd("put", "--multipart-chunk-size-mb=5", src, "s3://"+bucket+"/s3cmd/12m.bin")
			checkStored(t, e, bucket, "s3cmd/12m.bin", plain)
			if n := etagParts(mustStat(t, store(t, e), bucket, "s3cmd/12m.bin").ETag); n != 3 {
				t.Fatalf("s3cmd stored %d parts, want 3", n)
			}
			down := filepath.Join(dir, "s3cmd-12m-down.bin")
			s3cmd("get", "--force", "s3://"+bucket+"/s3cmd/12m.bin", down)
			sameFile(t, down, plain)
			if ls := s3cmd("ls", "s3://"+bucket+"/s3cmd/"); !strings.Contains(ls, fmt.Sprint(len(plain))) {
				t.Fatalf("s3cmd ls does not show %d:\n%s", len(plain), ls)
			}
		})

		t.Run("boto3", func(t *testing.T) {
			bucket := newBucket(t, e)
			plain := plaintext(17*mib+5, 14)
			src := writeFile(t, dir, "boto-17m.bin", plain)
			down := filepath.Join(dir, "boto-17m-down.bin")
			script := `
import boto3, sys
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(s3={"addressing_style": "path"}))
tc = TransferConfig(multipart_threshold=5*1024*1024, multipart_chunksize=5*1024*1024, max_concurrency=4)
s3.upload_file(sys.argv[3], sys.argv[2], "boto/17m.bin", Config=tc, ExtraArgs={"Metadata": {"owner": "frank"}})
head = s3.head_object(Bucket=sys.argv[2], Key="boto/17m.bin")
assert head["ContentLength"] == int(sys.argv[5]), head["ContentLength"]
assert head["Metadata"] == {"owner": "frank"}, head["Metadata"]
assert head["ETag"].strip('"').endswith("-4"), head["ETag"]
s3.download_file(sys.argv[2], "boto/17m.bin", sys.argv[4], Config=tc)
print("ok")
`
			out := run(t, env, "/usr/bin/python3", "-c", script, in.URL, bucket, src, down, fmt.Sprint(len(plain)))
			if strings.TrimSpace(out) != "ok" {
				t.Fatalf("boto3: %s", out)
			}
			checkStored(t, e, bucket, "boto/17m.bin", plain)
			sameFile(t, down, plain)
		})
	})
}
