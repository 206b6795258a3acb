package e2e

// The six ways s3seal could once be made to store plaintext, act on
// unverified bytes, return shifted plaintext or decrypt under a key the
// store chose (issue "trust"), each tried end to end against the real
// stores and shown to fail.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/internal/adversary"
)

// rawAnswer is an answer to a hand-made request.
type rawAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a rawAnswer) code() string {
	_, rest, _ := strings.Cut(string(a.body), "<Code>")
	code, _, _ := strings.Cut(rest, "</Code>")
	return code
}

// signed builds a request to s3seal signed with its client credential, the
// payload hash covering signedBody while body is what is sent: a captured
// request replayed with another body.
func signed(t *testing.T, in *instance, method, path string, signedBody, body []byte, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, in.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	sum := sha256.Sum256(signedBody)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: in.AccessKey, SecretAccessKey: in.SecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, "s3", region, time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

func do(t *testing.T, req *http.Request) rawAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: body}
}

// lyingStore puts an adversary.Store on 127.0.0.1 in front of e's store and
// returns it with a testEnv whose store is the liar. An embedded store must
// be running (an s3seal of the test started), and the liar reaches it at
// the address of that start.
func lyingStore(t *testing.T, e testEnv) (*adversary.Store, testEnv) {
	t.Helper()
	storeURL, ak, sk := e.storeAccess(t)
	u, err := url.Parse(storeURL)
	if err != nil {
		t.Fatal(err)
	}
	liar, err := adversary.New(u, ak, sk, region)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(liar)
	t.Cleanup(srv.Close)
	lying := testEnv{name: e.name, kmsURL: e.kmsURL, storeURL: srv.URL, storeAK: ak, storeSK: sk}
	return liar, lying
}

// Finding 1: a captured request replayed with another body of the same
// length. The body is verified before anything is forwarded, so the store
// never applies it.
func TestReplayedBodyNeverApplied(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		bucket := newBucket(t, e)
		ctx := context.Background()
		if _, err := sdkClient(t, in).PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("keep"), Body: strings.NewReader("kept")}); err != nil {
			t.Fatal(err)
		}
		// What the client signed, and what an attacker sends instead.
		deny := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/none"]}]}`, bucket)
		allow := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, bucket)
		allow += strings.Repeat(" ", len(deny)-len(allow))
		delSigned := `<Delete><Object><Key>none</Key></Object></Delete>`
		delSent := `<Delete><Object><Key>keep</Key></Object></Delete>`
		tagSigned, tagSent := `<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>`, `<Tagging><TagSet><Tag><Key>a</Key><Value>2</Value></Tag></TagSet></Tagging>`
		for _, tc := range []struct {
			name, method, path string
			signed, sent       string
		}{
			{"PutBucketPolicy", "PUT", "/" + bucket + "?policy", deny, allow},
			{"DeleteObjects", "POST", "/" + bucket + "?delete", delSigned, delSent},
			{"PutObjectTagging", "PUT", "/" + bucket + "/keep?tagging", tagSigned, tagSent},
		} {
			if len(tc.signed) != len(tc.sent) {
				t.Fatalf("%s: the replayed body must keep the length", tc.name)
			}
			a := do(t, signed(t, in, tc.method, tc.path, []byte(tc.signed), []byte(tc.sent), nil))
			if a.status != http.StatusBadRequest || a.code() != "XAmzContentSHA256Mismatch" {
				t.Errorf("%s replayed with another body: %d %s", tc.name, a.status, a.body)
			}
		}
		st := store(t, e)
		if p, err := st.GetBucketPolicy(ctx, bucket); err == nil && p != "" {
			t.Errorf("the replayed policy was applied: %s", p)
		}
		if _, err := st.StatObject(ctx, bucket, "keep", minio.StatObjectOptions{}); err != nil {
			t.Errorf("the replayed DeleteObjects deleted an object: %v", err)
		}
		if tags, err := st.GetObjectTagging(ctx, bucket, "keep", minio.GetObjectTaggingOptions{}); err == nil && len(tags.ToMap()) > 0 {
			t.Errorf("the replayed tagging was applied: %v", tags.ToMap())
		}
		// Anonymous reads still fail at the store itself.
		storeURL, _, _ := e.storeAccess(t)
		resp, err := http.Get(storeURL + "/" + bucket + "/keep")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the store serves anonymous reads")
		}
	})
}

