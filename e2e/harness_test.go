// Package e2e tests s3seal as users run it: the real binary in front of a
// real MinIO and a real KMS-API server (local-kms), driven by real S3
// clients. scripts/test starts MinIO and local-kms on 127.0.0.1 and passes
// their addresses in S3SEAL_TEST_* variables; the tests start s3seal
// processes themselves and stop them by PID.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/e2e/localkms"
)

const region = "us-east-1"

// testEnv is what scripts/test started.
type testEnv struct {
	minioURL, minioAK, minioSK string
	kmsURL                     string
}

func requireEnv(t *testing.T) testEnv {
	t.Helper()
	e := testEnv{
		minioURL: os.Getenv("S3SEAL_TEST_MINIO_ENDPOINT"),
		minioAK:  os.Getenv("S3SEAL_TEST_MINIO_ACCESS_KEY"),
		minioSK:  os.Getenv("S3SEAL_TEST_MINIO_SECRET_KEY"),
		kmsURL:   os.Getenv("S3SEAL_TEST_KMS_ENDPOINT"),
	}
	if e.minioURL == "" || e.kmsURL == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("S3SEAL_TEST_MINIO_ENDPOINT and S3SEAL_TEST_KMS_ENDPOINT must be set in CI (scripts/test sets them)")
		}
		t.Skip("end-to-end tests need MinIO and local-kms: run scripts/test")
	}
	return e
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// s3sealBinary builds cmd/s3seal once per test run.
func s3sealBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "s3seal-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "s3seal")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/s3seal").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// kmsClient talks to a KMS-API endpoint with dummy credentials (local-kms
// does not check them).
func kmsClient(t *testing.T, endpoint string) *kms.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(region),
		config.WithCredentialsProvider(awscreds.NewStaticCredentialsProvider("e2e", "e2e", "")))
	if err != nil {
		t.Fatal(err)
	}
	return kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// newCMK creates a CMK with a fresh alias and returns the alias.
func newCMK(t *testing.T, endpoint string) string {
	t.Helper()
	ctx := context.Background()
	c := kmsClient(t, endpoint)
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("s3seal e2e")})
	if err != nil {
		t.Fatal(err)
	}
	alias := "alias/s3seal-e2e-" + randHex(4)
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	return alias
}

// instance is one running s3seal process.
type instance struct {
	URL        string // S3 endpoint for clients
	MetricsURL string
	AccessKey  string
	SecretKey  string
	KeyAlias   string
	cmd        *exec.Cmd
	logs       *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startS3seal runs s3seal in front of MinIO with the given KMS endpoint and
// CMK (a new one when alias is ""), plus extra environment. It is stopped
// with SIGTERM when the test ends.
func startS3seal(t *testing.T, e testEnv, kmsURL, alias string, extra ...string) *instance {
	t.Helper()
	if alias == "" {
		alias = newCMK(t, kmsURL)
	}
	in := &instance{
		URL: "http://" + freeAddr(t), MetricsURL: "http://" + freeAddr(t),
		AccessKey: "E2E" + strings.ToUpper(randHex(8)), SecretKey: randHex(20), KeyAlias: alias,
		logs: &syncBuffer{},
	}
	cmd := exec.Command(s3sealBinary(t))
	cmd.Env = append(os.Environ(),
		"S3SEAL_ADDR="+strings.TrimPrefix(in.URL, "http://"),
		"S3SEAL_METRICS_ADDR="+strings.TrimPrefix(in.MetricsURL, "http://"),
		"S3SEAL_ACCESS_KEY="+in.AccessKey, "S3SEAL_SECRET_KEY="+in.SecretKey,
		"S3SEAL_UPSTREAM_URL="+e.minioURL,
		"S3SEAL_UPSTREAM_ACCESS_KEY="+e.minioAK, "S3SEAL_UPSTREAM_SECRET_KEY="+e.minioSK,
		"S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID="+alias,
		"S3SEAL_KMS_ENDPOINT="+kmsURL, "S3SEAL_KMS_REGION="+region,
		"AWS_ACCESS_KEY_ID=e2e", "AWS_SECRET_ACCESS_KEY=e2e",
		"S3SEAL_DATA_DIR="+t.TempDir(), "S3SEAL_LOG_LEVEL=debug",
	)
	cmd.Env = append(cmd.Env, extra...)
	for _, kv := range extra {
		if strings.HasPrefix(kv, "S3SEAL_TLS_CERT=") {
			in.URL = strings.Replace(in.URL, "http://", "https://", 1)
		}
	}
	cmd.Stdout, cmd.Stderr = in.logs, in.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.cmd = cmd
	t.Cleanup(func() { in.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(in.MetricsURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("s3seal not ready in 20 s; logs:\n%s", in.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (in *instance) stop(t *testing.T) {
	if in.cmd.ProcessState != nil {
		return
	}
	in.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- in.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		in.cmd.Process.Kill()
		<-done
		t.Errorf("s3seal did not stop on SIGINT within 15 s")
	}
	if t.Failed() {
		t.Logf("s3seal logs:\n%s", in.logs)
	}
}

// store is a minio-go client straight to MinIO: what the store holds.
func store(t *testing.T, e testEnv) *minio.Client {
	t.Helper()
	u, err := url.Parse(e.minioURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(e.minioAK, e.minioSK, ""), Region: region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newBucket makes a bucket directly in MinIO (bucket operations pass
// through s3seal unchanged; the client tests create theirs through it).
func newBucket(t *testing.T, e testEnv) string {
	t.Helper()
	name := "e2e-" + randHex(6)
	if err := store(t, e).MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// startLocalKMS runs a KMS-API server of this test's own on 127.0.0.1, for
// tests that stop it; the returned stop is idempotent.
func startLocalKMS(t *testing.T) (string, func()) {
	t.Helper()
	endpoint, stop, err := localkms.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stopOnce := func() { once.Do(func() { stop() }) }
	t.Cleanup(stopOnce)
	return endpoint, stopOnce
}
