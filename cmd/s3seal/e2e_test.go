package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/datadir"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testkms"
)

// s3Client is an aws-sdk-go-v2 client for endpoint. It goes through
// config.LoadDefaultConfig so the SDK builds its own HTTP client (which
// AWS_CA_BUNDLE, set on these machines, requires).
func s3Client(t *testing.T, endpoint, accessKey, secretKey string) *s3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

// The whole zero-configuration path: start as `s3seal` with nothing set,
// use the credential it wrote, and check that the store only ever got
// ciphertext.
func TestZeroConfigEndToEnd(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	s, client := startZeroConfigClient(t, dataDir)

	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("demo")}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	plaintext := bytes.Repeat([]byte("attack at dawn; the secret plan. "), 4000) // ~130 KiB: several chunks
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("demo"), Key: aws.String("plans/dawn.txt"), Body: bytes.NewReader(plaintext),
	}); err != nil {
		t.Fatalf("put: %v", err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("demo"), Key: aws.String("plans/dawn.txt")})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("get returned %d bytes (%v), want the %d put", len(got), err, len(plaintext))
	}
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("demo")})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "plans/dawn.txt" ||
		aws.ToInt64(list.Contents[0].Size) != int64(len(plaintext)) {
		t.Errorf("list: %+v", list.Contents)
	}

	checkStoreHoldsCiphertext(t, filepath.Join(dataDir, datadir.StoreDir), "plans/dawn.txt", []byte("attack at dawn"))

	// A wrong secret is refused.
	bad := s3Client(t, s.endpoint(), s.cred.AccessKey, strings.Repeat("x", 40))
	_, err = bad.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("demo"), Key: aws.String("plans/dawn.txt")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v, want SignatureDoesNotMatch", err)
	}
}

// checkStoreHoldsCiphertext finds the object's file in the embedded store
// and checks that no file there contains the plaintext marker.
func checkStoreHoldsCiphertext(t *testing.T, storeDir, key string, marker []byte) {
	t.Helper()
	found := false
	err := filepath.WalkDir(storeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, marker) {
			t.Errorf("%s holds plaintext", path)
		}
		if path == filepath.Join(storeDir, "demo", key) {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Errorf("no file for %s under %s", key, storeDir)
	}
}

// awsEnv configures an s3seal in dataDir on the KMS-API server at endpoint.
func awsEnv(dataDir, endpoint, keyID string, extra ...string) []string {
	env := append(zeroConfigEnv(dataDir), "S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID="+keyID,
		"S3SEAL_KMS_ENDPOINT="+endpoint, "S3SEAL_KMS_REGION="+testkms.Region)
	return append(env, extra...)
}

// The aws provider against a KMS-API server: objects go through, and a CMK
// name the KMS does not know stops the start, naming its variable.
func TestAWSKMSProvider(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test") // the SDK default chain, as in production
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	endpoint := testkms.Endpoint(t)
	keyID := testkms.CreateKey(t, endpoint)

	dataDir := t.TempDir()
	s, _ := startServer(t, awsEnv(dataDir, endpoint, keyID))
	if _, err := os.Stat(filepath.Join(dataDir, datadir.KeyringFile)); !os.IsNotExist(err) {
		t.Errorf("keyring.json created with the aws provider (stat: %v)", err)
	}
	if code, body := getStatus(t, s.healthURL()+"/readyz"); code != 200 {
		t.Errorf("readyz with a good key: %d %s", code, body)
	}
	client := s3Client(t, s.endpoint(), s.cred.AccessKey, s.cred.SecretKey)
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("demo")}); err != nil {
		t.Fatal(err)
	}
	body := []byte("sealed by a real KMS API")
	putObject(t, client, "k", body)
	if got := getObject(t, client, "k"); !bytes.Equal(got, body) {
		t.Errorf("get = %q", got)
	}
	checkStoreHoldsCiphertext(t, filepath.Join(dataDir, datadir.StoreDir), "k", body)

	for _, tc := range []struct {
		keyID, decrypt, want string
	}{
		{"alias/does-not-exist", "", `S3SEAL_KMS_KEY_ID "alias/does-not-exist" names no CMK`},
		{keyID, "alias/gone", `S3SEAL_KMS_DECRYPT_KEY_IDS lists "alias/gone"`},
	} {
		var stdout, stderr bytes.Buffer
		environ := awsEnv(t.TempDir(), endpoint, tc.keyID, "S3SEAL_KMS_DECRYPT_KEY_IDS="+keyID+","+tc.decrypt,
			"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
		if code := run(context.Background(), nil, environ, &stdout, &stderr); code != exitError {
			t.Errorf("%s: exit %d, want %d", tc.want, code, exitError)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "s3seal serve: ") || !strings.Contains(last, tc.want) {
			t.Errorf("last line of stderr %q, want it to say %q", last, tc.want)
		}
	}
}

