package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// boto3Presign makes presigned URLs with boto3 for in, as JSON by name:
// "put", "get", "put_typed" (with ContentType and Metadata, which botocore's
// SigV2 presigner moves into the query), "expired" (Expires a minute ago),
// all with signature_version "s3" (SigV2), and "default_get" with boto3's
// default. Debian 12's boto3 (1.26.27, botocore 1.29.27) presigns S3 URLs
// with SigV2 by default, so that one is SigV2 there too: that is how a new
// user first meets SigV2.
func boto3Presign(t *testing.T, in *instance, bucket string) map[string]string {
	t.Helper()
	script := `
import boto3, json, sys
from botocore.config import Config
ep, bucket = sys.argv[1], sys.argv[2]
path = {"addressing_style": "path"}
v2 = boto3.client("s3", endpoint_url=ep, config=Config(signature_version="s3", s3=path))
default = boto3.client("s3", endpoint_url=ep, config=Config(s3=path))
obj = {"Bucket": bucket, "Key": "v2/obj.bin"}
typed = {"Bucket": bucket, "Key": "v2/typed.txt", "ContentType": "text/plain", "Metadata": {"color": "blue"}}
print(json.dumps({
    "put": v2.generate_presigned_url("put_object", Params=obj, ExpiresIn=300),
    "get": v2.generate_presigned_url("get_object", Params=obj, ExpiresIn=300),
    "put_typed": v2.generate_presigned_url("put_object", Params=typed, ExpiresIn=300),
    "expired": v2.generate_presigned_url("get_object", Params=obj, ExpiresIn=-60),
    "default_get": default.generate_presigned_url("get_object", Params=obj, ExpiresIn=300),
}))
`
	out := run(t, clientEnv(in), "/usr/bin/python3", "-c", script, in.URL, bucket)
	var urls map[string]string
	if err := json.Unmarshal([]byte(out), &urls); err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	for _, name := range []string{"put", "get", "put_typed", "expired"} {
		if !strings.Contains(urls[name], "AWSAccessKeyId=") {
			t.Fatalf("boto3 with signature_version s3 made a URL that is not SigV2: %s", urls[name])
		}
	}
	return urls
}

// tamperSignature changes one character of a SigV2 URL's signature (the
// first: the last digit's low bits are base64 padding).
func tamperSignature(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	sig := q.Get("Signature")
	c := "A"
	if strings.HasPrefix(sig, "A") {
		c = "B"
	}
	q.Set("Signature", c+sig[1:])
	u.RawQuery = q.Encode()
	return u.String()
}

