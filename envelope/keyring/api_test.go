package keyring

import (
	"bytes"
	"context"
	"testing"

	"github.com/s3seal/s3seal/envelope/kms"
)

// Tests of what the keyring gained for internal/kmsapi: descriptions,
// re-pointing aliases, a blob's key id, sized data keys, and AWS's error
// codes.

func TestKeyringUpdateKeyDescription(t *testing.T) {
	k, path := krOpen(t)
	a := krCreate(t, k, "old")
	if info, err := k.UpdateKeyDescription(a.ID, "new"); err != nil || info.Description != "new" {
		t.Fatalf("UpdateKeyDescription = %+v, %v", info, err)
	}
	reopened, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := reopened.DescribeKey(a.ID); info.Description != "new" {
		t.Fatalf("description after reopening: %q", info.Description)
	}
	if _, err := k.ScheduleKeyDeletion(a.ID, 7); err != nil {
		t.Fatal(err)
	}
	_, err = k.UpdateKeyDescription(a.ID, "late")
	krWantCode(t, "pending deletion", err, kms.ErrKeyDisabled, codeInvalidState)
	_, err = k.UpdateKeyDescription("alias/none", "x")
	krWantCode(t, "unknown key", err, kms.ErrKeyNotFound, codeNotFound)
}

func TestKeyringUpdateAlias(t *testing.T) {
	k, _ := krOpen(t)
	a, b, gone := krCreate(t, k, "a"), krCreate(t, k, "b"), krCreate(t, k, "gone")
	if err := k.CreateAlias("alias/x", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := k.ScheduleKeyDeletion(gone.ID, 7); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, alias, from, target string
		kind                      error
		code                      string
		wantTarget                string
	}{
		{"re-point", "alias/x", a.ID, b.ID, nil, "", b.ID},
		{"same target", "alias/x", "", b.ID, nil, "", b.ID},
		{"back, by alias", "alias/x", "", a.ID, nil, "", a.ID},
		{"unknown alias", "alias/none", "", b.ID, kms.ErrKeyNotFound, codeNotFound, a.ID},
		{"key id as alias", a.ID, "", b.ID, kms.ErrKeyNotFound, codeNotFound, a.ID},
		{"unknown target", "alias/x", "", "alias/none", kms.ErrKeyNotFound, codeNotFound, a.ID},
		{"target pending deletion", "alias/x", "", gone.ID, kms.ErrKeyDisabled, codeInvalidState, a.ID},
		{"re-pointed since the caller looked", "alias/x", b.ID, b.ID, kms.ErrInvalidKMSRequest, codeConflict, a.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := k.UpdateAlias(tt.alias, tt.from, tt.target)
			if tt.kind == nil && err != nil {
				t.Fatalf("UpdateAlias: %v", err)
			} else if tt.kind != nil {
				krWantCode(t, "UpdateAlias", err, tt.kind, tt.code)
			}
			info, err := k.DescribeKey("alias/x")
			if err != nil || info.ID != tt.wantTarget {
				t.Fatalf("alias/x names %s (%v), want %s", info.ID, err, tt.wantTarget)
			}
		})
	}
	if info, _ := k.DescribeKey(b.ID); len(info.Aliases) != 0 {
		t.Fatalf("the old target keeps aliases %v", info.Aliases)
	}
}

