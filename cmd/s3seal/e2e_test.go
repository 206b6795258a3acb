package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/e2e/localkms"
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
	s := startZeroConfig(t, dataDir)

	raw, err := os.ReadFile(filepath.Join(dataDir, credentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc credentialsDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	cred := doc.Credentials[0]
	client := s3Client(t, s.endpoint(), cred.AccessKey, cred.SecretKey)

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

	checkStoreHoldsCiphertext(t, filepath.Join(dataDir, storeDir), "plans/dawn.txt", []byte("attack at dawn"))

	// A wrong secret is refused.
	bad := s3Client(t, s.endpoint(), cred.AccessKey, strings.Repeat("x", 40))
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
		if strings.HasSuffix(filepath.ToSlash(path), "/buckets/demo/"+key) {
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

// kmsEndpoint returns the KMS-API server scripts/test started, or starts a
// local-kms in-process for this test.
func kmsEndpoint(t *testing.T) string {
	t.Helper()
	if ep := os.Getenv("S3SEAL_TEST_KMS_ENDPOINT"); ep != "" {
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		return ep
	}
	endpoint, stop, err := localkms.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping local-kms: %v", err)
		}
	})
	return endpoint
}

// createKMSKey makes a CMK on the KMS-API server at endpoint.
func createKMSKey(t *testing.T, endpoint string) string {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(localkms.Region))
	if err != nil {
		t.Fatal(err)
	}
	client := kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(endpoint) })
	out, err := client.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("s3seal cmd test")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// The aws provider against a KMS-API server: objects go through, and
// /readyz tells a missing CMK apart.
func TestAWSKMSProvider(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test") // the SDK default chain, as in production
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	endpoint := kmsEndpoint(t)
	keyID := createKMSKey(t, endpoint)

	start := func(keyID string) (*server, string) {
		dataDir := t.TempDir()
		environ := append(zeroConfigEnv(dataDir), "S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID="+keyID,
			"S3SEAL_KMS_ENDPOINT="+endpoint, "S3SEAL_KMS_REGION="+localkms.Region)
		cfg, err := loadConfig(environ)
		if err != nil {
			t.Fatal(err)
		}
		s, err := newServer(context.Background(), cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		if _, err := os.Stat(filepath.Join(dataDir, keyringFile)); !os.IsNotExist(err) {
			t.Errorf("keyring.json created with the aws provider (stat: %v)", err)
		}
		return s, dataDir
	}

	s, dataDir := start(keyID)
	if code, body := getStatus(t, s.healthURL()+"/readyz"); code != 200 {
		t.Errorf("readyz with a good key: %d %s", code, body)
	}
	client := s3Client(t, s.endpoint(), s.cred.AccessKey, s.cred.SecretKey)
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("demo")}); err != nil {
		t.Fatal(err)
	}
	body := []byte("sealed by a real KMS API")
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("demo"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("demo"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("get = %q", got)
	}
	checkStoreHoldsCiphertext(t, filepath.Join(dataDir, storeDir), "k", body)

	missing, _ := start("alias/does-not-exist")
	if code, body := getStatus(t, missing.healthURL()+"/readyz"); code != 503 || !strings.Contains(body, "kms") {
		t.Errorf("readyz with a missing key: %d %s", code, body)
	}
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