// send sends a request to a presigned URL by hand.
func send(t *testing.T, method, u string, body []byte) rawAnswer {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// s3cmdV2Config writes an s3cmd configuration for in that signs with SigV2
// (signature_v2 = True) and returns its path.
func s3cmdV2Config(t *testing.T, in *instance, dir string) string {
	t.Helper()
	host := strings.TrimPrefix(in.URL, "http://")
	return writeFile(t, dir, "s3cfg-v2-"+randHex(3), []byte(fmt.Sprintf(
		"[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nbucket_location = %s\nsignature_v2 = True\n",
		in.AccessKey, in.SecretKey, host, host, region)))
}

// TestSigV2Clients: clients that sign with AWS Signature Version 2 work
// through s3seal (boto3's SigV2 presigned URLs, s3cmd with signature_v2),
// their uploads are ciphertext in the store, and a tampered or expired SigV2
// URL is refused as S3 refuses it; S3SEAL_SIGV2=false refuses SigV2.
func TestSigV2Clients(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		dir := t.TempDir()
		plain := plaintext(1<<20+17, 21)
		src := writeFile(t, dir, "src.bin", plain)

		t.Run("boto3-presigned", func(t *testing.T) {
			bucket := newBucket(t, e)
			urls := boto3Presign(t, in, bucket)
			run(t, nil, "curl", "-sSf", "-X", "PUT", "-T", src, urls["put"])
			checkStored(t, e, bucket, "v2/obj.bin", plain)
			for _, name := range []string{"get", "default_get"} {
				down := filepath.Join(dir, name+".bin")
				run(t, nil, "curl", "-sSf", "-o", down, urls[name])
				sameFile(t, down, plain)
			}

			// The signed Content-Type is sent as a header, the signed
			// metadata stays in the query: both reach the store.
			text := []byte("sealed with a SigV2 URL\n")
			run(t, nil, "curl", "-sSf", "-X", "PUT", "-H", "Content-Type: text/plain",
				"-T", writeFile(t, dir, "typed.txt", text), urls["put_typed"])
			checkStored(t, e, bucket, "v2/typed.txt", text)
			head, err := sdkClient(t, in).HeadObject(context.Background(),
				&s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("v2/typed.txt")})
			if err != nil || aws.ToString(head.ContentType) != "text/plain" || head.Metadata["color"] != "blue" {
				t.Fatalf("HeadObject: %v, content type %q, metadata %v", err, aws.ToString(head.ContentType), head.Metadata)
			}
			if a := send(t, http.MethodPut, urls["put_typed"], text); a.status != 403 || a.code() != "SignatureDoesNotMatch" {
				t.Fatalf("PUT without the signed Content-Type: %d %s", a.status, a.body)
			}

			if a := send(t, http.MethodGet, tamperSignature(t, urls["get"]), nil); a.status != 403 || a.code() != "SignatureDoesNotMatch" {
				t.Fatalf("tampered GET URL: %d %s", a.status, a.body)
			}
			if a := send(t, http.MethodPut, tamperSignature(t, urls["put"]), []byte("not what was signed for")); a.status != 403 || a.code() != "SignatureDoesNotMatch" {
				t.Fatalf("tampered PUT URL: %d %s", a.status, a.body)
			}
			checkStored(t, e, bucket, "v2/obj.bin", plain)
			if a := send(t, http.MethodGet, urls["expired"], nil); a.status != 403 || a.code() != "AccessDenied" ||
				!strings.Contains(string(a.body), "Request has expired") {
				t.Fatalf("expired URL: %d %s", a.status, a.body)
			}
		})

		t.Run("s3cmd", func(t *testing.T) {
			bucket := newBucket(t, e)
			cfg := s3cmdV2Config(t, in, dir)
			s3cmd := func(args ...string) string { return run(t, nil, "s3cmd", append([]string{"-c", cfg}, args...)...) }
			s3cmd("put", src, "s3://"+bucket+"/s3cmd-v2.bin")
			checkStored(t, e, bucket, "s3cmd-v2.bin", plain)
			down := filepath.Join(dir, "s3cmd-v2-down.bin")
			s3cmd("get", "--force", "s3://"+bucket+"/s3cmd-v2.bin", down)
			sameFile(t, down, plain)
			ls := s3cmd("--debug", "ls", "s3://"+bucket+"/")
			if !strings.Contains(ls, fmt.Sprint(len(plain))) {
				t.Fatalf("s3cmd ls does not show %d:\n%s", len(plain), ls)
			}
			if !strings.Contains(ls, "Using signature v2") || strings.Contains(ls, "signature v4") {
				t.Fatalf("s3cmd did not sign with SigV2 alone:\n%s", ls)
			}
		})

		t.Run("disabled", func(t *testing.T) {
			off := startS3seal(t, e, e.kmsURL, in.KeyAlias, "S3SEAL_SIGV2=false")
			bucket := newBucket(t, e)
			urls := boto3Presign(t, off, bucket)
			if a := send(t, http.MethodGet, urls["get"], nil); a.status != 400 || a.code() != "InvalidRequest" {
				t.Fatalf("SigV2 URL with S3SEAL_SIGV2=false: %d %s", a.status, a.body)
			}
			// s3cmd's SigV2 request is refused with S3's own answer to
			// SigV2 where it is not accepted, on which s3cmd signs again
			// with SigV4, as it does against S3.
			out := run(t, nil, "s3cmd", "-c", s3cmdV2Config(t, off, dir), "--debug", "ls", "s3://"+bucket+"/")
			if !strings.Contains(out, "Using signature v2") || !strings.Contains(out, "Endpoint requires signature v4") {
				t.Fatalf("s3cmd with signature_v2 and S3SEAL_SIGV2=false did not fall back to SigV4:\n%s", out)
			}
		})
	})
}
