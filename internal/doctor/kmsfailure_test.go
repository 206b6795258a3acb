package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3seal/s3seal/envelope/awskms"
	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/internal/testkms"
)

// awsAt is the AWS KMS client serve would use for the KMS at endpoint.
func awsAt(t *testing.T, endpoint string) KMS {
	t.Helper()
	svc, err := awskms.Load(t.Context(), awskms.Config{Region: testkms.Region, Endpoint: endpoint},
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return KMS{Keys: svc, Status: svc, Resolver: svc, KeyID: "alias/s3seal-doctor-missing", Service: "key service " + svc.URL()}
}

// TestKMSFailureMessages: the doctor's line (and so /readyz's and the
// start's) for a KMS failure names the key service, says how it failed and
// what to do.
func TestKMSFailureMessages(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	dead := "http://" + ln.Addr().String()
	live := testkms.Endpoint(t)
	ringPath := filepath.Join(t.TempDir(), "keyring.json")
	ring, err := keyring.Open(ringPath)
	if err != nil {
		t.Fatal(err)
	}
	locked := &kms.KMSError{Op: "DescribeKey", Kind: kms.ErrKMSUnavailable, Cause: errors.New("locking keyring: resource temporarily unavailable")}
	quota := &kms.KMSError{Op: "DescribeKey", Kind: kms.ErrInvalidKMSRequest, Code: "LimitExceededException", Reason: kms.ReasonQuota, Fix: "ask for a higher quota"}
	const title = "the KMS key (S3SEAL_KMS_KEY_ID) resolves and is enabled: "
	const breaks = " — s3seal can neither seal new objects nor read existing ones; fix: "
	cases := []struct {
		name string
		k    KMS
		want string
	}{
		{"refused", awsAt(t, dead), title + "the KMS does not answer DescribeKey: key service " + dead + ": connection refused" + breaks +
			"nothing listens at S3SEAL_KMS_ENDPOINT=" + dead + ": start the KMS, or correct S3SEAL_KMS_ENDPOINT; s3seal becomes ready when it answers"},
		{"unknown key", awsAt(t, live), title + `S3SEAL_KMS_KEY_ID "alias/s3seal-doctor-missing" names no CMK the key service knows (key service ` + live +
			": CMK alias/s3seal-doctor-missing not found (NotFoundException))" + breaks +
			"set it to the key id, ARN or alias/NAME of a CMK in key service " + live + " (AWS KMS keys are regional: check S3SEAL_KMS_REGION)"},
		// The SDK quotes the process's output, secret key included, in its
		// error; /readyz answers anyone and shows none of it.
		{"credential_process", awsWithProcess(t, dead), title + "s3seal could not get credentials to sign DescribeKey with: key service " + dead +
			": AWS credentials failed: the credential_process of profile p failed or printed something the SDK could not parse" + breaks +
			"run it by hand to see its output (s3seal discards its stderr): it must exit 0 and print JSON with Version 1, AccessKeyId, SecretAccessKey and, if any, an RFC 3339 Expiration; s3seal becomes ready once it finds them"},
		// A refusal the KMS client knows the fix of: that fix, not the
		// doctor's general one.
		{"quota", KMS{Keys: ring, Status: failingStatus{quota}, Resolver: ring, KeyID: "alias/s3seal", Service: "key service http://kms"},
			title + `the KMS refused DescribeKey on "alias/s3seal" (key service http://kms: KMS resource quota exceeded (LimitExceededException))` + breaks + "ask for a higher quota"},
		{"keyring unavailable", KMS{Keys: ring, Status: failingStatus{locked}, Resolver: ring, KeyID: "alias/s3seal", Keyring: true, Service: "embedded keyring " + ringPath},
			title + "the KMS does not answer DescribeKey: embedded keyring " + ringPath + ": key service unavailable: locking keyring: resource temporarily unavailable" + breaks +
				"check that s3seal can read, write and lock the keyring file in S3SEAL_DATA_DIR; s3seal becomes ready when it answers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sess := NewSession(Config{KMS: tc.k, Purpose: "ready"})
			checks := kmsChecks()[:1]
			srv := httptest.NewServer(HealthHandler(NewReadiness(sess, checks), nil, false))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var doc struct {
				Status string            `json:"status"`
				Failed map[string]string `json:"failed"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || doc.Failed["kms-key"] != tc.want {
				t.Errorf("/readyz %d %q\nwant kms-key %q", resp.StatusCode, doc.Failed["kms-key"], tc.want)
			}
		})
	}
}

// awsWithProcess is the AWS KMS client for endpoint with a profile whose
// credential_process prints credentials the SDK cannot parse.
func awsWithProcess(t *testing.T, endpoint string) KMS {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "creds.sh")
	out := `{"Version":1,"AccessKeyId":"AKIAEXAMPLE","SecretAccessKey":"TOPSECRETVALUE","Expiration":"tomorrow"}`
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho '"+out+"'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte("[profile p]\ncredential_process = "+script+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, err := awskms.Load(t.Context(), awskms.Config{Region: testkms.Region, Endpoint: endpoint},
		config.WithSharedConfigFiles([]string{cfgFile}), config.WithSharedCredentialsFiles([]string{filepath.Join(dir, "credentials")}),
		config.WithSharedConfigProfile("p"), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return KMS{Keys: svc, Status: svc, Resolver: svc, KeyID: "alias/s3seal-doctor-missing", Service: "key service " + svc.URL()}
}

// failingStatus fails every KeyStatus with err.
type failingStatus struct{ err error }

func (f failingStatus) KeyStatus(context.Context, string) (kms.KeyStatus, error) {
	return kms.KeyStatus{}, f.err
}
