package kmsapi_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

func TestRotation(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	id := ts.createKey(t)
	status := func() *awskms.GetKeyRotationStatusOutput {
		out, err := ts.client.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: &id})
		mustOK(t, "GetKeyRotationStatus", err)
		return out
	}
	if s := status(); s.KeyRotationEnabled || s.RotationPeriodInDays != nil || s.NextRotationDate != nil {
		t.Fatalf("a new key's rotation status: %+v", s)
	}
	for _, days := range []int32{89, 2561} {
		_, err := ts.client.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: &id, RotationPeriodInDays: &days})
		wantCode(t, "EnableKeyRotation", err, "ValidationException", 400)
	}
	_, err := ts.client.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: &id})
	mustOK(t, "EnableKeyRotation", err)
	s := status()
	if !s.KeyRotationEnabled || aws.ToInt32(s.RotationPeriodInDays) != 365 || aws.ToString(s.KeyId) != ts.arn(id) ||
		s.NextRotationDate == nil || time.Until(*s.NextRotationDate) < 364*24*time.Hour {
		t.Fatalf("rotation status after EnableKeyRotation: %+v", s)
	}
	_, err = ts.client.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: &id, RotationPeriodInDays: aws.Int32(90)})
	mustOK(t, "EnableKeyRotation 90", err)
	if d := aws.ToInt32(status().RotationPeriodInDays); d != 90 {
		t.Fatalf("period %d days, want 90", d)
	}

	enc, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("before")})
	mustOK(t, "Encrypt", err)
	rot, err := ts.client.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id})
	mustOK(t, "RotateKeyOnDemand", err)
	if aws.ToString(rot.KeyId) != ts.arn(id) {
		t.Fatalf("RotateKeyOnDemand: KeyId %q", aws.ToString(rot.KeyId))
	}
	if info, _ := ts.ring.DescribeKey(id); info.Versions != 2 {
		t.Fatalf("%d material versions after a rotation", info.Versions)
	}
	dec, err := ts.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	mustOK(t, "Decrypt after rotation", err)
	if string(dec.Plaintext) != "before" {
		t.Fatal("a blob made before the rotation decrypts to other bytes")
	}

	_, err = ts.client.DisableKeyRotation(ctx, &awskms.DisableKeyRotationInput{KeyId: &id})
	mustOK(t, "DisableKeyRotation", err)
	if status().KeyRotationEnabled {
		t.Fatal("rotation still enabled")
	}
	_, err = ts.client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &id})
	mustOK(t, "DisableKey", err)
	for name, call := range map[string]func() error{
		"RotateKeyOnDemand": func() error {
			_, err := ts.client.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id})
			return err
		},
		"EnableKeyRotation": func() error {
			_, err := ts.client.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: &id})
			return err
		},
		"DisableKeyRotation": func() error {
			_, err := ts.client.DisableKeyRotation(ctx, &awskms.DisableKeyRotationInput{KeyId: &id})
			return err
		},
	} {
		wantCode(t, name+" of a disabled key", call(), "DisabledException", 400)
	}
}
