package proxy

import (
	"bytes"
	"fmt"
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

	reservedTag := func(key string) func() error {
		return func() error {
			_, err := e.client.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(testBucket),
				Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(key), Value: aws.String("true")}}}})
			return err
		}
	}
	for _, tc := range []struct {
		name   string
		do     func() error
		code   string
		status int
	}{
		{"a CMK outside the allow-list", func() error { _, err := e.client.PutBucketEncryption(ctx, encryption(outside)); return err }, "AccessDenied", 403},
		{"a reserved tag", reservedTag("s3seal:default-cmk"), "InvalidTag", 400},
		{"a reserved tag, other case", reservedTag("S3SEAL:bucket-key"), "InvalidTag", 400},
		{"a reserved tag, leading space", reservedTag(" s3seal:bucket-key"), "InvalidTag", 400},
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

// TestBucketEncryptionStrict: a PutBucketEncryption document with a
// setting s3seal would not apply — misplaced, repeated, or not a boolean —
// is refused and changes nothing.
func TestBucketEncryptionStrict(t *testing.T) {
	e := newEnv(t, withBucketKeys(t, &generations{}, false))
	const def = `<ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault>`
	doc := func(inner string) string {
		return `<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` + inner + `</ServerSideEncryptionConfiguration>`
	}
	for _, tc := range []struct{ name, doc string }{
		{"BucketKeyEnabled inside the default", doc(`<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><BucketKeyEnabled>true</BucketKeyEnabled></ApplyServerSideEncryptionByDefault></Rule>`)},
		{"BucketKeyEnabled at the root", doc(`<Rule>` + def + `</Rule><BucketKeyEnabled>true</BucketKeyEnabled>`)},
		{"BucketKeyEnabled empty", doc(`<Rule>` + def + `<BucketKeyEnabled/></Rule>`)},
		{"BucketKeyEnabled TRUE", doc(`<Rule>` + def + `<BucketKeyEnabled>TRUE</BucketKeyEnabled></Rule>`)},
		{"BucketKeyEnabled twice", doc(`<Rule>` + def + `<BucketKeyEnabled>false</BucketKeyEnabled><BucketKeyEnabled>true</BucketKeyEnabled></Rule>`)},
		{"two algorithms", doc(`<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>`)},
		{"two defaults", doc(`<Rule>` + def + def + `</Rule>`)},
		{"two rules", doc(`<Rule>` + def + `</Rule><Rule>` + def + `</Rule>`)},
		{"another root", `<Other><Rule>` + def + `</Rule></Other>`},
	} {
		req := e.signedRequest(t, http.MethodPut, "/"+testBucket+"?encryption", strings.NewReader(tc.doc), int64(len(tc.doc)), nil)
		if status, body, _ := e.sendResp(t, req); status != http.StatusBadRequest || !strings.Contains(body, "MalformedXML") {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	e.store.mu.Lock()
	_, tagged := e.store.tags[testBucket]
	e.store.mu.Unlock()
	if bucketKeyEnabled(t, e) || tagged {
		t.Error("a refused configuration changed the bucket")
	}
}

// TestBucketTagBudget: s3seal's tags count against S3's 50 per bucket, and
// a client going over hears why.
func TestBucketTagBudget(t *testing.T) {
	e := newEnv(t, withBucketKeys(t, &generations{}, false))
	if err := putBucketKeySetting(e, true); err != nil {
		t.Fatal(err)
	}
	clientTags := func(n int) error {
		var set []types.Tag
		for i := range n {
			set = append(set, types.Tag{Key: aws.String(fmt.Sprintf("t%d", i)), Value: aws.String("v")})
		}
		_, err := e.client.PutBucketTagging(bg(), &s3.PutBucketTaggingInput{Bucket: aws.String(testBucket), Tagging: &types.Tagging{TagSet: set}})
		return err
	}
	if err := clientTags(49); err != nil {
		t.Fatalf("49 client tags beside s3seal's one: %v", err)
	}
	err := clientTags(50)
	if code, status := apiError(t, err); code != "InvalidTag" || status != http.StatusBadRequest || !strings.Contains(err.Error(), "s3seal keeps 1") {
		t.Fatalf("50 client tags beside s3seal's one: %v", err)
	}
	if !bucketKeyEnabled(t, e) {
		t.Fatal("the refused tagging lost the bucket's setting")
	}
}

// TestBucketSettingsStaleRead: a setting read from the store before this
// replica wrote one is not remembered over it.
func TestBucketSettingsStaleRead(t *testing.T) {
	b := newBucketSettings()
	_, mark, ok := b.get("bkt")
	if ok {
		t.Fatal("an empty cache remembered a setting")
	}
	b.wrote("bkt", bucketSetting{bucketKey: "true"}) // while the read was under way
	b.learned("bkt", bucketSetting{bucketKey: "false"}, mark)
	if s, _, ok := b.get("bkt"); !ok || s.bucketKey != "true" {
		t.Fatalf("remembered %+v, want the setting written", s)
	}
	_, mark, _ = b.get("other")
	b.learned("other", bucketSetting{cmk: "k"}, mark)
	if s, _, ok := b.get("other"); !ok || s.cmk != "k" {
		t.Fatalf("a read without a write in between was not remembered: %+v", s)
	}
}
