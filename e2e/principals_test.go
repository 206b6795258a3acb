package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/metricstest"
	"github.com/s3seal/s3seal/internal/testkms"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// addUser adds a user and returns it as an instance of in signing with
// the new credential.
func addUser(t *testing.T, in *instance, dataDir, name string, args ...string) *instance {
	t.Helper()
	var cred struct {
		AccessKey string `json:"access_key"`
		SecretKey string `json:"secret_key"`
	}
	out := operatorCmd(t, dataDir, append([]string{"users", "add", name, "-json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &cred); err != nil || cred.AccessKey == "" || cred.SecretKey == "" {
		t.Fatalf("users add %s printed %q: %v", name, out, err)
	}
	u := *in
	u.AccessKey, u.SecretKey = cred.AccessKey, cred.SecretKey
	return &u
}

// eventually retries f for up to 5 seconds (what a running serve takes to
// see a change of users.json), failing the test with f's last error.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 5 s", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantCode returns nil if err is an S3 error with code, else an error
// saying what it was.
func wantCode(err error, code string) error {
	if got, _ := apiCode(err); got != code {
		return &unexpected{got: err, want: code}
	}
	return nil
}

type unexpected struct {
	got  error
	want string
}

func (u *unexpected) Error() string {
	if u.got == nil {
		return "allowed, want " + u.want
	}
	return u.got.Error() + ", want " + u.want
}

// TestPrincipalsS3 runs two key-users, each granted its own bucket and
// CMK, and a key-admin, against one s3seal: each user reads and writes its
// own objects and is refused the other's, even once its bucket grant is
// widened, since its key grant is not; listings show what the grants
// allow; the key-admin reads no object data; denials are counted; a removed
// user's credential stops working.
func TestPrincipalsS3(t *testing.T) {
	e := embeddedEnv(t)
	ctx := context.Background()
	dir := e.emb.dataDir
	operatorCmd(t, dir, "keys", "create", "-alias", "alias/team-a")
	operatorCmd(t, dir, "keys", "create", "-alias", "alias/team-b")
	in := startS3seal(t, e, e.kmsURL, "alias/s3seal", "S3SEAL_KMS_PROVIDER=keyring",
		"S3SEAL_KMS_DECRYPT_KEY_IDS=alias/team-a,alias/team-b", "S3SEAL_KMS_ENDPOINT=", "S3SEAL_KMS_REGION=")
	admin := sdkClient(t, in)
	ba, bb := newBucket(t, e), newBucket(t, e)
	for bucket, cmk := range map[string]string{ba: "alias/team-a", bb: "alias/team-b"} {
		if _, err := admin.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(bucket),
			ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(cmk)}}}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	alice := sdkClient(t, addUser(t, in, dir, "alice", "-role", "key-user", "-buckets", ba, "-keys", "alias/team-a"))
	bob := sdkClient(t, addUser(t, in, dir, "bob", "-role", "key-user", "-buckets", bb, "-keys", "alias/team-b"))
	kadmin := sdkClient(t, addUser(t, in, dir, "kadmin", "-role", "key-admin"))

	put := func(c *s3.Client, bucket, key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte("body of " + key))})
		return err
	}
	get := func(c *s3.Client, bucket, key string) error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err == nil && string(b) != "body of "+key {
			t.Fatalf("%s/%s reads %q", bucket, key, b)
		}
		return err
	}
	eventually(t, "alice writes her bucket", func() error { return put(alice, ba, "a") })
	eventually(t, "bob writes his bucket", func() error { return put(bob, bb, "b") })
	if err := get(alice, ba, "a"); err != nil {
		t.Fatal(err)
	}
	if err := get(bob, bb, "b"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"alice reads bob's object", get(alice, bb, "b")},
		{"alice writes bob's bucket", put(alice, bb, "a2")},
		{"bob reads alice's object", get(bob, ba, "a")},
		{"the key-admin reads an object", get(kadmin, ba, "a")},
		{"the key-admin writes an object", put(kadmin, ba, "k")},
	} {
		if err := wantCode(tc.err, "AccessDenied"); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}

	// A wider bucket grant lets alice list bob's bucket, not read his
	// objects: her key grant does not cover his CMK.
	operatorCmd(t, dir, "users", "grant", "alice", "-buckets", bb)
	eventually(t, "alice lists bob's bucket after the grant", func() error {
		_, err := alice.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bb)})
		return err
	})
	if err := wantCode(get(alice, bb, "b"), "AccessDenied"); err != nil {
		t.Errorf("alice reads bob's object with a bucket grant but no key grant: %v", err)
	}
	for c, want := range map[*s3.Client][]string{alice: {ba, bb}, bob: {bb}} {
		out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range out.Buckets {
			got = append(got, aws.ToString(b.Name))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ListBuckets shows %v, want %v", got, want)
		}
	}
	if _, err := kadmin.ListBuckets(ctx, &s3.ListBucketsInput{}); wantCode(err, "AccessDenied") != nil {
		t.Errorf("the key-admin lists buckets: %v", err)
	}

	if n := metric(t, in, "s3seal_access_denied_total", "operation=GetObject"); n < 3 {
		t.Errorf("s3seal_access_denied_total for GetObject is %v, want at least 3", n)
	}
	if !strings.Contains(in.logs.String(), `"principal":"alice"`) {
		t.Error("no denial logged with the principal's name")
	}

	operatorCmd(t, dir, "users", "remove", "bob")
	eventually(t, "bob's credential after his removal", func() error { return wantCode(get(bob, bb, "b"), "InvalidAccessKeyId") })
}

