package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	e := requireEnv(t)
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
}
