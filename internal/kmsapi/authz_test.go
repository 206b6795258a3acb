package kmsapi_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/envelope/keyring"
)

// TestAuthorization runs every operation twice: denied, it must be an
// AccessDeniedException that changes nothing; allowed, it must succeed.
// Both times the Authorizer must be asked about the right action and the
// canonical id of each key involved, and Changed told of every change.
func TestAuthorization(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	k1, k2 := ts.createKey(t), ts.createKey(t)
	ext, err := ts.ring.CreateExternalKey("")
	mustOK(t, "CreateExternalKey", err)
	_, err = ts.client.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/one"), TargetKeyId: &k1})
	mustOK(t, "CreateAlias", err)
	enc, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &k1, Plaintext: []byte("x")})
	mustOK(t, "Encrypt", err)
	blob := enc.CiphertextBlob
	ts.authz.take()

	type step = authCall
	var imp pendingImport
	// setup runs before each run of an operation, outside what is checked.
	setup := map[string]func(){"ImportKeyMaterial": func() { imp = prepareImport(t, ts.ring, ext.ID) }}
	tests := []struct {
		op     string
		call   func() error
		want   []step
		writes bool
	}{
		{"Encrypt", func() error {
			_, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String("alias/one"), Plaintext: []byte("x")})
			return err
		}, []step{{"", "kms:Encrypt", k1}}, false},
		{"Decrypt", func() error {
			_, err := ts.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blob})
			return err
		}, []step{{"", "kms:Decrypt", k1}}, false},
		{"ReEncrypt", func() error {
			_, err := ts.client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyId: aws.String(ts.arn(k2))})
			return err
		}, []step{{"", "kms:ReEncryptFrom", k1}, {"", "kms:ReEncryptTo", k2}}, false},
		{"GenerateDataKey", func() error {
			_, err := ts.client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: &k1, KeySpec: types.DataKeySpecAes256})
			return err
		}, []step{{"", "kms:GenerateDataKey", k1}}, false},
		{"GenerateDataKeyWithoutPlaintext", func() error {
			_, err := ts.client.GenerateDataKeyWithoutPlaintext(ctx, &awskms.GenerateDataKeyWithoutPlaintextInput{KeyId: &k1, NumberOfBytes: aws.Int32(8)})
			return err
		}, []step{{"", "kms:GenerateDataKeyWithoutPlaintext", k1}}, false},
		{"GenerateRandom", func() error {
			_, err := ts.client.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
			return err
		}, []step{{"", "kms:GenerateRandom", ""}}, false},
		{"DescribeKey", func() error {
			_, err := ts.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("arn:aws:kms:us-east-1:000000000000:alias/one")})
			return err
		}, []step{{"", "kms:DescribeKey", k1}}, false},
		{"CreateKey", func() error {
			_, err := ts.client.CreateKey(ctx, &awskms.CreateKeyInput{})
			return err
		}, []step{{"", "kms:CreateKey", ""}}, true},
		{"ListKeys", func() error {
			_, err := ts.client.ListKeys(ctx, &awskms.ListKeysInput{})
			return err
		}, []step{{"", "kms:ListKeys", ""}}, false},
		{"ListAliases", func() error {
			_, err := ts.client.ListAliases(ctx, &awskms.ListAliasesInput{KeyId: &k1})
			return err
		}, []step{{"", "kms:ListAliases", ""}}, false},
		{"CreateAlias", func() error {
			_, err := ts.client.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/two"), TargetKeyId: &k2})
			return err
		}, []step{{"", "kms:CreateAlias", k2}}, true},
		{"UpdateAlias", func() error {
			_, err := ts.client.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String("alias/two"), TargetKeyId: &k1})
			return err
		}, []step{{"", "kms:UpdateAlias", k2}, {"", "kms:UpdateAlias", k1}}, true},
		{"DeleteAlias", func() error {
			_, err := ts.client.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String("alias/two")})
			return err
		}, []step{{"", "kms:DeleteAlias", k1}}, true},
		{"UpdateKeyDescription", func() error {
			_, err := ts.client.UpdateKeyDescription(ctx, &awskms.UpdateKeyDescriptionInput{KeyId: &k1, Description: aws.String("d")})
			return err
		}, []step{{"", "kms:UpdateKeyDescription", k1}}, true},
		{"DisableKey", func() error {
			_, err := ts.client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &k2})
			return err
		}, []step{{"", "kms:DisableKey", k2}}, true},
		{"EnableKey", func() error {
			_, err := ts.client.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: &k2})
			return err
		}, []step{{"", "kms:EnableKey", k2}}, true},
		{"EnableKeyRotation", func() error {
			_, err := ts.client.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: &k1})
			return err
		}, []step{{"", "kms:EnableKeyRotation", k1}}, true},
		{"GetKeyRotationStatus", func() error {
			_, err := ts.client.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: &k1})
			return err
		}, []step{{"", "kms:GetKeyRotationStatus", k1}}, false},
		{"DisableKeyRotation", func() error {
			_, err := ts.client.DisableKeyRotation(ctx, &awskms.DisableKeyRotationInput{KeyId: &k1})
			return err
		}, []step{{"", "kms:DisableKeyRotation", k1}}, true},
		{"RotateKeyOnDemand", func() error {
			_, err := ts.client.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &k1})
			return err
		}, []step{{"", "kms:RotateKeyOnDemand", k1}}, true},
		{"ScheduleKeyDeletion", func() error {
			_, err := ts.client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &k2})
			return err
		}, []step{{"", "kms:ScheduleKeyDeletion", k2}}, true},
		{"CancelKeyDeletion", func() error {
			_, err := ts.client.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: &k2})
			return err
		}, []step{{"", "kms:CancelKeyDeletion", k2}}, true},
		{"GetParametersForImport", func() error {
			_, err := ts.client.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &ext.ID,
				WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
			return err
		}, []step{{"", "kms:GetParametersForImport", ext.ID}}, true},
		{"ImportKeyMaterial", func() error { return ts.importMaterial(t, ext.ID, imp.token, imp.wrapped) },
			[]step{{"", "kms:ImportKeyMaterial", ext.ID}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			if f := setup[tt.op]; f != nil {
				f()
			}
			ts.authz.setDeny(func(string, string) bool { return true })
			before := readFile(t, ts.ringPath)
			err := tt.call()
			wantCode(t, "denied", err, "AccessDeniedException", 400)
			checkAsked(t, ts.authz.take(), tt.want[:1])
			if !bytes.Equal(before, readFile(t, ts.ringPath)) {
				t.Fatal("a denied request changed the keyring")
			}
			ts.authz.setDeny(nil)
			if f := setup[tt.op]; f != nil {
				f()
			}
			changes := ts.changes()
			mustOK(t, "allowed", tt.call())
			checkAsked(t, ts.authz.take(), tt.want)
			if got := ts.changes() - changes; (got != 0) != tt.writes {
				t.Fatalf("Changed called %d times", got)
			}
		})
	}
	checkObserved(t, ts)
}