// Finding 2: sub-resources on objects. What s3seal does not route is
// refused; what it routes carries only the document it must; and a store
// that takes a sub-resource request for an object read or write is caught.
func TestSubresourcesNeverStorePlaintext(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		bucket := newBucket(t, e)
		ctx := context.Background()
		if _, err := sdkClient(t, in).PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("object body")}); err != nil {
			t.Fatal(err)
		}
		before := mustStat(t, store(t, e), bucket, "k")
		secret := []byte("plaintext that must never be stored in the clear")
		form := http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}
		for _, tc := range []struct {
			method, path string
			header       http.Header
			body         []byte
			status       int
			code         string
		}{
			{"PUT", "/k?restore", nil, secret, 501, "NotImplemented"},
			{"GET", "/k?restore", nil, nil, 501, "NotImplemented"},
			{"PUT", "/k?some-future-subresource", nil, secret, 501, "NotImplemented"},
			{"PUT", "/k?tagging", nil, secret, 400, "MalformedXML"},
			{"PUT", "/k?acl", nil, secret, 400, "MalformedXML"},
			{"PUT", "/k?retention", nil, secret, 400, "MalformedXML"},
			{"PUT", "/k?legal-hold", nil, secret, 400, "MalformedXML"},
			{"PUT", "/k?tagging", http.Header{"X-Amz-Meta-S3seal-K": {"planted"}}, []byte(`<Tagging><TagSet></TagSet></Tagging>`), 400, "InvalidArgument"},
			{"POST", "?unknown", form, secret, 501, "NotImplemented"},
			{"POST", "/k", nil, secret, 501, "NotImplemented"},
		} {
			a := do(t, signed(t, in, tc.method, "/"+bucket+tc.path, tc.body, tc.body, tc.header))
			if a.status != tc.status || a.code() != tc.code {
				t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, a.status, a.body, tc.status, tc.code)
			}
		}
		if after := mustStat(t, store(t, e), bucket, "k"); after.ETag != before.ETag {
			t.Errorf("the object changed in the store: ETag %s, was %s", after.ETag, before.ETag)
		}
		checkStoreHasNo(t, e, bucket, secret)

		// A store that does not route sub-resources, in front of this one.
		liar, lying := lyingStore(t, e)
		liar.Set(adversary.Lie{Kind: adversary.IgnoreSubresources})
		naive := startS3seal(t, lying, e.kmsURL, in.KeyAlias)
		a := do(t, signed(t, naive, "GET", "/"+bucket+"/k?tagging", nil, nil, nil))
		stored := storedBytes(t, e, bucket, "k")
		if a.status != http.StatusBadGateway || a.code() != "BadStoreAnswer" || bytes.Contains(a.body, stored[:32]) {
			t.Errorf("GET ?tagging answered with an object: %d %q", a.status, a.body)
		}
		doc := []byte(`<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>`)
		if a := do(t, signed(t, naive, "PUT", "/"+bucket+"/k?tagging", doc, doc, nil)); a.status != http.StatusBadGateway || a.code() != "BadStoreAnswer" {
			t.Errorf("PUT ?tagging taken for an object write: %d %s", a.status, a.body)
		}
	})
}

// checkStoreHasNo fails if any object in bucket holds secret.
func checkStoreHasNo(t *testing.T, e testEnv, bucket string, secret []byte) {
	t.Helper()
	st := store(t, e)
	for obj := range st.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if bytes.Contains(storedBytes(t, e, bucket, obj.Key), secret) {
			t.Errorf("the store holds the plaintext in %s", obj.Key)
		}
	}
}

