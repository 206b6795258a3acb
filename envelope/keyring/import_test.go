package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"
)

// krWantCode fails unless err is a *kms.KMSError of kind with AWS's code.
func krWantCode(t *testing.T, what string, err, kind error, code string) {
	t.Helper()
	var ke *kms.KMSError
	if !errors.Is(err, kind) || !errors.As(err, &ke) || ke.Code != code {
		t.Fatalf("%s: error %v, want %v with code %s", what, err, kind, code)
	}
}

// krWrap wraps material for the import p describes, with hash h.
func krWrap(t *testing.T, p ImportParameters, h hash.Hash, material []byte) []byte {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(p.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rsa.EncryptOAEP(h, rand.Reader, pub.(*rsa.PublicKey), material, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func krExternal(t *testing.T, k *Keyring) KeyInfo {
	t.Helper()
	info, err := k.CreateExternalKey("external")
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func krParams(t *testing.T, k *Keyring, id string, alg WrappingAlgorithm) ImportParameters {
	t.Helper()
	p, err := k.GetParametersForImport(id, alg, 2048)
	if err != nil {
		t.Fatalf("GetParametersForImport: %v", err)
	}
	return p
}

func TestKeyringExternalKeyPendingImport(t *testing.T) {
	ctx := context.Background()
	k, path := krOpen(t)
	info := krExternal(t, k)
	if info.State != kms.KeyPendingImport || info.Origin != OriginExternal || info.Versions != 0 {
		t.Fatalf("new external key: %+v", info)
	}
	tests := []struct {
		name string
		call func() error
		kind error
		code string
	}{
		{"Encrypt", func() error { _, err := k.Encrypt(ctx, info.ID, []byte("x"), nil); return err }, kms.ErrKeyDisabled, codeInvalidState},
		{"GenerateDataKey", func() error { _, err := k.GenerateDataKey(ctx, info.ID, nil); return err }, kms.ErrKeyDisabled, codeInvalidState},
		{"EnableKey", func() error { return k.EnableKey(info.ID) }, kms.ErrKeyDisabled, codeInvalidState},
		{"DisableKey", func() error { return k.DisableKey(info.ID) }, kms.ErrKeyDisabled, codeInvalidState},
		{"RotateKey", func() error { _, err := k.RotateKey(info.ID); return err }, kms.ErrInvalidKMSRequest, codeUnsupported},
		{"EnableKeyRotation", func() error { _, err := k.EnableKeyRotation(info.ID, time.Hour); return err }, kms.ErrInvalidKMSRequest, codeUnsupported},
	}
	for _, tt := range tests {
		krWantCode(t, tt.name, tt.call(), tt.kind, tt.code)
	}
	if k.Usable(info.ID) {
		t.Error("a key pending import is usable")
	}
	// It is in the file as it is, and loads again.
	k2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k2.DescribeKey(info.ID); err != nil || got.State != kms.KeyPendingImport {
		t.Fatalf("reopened: %+v, %v", got, err)
	}
	// Deleting it before the import, then changing one's mind, leaves it waiting.
	if _, err := k.ScheduleKeyDeletion(info.ID, 7); err != nil {
		t.Fatal(err)
	}
	if err := k.CancelKeyDeletion(info.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.DescribeKey(info.ID); got.State != kms.KeyPendingImport {
		t.Fatalf("after CancelKeyDeletion: %s", got.State)
	}
}

func TestKeyringImportKeyMaterial(t *testing.T) {
	for _, alg := range []struct {
		alg  WrappingAlgorithm
		hash func() hash.Hash
	}{{WrapRSAOAEPSHA1, sha1.New}, {WrapRSAOAEPSHA256, sha256.New}} {
		t.Run(string(alg.alg), func(t *testing.T) {
			ctx := context.Background()
			k, path := krOpen(t)
			info := krExternal(t, k)
			p := krParams(t, k, info.ID, alg.alg)
			if p.KeyID != info.ID || len(p.Token) != importTokenSize {
				t.Fatalf("parameters: %q, %d-byte token", p.KeyID, len(p.Token))
			}
			if data, _ := os.ReadFile(path); !bytes.Contains(data, []byte(`"private_key"`)) {
				t.Fatal("the pending import is not in the file")
			}
			material := bytes.Repeat([]byte{7}, 32)
			got, err := k.ImportKeyMaterial(info.ID, p.Token, krWrap(t, p, alg.hash(), material))
			if err != nil {
				t.Fatalf("ImportKeyMaterial: %v", err)
			}
			if got.State != kms.KeyEnabled || got.Versions != 1 {
				t.Fatalf("after the import: %+v", got)
			}
			if m := krMaterial(t, path, info.ID); m != "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=" {
				t.Fatalf("material in the file: %s", m)
			}
			if data, _ := os.ReadFile(path); bytes.Contains(data, []byte(`"private_key"`)) {
				t.Fatal("the wrapping key stays in the file after the import")
			}
			w, err := k.Encrypt(ctx, info.ID, []byte("hello"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := k.Decrypt(ctx, "", w.Ciphertext, nil); err != nil || string(pt) != "hello" {
				t.Fatalf("Decrypt = %q, %v", pt, err)
			}
		})
	}
}

func TestKeyringImportRefusals(t *testing.T) {
	clock := &krClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	k, err := openKeyring(filepath.Join(t.TempDir(), "k.json"), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	material := bytes.Repeat([]byte{9}, 32)
	generated := krCreate(t, k, "")
	tests := []struct {
		name string
		run  func(id string) error // on a fresh external key
		code string
	}{
		{"other token", func(id string) error {
			p := krParams(t, k, id, WrapRSAOAEPSHA256)
			_, err := k.ImportKeyMaterial(id, bytes.Repeat([]byte{1}, importTokenSize), krWrap(t, p, sha256.New(), material))
			return err
		}, codeInvalidImportToken},
		{"replaced token", func(id string) error {
			old := krParams(t, k, id, WrapRSAOAEPSHA256)
			krParams(t, k, id, WrapRSAOAEPSHA256)
			_, err := k.ImportKeyMaterial(id, old.Token, krWrap(t, old, sha256.New(), material))
			return err
		}, codeInvalidImportToken},
		{"another key's token", func(id string) error {
			other := krExternal(t, k)
			p := krParams(t, k, other.ID, WrapRSAOAEPSHA256)
			_, err := k.ImportKeyMaterial(id, p.Token, krWrap(t, p, sha256.New(), material))
			return err
		}, codeInvalidImportToken},
		{"expired token", func(id string) error {
			p := krParams(t, k, id, WrapRSAOAEPSHA256)
			clock.advance(ImportParametersTTL)
			_, err := k.ImportKeyMaterial(id, p.Token, krWrap(t, p, sha256.New(), material))
			return err
		}, codeExpiredImportToken},
		{"wrong hash", func(id string) error {
			p := krParams(t, k, id, WrapRSAOAEPSHA256)
			_, err := k.ImportKeyMaterial(id, p.Token, krWrap(t, p, sha1.New(), material))
			return err
		}, codeInvalidCiphertext},
		{"31 bytes", func(id string) error {
			p := krParams(t, k, id, WrapRSAOAEPSHA256)
			_, err := k.ImportKeyMaterial(id, p.Token, krWrap(t, p, sha256.New(), material[:31]))
			return err
		}, codeIncorrectKeyMaterial},
		{"pending deletion", func(id string) error {
			p := krParams(t, k, id, WrapRSAOAEPSHA256)
			if _, err := k.ScheduleKeyDeletion(id, 7); err != nil {
				t.Fatal(err)
			}
			_, err := k.ImportKeyMaterial(id, p.Token, krWrap(t, p, sha256.New(), material))
			return err
		}, codeInvalidState},
		{"generated key", func(string) error {
			_, err := k.GetParametersForImport(generated.ID, WrapRSAOAEPSHA256, 2048)
			return err
		}, codeUnsupported},
		{"PKCS #1 v1.5", func(id string) error { _, err := k.GetParametersForImport(id, "RSAES_PKCS1_V1_5", 2048); return err }, codeUnsupported},
		{"1024 bits", func(id string) error { _, err := k.GetParametersForImport(id, WrapRSAOAEPSHA256, 1024); return err }, codeUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := krExternal(t, k).ID
			var ke *kms.KMSError
			if err := tt.run(id); !errors.As(err, &ke) || ke.Code != tt.code {
				t.Fatalf("error %v, want code %s", err, tt.code)
			} else if strings.Contains(err.Error(), "\x09\x09\x09\x09") {
				t.Fatalf("error quotes the material: %v", err)
			}
			if info, _ := k.DescribeKey(id); info.Versions != 0 {
				t.Fatal("a refused import gave the key material")
			}
		})
	}
}

// TestKeyringReimport imports into a key that has material: only the same
// material again, which keeps the key's state.
func TestKeyringReimport(t *testing.T) {
	k, _ := krOpen(t)
	material := bytes.Repeat([]byte{3}, 32)
	imported, err := k.ImportKey(material, "by s3seal keys import") // the CLI's way
	if err != nil {
		t.Fatal(err)
	}
	if err := k.DisableKey(imported.ID); err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{4}, 32)
	p := krParams(t, k, imported.ID, WrapRSAOAEPSHA1)
	_, err = k.ImportKeyMaterial(imported.ID, p.Token, krWrap(t, p, sha1.New(), other))
	krWantCode(t, "other material", err, kms.ErrInvalidKMSRequest, codeIncorrectKeyMaterial)
	info, err := k.ImportKeyMaterial(imported.ID, p.Token, krWrap(t, p, sha1.New(), material))
	if err != nil {
		t.Fatalf("same material again: %v", err)
	}
	if info.State != kms.KeyDisabled || info.Versions != 1 {
		t.Fatalf("after the re-import: %+v", info)
	}
}

// TestKeyringImportShared finishes an import that another Keyring on the
// same file began, as a replica (or a restarted process) would.
func TestKeyringImportShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.json")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	info := krExternal(t, a)
	p := krParams(t, a, info.ID, WrapRSAOAEPSHA256)
	if _, err := b.ImportKeyMaterial(info.ID, p.Token, krWrap(t, p, sha256.New(), bytes.Repeat([]byte{5}, 32))); err != nil {
		t.Fatalf("import on the other Keyring: %v", err)
	}
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if !a.Usable(info.ID) {
		t.Fatal("the key is not usable after the other Keyring's import")
	}
}

func TestKeyringValidatePendingImport(t *testing.T) {
	m := `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`
	imp := `"import":{"token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","algorithm":"RSAES_OAEP_SHA_256","private_key":"AA==","valid_to":"2030-01-01T00:00:00Z"}`
	key := func(fields string) string {
		return `{"version":1,"keys":[{"id":"k1","created":"2030-01-01T00:00:00Z",` + fields + `}]}`
	}
	tests := []struct {
		name, content, wantErr string
	}{
		{"pending import", key(`"state":"PendingImport","origin":"EXTERNAL","material":[]`), ""},
		{"pending import with parameters", key(`"state":"PendingImport","origin":"EXTERNAL","material":[],` + imp), ""},
		{"deleted before its import", key(`"state":"PendingDeletion","deletion_date":"2999-01-01T00:00:00Z","origin":"EXTERNAL","material":null`), ""},
		{"pending import with material", key(`"state":"PendingImport","origin":"EXTERNAL","material":[` + m + `]`), "pending import"},
		{"pending import, generated", key(`"state":"PendingImport","origin":"S3SEAL","material":[]`), "pending import"},
		{"enabled without material", key(`"state":"Enabled","origin":"EXTERNAL","material":[]`), "no key material"},
		{"generated key deleted without material", key(`"state":"PendingDeletion","deletion_date":"2999-01-01T00:00:00Z","origin":"S3SEAL","material":[]`), "no key material"},
		{"import on a generated key", key(`"state":"Enabled","origin":"S3SEAL","material":[` + m + `],` + imp), "origin"},
		{"unknown wrapping", key(`"state":"PendingImport","origin":"EXTERNAL","material":[],` + strings.Replace(imp, "RSAES_OAEP_SHA_256", "ROT13", 1)), "wrapping"},
		{"short token", key(`"state":"PendingImport","origin":"EXTERNAL","material":[],` + strings.Replace(imp, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AA==", 1)), "incomplete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "k.json")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(p)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Open = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}
