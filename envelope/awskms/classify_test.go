package awskms

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/envelope/kms"
)

// testCreds are the static credentials the tests sign with.
var testCreds = config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-key", ""))

// loadAt is a Service for the KMS at endpoint, signing with testCreds,
// trying each call once.
func loadAt(t *testing.T, endpoint string, opts ...func(*config.LoadOptions) error) *Service {
	t.Helper()
	opts = append([]func(*config.LoadOptions) error{testCreds, config.WithRetryMaxAttempts(1)}, opts...)
	a, err := Load(t.Context(), Config{Region: "eu-west-1", Endpoint: endpoint}, opts...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return a
}

// closedAddr is an address nothing listens on any more.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return ln.Addr().String()
}

// stalledAddr accepts connections and never answers on them.
func stalledAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// caBundle is the PEM of srv's certificate, for AWS_CA_BUNDLE.
func caBundle(srv *httptest.Server) io.Reader {
	return bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// TestTransportFailures: a KMS that cannot be reached says which endpoint
// and how, and what to do about it, through the real SDK and network.
func TestTransportFailures(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	plainSrv := httptest.NewServer(http.NotFoundHandler())
	defer plainSrv.Close()
	tlsPort := tlsSrv.Listener.Addr().(*net.TCPAddr).Port
	refused, stalled := closedAddr(t), stalledAddr(t)
	localhost := fmt.Sprintf("https://localhost:%d", tlsPort)
	cases := []struct {
		name     string
		endpoint string
		opts     []func(*config.LoadOptions) error
		timeout  time.Duration
		reason   kms.Reason
		want     string
	}{
		{"refused", "http://" + refused, nil, 0, kms.ReasonRefused,
			"kms DescribeKey: key service http://" + refused + ": connection refused; nothing listens at S3SEAL_KMS_ENDPOINT=http://" + refused + ": start the KMS, or correct S3SEAL_KMS_ENDPOINT"},
		{"timeout", "http://" + stalled, nil, 200 * time.Millisecond, kms.ReasonTimeout,
			"kms DescribeKey: key service http://" + stalled + ": timeout: no answer in the time allowed (context deadline exceeded); check that this host reaches http://" + stalled + " (firewall, HTTPS_PROXY); it is S3SEAL_KMS_ENDPOINT"},
		{"unknown authority", tlsSrv.URL, nil, 0, kms.ReasonTLS,
			"kms DescribeKey: key service " + tlsSrv.URL + ": TLS: certificate signed by unknown authority; set AWS_CA_BUNDLE to the PEM file of the CA that signed the certificate of " + tlsSrv.URL},
		{"hostname mismatch", localhost, []func(*config.LoadOptions) error{config.WithCustomCABundle(caBundle(tlsSrv))}, 0, kms.ReasonTLS,
			"kms DescribeKey: key service " + localhost + ": TLS: certificate is valid for example.com, *.example.com, not localhost; S3SEAL_KMS_ENDPOINT must name a host the KMS's certificate is valid for"},
		{"not TLS", strings.Replace(plainSrv.URL, "http:", "https:", 1), nil, 0, kms.ReasonTLS,
			"kms DescribeKey: key service " + strings.Replace(plainSrv.URL, "http:", "https:", 1) + ": TLS: handshake failed: the endpoint does not speak TLS; use an http:// URL in S3SEAL_KMS_ENDPOINT if the KMS serves plain HTTP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := loadAt(t, tc.endpoint, tc.opts...)
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			_, err := a.KeyStatus(ctx, "alias/x")
			var ke *kms.KMSError
			if !errors.As(err, &ke) || !errors.Is(err, kms.ErrKMSUnavailable) || ke.Reason != tc.reason {
				t.Fatalf("got %v, want unavailable, %s", err, tc.reason)
			}
			if err.Error() != tc.want {
				t.Errorf("got  %q\nwant %q", err, tc.want)
			}
		})
	}
}

