package kmsapi_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"hash"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// importParams asks for import parameters and returns the token and the
// public key.
func (ts *testServer) importParams(t *testing.T, id string, alg types.AlgorithmSpec) ([]byte, *rsa.PublicKey) {
	t.Helper()
	out, err := ts.client.GetParametersForImport(t.Context(), &awskms.GetParametersForImportInput{
		KeyId: &id, WrappingAlgorithm: alg, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	mustOK(t, "GetParametersForImport", err)
	if aws.ToString(out.KeyId) != ts.arn(id) || out.ParametersValidTo == nil ||
		out.ParametersValidTo.Sub(time.Now()) < 23*time.Hour || out.ParametersValidTo.Sub(time.Now()) > 25*time.Hour {
		t.Fatalf("GetParametersForImport: KeyId %q, valid to %v", aws.ToString(out.KeyId), out.ParametersValidTo)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		t.Fatalf("PublicKey: %v", err)
	}
	return out.ImportToken, pub.(*rsa.PublicKey)
}

func wrap(t *testing.T, pub *rsa.PublicKey, h hash.Hash, material []byte) []byte {
	t.Helper()
	b, err := rsa.EncryptOAEP(h, rand.Reader, pub, material, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (ts *testServer) importMaterial(t *testing.T, id string, token, wrapped []byte) error {
	t.Helper()
	_, err := ts.client.ImportKeyMaterial(t.Context(), &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: token,
		EncryptedKeyMaterial: wrapped, ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	return err
}

func (ts *testServer) keyState(t *testing.T, id string) *types.KeyMetadata {
	t.Helper()
	out, err := ts.client.DescribeKey(t.Context(), &awskms.DescribeKeyInput{KeyId: &id})
	mustOK(t, "DescribeKey", err)
	return out.KeyMetadata
}

func TestImportKeyMaterial(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	created, err := ts.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
	mustOK(t, "CreateKey EXTERNAL", err)
	id := aws.ToString(created.KeyMetadata.KeyId)
	if m := created.KeyMetadata; m.KeyState != types.KeyStatePendingImport || m.Origin != types.OriginTypeExternal || m.Enabled {
		t.Fatalf("new EXTERNAL key: %s, %s", m.KeyState, m.Origin)
	}
	_, err = ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x")})
	wantCode(t, "Encrypt before the import", err, "KMSInvalidStateException", 400)
	_, err = ts.client.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: &id})
	wantCode(t, "EnableKey before the import", err, "KMSInvalidStateException", 400)

	material := make([]byte, 32)
	rand.Read(material)
	token, pub := ts.importParams(t, id, types.AlgorithmSpecRsaesOaepSha256)
	refusals := []struct {
		name    string
		token   []byte
		wrapped []byte
		code    string
	}{
		{"other token", bytes.Repeat([]byte{1}, len(token)), wrap(t, pub, sha256.New(), material), "InvalidImportTokenException"},
		{"other hash", token, wrap(t, pub, sha1.New(), material), "InvalidCiphertextException"},
		{"16 bytes", token, wrap(t, pub, sha256.New(), material[:16]), "IncorrectKeyMaterialException"},
	}
	for _, tt := range refusals {
		wantCode(t, tt.name, ts.importMaterial(t, id, tt.token, tt.wrapped), tt.code, 400)
	}
	wrapped := wrap(t, pub, sha256.New(), material)
	_, err = ts.client.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: token, EncryptedKeyMaterial: wrapped})
	wantCode(t, "default expiration model without ValidTo", err, "ValidationException", 400)
	_, err = ts.client.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: token, EncryptedKeyMaterial: wrapped,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialExpires, ValidTo: aws.Time(time.Now().Add(time.Hour))})
	wantCode(t, "expiring material", err, "UnsupportedOperationException", 400)

	mustOK(t, "ImportKeyMaterial", ts.importMaterial(t, id, token, wrapped))
	if m := ts.keyState(t, id); m.KeyState != types.KeyStateEnabled || m.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire {
		t.Fatalf("after the import: %s, %s", m.KeyState, m.ExpirationModel)
	}
	enc, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("imported")})
	mustOK(t, "Encrypt", err)
	dec, err := ts.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	mustOK(t, "Decrypt", err)
	if string(dec.Plaintext) != "imported" {
		t.Fatal("Decrypt returned other bytes")
	}
	wantCode(t, "token used twice", ts.importMaterial(t, id, token, wrapped), "InvalidImportTokenException", 400)
	_, err = ts.client.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: &id})
	wantCode(t, "GetKeyRotationStatus", err, "UnsupportedOperationException", 400)
	_, err = ts.client.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id})
	wantCode(t, "RotateKeyOnDemand", err, "UnsupportedOperationException", 400)
	testReimport(t, ts, id, material)
}

