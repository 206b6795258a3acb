package kmsapi_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestCryptoRoundTrip(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	key := ts.createKey(t)
	_, err := ts.client.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/rt"), TargetKeyId: &key})
	mustOK(t, "CreateAlias", err)
	encCtx := map[string]string{"bucket": "b", "key": "k"}
	aliasARN := "arn:aws:kms:" + testRegion + ":" + testAccount + ":alias/rt"

	for _, ref := range []string{key, ts.arn(key), "alias/rt", aliasARN} {
		t.Run(ref, func(t *testing.T) {
			enc, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &ref, Plaintext: []byte("hello"), EncryptionContext: encCtx})
			mustOK(t, "Encrypt", err)
			if aws.ToString(enc.KeyId) != ts.arn(key) || enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
				t.Fatalf("Encrypt: KeyId %q, algorithm %q", aws.ToString(enc.KeyId), enc.EncryptionAlgorithm)
			}
			// The blob names its key: Decrypt needs no KeyId, and takes any name of it.
			for _, id := range []*string{nil, &ref} {
				dec, err := ts.client.Decrypt(ctx, &awskms.DecryptInput{KeyId: id, CiphertextBlob: enc.CiphertextBlob, EncryptionContext: encCtx})
				mustOK(t, "Decrypt", err)
				if string(dec.Plaintext) != "hello" || aws.ToString(dec.KeyId) != ts.arn(key) {
					t.Fatalf("Decrypt: %q under %q", dec.Plaintext, aws.ToString(dec.KeyId))
				}
			}
		})
	}
}

func TestDataKeys(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	key := ts.createKey(t)
	tests := []struct {
		name string
		in   awskms.GenerateDataKeyInput
		size int
	}{
		{"AES_256", awskms.GenerateDataKeyInput{KeySpec: types.DataKeySpecAes256}, 32},
		{"AES_128", awskms.GenerateDataKeyInput{KeySpec: types.DataKeySpecAes128}, 16},
		{"1 byte", awskms.GenerateDataKeyInput{NumberOfBytes: aws.Int32(1)}, 1},
		{"1024 bytes", awskms.GenerateDataKeyInput{NumberOfBytes: aws.Int32(1024)}, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.KeyId, in.EncryptionContext = &key, map[string]string{"a": "b"}
			dk, err := ts.client.GenerateDataKey(ctx, &in)
			mustOK(t, "GenerateDataKey", err)
			if len(dk.Plaintext) != tt.size || aws.ToString(dk.KeyId) != ts.arn(key) {
				t.Fatalf("GenerateDataKey: %d bytes under %q", len(dk.Plaintext), aws.ToString(dk.KeyId))
			}
			dec, err := ts.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: in.EncryptionContext})
			mustOK(t, "Decrypt", err)
			if !bytes.Equal(dec.Plaintext, dk.Plaintext) {
				t.Fatal("the data key does not decrypt to itself")
			}
			wo, err := ts.client.GenerateDataKeyWithoutPlaintext(ctx, &awskms.GenerateDataKeyWithoutPlaintextInput{
				KeyId: &key, KeySpec: in.KeySpec, NumberOfBytes: in.NumberOfBytes})
			mustOK(t, "GenerateDataKeyWithoutPlaintext", err)
			dec, err = ts.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: wo.CiphertextBlob})
			mustOK(t, "Decrypt", err)
			if len(dec.Plaintext) != tt.size {
				t.Fatalf("GenerateDataKeyWithoutPlaintext made a %d-byte key", len(dec.Plaintext))
			}
		})
	}
	for _, n := range []int32{1, 1024} {
		r, err := ts.client.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: &n})
		mustOK(t, "GenerateRandom", err)
		if len(r.Plaintext) != int(n) {
			t.Fatalf("GenerateRandom(%d): %d bytes", n, len(r.Plaintext))
		}
	}
}

func TestReEncrypt(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	k1, k2 := ts.createKey(t), ts.createKey(t)
	c1, c2 := map[string]string{"v": "1"}, map[string]string{"v": "2"}
	enc, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &k1, Plaintext: []byte("moving"), EncryptionContext: c1})
	mustOK(t, "Encrypt", err)
	for _, src := range []*string{nil, &k1} {
		re, err := ts.client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceKeyId: src,
			SourceEncryptionContext: c1, DestinationKeyId: &k2, DestinationEncryptionContext: c2})
		mustOK(t, "ReEncrypt", err)
		if aws.ToString(re.KeyId) != ts.arn(k2) || aws.ToString(re.SourceKeyId) != ts.arn(k1) {
			t.Fatalf("ReEncrypt: KeyId %q, SourceKeyId %q", aws.ToString(re.KeyId), aws.ToString(re.SourceKeyId))
		}
		dec, err := ts.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: c2})
		mustOK(t, "Decrypt", err)
		if string(dec.Plaintext) != "moving" || aws.ToString(dec.KeyId) != ts.arn(k2) {
			t.Fatalf("Decrypt after ReEncrypt: %q under %q", dec.Plaintext, aws.ToString(dec.KeyId))
		}
	}
}