// An unreachable KMS does not stop the start; /readyz says the allow-list
// is not resolved.
func TestAWSKMSUnreachableAtStart(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_MAX_ATTEMPTS", "1") // fail fast: nothing listens
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close()
	s, _ := startServer(t, awsEnv(t.TempDir(), endpoint, "alias/s3seal"))
	if code, body := getStatus(t, s.healthURL()+"/readyz"); code != 503 || !strings.Contains(body, "kms-allow-list") {
		t.Errorf("readyz: %d %s, want 503 naming kms-allow-list", code, body)
	}
}

// The README's "Moving to another CMK": with the old key in
// S3SEAL_KMS_DECRYPT_KEY_IDS old objects read; a copy onto itself re-wraps
// an object under the new key; without the old key listed, objects still
// under it are refused.
func TestMovingToAnotherCMK(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	endpoint := testkms.Endpoint(t)
	oldKey, newKey := testkms.CreateKey(t, endpoint), testkms.CreateKey(t, endpoint)
	dataDir := t.TempDir() // one embedded store for the three configurations
	ctx := context.Background()
	start := func(keyID string, extra ...string) (*s3.Client, func()) {
		t.Helper()
		s, stop := startServer(t, awsEnv(dataDir, endpoint, keyID, extra...))
		return s3Client(t, s.endpoint(), s.cred.AccessKey, s.cred.SecretKey), stop
	}

	client, stop := start(oldKey)
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("demo")}); err != nil {
		t.Fatal(err)
	}
	putObject(t, client, "moved", []byte("re-wrapped"))
	putObject(t, client, "left", []byte("left under the old key"))
	stop()

	client, stop = start(newKey, "S3SEAL_KMS_DECRYPT_KEY_IDS="+oldKey)
	if got := getObject(t, client, "left"); string(got) != "left under the old key" {
		t.Errorf("old object with the old key listed: %q", got)
	}
	if _, err := client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("demo"), Key: aws.String("moved"),
		CopySource: aws.String("demo/moved"), MetadataDirective: types.MetadataDirectiveReplace}); err != nil {
		t.Fatalf("copy onto itself: %v", err)
	}
	stop()

	client, _ = start(newKey)
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("demo"), Key: aws.String("moved")})
	if err != nil {
		t.Fatalf("re-wrapped object: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "re-wrapped" || !strings.HasSuffix(aws.ToString(out.SSEKMSKeyId), newKey) {
		t.Errorf("re-wrapped object: %q under %q, want it under %s", got, aws.ToString(out.SSEKMSKeyId), newKey)
	}
	_, err = client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("demo"), Key: aws.String("left")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Errorf("object under a CMK no longer listed: %v, want AccessDenied", err)
	}
}

func putObject(t *testing.T, client *s3.Client, key string, body []byte) {
	t.Helper()
	_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("demo"), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func getObject(t *testing.T, client *s3.Client, key string) []byte {
	t.Helper()
	out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("demo"), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
