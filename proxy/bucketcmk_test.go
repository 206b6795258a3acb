package proxy

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestBucketDefaultCMK(t *testing.T) {
	e, second, outside := sseEnv(t)
	ctx := bg()
	encryption := func(keyID string) *s3.PutBucketEncryptionInput {
		def := &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms}
		if keyID != "" {
			def.KMSMasterKeyID = aws.String(keyID)
		}
		return &s3.PutBucketEncryptionInput{Bucket: aws.String(testBucket), ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
			Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: def}}}}
	}
	storedCMK := func(key string) string {
		t.Helper()
		if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), Body: bytes.NewReader([]byte(key))}); err != nil {
			t.Fatal(err)
		}
		m, err := parseMetadata(e.store.get(testBucket, key).header)
		if err != nil {
			t.Fatal(err)
		}
		return m.KeyID
	}
	defaultCMK := func() string {
		t.Helper()
		out, err := e.client.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(testBucket)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.KMSMasterKeyID)
	}

	if got := defaultCMK(); got != e.keyID {
		t.Fatalf("a new bucket's CMK %q, want s3seal's %q", got, e.keyID)
	}
	if _, err := e.client.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(testBucket),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.PutBucketEncryption(ctx, encryption("alias/second")); err != nil {
		t.Fatal(err)
	}
	if got := defaultCMK(); got != second {
		t.Fatalf("default CMK %q, want %q", got, second)
	}
	if got := storedCMK("under-default"); got != second {
		t.Errorf("an object without SSE headers is under %q, want the bucket's %q", got, second)
	}
	// s3seal's tag is kept through the client's tag changes, and hidden.
	if _, err := e.client.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(testBucket),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("b")}}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.client.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(testBucket)})
	if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != "b" {
		t.Fatalf("client's tags: %+v %v", tags, err)
	}
	if _, err := e.client.DeleteBucketTagging(ctx, &s3.DeleteBucketTaggingInput{Bucket: aws.String(testBucket)}); err != nil {
		t.Fatal(err)
	}
	e.proxy.settings = newBucketSettings() // as another replica sees it
	if got := defaultCMK(); got != second || storedCMK("after-tag-delete") != second {
		t.Fatalf("the default did not survive the client's tag changes: %q", got)
	}
	if _, err := e.client.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(testBucket)}); err == nil {
		t.Error("GetBucketTagging shows s3seal's own tag")
	}

	for _, tc := range []struct {
		name   string
		do     func() error
		code   string
		status int
	}{
		{"a CMK outside the allow-list", func() error { _, err := e.client.PutBucketEncryption(ctx, encryption(outside)); return err }, "AccessDenied", 403},
		{"a reserved tag", func() error {
			_, err := e.client.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(testBucket),
				Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("s3seal:default-cmk"), Value: aws.String(outside)}}}})
			return err
		}, "InvalidTag", 400},
	} {
		code, status := apiError(t, tc.do())
		if code != tc.code || status != tc.status {
			t.Errorf("%s: %s %d, want %s %d", tc.name, code, status, tc.code, tc.status)
		}
	}
	req := e.signedRequest(t, http.MethodPut, "/"+testBucket+"?encryption", strings.NewReader("<ServerSideEncryptionConfiguration/>"), 36, nil)
	if status, body, _ := e.sendResp(t, req); status != 400 || !strings.Contains(body, "MalformedXML") {
		t.Errorf("a configuration without a rule: %d %s", status, body)
	}

	if _, err := e.client.DeleteBucketEncryption(ctx, &s3.DeleteBucketEncryptionInput{Bucket: aws.String(testBucket)}); err != nil {
		t.Fatal(err)
	}
	if got := defaultCMK(); got != e.keyID || storedCMK("after-delete") != e.keyID {
		t.Fatalf("after DeleteBucketEncryption: %q, want s3seal's", got)
	}
}