// TestCryptoErrors checks that each failure is AWS's error for it, and
// that no error message carries the plaintext sent.
func TestCryptoErrors(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	secret := []byte("SECRET-PLAINTEXT-DO-NOT-ECHO")
	key, other, disabled, deleted := ts.createKey(t), ts.createKey(t), ts.createKey(t), ts.createKey(t)
	encCtx := map[string]string{"bucket": "b"}
	blob := func(k string) []byte {
		out, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &k, Plaintext: secret, EncryptionContext: encCtx})
		mustOK(t, "Encrypt", err)
		return out.CiphertextBlob
	}
	good, disabledBlob, deletedBlob := blob(key), blob(disabled), blob(deleted)
	_, err := ts.client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &disabled})
	mustOK(t, "DisableKey", err)
	_, err = ts.client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &deleted})
	mustOK(t, "ScheduleKeyDeletion", err)
	tampered := bytes.Clone(good)
	tampered[len(tampered)-1] ^= 1
	big := bytes.Repeat(secret, 4097/len(secret)+1)[:4097]
	decrypt := func(keyID *string, b []byte, c map[string]string) error {
		_, err := ts.client.Decrypt(ctx, &awskms.DecryptInput{KeyId: keyID, CiphertextBlob: b, EncryptionContext: c})
		return err
	}
	encrypt := func(keyID string, pt []byte) error {
		_, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &keyID, Plaintext: pt})
		return err
	}
	dataKey := func(in awskms.GenerateDataKeyInput) error {
		in.KeyId = &key
		_, err := ts.client.GenerateDataKey(ctx, &in)
		return err
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"wrong context", func() error { return decrypt(nil, good, map[string]string{"bucket": "c"}) }, "InvalidCiphertextException"},
		{"no context", func() error { return decrypt(&key, good, nil) }, "InvalidCiphertextException"},
		{"tampered", func() error { return decrypt(nil, tampered, encCtx) }, "InvalidCiphertextException"},
		{"truncated", func() error { return decrypt(nil, good[:5], encCtx) }, "InvalidCiphertextException"},
		{"another key's blob", func() error { return decrypt(&other, good, encCtx) }, "IncorrectKeyException"},
		{"unknown KeyId", func() error { return decrypt(aws.String("alias/none"), good, encCtx) }, "NotFoundException"},
		{"decrypt disabled", func() error { return decrypt(nil, disabledBlob, encCtx) }, "DisabledException"},
		{"decrypt pending deletion", func() error { return decrypt(nil, deletedBlob, encCtx) }, "KMSInvalidStateException"},
		{"encrypt disabled", func() error { return encrypt(disabled, secret) }, "DisabledException"},
		{"encrypt pending deletion", func() error { return encrypt(deleted, secret) }, "KMSInvalidStateException"},
		{"encrypt 4097 bytes", func() error { return encrypt(key, big) }, "ValidationException"},
		{"encrypt 0 bytes", func() error { return encrypt(key, []byte{}) }, "ValidationException"},
		{"unknown key", func() error { return encrypt("00000000-0000-4000-8000-000000000000", secret) }, "NotFoundException"},
		{"unknown alias", func() error { return encrypt("alias/none", secret) }, "NotFoundException"},
		{"other account", func() error {
			return encrypt(strings.Replace(ts.arn(key), testAccount, "111122223333", 1), secret)
		}, "NotFoundException"},
		{"other region", func() error { return encrypt(strings.Replace(ts.arn(key), testRegion, "eu-west-1", 1), secret) }, "NotFoundException"},
		{"RSA algorithm", func() error {
			_, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &key, Plaintext: secret,
				EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
			return err
		}, "InvalidKeyUsageException"},
		{"spec and bytes", func() error {
			return dataKey(awskms.GenerateDataKeyInput{KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
		}, "ValidationException"},
		{"neither spec nor bytes", func() error { return dataKey(awskms.GenerateDataKeyInput{}) }, "ValidationException"},
		{"1025 bytes", func() error { return dataKey(awskms.GenerateDataKeyInput{NumberOfBytes: aws.Int32(1025)}) }, "ValidationException"},
		{"random 0 bytes", func() error {
			_, err := ts.client.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(0)})
			return err
		}, "ValidationException"},
		{"dry run", func() error {
			_, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &key, Plaintext: secret, DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperationException"},
		{"re-encrypt to disabled", func() error {
			_, err := ts.client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: good, SourceEncryptionContext: encCtx, DestinationKeyId: &disabled})
			return err
		}, "DisabledException"},
		{"re-encrypt wrong source key", func() error {
			_, err := ts.client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: good, SourceKeyId: &other,
				SourceEncryptionContext: encCtx, DestinationKeyId: &key})
			return err
		}, "IncorrectKeyException"},
		{"re-encrypt wrong context", func() error {
			_, err := ts.client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: good, DestinationKeyId: &key})
			return err
		}, "InvalidCiphertextException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantCode(t, tt.name, err, tt.code, 0)
			noLeak(t, "error", err.Error(), secret)
		})
	}
	noLeak(t, "the log", ts.log.String(), secret)
}