// metric sums family's series with labels on in's /metrics.
func metric(t *testing.T, in *instance, family string, labels ...string) float64 {
	t.Helper()
	scrape, err := metricstest.Get(in.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return scrape.Sum(family, labels...)
}

// TestKMSAPIServesAnotherS3seal runs two s3seal processes over one store:
// the first with the embedded keyring and its KMS API, the second with
// S3SEAL_KMS_PROVIDER=aws pointed at that API as a key-user. Objects
// written through either read through both, and a key disabled through the
// API stops the second one's writes.
func TestKMSAPIServesAnotherS3seal(t *testing.T) {
	e := embeddedEnv(t)
	ctx := context.Background()
	first := startS3seal(t, e, e.kmsURL, "alias/s3seal", "S3SEAL_KMS_PROVIDER=keyring",
		"S3SEAL_KMS_ENDPOINT=", "S3SEAL_KMS_REGION=")
	replica := addUser(t, first, e.emb.dataDir, "replicas", "-role", "key-user", "-keys", "alias/s3seal")
	time.Sleep(2500 * time.Millisecond) // serve takes in users.json every 2 s
	second := startS3seal(t, e, first.KMSAPIURL, "alias/s3seal",
		"AWS_ACCESS_KEY_ID="+replica.AccessKey, "AWS_SECRET_ACCESS_KEY="+replica.SecretKey)
	bucket := newBucket(t, e)
	c1, c2 := sdkClient(t, first), sdkClient(t, second)
	for name, c := range map[string]*s3.Client{"first": c1, "second": c2} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("by-" + name),
			Body: bytes.NewReader([]byte("written through the " + name))}); err != nil {
			t.Fatalf("PUT through the %s: %v", name, err)
		}
	}
	for reader, c := range map[string]*s3.Client{"first": c1, "second": c2} {
		for _, writer := range []string{"first", "second"} {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("by-" + writer)})
			if err != nil {
				t.Fatalf("the %s reads what the %s wrote: %v", reader, writer, err)
			}
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if string(b) != "written through the "+writer {
				t.Fatalf("the %s reads %q for what the %s wrote", reader, b, writer)
			}
		}
	}
	if n := metric(t, first, "s3seal_kms_api_requests_total", "operation=GenerateDataKey", "result=ok"); n < 1 {
		t.Errorf("the first s3seal counted %v GenerateDataKey calls on its KMS API", n)
	}

	// A key disabled through the API stops the first one's writes and
	// reads at once: it is the keyring the proxy uses.
	kc := testkms.ClientAs(t, first.KMSAPIURL, first.AccessKey, first.SecretKey)
	key, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/s3seal")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	_, err = c1.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("late"), Body: bytes.NewReader([]byte("x"))})
	if err := wantCode(err, "KMS.DisabledException"); err != nil {
		t.Errorf("the first's PUT right after DisableKey: %v", err)
	}
	_, err = c1.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("by-first")})
	if err := wantCode(err, "KMS.DisabledException"); err != nil {
		t.Errorf("the first's GET right after DisableKey: %v", err)
	}
	if _, err := kc.EnableKey(ctx, &kms.EnableKeyInput{KeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	operatorCmd(t, e.emb.dataDir, "keys", "disable", "alias/s3seal") // and through s3seal keys
	eventually(t, "the second's PUT after the key was disabled", func() error {
		_, err := c2.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("late"), Body: bytes.NewReader([]byte("x"))})
		return wantCode(err, "KMS.DisabledException")
	})
}
