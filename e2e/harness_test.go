// Package e2e tests s3seal as users run it: the real binary in front of real
// S3 stores (MinIO and versitygw, every test against each) and a real
// KMS-API server (local-kms), driven by real S3 clients. scripts/test starts
// the stores and local-kms on 127.0.0.1 and passes their addresses in
// S3SEAL_TEST_* variables; the tests start s3seal processes themselves and
// stop them by PID.
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
	"syscall"
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

// testEnv is what scripts/test started, seen from one test: one S3 store
// (an upstream) and the KMS-API server.
type testEnv struct {
	name                       string // "minio" or "versitygw": the subtest name
	storeURL, storeAK, storeSK string
	kmsURL                     string
}

// upstreams are the S3 stores the suite runs against, in the order they run.
// Each is configured by S3SEAL_TEST_<NAME>_ENDPOINT, _ACCESS_KEY and
// _SECRET_KEY.
var upstreams = []string{"minio", "versitygw"}

// allEnvs returns the environment for every store scripts/test started. In
// CI every store must be there; elsewhere a test skips when none is.
func allEnvs(t *testing.T) []testEnv {
	t.Helper()
	kmsURL := os.Getenv("S3SEAL_TEST_KMS_ENDPOINT")
	var envs []testEnv
	var missing []string
	for _, name := range upstreams {
		prefix := "S3SEAL_TEST_" + strings.ToUpper(name) + "_"
		e := testEnv{name: name, kmsURL: kmsURL,
			storeURL: os.Getenv(prefix + "ENDPOINT"),
			storeAK:  os.Getenv(prefix + "ACCESS_KEY"), storeSK: os.Getenv(prefix + "SECRET_KEY")}
		if e.storeURL == "" {
			missing = append(missing, prefix+"ENDPOINT")
			continue
		}
		envs = append(envs, e)
	}
	if kmsURL == "" {
		missing = append(missing, "S3SEAL_TEST_KMS_ENDPOINT")
	}
	if os.Getenv("CI") != "" && len(missing) > 0 {
		t.Fatalf("%s must be set in CI (scripts/test sets them)", strings.Join(missing, ", "))
	}
	if kmsURL == "" || len(envs) == 0 {
		t.Skip("end-to-end tests need MinIO or versitygw, and local-kms: run scripts/test")
	}
	return envs
}

// forEachUpstream runs f as one subtest per store (t.Run("minio", ...),
// t.Run("versitygw", ...)), so every end-to-end test shows s3seal in front of
// both.
func forEachUpstream(t *testing.T, f func(t *testing.T, e testEnv)) {
	t.Helper()
	for _, e := range allEnvs(t) {
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// s3sealBinary builds cmd/s3seal once per test run, or returns
// S3SEAL_TEST_BINARY when that names an s3seal binary built already.
func s3sealBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("S3SEAL_TEST_BINARY"); p != "" {
			binPath = p
			return
		}
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
	env        []string // the configuration, without addresses and data directory
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

// startS3seal runs s3seal in front of e's store with the given KMS endpoint
// and CMK (a new one when alias is ""), plus extra environment. It is
// stopped with SIGTERM when the test ends.
func startS3seal(t *testing.T, e testEnv, kmsURL, alias string, extra ...string) *instance {
	t.Helper()
	if alias == "" {
		alias = newCMK(t, kmsURL)
	}
	in := &instance{
		URL: "http://" + freeAddr(t), MetricsURL: "http://" + freeAddr(t),
		AccessKey: "E2E" + strings.ToUpper(randHex(8)), SecretKey: randHex(20), KeyAlias: alias,
	}
	in.env = append(os.Environ(),
		"S3SEAL_ACCESS_KEY="+in.AccessKey, "S3SEAL_SECRET_KEY="+in.SecretKey,
		"S3SEAL_UPSTREAM_URL="+e.storeURL,
		"S3SEAL_UPSTREAM_ACCESS_KEY="+e.storeAK, "S3SEAL_UPSTREAM_SECRET_KEY="+e.storeSK,
		"S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID="+alias,
		"S3SEAL_KMS_ENDPOINT="+kmsURL, "S3SEAL_KMS_REGION="+region,
		"AWS_ACCESS_KEY_ID=e2e", "AWS_SECRET_ACCESS_KEY=e2e",
		"S3SEAL_LOG_LEVEL=debug",
	)
	in.env = append(in.env, extra...)
	for _, kv := range extra {
		if strings.HasPrefix(kv, "S3SEAL_TLS_CERT=") {
			in.URL = strings.Replace(in.URL, "http://", "https://", 1)
		}
	}
	t.Cleanup(func() { in.stop(t) })
	in.launch(t)
	return in
}

// startReplica runs a second s3seal process with the same configuration as
// in (store, KMS, CMK, client credential) on addresses of its own: a replica
// behind the same load balancer.
func startReplica(t *testing.T, in *instance) *instance {
	t.Helper()
	r := &instance{
		URL: "http://" + freeAddr(t), MetricsURL: "http://" + freeAddr(t),
		AccessKey: in.AccessKey, SecretKey: in.SecretKey, KeyAlias: in.KeyAlias,
		env: append([]string(nil), in.env...),
	}
	t.Cleanup(func() { r.stop(t) })
	r.launch(t)
	return r
}

// launch starts the process on in's addresses and waits until it is ready.
func (in *instance) launch(t *testing.T) {
	t.Helper()
	in.logs = &syncBuffer{}
	cmd := exec.Command(s3sealBinary(t))
	cmd.Env = append(append([]string(nil), in.env...),
		"S3SEAL_ADDR="+hostPort(in.URL), "S3SEAL_METRICS_ADDR="+hostPort(in.MetricsURL),
		"S3SEAL_DATA_DIR="+t.TempDir())
	cmd.Stdout, cmd.Stderr = in.logs, in.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(in.MetricsURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("s3seal not ready in 20 s; logs:\n%s", in.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hostPort(u string) string {
	return strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
}

// restart stops the process with SIGTERM and starts it again with the same
// configuration on the same addresses; it keeps no state between the two
// (a fresh data directory, an empty data-key cache).
func (in *instance) restart(t *testing.T) {
	t.Helper()
	in.stopWith(t, syscall.SIGTERM)
	in.launch(t)
}

// pid is the process id of the running s3seal.
func (in *instance) pid() int { return in.cmd.Process.Pid }

func (in *instance) stop(t *testing.T) { in.stopWith(t, os.Interrupt) }

func (in *instance) stopWith(t *testing.T, sig os.Signal) {
	if in.cmd == nil || in.cmd.ProcessState != nil {
		return
	}
	in.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- in.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		in.cmd.Process.Kill()
		<-done
		t.Errorf("s3seal did not stop on %v within 15 s", sig)
	}
	if t.Failed() || os.Getenv("S3SEAL_TEST_SHOW_LOGS") == "1" {
		t.Logf("s3seal logs:\n%s", in.logs)
	}
}

// store is a minio-go client straight to e's store: what the store holds.
func store(t *testing.T, e testEnv) *minio.Client {
	t.Helper()
	u, err := url.Parse(e.storeURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(e.storeAK, e.storeSK, ""), Region: region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newBucket makes a bucket directly in the store (bucket operations pass
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