// storedBytes is what the store holds for bucket/key (opts: a range, say).
func storedBytes(t *testing.T, e testEnv, bucket, key string, opts ...minio.GetObjectOptions) []byte {
	t.Helper()
	var o minio.GetObjectOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	obj, err := store(t, e).GetObject(context.Background(), bucket, key, o)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mpObject uploads a three-part object (6 MiB, 5 MiB, 100 bytes) through
// in and returns its plaintext.
func mpObject(t *testing.T, in *instance, bucket, key string) []byte {
	t.Helper()
	plain := plaintext(11<<20+100, 9)
	if err := multipartUpload(t, sdkClient(t, in), bucket, key, splitParts(plain, 6<<20, 5<<20), nil); err != nil {
		t.Fatal(err)
	}
	return plain
}

// Findings 3 and 4: part sizes and part counts the store reports. Sizes
// that break the multipart rule while keeping the total, and a part count
// of 2^40, are refused; nothing is returned from a wrong offset, and the
// process stays small.
func TestLyingLayoutRefused(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		bucket := newBucket(t, e)
		plain := mpObject(t, in, bucket, "mp")
		liar, lying := lyingStore(t, e)
		reader := startS3seal(t, lying, e.kmsURL, in.KeyAlias) // a replica with no layout cached
		c := sdkClient(t, reader)
		head := func(k int) adversary.Match { return adversary.Match{Method: "HEAD", PartNumber: k} }
		liar.Set(adversary.Lie{Match: head(1), Kind: adversary.ContentLength, N: -17}, adversary.Lie{Match: head(2), Kind: adversary.ContentLength, N: 17})
		boundary := 6 << 20
		if got, err := readRange(c, bucket, "mp", boundary-10, boundary+10); err == nil {
			if !bytes.Equal(got, plain[boundary-10:boundary+11]) {
				t.Fatal("a ranged GET returned bytes from the wrong offset")
			}
			t.Error("part sizes that break the multipart rule were believed")
		} else if code, status := apiCode(err); code != "StoredObjectCorrupt" || status != http.StatusBadGateway {
			t.Errorf("ranged GET under lying part sizes: %v", err)
		}
		// UploadPartCopy of the same range re-encrypts nothing.
		up, err := c.CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("copy")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.UploadPartCopy(context.Background(), &s3.UploadPartCopyInput{Bucket: &bucket, Key: aws.String("copy"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
			CopySource: aws.String(bucket + "/mp"), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", boundary-10, boundary+10))})
		if code, _ := apiCode(err); code != "StoredObjectCorrupt" {
			t.Errorf("UploadPartCopy under lying part sizes: %v", err)
		}

		liar.Set(adversary.Lie{Kind: adversary.ETagParts, N: 1 << 40})
		for _, get := range []func() error{
			func() error { _, err := readThrough(c, bucket, "mp"); return err },
			func() error { _, err := readRange(c, bucket, "mp", 5, 50); return err },
			func() error { _, err := readPart(c, bucket, "mp", 2); return err },
			func() error {
				_, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("mp")})
				return err
			},
		} {
			if code, status := apiCode(get()); status != http.StatusBadGateway {
				t.Errorf("read under a part count of 2^40: %s %d", code, status)
			}
		}
		if rss := peakRSS(t, reader.pid()); rss > 64<<20 {
			t.Errorf("peak RSS %d MiB after lies about part counts", rss>>20)
		}
	})
}

// Finding 5: the store cannot pick the CMK. An object sealed under another
// CMK the KMS would let s3seal use (a store operator's own key, say) is
// refused before any KMS call, with an error naming the key and the
// variable; listing that key in S3SEAL_KMS_DECRYPT_KEY_IDS is how an
// operator moves between CMKs.
func TestStoreCannotPickCMK(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		planter := startS3seal(t, e, e.kmsURL, "") // another CMK, the same store
		bucket := newBucket(t, e)
		ctx := context.Background()
		if _, err := sdkClient(t, planter).PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("planted"), Body: strings.NewReader("planted data")}); err != nil {
			t.Fatal(err)
		}
		decrypts := kmsCalls(t, in, "Decrypt")
		_, err := readThrough(sdkClient(t, in), bucket, "planted")
		code, status := apiCode(err)
		if code != "AccessDenied" || status != http.StatusForbidden || !strings.Contains(err.Error(), "S3SEAL_KMS_DECRYPT_KEY_IDS") {
			t.Errorf("object under a foreign CMK: %v", err)
		}
		if n := kmsCalls(t, in, "Decrypt"); n != decrypts {
			t.Errorf("%v KMS Decrypt calls for an object refused by the allow-list", n-decrypts)
		}
		moved := startS3seal(t, e, e.kmsURL, in.KeyAlias, "S3SEAL_KMS_DECRYPT_KEY_IDS="+planter.KeyAlias)
		if got, err := readThrough(sdkClient(t, moved), bucket, "planted"); err != nil || string(got) != "planted data" {
			t.Errorf("with the CMK listed in S3SEAL_KMS_DECRYPT_KEY_IDS: %q %v", got, err)
		}
	})
}

// kmsCalls is s3seal_kms_requests_total for operation, summed over results.
func kmsCalls(t *testing.T, in *instance, operation string) float64 {
	t.Helper()
	return metricSum(t, in, "s3seal_kms_requests_total", "operation="+operation)
}

// Finding 6: SSE-C. The AWS CLI's --sse-c is refused with a message that
// says why; the customer key reaches neither the store nor the log.
func TestSSECRefused(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		bucket := newBucket(t, e)
		dir := t.TempDir()
		file := writeFile(t, dir, "f", plaintext(1000, 3))
		key := strings.Repeat("k", 32)
		cmd := exec.Command("/usr/bin/aws", "--endpoint-url", in.URL, "s3", "cp", "--sse-c", "AES256", "--sse-c-key", key, file, "s3://"+bucket+"/f")
		cmd.Env = append(os.Environ(), clientEnv(in)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "KMS key") {
			t.Errorf("aws s3 cp --sse-c: %v\n%s", err, out)
		}
		if _, err := store(t, e).StatObject(context.Background(), bucket, "f", minio.StatObjectOptions{}); err == nil {
			t.Error("the store holds an object written with SSE-C")
		}
		b64 := base64.StdEncoding.EncodeToString([]byte(key))
		if strings.Contains(in.logs.String(), key) || strings.Contains(in.logs.String(), b64) {
			t.Error("the customer key is in s3seal's log")
		}
	})
}