// testReimport imports into a key that has material: only the same
// material again, and the key keeps its state.
func testReimport(t *testing.T, ts *testServer, id string, material []byte) {
	_, err := ts.client.DisableKey(t.Context(), &awskms.DisableKeyInput{KeyId: &id})
	mustOK(t, "DisableKey", err)
	token, pub := ts.importParams(t, id, types.AlgorithmSpecRsaesOaepSha1)
	other := bytes.Clone(material)
	other[0] ^= 1
	wantCode(t, "other material", ts.importMaterial(t, id, token, wrap(t, pub, sha1.New(), other)), "IncorrectKeyMaterialException", 400)
	mustOK(t, "same material again", ts.importMaterial(t, id, token, wrap(t, pub, sha1.New(), material)))
	if m := ts.keyState(t, id); m.KeyState != types.KeyStateDisabled {
		t.Fatalf("after a re-import into a disabled key: %s", m.KeyState)
	}
}

func TestImportTokens(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	created, err := ts.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
	mustOK(t, "CreateKey EXTERNAL", err)
	id := aws.ToString(created.KeyMetadata.KeyId)
	material := make([]byte, 32)
	rand.Read(material)

	old, oldPub := ts.importParams(t, id, types.AlgorithmSpecRsaesOaepSha256)
	token, pub := ts.importParams(t, id, types.AlgorithmSpecRsaesOaepSha256)
	wantCode(t, "replaced token", ts.importMaterial(t, id, old, wrap(t, oldPub, sha256.New(), material)), "InvalidImportTokenException", 400)
	expireImport(t, ts.ringPath)
	wantCode(t, "expired token", ts.importMaterial(t, id, token, wrap(t, pub, sha256.New(), material)), "ExpiredImportTokenException", 400)

	plain := ts.createKey(t)
	_, err = ts.client.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &plain,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	wantCode(t, "AWS_KMS key", err, "UnsupportedOperationException", 400)
	for _, in := range []awskms.GetParametersForImportInput{
		{WrappingAlgorithm: types.AlgorithmSpecRsaesPkcs1V15, WrappingKeySpec: types.WrappingKeySpecRsa2048},
		{WrappingAlgorithm: types.AlgorithmSpecRsaAesKeyWrapSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048},
		{WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecSm2},
	} {
		in.KeyId = &id
		_, err := ts.client.GetParametersForImport(ctx, &in)
		wantCode(t, string(in.WrappingAlgorithm)+" "+string(in.WrappingKeySpec), err, "UnsupportedOperationException", 400)
	}
	// A key deleted before its import goes back to waiting for it.
	_, err = ts.client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &id, PendingWindowInDays: aws.Int32(7)})
	mustOK(t, "ScheduleKeyDeletion", err)
	_, err = ts.client.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: &id})
	mustOK(t, "CancelKeyDeletion", err)
	if m := ts.keyState(t, id); m.KeyState != types.KeyStatePendingImport {
		t.Fatalf("after CancelKeyDeletion: %s", m.KeyState)
	}
}

// expireImport moves the valid_to of every pending import in the keyring
// file into the past, as 24 hours would.
func expireImport(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	for _, k := range f["keys"].([]any) {
		if imp, ok := k.(map[string]any)["import"].(map[string]any); ok {
			imp["valid_to"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		}
	}
	if data, err = json.Marshal(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