// pendingImport is what ImportKeyMaterial needs: a token and material
// wrapped under its public key.
type pendingImport struct{ token, wrapped []byte }

// prepareImport makes import parameters for id with the keyring itself,
// so that only ImportKeyMaterial asks the Authorizer.
func prepareImport(t *testing.T, ring *keyring.Keyring, id string) pendingImport {
	p, err := ring.GetParametersForImport(id, keyring.WrapRSAOAEPSHA256, 2048)
	mustOK(t, "GetParametersForImport", err)
	pub, err := x509.ParsePKIXPublicKey(p.PublicKey)
	mustOK(t, "ParsePKIXPublicKey", err)
	material := make([]byte, 32)
	rand.Read(material)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
	mustOK(t, "EncryptOAEP", err)
	return pendingImport{p.Token, wrapped}
}

func checkAsked(t *testing.T, got, want []authCall) {
	t.Helper()
	for i := range want {
		want[i].accessKey = testAccessKey
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the Authorizer was asked %v, want %v", got, want)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkObserved checks that the Observer saw each request's operation
// and result.
func checkObserved(t *testing.T, ts *testServer) {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, want := range []string{"Encrypt AccessDeniedException", "Encrypt ok", "ImportKeyMaterial ok"} {
		if !slices.Contains(ts.observed, want) {
			t.Errorf("the Observer saw no %q in %s", want, strings.Join(ts.observed, ", "))
		}
	}
}
