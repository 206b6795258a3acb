package kmsapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/internal/kmsapi"
	"github.com/s3seal/s3seal/sigv4"
)

const (
	testAccessKey = "AKIDS3SEALTEST"
	testSecret    = "s3seal-test-secret"
	testRegion    = "us-east-1"
	testAccount   = "000000000000"
)

// authCall is one question the server asked the Authorizer.
type authCall struct {
	accessKey, action, keyID string
}

// testAuthorizer records every question and denies those deny picks.
type testAuthorizer struct {
	mu    sync.Mutex
	calls []authCall
	deny  func(action, keyID string) bool
}

func (a *testAuthorizer) Authorize(_ context.Context, accessKey, action, keyID string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, authCall{accessKey, action, keyID})
	if a.deny != nil && a.deny(action, keyID) {
		return "tester", errors.New("denied by the test")
	}
	return "tester", nil
}

// take returns the questions asked since the last take, and forgets them.
func (a *testAuthorizer) take() []authCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.calls
	a.calls = nil
	return c
}

func (a *testAuthorizer) setDeny(deny func(action, keyID string) bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.deny = deny
}

// syncBuffer is a log destination safe for the server's goroutines.
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

// testServer is a KMS API server over a fresh keyring, on 127.0.0.1.
type testServer struct {
	endpoint string
	ring     *keyring.Keyring
	ringPath string
	authz    *testAuthorizer
	client   *awskms.Client
	log      *syncBuffer

	mu       sync.Mutex
	changed  int
	observed []string // "op result"
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{ringPath: filepath.Join(t.TempDir(), "keyring.json"), authz: &testAuthorizer{}, log: &syncBuffer{}}
	ring, err := keyring.Open(ts.ringPath)
	if err != nil {
		t.Fatal(err)
	}
	ts.ring = ring
	h, err := kmsapi.New(kmsapi.Config{
		Keyring:    ring,
		Auth:       &sigv4.Verifier{Credentials: sigv4.StaticCredentials{testAccessKey: testSecret}, Service: "kms"},
		Authorizer: ts.authz,
		Changed:    func() { ts.mu.Lock(); ts.changed++; ts.mu.Unlock() },
		Observer: func(op, result string, _ time.Duration) {
			ts.mu.Lock()
			ts.observed = append(ts.observed, op+" "+result)
			ts.mu.Unlock()
		},
		Logger: slog.New(slog.NewTextHandler(ts.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	ts.endpoint = srv.URL
	ts.client = newClient(t, ts.endpoint, testAccessKey, testSecret)
	return ts
}

// newClient is an SDK client for endpoint. It goes through
// config.LoadDefaultConfig, as production code does, so that
// AWS_CA_BUNDLE in the environment is honoured.
func newClient(t *testing.T, endpoint, accessKey, secret string) *awskms.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(testRegion), config.WithRetryMaxAttempts(1),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secret, "")))
	if err != nil {
		t.Fatal(err)
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

func (ts *testServer) changes() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.changed
}

func (ts *testServer) arn(id string) string {
	return "arn:aws:kms:" + testRegion + ":" + testAccount + ":key/" + id
}

// createKey makes a key through the API and returns its id.
func (ts *testServer) createKey(t *testing.T) string {
	t.Helper()
	out, err := ts.client.CreateKey(t.Context(), &awskms.CreateKeyInput{Description: aws.String("kmsapi test")})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// wantCode fails unless err is an API error of code (and, if status is
// not zero, of that HTTP status).
func wantCode(t *testing.T, what string, err error, code string, status int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: error %v, want %s", what, err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("%s: error code %s (%v), want %s", what, ae.ErrorCode(), err, code)
	}
	var re *awshttp.ResponseError
	if status != 0 && (!errors.As(err, &re) || re.HTTPStatusCode() != status) {
		t.Fatalf("%s: error %v, want HTTP status %d", what, err, status)
	}
}

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// noLeak fails if s holds any of secrets, raw or in base64 or hex.
func noLeak(t *testing.T, what, s string, secrets ...[]byte) {
	t.Helper()
	for _, secret := range secrets {
		for _, form := range encodings(secret) {
			if len(form) >= 8 && strings.Contains(s, form) {
				t.Fatalf("%s carries a secret: %q", what, s)
			}
		}
	}
}

func encodings(b []byte) []string {
	forms := []string{string(b), fmt.Sprintf("%x", b), base64.StdEncoding.EncodeToString(b)}
	return slices.DeleteFunc(forms, func(s string) bool { return s == "" })
}

// signRequest signs req as the SDK signs KMS requests: no
// X-Amz-Content-Sha256 header, the body's hash in the signature only.
func signRequest(t *testing.T, accessKey, secret string, body []byte, at time.Time) func(*http.Request) {
	return func(req *http.Request) {
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "kms", testRegion, at); err != nil {
			t.Fatal(err)
		}
	}
}

// rawRequest sends body to the server as a KMS request for target, signed
// by sign (or not at all when sign is nil).
func (ts *testServer) rawRequest(t *testing.T, method, target string, body []byte, sign func(*http.Request)) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ts.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", "TrentService."+target)
	}
	if sign != nil {
		sign(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