func TestKeyringCiphertextKeyID(t *testing.T) {
	ctx := context.Background()
	k, _ := krOpen(t)
	a := krCreate(t, k, "")
	dk, err := k.GenerateDataKey(ctx, a.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	gone := ringWrap(&ringKey{ID: "not-here", Material: [][]byte{make([]byte, 32)}}, []byte("x"), nil)
	if err := k.DisableKey(a.ID); err != nil { // a disabled key's blobs still name it
		t.Fatal(err)
	}
	tests := []struct {
		name string
		blob []byte
		want string
	}{
		{"blob", dk.Ciphertext, a.ID},
		{"empty", nil, ""},
		{"short", dk.Ciphertext[:10], ""},
		{"other format", append([]byte{2}, dk.Ciphertext[1:]...), ""},
		{"key not here", gone.Ciphertext, ""},
	}
	for _, tt := range tests {
		id, err := k.CiphertextKeyID(tt.blob)
		if tt.want != "" && (err != nil || id != tt.want) {
			t.Errorf("%s: CiphertextKeyID = %q, %v, want %q", tt.name, id, err, tt.want)
		}
		if tt.want == "" {
			krWantCode(t, tt.name, err, kms.ErrInvalidCiphertext, codeInvalidCiphertext)
		}
	}
}

func TestKeyringGenerateDataKeyOfSize(t *testing.T) {
	ctx := context.Background()
	k, _ := krOpen(t)
	a := krCreate(t, k, "")
	encCtx := map[string]string{"a": "b"}
	for _, size := range []int{1, 16, 32, MaxDataKeySize} {
		dk, err := k.GenerateDataKeyOfSize(ctx, a.ID, size, encCtx)
		if err != nil || len(dk.Plaintext) != size {
			t.Fatalf("GenerateDataKeyOfSize(%d): %d bytes, %v", size, len(dk.Plaintext), err)
		}
		pt, err := k.Decrypt(ctx, "", dk.Ciphertext, encCtx)
		if err != nil || !bytes.Equal(pt, dk.Plaintext) {
			t.Fatalf("Decrypt of a %d-byte data key: %v", size, err)
		}
	}
	for _, size := range []int{-1, 0, MaxDataKeySize + 1} {
		_, err := k.GenerateDataKeyOfSize(ctx, a.ID, size, nil)
		krWantCode(t, "size", err, kms.ErrInvalidKMSRequest, codeValidation)
	}
}

// TestKeyringErrorCodes checks that the keyring's errors name what AWS
// KMS answers in the same situation.
func TestKeyringErrorCodes(t *testing.T) {
	ctx := context.Background()
	k, _ := krOpen(t)
	a, b, disabled, deleted := krCreate(t, k, ""), krCreate(t, k, ""), krCreate(t, k, ""), krCreate(t, k, "")
	imported, err := k.ImportKey(make([]byte, 32), "")
	if err != nil {
		t.Fatal(err)
	}
	w, err := k.Encrypt(ctx, a.ID, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.CreateAlias("alias/taken", a.ID); err != nil {
		t.Fatal(err)
	}
	if err := k.DisableKey(disabled.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := k.ScheduleKeyDeletion(deleted.ID, 7); err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(w.Ciphertext)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name string
		err  error
		kind error
		code string
	}{
		{"unknown key", k.EnableKey("00000000-0000-4000-8000-000000000000"), kms.ErrKeyNotFound, codeNotFound},
		{"disabled", func() error { _, err := k.Encrypt(ctx, disabled.ID, []byte("x"), nil); return err }(), kms.ErrKeyDisabled, codeDisabled},
		{"pending deletion", func() error { _, err := k.Encrypt(ctx, deleted.ID, []byte("x"), nil); return err }(), kms.ErrKeyDisabled, codeInvalidState},
		{"enable pending deletion", k.EnableKey(deleted.ID), kms.ErrKeyDisabled, codeInvalidState},
		{"cancel, not pending", k.CancelKeyDeletion(a.ID), kms.ErrInvalidKMSRequest, codeInvalidState},
		{"alias taken", k.CreateAlias("alias/taken", b.ID), kms.ErrInvalidKMSRequest, codeAlreadyExists},
		{"reserved alias", k.CreateAlias("alias/aws/s3", b.ID), kms.ErrInvalidKMSRequest, codeInvalidAliasName},
		{"other key's blob", func() error { _, err := k.Decrypt(ctx, b.ID, w.Ciphertext, nil); return err }(), kms.ErrInvalidCiphertext, codeIncorrectKey},
		{"tampered", func() error { _, err := k.Decrypt(ctx, "", tampered, nil); return err }(), kms.ErrInvalidCiphertext, codeInvalidCiphertext},
		{"rotate imported", func() error { _, err := k.RotateKey(imported.ID); return err }(), kms.ErrInvalidKMSRequest, codeUnsupported},
		{"rotate disabled", func() error { _, err := k.RotateKey(disabled.ID); return err }(), kms.ErrKeyDisabled, codeDisabled},
		{"window", func() error { _, err := k.ScheduleKeyDeletion(a.ID, 6); return err }(), kms.ErrInvalidKMSRequest, codeValidation},
	}
	for _, tt := range tests {
		krWantCode(t, tt.name, tt.err, tt.kind, tt.code)
	}
}