// TestRegionalEndpoint: without S3SEAL_KMS_ENDPOINT errors name AWS KMS's
// regional endpoint and the region's setting.
func TestRegionalEndpoint(t *testing.T) {
	a, err := Load(t.Context(), Config{Region: "eu-west-1"}, testCreds)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.URL(), "https://kms.eu-west-1.amazonaws.com"; got != want {
		t.Errorf("URL %q, want %q", got, want)
	}
	e := a.transportError("GenerateDataKey", &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "kms.eu-west-1.amazonaws.com", IsNotFound: true}}, []string{"alias/x"})
	const want = "kms GenerateDataKey: key service https://kms.eu-west-1.amazonaws.com: DNS name not found: lookup kms.eu-west-1.amazonaws.com: no such host; " +
		"check that S3SEAL_KMS_REGION=eu-west-1 is an AWS region, and this host's DNS"
	if e.Error() != want {
		t.Errorf("got  %q\nwant %q", e, want)
	}
}

// fakeKMSServer answers each operation (X-Amz-Target TrentService.OP) with
// the error code in codes, as the KMS JSON protocol does, with a message
// that must never show; DescribeKey otherwise with a key in state.
func fakeKMSServer(t *testing.T, status int, codes map[string]string, state string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if code, ok := codes[op]; ok {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"__type":%q,"message":%q}`, code, secret)
			return
		}
		fmt.Fprintf(w, `{"KeyMetadata":{"KeyId":"k1","Arn":"arn:aws:kms:eu-west-1:111122223333:key/k1","KeyState":%q}}`, state)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestAnswerFailures: each error code the KMS answers reads as its reason,
// names the CMK, and says the fix where s3seal knows it.
func TestAnswerFailures(t *testing.T) {
	// The source only: the access key id is not for /readyz.
	const who = "the access key from StaticCredentials"
	cases := []struct {
		name, op, code string
		status         int
		state          string // DescribeKey's answer
		reason         kms.Reason
		want           string // after "kms OP: key service URL: "
	}{
		{"denied", "GenerateDataKey", "AccessDeniedException", 400, "Enabled", kms.ReasonDenied,
			"access denied for CMK alias/x (AccessDeniedException); grant " + who + " kms:GenerateDataKey on alias/x in the key policy or an IAM policy (s3seal always sends an encryption context), or give s3seal other credentials"},
		{"unknown access key", "GenerateDataKey", "UnrecognizedClientException", 400, "Enabled", kms.ReasonDenied,
			"access denied for CMK alias/x (UnrecognizedClientException); the KMS does not know " + who + ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to credentials of the account of the KMS at URL"},
		{"bad signature", "Decrypt", "InvalidSignatureException", 400, "Enabled", kms.ReasonDenied,
			"access denied for CMK alias/x (InvalidSignatureException); the KMS rejects the signature of " + who + ": check AWS_SECRET_ACCESS_KEY (it must be AWS_ACCESS_KEY_ID's) and this host's clock"},
		{"throttled", "GenerateDataKey", "ThrottlingException", 400, "Enabled", kms.ReasonThrottled,
			"throttled (ThrottlingException); the KMS limits s3seal's request rate: raise the KMS request quota, or make fewer calls with bucket keys (S3SEAL_BUCKET_KEY) and the data-key cache (S3SEAL_DATAKEY_CACHE_SIZE)"},
		{"429", "GenerateDataKey", "SlowDownPlease", 429, "Enabled", kms.ReasonThrottled,
			"throttled (SlowDownPlease); the KMS limits s3seal's request rate: raise the KMS request quota, or make fewer calls with bucket keys (S3SEAL_BUCKET_KEY) and the data-key cache (S3SEAL_DATAKEY_CACHE_SIZE)"},
		// ThrottlingException is the request rate; LimitExceededException a
		// resource quota, which a higher rate quota does not fix.
		{"quota", "GenerateDataKey", "LimitExceededException", 400, "Enabled", kms.ReasonQuota,
			"KMS resource quota exceeded (LimitExceededException); the account has reached an AWS KMS resource quota (keys, aliases, grants per key): remove ones no longer used, or ask for a higher quota in Service Quotas"},
		{"asymmetric key, GenerateDataKey", "GenerateDataKey", "InvalidKeyUsageException", 400, "Enabled", kms.ReasonKeyUsage,
			"CMK alias/x cannot be used for ENCRYPT_DECRYPT of symmetric data keys (InvalidKeyUsageException); S3SEAL_KMS_KEY_ID must name a symmetric encryption key (KeySpec SYMMETRIC_DEFAULT)"},
		{"asymmetric key, Decrypt", "Decrypt", "InvalidKeyUsageException", 400, "Enabled", kms.ReasonKeyUsage,
			"CMK alias/x cannot be used for ENCRYPT_DECRYPT of symmetric data keys (InvalidKeyUsageException); no data key s3seal wrote can be under it: " +
				"the object's metadata names the wrong CMK, or S3SEAL_KMS_DECRYPT_KEY_IDS lists a key that is not a symmetric encryption key (KeySpec SYMMETRIC_DEFAULT)"},
		{"disabled", "GenerateDataKey", "DisabledException", 400, "Disabled", kms.ReasonDisabled,
			"CMK alias/x is disabled (DisabledException)"},
		// local-kms's answer for Decrypt under a disabled key.
		{"disabled, as local-kms says it", "Decrypt", "AccessDeniedException", 400, "Disabled", kms.ReasonDisabled,
			"CMK alias/x is disabled (AccessDeniedException)"},
		{"not found", "DescribeKey", "NotFoundException", 400, "", kms.ReasonNotFound,
			"CMK alias/x not found (NotFoundException)"},
		{"pending deletion", "GenerateDataKey", "KMSInvalidStateException", 400, "PendingDeletion", kms.ReasonPendingDeletion,
			"CMK alias/x is pending deletion or in another state that cannot be used (KMSInvalidStateException)"},
		{"other", "Decrypt", "IncorrectKeyException", 400, "Enabled", "",
			"invalid ciphertext or encryption context (IncorrectKeyException)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeKMSServer(t, tc.status, map[string]string{tc.op: tc.code}, tc.state)
			a := loadAt(t, srv.URL)
			var err error
			switch tc.op {
			case "GenerateDataKey":
				_, err = a.GenerateDataKey(t.Context(), "alias/x", nil)
			case "Decrypt":
				_, err = a.Decrypt(t.Context(), "alias/x", []byte("blob"), nil)
			case "DescribeKey":
				_, err = a.KeyStatus(t.Context(), "alias/x")
			}
			var ke *kms.KMSError
			if !errors.As(err, &ke) || ke.Reason != tc.reason {
				t.Fatalf("got %v, want reason %q", err, tc.reason)
			}
			want := "kms " + tc.op + ": key service " + srv.URL + ": " + strings.ReplaceAll(tc.want, "at URL", "at "+srv.URL)
			if err.Error() != want {
				t.Errorf("got  %q\nwant %q", err, want)
			}
			if strings.Contains(err.Error(), "AKIDTEST") {
				t.Errorf("%q names the access key id", err)
			}
		})
	}
}

// withoutCredentials clears every credential source but EC2 instance
// metadata, which it points at imds.
func withoutCredentials(t *testing.T, imds string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": dir + "/config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
		"AWS_EC2_METADATA_DISABLED": "", "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds,
	} {
		t.Setenv(k, v)
	}
}

// TestNoCredentials: with no credentials anywhere the error says what to
// set, and the SDK's IMDSv1 warning on the way is a JSON log record, not
// a plain line on stderr.
func TestNoCredentials(t *testing.T) {
	imds := httptest.NewServer(http.NotFoundHandler()) // no token, no role
	defer imds.Close()
	withoutCredentials(t, imds.URL)
	stderr := captureStderr(t)
	var log bytes.Buffer
	logger := newJSONLogger(&log)
	srv := fakeKMSServer(t, 400, nil, "Enabled")
	a, err := Load(t.Context(), Config{Region: "eu-west-1", Endpoint: srv.URL, Logger: logger}, config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.KeyStatus(t.Context(), "alias/x")
	var ke *kms.KMSError
	if !errors.As(err, &ke) || ke.Reason != kms.ReasonNoCredentials || !errors.Is(err, kms.ErrKMSUnavailable) {
		t.Fatalf("got %v, want no credentials", err)
	}
	wantStart := "kms DescribeKey: key service " + srv.URL + ": no credentials: "
	wantEnd := "; " + noCredentialsFix
	if s := err.Error(); !strings.HasPrefix(s, wantStart) || !strings.HasSuffix(s, wantEnd) {
		t.Errorf("got %q, want %q...%q", s, wantStart, wantEnd)
	}
	if out := stderr(); out != "" {
		t.Errorf("the SDK wrote to stderr: %q", out)
	}
	rec := findRecord(t, &log, "falling back to IMDSv1")
	if rec["level"] != "WARN" || rec["component"] != "aws-sdk" {
		t.Errorf("IMDS fallback record %v, want level WARN, component aws-sdk", rec)
	}
}

// captureStderr points os.Stderr at a file until the test ends; the
// returned function reads what was written so far.
func captureStderr(t *testing.T) func() string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = f
	t.Cleanup(func() { os.Stderr = old; f.Close() })
	return func() string {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// TestCredentialProcessSecretNeverShown: a credential_process whose output
// the SDK cannot parse (a wrong Expiration suffices) gets that output,
// secret access key included, quoted in the SDK's error; s3seal's error
// names the source and what to check, and keeps none of it.
func TestCredentialProcessSecretNeverShown(t *testing.T) {
	out := `{"Version":1,"AccessKeyId":"AKIAEXAMPLE","SecretAccessKey":"TOPSECRETVALUE","Expiration":"tomorrow"}`
	a := processService(t, "echo '"+out+"'", "p")
	_, err := a.KeyStatus(t.Context(), "alias/x")
	var ke *kms.KMSError
	if !errors.As(err, &ke) || ke.Reason != kms.ReasonCredentialSource || !errors.Is(err, kms.ErrKMSUnavailable) {
		t.Fatalf("got %v, want a credential source failure", err)
	}
	for _, s := range []string{"TOPSECRETVALUE", "AKIAEXAMPLE", "tomorrow", "no credentials"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("%q shows %q", err, s)
		}
	}
	const want = "kms DescribeKey: key service http://127.0.0.1:1: AWS credentials failed: " +
		"the credential_process of profile p failed or printed something the SDK could not parse; " +
		"run it by hand to see its output (s3seal discards its stderr): it must exit 0 and print JSON with Version 1, AccessKeyId, SecretAccessKey and, if any, an RFC 3339 Expiration"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
}

// TestCredentialFailures: each source that fails is named with what to
// check, by the type of its failure, never by its text.
func TestCredentialFailures(t *testing.T) {
	cases := []struct {
		name string
		err  error
		none bool
		want string
	}{
		{"process", &processcreds.ProviderError{Err: errors.New(secret)}, false, "the credential_process of profile p failed"},
		{"sso", &smithy.OperationError{ServiceID: "SSO", Err: errors.New(secret)}, false, "AWS SSO credentials of profile p failed"},
		{"assume role", &smithy.OperationError{ServiceID: "STS", Err: errors.New(secret)}, false, "assuming the IAM role failed (STS)"},
		{"imds", &smithy.OperationError{ServiceID: "ec2imds", Err: errors.New(secret)}, true, "none in the environment"},
		{"other", errors.New(secret), false, "the AWS SDK's credential chain failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &credentialSource{provider: failingProvider{tc.err}, profile: "p", processProfile: "p"}
			_, err := c.Retrieve(t.Context())
			var ce *credentialsError
			if !errors.As(err, &ce) || ce.none != tc.none || !strings.HasPrefix(ce.Error(), tc.want) || ce.fix == "" {
				t.Errorf("got %#v, want %q, none %v", ce, tc.want, tc.none)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(ce.fix, secret) {
				t.Errorf("%q shows the SDK's text", err)
			}
		})
	}
}

type failingProvider struct{ err error }

func (f failingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, f.err
}

// hangingProcess is a Service whose profile's credential_process never
// answers (one waiting for an MFA code, say).
func hangingProcess(t *testing.T) *Service {
	t.Helper()
	// exec: the shell's child would otherwise keep stdout open after the kill.
	return processService(t, "exec sleep 5", "p")
}

// processService is a Service whose credentials come from a
// credential_process running script (a shell script's body) in profile p,
// loaded with profile (p, or role: a role assumed with p as its
// source_profile). No retries; the KMS endpoint answers nothing.
func processService(t *testing.T, script, profile string) *Service {
	t.Helper()
	withoutCredentials(t, "http://127.0.0.1:1")
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/creds.sh", []byte("#!/bin/sh\n"+script+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := "[profile role]\nrole_arn = arn:aws:iam::111122223333:role/r\nsource_profile = p\n" +
		"[profile p]\ncredential_process = " + dir + "/creds.sh\n"
	if err := os.WriteFile(dir+"/config", []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Load(t.Context(), Config{Region: "us-east-1", Endpoint: "http://127.0.0.1:1"},
		config.WithSharedConfigFiles([]string{dir + "/config"}), config.WithSharedConfigProfile(profile), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCredentialProcessHangs: a credential_process that does not answer
// in time is named as such, not reported as a KMS out of reach, whether
// the caller's deadline or S3SEAL_KMS_TIMEOUT cut it.
func TestCredentialProcessHangs(t *testing.T) {
	const wantStart = "kms Decrypt: key service http://127.0.0.1:1: AWS credentials failed: " +
		"the credential_process of profile p failed or printed something the SDK could not parse (no answer within the time allowed); run it by hand"
	for _, tc := range []struct {
		name string
		ks   func(a *Service) kms.KeyService
	}{
		{"caller's deadline", func(a *Service) kms.KeyService { return a }},
		{"S3SEAL_KMS_TIMEOUT", func(a *Service) kms.KeyService { return kms.WithTimeout(a, 300*time.Millisecond) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := tc.ks(hangingProcess(t))
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			_, err := ks.Decrypt(ctx, "alias/x", []byte("blob"), nil)
			var ke *kms.KMSError
			if !errors.As(err, &ke) || ke.Reason != kms.ReasonCredentialSource || !errors.Is(err, kms.ErrKMSUnavailable) {
				t.Fatalf("got %v, want a credential source failure", err)
			}
			if !strings.HasPrefix(err.Error(), wantStart) {
				t.Errorf("got  %q\nwant %q...", err, wantStart)
			}
		})
	}
}

// TestCredentialProcessProfile: a failing credential_process is named by
// the profile that holds it, the source_profile of a role included.
func TestCredentialProcessProfile(t *testing.T) {
	for _, tc := range []struct{ profile, want string }{
		{"role", "the credential_process of profile p (the source_profile of profile role) failed"},
		{"p", "the credential_process of profile p failed"},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			_, err := processService(t, "exit 1", tc.profile).KeyStatus(t.Context(), "alias/x")
			var ke *kms.KMSError
			if !errors.As(err, &ke) || ke.Reason != kms.ReasonCredentialSource || !strings.Contains(err.Error(), "AWS credentials failed: "+tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCredentialProcessStderr: what a credential_process writes to stderr
// (an MFA prompt, a debug dump with secrets) never reaches s3seal's
// stderr, whether the profile runs it or a role's source_profile does.
func TestCredentialProcessStderr(t *testing.T) {
	for _, profile := range []string{"p", "role"} {
		t.Run(profile, func(t *testing.T) {
			stderr := captureStderr(t)
			_, err := processService(t, "echo LEAK >&2\nexit 1", profile).KeyStatus(t.Context(), "alias/x")
			var ke *kms.KMSError
			if !errors.As(err, &ke) || ke.Reason != kms.ReasonCredentialSource {
				t.Fatalf("got %v, want a credential source failure", err)
			}
			if out := stderr(); strings.Contains(out, "LEAK") {
				t.Errorf("the credential_process's stderr reached s3seal's: %q", out)
			}
		})
	}
}
