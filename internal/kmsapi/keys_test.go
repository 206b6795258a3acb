package kmsapi_test

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestDescribeKey(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	created, err := ts.client.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("described")})
	mustOK(t, "CreateKey", err)
	id := aws.ToString(created.KeyMetadata.KeyId)
	out, err := ts.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id})
	mustOK(t, "DescribeKey", err)
	m := out.KeyMetadata
	switch {
	case aws.ToString(m.AWSAccountId) != testAccount, aws.ToString(m.Arn) != ts.arn(id), aws.ToString(m.Description) != "described":
		t.Fatalf("DescribeKey: account %q, ARN %q, description %q", aws.ToString(m.AWSAccountId), aws.ToString(m.Arn), aws.ToString(m.Description))
	case !m.Enabled, m.KeyState != types.KeyStateEnabled, m.KeyUsage != types.KeyUsageTypeEncryptDecrypt,
		m.Origin != types.OriginTypeAwsKms, m.KeyManager != types.KeyManagerTypeCustomer:
		t.Fatalf("DescribeKey: %+v", m)
	case m.KeySpec != types.KeySpecSymmetricDefault, m.CustomerMasterKeySpec != types.CustomerMasterKeySpecSymmetricDefault,
		!slices.Equal(m.EncryptionAlgorithms, []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecSymmetricDefault}),
		aws.ToBool(m.MultiRegion), m.DeletionDate != nil, m.ExpirationModel != "":
		t.Fatalf("DescribeKey: %+v", m)
	case m.CreationDate == nil || m.CreationDate.Before(before) || m.CreationDate.After(time.Now().Add(time.Second)):
		t.Fatalf("DescribeKey: CreationDate %v", m.CreationDate)
	}
}

func TestKeyStates(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	id := ts.createKey(t)
	state := func() *types.KeyMetadata {
		out, err := ts.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id})
		mustOK(t, "DescribeKey", err)
		return out.KeyMetadata
	}
	_, err := ts.client.UpdateKeyDescription(ctx, &awskms.UpdateKeyDescriptionInput{KeyId: &id, Description: aws.String("new")})
	mustOK(t, "UpdateKeyDescription", err)
	if d := aws.ToString(state().Description); d != "new" {
		t.Fatalf("description %q after UpdateKeyDescription", d)
	}
	_, err = ts.client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &id})
	mustOK(t, "DisableKey", err)
	if m := state(); m.Enabled || m.KeyState != types.KeyStateDisabled {
		t.Fatalf("after DisableKey: %s", m.KeyState)
	}
	_, err = ts.client.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: aws.String(ts.arn(id))})
	mustOK(t, "EnableKey", err)

	_, err = ts.client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &id, PendingWindowInDays: aws.Int32(6)})
	wantCode(t, "6-day window", err, "ValidationException", 400)
	del, err := ts.client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &id})
	mustOK(t, "ScheduleKeyDeletion", err)
	if aws.ToInt32(del.PendingWindowInDays) != 30 || del.KeyState != types.KeyStatePendingDeletion || aws.ToString(del.KeyId) != ts.arn(id) ||
		del.DeletionDate == nil || time.Until(*del.DeletionDate) < 29*24*time.Hour {
		t.Fatalf("ScheduleKeyDeletion: %+v", del)
	}
	if m := state(); m.KeyState != types.KeyStatePendingDeletion || m.DeletionDate == nil {
		t.Fatalf("after ScheduleKeyDeletion: %s, %v", m.KeyState, m.DeletionDate)
	}
	_, err = ts.client.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: &id})
	wantCode(t, "EnableKey pending deletion", err, "KMSInvalidStateException", 400)
	_, err = ts.client.UpdateKeyDescription(ctx, &awskms.UpdateKeyDescriptionInput{KeyId: &id, Description: aws.String("x")})
	wantCode(t, "UpdateKeyDescription pending deletion", err, "KMSInvalidStateException", 400)
	cancel, err := ts.client.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: &id})
	mustOK(t, "CancelKeyDeletion", err)
	if aws.ToString(cancel.KeyId) != ts.arn(id) || state().KeyState != types.KeyStateDisabled {
		t.Fatalf("CancelKeyDeletion: %q, then %s", aws.ToString(cancel.KeyId), state().KeyState)
	}
	_, err = ts.client.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: &id})
	wantCode(t, "CancelKeyDeletion twice", err, "KMSInvalidStateException", 400)
	// Administrative operations take key ids and ARNs, not aliases.
	_, err = ts.client.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/st"), TargetKeyId: &id})
	mustOK(t, "CreateAlias", err)
	_, err = ts.client.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: aws.String("alias/st")})
	wantCode(t, "EnableKey by alias", err, "NotFoundException", 400)
}

