package testkms_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/internal/testkms"
)

// newClient starts a server of the test's own, on a fresh database, and
// returns a KMS client for it.
func newClient(t *testing.T) *kms.Client {
	t.Helper()
	endpoint, _ := testkms.Start(t)
	return testkms.Client(t, endpoint)
}

// createKey creates a CMK through c and returns its metadata: these tests
// need its ARN as well as its id.
func createKey(t *testing.T, c *kms.Client) *types.KeyMetadata {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return out.KeyMetadata
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestRotateKeyOnDemand(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)

	ck := createKey(t, c)
	keyID := *ck.KeyId
	encCtx := map[string]string{"bucket": "b", "key": "k"}

	encrypt := func(pt string) []byte {
		t.Helper()
		out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte(pt), EncryptionContext: encCtx})
		if err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		return out.CiphertextBlob
	}
	decrypt := func(blob []byte, want string) {
		t.Helper()
		out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: encCtx})
		if err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		if string(out.Plaintext) != want {
			t.Fatalf("Decrypt = %q, want %q", out.Plaintext, want)
		}
		if *out.KeyId != *ck.Arn {
			t.Fatalf("Decrypt KeyId = %q, want %q", *out.KeyId, *ck.Arn)
		}
	}
	rotationEnabled := func() bool {
		t.Helper()
		out, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: &keyID})
		if err != nil {
			t.Fatalf("GetKeyRotationStatus: %v", err)
		}
		return out.KeyRotationEnabled
	}

	before := encrypt("before rotation")
	if rotationEnabled() {
		t.Fatal("rotation enabled on a new key")
	}

	// By key id, then by ARN: both name the key in AWS.
	for _, id := range []string{keyID, *ck.Arn} {
		out, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
		if err != nil {
			t.Fatalf("RotateKeyOnDemand(%s): %v", id, err)
		}
		if *out.KeyId != *ck.Arn {
			t.Fatalf("RotateKeyOnDemand KeyId = %q, want %q", *out.KeyId, *ck.Arn)
		}
	}
	// On-demand rotation must not switch on automatic rotation.
	if rotationEnabled() {
		t.Fatal("RotateKeyOnDemand enabled automatic rotation")
	}
	after := encrypt("after rotation")
	if bytes.Equal(before, after) {
		t.Fatal("ciphertexts equal")
	}
	decrypt(before, "before rotation")
	decrypt(after, "after rotation")

	// With automatic rotation on, an on-demand rotation keeps it on.
	if _, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: &keyID}); err != nil {
		t.Fatalf("EnableKeyRotation: %v", err)
	}
	if _, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &keyID}); err != nil {
		t.Fatalf("RotateKeyOnDemand: %v", err)
	}
	if !rotationEnabled() {
		t.Fatal("RotateKeyOnDemand disabled automatic rotation")
	}
	decrypt(before, "before rotation")
	decrypt(after, "after rotation")
	decrypt(encrypt("third"), "third")
}

func TestRotateKeyOnDemandErrors(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)

	ck := createKey(t, c)
	keyID := *ck.KeyId
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/a"), TargetKeyId: &keyID}); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}

	cases := []struct {
		name  string
		setup func()
		keyID string
		code  string
	}{
		{"unknown key", nil, "00000000-0000-0000-0000-000000000000", "NotFoundException"},
		{"alias", nil, "alias/a", "NotFoundException"},
		{"empty", nil, "", "ValidationException"},
		{"disabled", func() {
			if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: &keyID}); err != nil {
				t.Fatalf("DisableKey: %v", err)
			}
		}, keyID, "DisabledException"},
		{"pending deletion", func() {
			if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &keyID, PendingWindowInDays: aws.Int32(7)}); err != nil {
				t.Fatalf("ScheduleKeyDeletion: %v", err)
			}
		}, keyID, "KMSInvalidStateException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			// The SDK validates a nil KeyId client-side; send "" to reach the server.
			_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(tc.keyID)})
			if got := apiCode(err); got != tc.code {
				t.Fatalf("RotateKeyOnDemand(%q) error %v, code %q, want %q", tc.keyID, err, got, tc.code)
			}
		})
	}
}

// A ciphertext too short for local-kms's unchecked slicing must come back as
// InvalidCiphertextException, not a dropped connection.
func TestShortCiphertext(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ck := createKey(t, c)
	arn := []byte(*ck.Arn)
	blob := append([]byte{byte(len(arn))}, arn...)
	blob = append(blob, 0, 0, 0, 0, 1) // version 0, one byte of "ciphertext"
	_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
	if got := apiCode(err); got != "InvalidCiphertextException" {
		t.Fatalf("Decrypt error %v, code %q, want InvalidCiphertextException", err, got)
	}
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyId: ck.KeyId})
	if got := apiCode(err); got != "InvalidCiphertextException" {
		t.Fatalf("ReEncrypt error %v, code %q, want InvalidCiphertextException", err, got)
	}
	// The server still answers afterwards.
	if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: ck.KeyId}); err != nil {
		t.Fatalf("DescribeKey: %v", err)
	}
}

func TestNewBadDir(t *testing.T) {
	// A second server on the same directory cannot take leveldb's lock; New
	// must report that rather than panic.
	dir := t.TempDir()
	s, err := testkms.New(dir)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer s.Close()
	if s2, err := testkms.New(dir); err == nil {
		s2.Close()
		t.Fatal("second New on a locked database succeeded")
	}
}

func TestReEncryptSourceKeyID(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	k1 := createKey(t, c)
	k2 := createKey(t, c)
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/one"), TargetKeyId: k1.KeyId}); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: []byte("x")})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	cases := []struct{ src, code string }{
		{"", ""},
		{*k1.KeyId, ""},
		{*k1.Arn, ""},
		{"alias/one", ""},
		{*k2.KeyId, "IncorrectKeyException"},
		{"alias/missing", "NotFoundException"},
		{"00000000-0000-0000-0000-000000000000", "NotFoundException"},
	}
	for _, tc := range cases {
		in := &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: k2.KeyId}
		if tc.src != "" {
			in.SourceKeyId = aws.String(tc.src)
		}
		_, err := c.ReEncrypt(ctx, in)
		if got := apiCode(err); got != tc.code || (tc.code == "" && err != nil) {
			t.Errorf("ReEncrypt(SourceKeyId %q): %v, code %q, want %q", tc.src, err, got, tc.code)
		}
	}
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: []byte{200, 1, 2}, DestinationKeyId: k2.KeyId})
	if got := apiCode(err); got != "InvalidCiphertextException" {
		t.Errorf("ReEncrypt(garbage): %v, want InvalidCiphertextException", err)
	}
}

// Stock local-kms behaviour that clients must cope with (and that AWSKMS
// works around where it can): Decrypt without KeyId of a disabled key's
// ciphertext answers AccessDeniedException, where AWS says DisabledException.
// With KeyId it answers DisabledException like AWS.
func TestDecryptDisabledKeyCodes(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ck := createKey(t, c)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyId, Plaintext: []byte("x")})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: ck.KeyId}); err != nil {
		t.Fatalf("DisableKey: %v", err)
	}
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if got := apiCode(err); got != "AccessDeniedException" {
		t.Errorf("Decrypt without KeyId: %v, code %q", err, got)
	}
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: ck.KeyId})
	if got := apiCode(err); got != "DisabledException" {
		t.Errorf("Decrypt with KeyId: %v, code %q", err, got)
	}
}
