package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/adversary"
	"github.com/s3seal/s3seal/sigv4"
)

const (
	clientAK     = "CLIENTAK"
	clientSecret = "client-secret-key"
	testBucket   = "bkt"
)

// env is a proxy in front of a fake store, with a real keyring and a real
// SigV4 verifier, and an AWS SDK client pointed at the proxy. Between proxy
// and store sits an adversary.Store, honest until a test tells it to lie.
type env struct {
	store   *fakeStore
	liar    *adversary.Store
	proxy   *Proxy
	srv     *httptest.Server
	client  *s3.Client
	keyring *keyring.Keyring
	keyID   string
	// served receives once per request the proxy finished handling.
	served chan struct{}
	// panics counts handler panics other than the deliberate abort of a
	// response already under way.
	panics atomic.Int32
}

type envOption func(*Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	store, storeSrv := newFakeStore(t)
	storeURL, _ := url.Parse(storeSrv.URL)
	liar, err := adversary.New(storeURL, upstreamAK, upstreamSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	liarSrv := httptest.NewServer(liar)
	t.Cleanup(liarSrv.Close)
	store.buckets[testBucket] = true
	kr, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := kr.CreateKey("proxy tests")
	if err != nil {
		t.Fatal(err)
	}
	up, _ := url.Parse(liarSrv.URL)
	cfg := Config{
		Upstream:          up,
		UpstreamAccessKey: upstreamAK, UpstreamSecretKey: upstreamSecret,
		Auth:   &sigv4.Verifier{Credentials: staticCreds{clientAK: clientSecret}, Region: "us-east-1"},
		Keys:   kms.ObjectKeys{Keys: kms.NewCache(kr, 100, time.Minute), KeyID: key.ID, Allowed: kms.NewAllowList(kr, key.ID)},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// The fake store ends multipart ETags with -N, as S3 does; tests of
		// stores that do not say so themselves.
		StoreMarksMultipartETags: true,
		// S3's 5 MiB minimum part would make every multipart test move
		// megabytes; TestEntityTooSmall checks the rule itself.
		MinPartSize: 64 << 10,
	}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, liar: liar, proxy: p, keyring: kr, keyID: key.ID, served: make(chan struct{}, 100)}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { e.served <- struct{}{} }()
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					e.panics.Add(1)
				}
				panic(v)
			}
		}()
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.client = newClient(t, e.srv.URL, clientSecret)
	return e
}

func newClient(t testing.TB, endpoint, secret string, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	return newClientFor(t, endpoint, clientAK, secret, optFns...)
}

// newClientFor is newClient signing as accessKey.
func newClientFor(t testing.TB, endpoint, accessKey, secret string, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secret, "")),
	)
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.Retryer = aws.NopRetryer{} // tests look at single answers
		o.DisableLogOutputChecksumValidationSkipped = true
	}}, optFns...)...)
}

// put stores data through the proxy.
func (e *env) put(t testing.TB, key string, data []byte, meta map[string]string) *s3.PutObjectOutput {
	t.Helper()
	out, err := e.client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String(key), Body: bytes.NewReader(data), Metadata: meta,
	})
	if err != nil {
		t.Fatalf("PutObject %q (%d bytes): %v", key, len(data), err)
	}
	return out
}

// get reads key through the proxy.
func (e *env) get(t testing.TB, key string) ([]byte, *s3.GetObjectOutput, error) {
	t.Helper()
	out, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	return data, out, err
}

// signedRequest builds a request to the proxy signed by the client
// credential with UNSIGNED-PAYLOAD (or payloadHash when given).
func (e *env) signedRequest(t testing.TB, method, path string, body io.Reader, size int64, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	for k, v := range header {
		req.Header[k] = v
	}
	sign(t, req)
	return req
}

// sign signs req with the client credential, for its Host.
func sign(t testing.TB, req *http.Request) {
	t.Helper()
	hash := req.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		hash = "UNSIGNED-PAYLOAD"
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientAK, SecretAccessKey: clientSecret},
		req, hash, "s3", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
}

// drain waits until the proxy has finished the requests so far.
func (e *env) drain(t testing.TB, n int) {
	t.Helper()
	for range n {
		select {
		case <-e.served:
		case <-time.After(10 * time.Second):
			t.Fatal("proxy did not finish a request")
		}
	}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// apiError returns the S3 error code and HTTP status of an SDK error.
func apiError(t testing.TB, err error) (string, int) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got none")
	}
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re interface{ HTTPStatusCode() int }
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

func storedPuts(s *fakeStore) int {
	n := 0
	for _, r := range s.recorded() {
		if r.Method == http.MethodPut && strings.Count(strings.TrimPrefix(r.Path, "/"), "/") >= 1 {
			n++
		}
	}
	return n
}