// TestConfigurationPassthrough: the configuration calls s3seal checks and
// forwards behave through it as they do against the store itself — the
// same success, or the same error — so the answer checks never refuse a
// store's real answers. (Bucket encryption is s3seal's own, not the
// store's: TestBucketDefaultCMK.)
func TestConfigurationPassthrough(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		direct, proxied := storeSDK(t, e), sdkClient(t, in)
		ctx := context.Background()
		for _, call := range configCalls() {
			b1, b2 := newBucket(t, e), newBucket(t, e)
			for _, b := range []string{b1, b2} {
				if _, err := proxied.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
					t.Fatal(err)
				}
			}
			errDirect, errProxied := call.do(direct, b1), call.do(proxied, b2)
			cd, _ := apiCode(errDirect)
			cp, sp := apiCode(errProxied)
			switch {
			case (errDirect == nil) != (errProxied == nil) || cd != cp:
				t.Errorf("%s: the store says %v, through s3seal %v", call.name, errDirect, errProxied)
			case sp == http.StatusBadGateway:
				t.Errorf("%s: s3seal refused the store's answer: %v", call.name, errProxied)
			}
		}
	})
}

// storeSDK is an aws-sdk-go-v2 client straight to e's store.
func storeSDK(t *testing.T, e testEnv) *s3.Client {
	t.Helper()
	storeURL, ak, sk := e.storeAccess(t)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(region),
		config.WithCredentialsProvider(awscreds.NewStaticCredentialsProvider(ak, sk, "")))
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(storeURL)
		o.UsePathStyle = true
	})
}

type configCall struct {
	name string
	do   func(c *s3.Client, bucket string) error
}

// configCalls are configuration calls, each a sequence ending in a read of
// what was set.
func configCalls() []configCall {
	ctx := context.Background()
	k := aws.String("k")
	tags := &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}
	policy := func(b string) *string {
		return aws.String(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/none"]}]}`, b))
	}
	seq := func(steps ...func() error) error {
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
		return nil
	}
	return []configCall{
		{"object tagging", func(c *s3.Client, b string) error {
			return seq(
				func() error {
					_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &b, Key: k, Tagging: tags})
					return err
				},
				func() error {
					out, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &b, Key: k})
					if err == nil && (len(out.TagSet) != 1 || aws.ToString(out.TagSet[0].Value) != "a") {
						err = fmt.Errorf("tags %v", out.TagSet)
					}
					return err
				},
				func() error {
					_, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: &b, Key: k})
					return err
				})
		}},
		{"object ACL", func(c *s3.Client, b string) error {
			return seq(
				func() error {
					_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: &b, Key: k, ACL: types.ObjectCannedACLPrivate})
					return err
				},
				func() error { _, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: &b, Key: k}); return err })
		}},
		{"bucket policy", func(c *s3.Client, b string) error {
			return seq(
				func() error {
					_, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: &b, Policy: policy(b)})
					return err
				},
				func() error { _, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &b}); return err },
				func() error { _, err := c.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: &b}); return err })
		}},
		{"bucket tagging", func(c *s3.Client, b string) error {
			return seq(
				func() error {
					_, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: &b, Tagging: tags})
					return err
				},
				func() error { _, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: &b}); return err },
				func() error {
					_, err := c.DeleteBucketTagging(ctx, &s3.DeleteBucketTaggingInput{Bucket: &b})
					return err
				})
		}},
		{"bucket versioning", func(c *s3.Client, b string) error {
			return seq(
				func() error {
					_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &b,
						VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}})
					return err
				},
				func() error {
					_, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &b})
					return err
				})
		}},
		{"bucket location", func(c *s3.Client, b string) error {
			_, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: &b})
			return err
		}},
		{"bucket ACL", func(c *s3.Client, b string) error {
			_, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: &b})
			return err
		}},
		{"bucket lifecycle", func(c *s3.Client, b string) error {
			return seq(
				func() error {
					_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: &b,
						LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{ID: aws.String("r"),
							Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("tmp/")},
							Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}}}}})
					return err
				},
				func() error {
					_, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &b})
					return err
				},
				func() error {
					_, err := c.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: &b})
					return err
				})
		}},
		{"object lock configuration", func(c *s3.Client, b string) error {
			_, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: &b})
			return err
		}},
		{"delete objects", func(c *s3.Client, b string) error {
			_, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &b, Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: k}}}})
			return err
		}},
		{"list buckets", func(c *s3.Client, b string) error {
			_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		}},
		{"head bucket", func(c *s3.Client, b string) error {
			_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &b})
			return err
		}},
	}
}
