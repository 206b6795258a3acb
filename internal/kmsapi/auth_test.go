package kmsapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/internal/kmsapi"
	"github.com/s3seal/s3seal/sigv4"
)

func TestSignatureErrors(t *testing.T) {
	ts := newTestServer(t)
	for _, tt := range []struct {
		name, accessKey, secret, code string
	}{
		{"unknown access key", "AKIDUNKNOWN", testSecret, "UnrecognizedClientException"},
		{"wrong secret", testAccessKey, "not-the-secret", "InvalidSignatureException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newClient(t, ts.endpoint, tt.accessKey, tt.secret).ListKeys(t.Context(), &awskms.ListKeysInput{})
			wantCode(t, "ListKeys", err, tt.code, 400)
		})
	}
	if calls := ts.authz.take(); len(calls) != 0 {
		t.Fatalf("unauthenticated requests reached the Authorizer: %v", calls)
	}
}

// TestRawRequests sends requests no SDK would, to check what the server
// answers before and around authentication.
func TestRawRequests(t *testing.T) {
	ts := newTestServer(t)
	body := []byte(`{}`)
	signed := signRequest(t, testAccessKey, testSecret, body, time.Now())
	tests := []struct {
		name, method, target string
		body                 []byte
		sign                 func(*http.Request)
		status               int
		errType              string
	}{
		{"ok", http.MethodPost, "ListKeys", body, signed, 200, ""},
		{"anonymous", http.MethodPost, "ListKeys", body, nil, 400, "MissingAuthenticationTokenException"},
		{"presigned", http.MethodPost, "ListKeys", body, func(r *http.Request) {
			r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
		}, 400, "IncompleteSignatureException"},
		{"unknown operation", http.MethodPost, "Bogus", body, signed, 400, "UnknownOperationException"},
		{"no target prefix", http.MethodPost, "", body, func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "ListKeys")
			signed(r)
		}, 400, "UnknownOperationException"},
		{"changed body", http.MethodPost, "ListKeys", []byte(`{"Limit":1}`), signed, 400, "InvalidSignatureException"},
		{"stale signature", http.MethodPost, "ListKeys", body, signRequest(t, testAccessKey, testSecret, body, time.Now().Add(-time.Hour)),
			400, "InvalidSignatureException"},
		{"GET", http.MethodGet, "ListKeys", nil, signed, 405, "UnknownOperationException"},
		{"too large", http.MethodPost, "ListKeys", bytes.Repeat([]byte(" "), 1<<20+1), nil, 413, "ValidationException"},
		{"bad JSON", http.MethodPost, "ListKeys", []byte(`{"Limit":"x"}`),
			signRequest(t, testAccessKey, testSecret, []byte(`{"Limit":"x"}`), time.Now()), 400, "SerializationException"},
		{"trailing data", http.MethodPost, "ListKeys", []byte(`{} {}`),
			signRequest(t, testAccessKey, testSecret, []byte(`{} {}`), time.Now()), 400, "SerializationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.rawRequest(t, tt.method, tt.target, tt.body, tt.sign)
			checkResponse(t, resp, tt.status, tt.errType)
		})
	}
}

// checkResponse checks an answer's status and, for an error, that it is
// of errType both in the body and in X-Amzn-ErrorType, as AWS sends it.
func checkResponse(t *testing.T, resp *http.Response, status int, errType string) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Fatalf("Content-Type %q", ct)
	}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	if e.Type != errType || resp.Header.Get("X-Amzn-ErrorType") != errType {
		t.Fatalf("error %q (header %q): %s, want %q", e.Type, resp.Header.Get("X-Amzn-ErrorType"), e.Message, errType)
	}
}

func TestNewConfig(t *testing.T) {
	ring, err := keyring.Open(t.TempDir() + "/keyring.json")
	if err != nil {
		t.Fatal(err)
	}
	auth := &sigv4.Verifier{Credentials: sigv4.StaticCredentials{}, Service: "kms"}
	authz := &testAuthorizer{}
	tests := []struct {
		name string
		cfg  kmsapi.Config
		ok   bool
	}{
		{"complete", kmsapi.Config{Keyring: ring, Auth: auth, Authorizer: authz}, true},
		{"region and account", kmsapi.Config{Keyring: ring, Auth: auth, Authorizer: authz, Region: "eu-west-3", Account: "123456789012"}, true},
		{"no keyring", kmsapi.Config{Auth: auth, Authorizer: authz}, false},
		{"no authenticator", kmsapi.Config{Keyring: ring, Authorizer: authz}, false},
		{"no authorizer", kmsapi.Config{Keyring: ring, Auth: auth}, false},
		{"bad account", kmsapi.Config{Keyring: ring, Auth: auth, Authorizer: authz, Account: "12"}, false},
		{"bad region", kmsapi.Config{Keyring: ring, Auth: auth, Authorizer: authz, Region: "EU:WEST"}, false},
	}
	for _, tt := range tests {
		if _, err := kmsapi.New(tt.cfg); (err == nil) != tt.ok {
			t.Errorf("%s: New error %v", tt.name, err)
		}
	}
}

// A KMS request signed with UNSIGNED-PAYLOAD would leave its body covered
// by nothing: it is refused, whatever body comes with the signature.
func TestUnsignedPayloadRefused(t *testing.T) {
	ts := newTestServer(t)
	id := ts.createKey(t)
	swapped := []byte(`{"KeyId":"` + id + `","Plaintext":"ZXZpbCBib2R5"}`)
	sign := func(req *http.Request) {
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, "UNSIGNED-PAYLOAD", "kms", testRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp := ts.rawRequest(t, http.MethodPost, "Encrypt", swapped, sign)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "InvalidSignatureException") {
		t.Errorf("UNSIGNED-PAYLOAD on the KMS API: %d %.200s", resp.StatusCode, b)
	}
}
