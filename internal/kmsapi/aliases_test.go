package kmsapi_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

func TestAliases(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	k1, k2 := ts.createKey(t), ts.createKey(t)
	create := func(alias, target string) error {
		_, err := ts.client.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: &alias, TargetKeyId: &target})
		return err
	}
	mustOK(t, "CreateAlias", create("alias/a", k1))
	mustOK(t, "CreateAlias by ARN", create("alias/b", ts.arn(k1)))
	refusals := []struct {
		name, alias, target, code string
	}{
		{"taken", "alias/a", k2, "AlreadyExistsException"},
		{"reserved", "alias/aws/s3", k2, "InvalidAliasNameException"},
		{"no prefix", "plain", k2, "InvalidAliasNameException"},
		{"bad character", "alias/a b", k2, "InvalidAliasNameException"},
		{"target by alias", "alias/c", "alias/a", "NotFoundException"},
		{"unknown target", "alias/c", "00000000-0000-4000-8000-000000000000", "NotFoundException"},
	}
	for _, tt := range refusals {
		wantCode(t, "CreateAlias "+tt.name, create(tt.alias, tt.target), tt.code, 400)
	}

	_, err := ts.client.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String("alias/a"), TargetKeyId: &k2})
	mustOK(t, "UpdateAlias", err)
	enc, err := ts.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String("alias/a"), Plaintext: []byte("x")})
	mustOK(t, "Encrypt by alias", err)
	if aws.ToString(enc.KeyId) != ts.arn(k2) {
		t.Fatalf("alias/a names %q after UpdateAlias, want %q", aws.ToString(enc.KeyId), ts.arn(k2))
	}
	_, err = ts.client.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String("alias/none"), TargetKeyId: &k2})
	wantCode(t, "UpdateAlias of no alias", err, "NotFoundException", 400)

	list := func(in *awskms.ListAliasesInput) []string {
		var names []string
		for {
			out, err := ts.client.ListAliases(ctx, in)
			mustOK(t, "ListAliases", err)
			for _, a := range out.Aliases {
				if aws.ToString(a.AliasArn) != "arn:aws:kms:"+testRegion+":"+testAccount+":"+aws.ToString(a.AliasName) {
					t.Fatalf("ListAliases: ARN %q", aws.ToString(a.AliasArn))
				}
				names = append(names, aws.ToString(a.AliasName)+"="+aws.ToString(a.TargetKeyId))
			}
			if !out.Truncated {
				return names
			}
			in.Marker = out.NextMarker
		}
	}
	if got, want := list(&awskms.ListAliasesInput{Limit: aws.Int32(1)}), []string{"alias/a=" + k2, "alias/b=" + k1}; !slices.Equal(got, want) {
		t.Fatalf("ListAliases = %v, want %v", got, want)
	}
	if got, want := list(&awskms.ListAliasesInput{KeyId: aws.String(ts.arn(k1))}), []string{"alias/b=" + k1}; !slices.Equal(got, want) {
		t.Fatalf("ListAliases(k1) = %v, want %v", got, want)
	}
	_, err = ts.client.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String("alias/b")})
	mustOK(t, "DeleteAlias", err)
	_, err = ts.client.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String("alias/b")})
	wantCode(t, "DeleteAlias twice", err, "NotFoundException", 400)
	if got := list(&awskms.ListAliasesInput{KeyId: &k1}); len(got) != 0 {
		t.Fatalf("ListAliases(k1) after DeleteAlias = %v", got)
	}
}
