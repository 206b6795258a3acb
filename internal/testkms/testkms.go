package testkms

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// EndpointEnv names the variable in which scripts/test passes the address of
// the server it started (a URL, or host:port).
const EndpointEnv = "S3SEAL_TEST_KMS_ENDPOINT"

// Endpoint returns the URL of a KMS-API server for t: the one EndpointEnv
// names, or else one started for t alone (see Start). Tests that stop the
// KMS must use Start: the shared server is not theirs to stop.
func Endpoint(t testing.TB) string {
	t.Helper()
	if ep := os.Getenv(EndpointEnv); ep != "" {
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		return ep
	}
	endpoint, _ := Start(t)
	return endpoint
}

// Start serves a KMS-API server of t's own, over a fresh database, on
// 127.0.0.1 at a free port. It returns the endpoint URL and a function that
// stops the server; t's cleanup calls it too, and only the first call
// counts.
func Start(t testing.TB) (endpoint string, stop func()) {
	t.Helper()
	endpoint, stopServer, err := start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := stopServer(); err != nil {
				t.Errorf("stopping the test KMS: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return endpoint, stop
}

// Client is a KMS client for endpoint with dummy credentials, which
// local-kms does not check. It goes through config.LoadDefaultConfig, not a
// hand-built client, so AWS_CA_BUNDLE in the environment is honoured the way
// production code honours it.
func Client(t testing.TB, endpoint string) *kms.Client {
	t.Helper()
	return ClientAs(t, endpoint, "test", "test")
}

// ClientAs is Client signing with a credential of its own, for a server
// that checks signatures (s3seal's KMS API).
func ClientAs(t testing.TB, endpoint, accessKey, secretKey string) *kms.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")))
	if err != nil {
		t.Fatal(err)
	}
	return kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// CreateKey creates a symmetric CMK on the server at endpoint and returns
// its key id.
func CreateKey(t testing.TB, endpoint string) (keyID string) {
	t.Helper()
	out, err := Client(t, endpoint).CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("s3seal test")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}