func TestCreateKeyRefusals(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name string
		in   awskms.CreateKeyInput
		code string
	}{
		{"RSA key", awskms.CreateKeyInput{KeySpec: types.KeySpecRsa2048}, "UnsupportedOperationException"},
		{"HMAC key", awskms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}, "UnsupportedOperationException"},
		{"signing key", awskms.CreateKeyInput{KeyUsage: types.KeyUsageTypeSignVerify}, "UnsupportedOperationException"},
		{"unknown spec", awskms.CreateKeyInput{KeySpec: "AES_999"}, "ValidationException"},
		{"both specs", awskms.CreateKeyInput{KeySpec: types.KeySpecSymmetricDefault,
			CustomerMasterKeySpec: types.CustomerMasterKeySpecSymmetricDefault}, "ValidationException"},
		{"CloudHSM", awskms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm}, "UnsupportedOperationException"},
		{"unknown origin", awskms.CreateKeyInput{Origin: "ELSEWHERE"}, "ValidationException"},
		{"policy", awskms.CreateKeyInput{Policy: aws.String(`{"Version":"2012-10-17"}`)}, "UnsupportedOperationException"},
		{"tags", awskms.CreateKeyInput{Tags: []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}}}, "UnsupportedOperationException"},
		{"multi-Region", awskms.CreateKeyInput{MultiRegion: aws.Bool(true)}, "UnsupportedOperationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ts.client.CreateKey(t.Context(), &tt.in)
			wantCode(t, "CreateKey", err, tt.code, 400)
		})
	}
	if n := len(ts.ring.ListKeys()); n != 0 {
		t.Fatalf("refused CreateKey calls made %d keys", n)
	}
	// The one key spec, named either way, is fine.
	_, err := ts.client.CreateKey(t.Context(), &awskms.CreateKeyInput{KeySpec: types.KeySpecSymmetricDefault, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	mustOK(t, "CreateKey SYMMETRIC_DEFAULT", err)
}

func TestListKeysPaging(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	var want []string
	for range 5 {
		want = append(want, ts.createKey(t))
	}
	slices.Sort(want)
	var got []string
	in := &awskms.ListKeysInput{Limit: aws.Int32(2)}
	for pages := 1; ; pages++ {
		out, err := ts.client.ListKeys(ctx, in)
		mustOK(t, "ListKeys", err)
		for _, k := range out.Keys {
			if aws.ToString(k.KeyArn) != ts.arn(aws.ToString(k.KeyId)) {
				t.Fatalf("ListKeys: ARN %q for %q", aws.ToString(k.KeyArn), aws.ToString(k.KeyId))
			}
			got = append(got, aws.ToString(k.KeyId))
		}
		if !out.Truncated {
			if pages != 3 || out.NextMarker != nil {
				t.Fatalf("ListKeys: %d pages, last marker %v", pages, out.NextMarker)
			}
			break
		}
		in.Marker = out.NextMarker
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListKeys listed %v, want %v", got, want)
	}
	_, err := ts.client.ListKeys(ctx, &awskms.ListKeysInput{Marker: aws.String("bogus")})
	wantCode(t, "bad marker", err, "InvalidMarkerException", 400)
	_, err = ts.client.ListKeys(ctx, &awskms.ListKeysInput{Limit: aws.Int32(1001)})
	wantCode(t, "limit 1001", err, "ValidationException", 400)
}
