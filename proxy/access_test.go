package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/sigv4"
)

// testPrincipal grants access to buckets by exact name and CMKs by id.
type testPrincipal struct {
	name    string
	admin   bool
	buckets map[string][]Access
	keys    []string
}

func (p *testPrincipal) Name() string { return p.name }

func (p *testPrincipal) MayBucket(bucket string, a Access) bool {
	if p.admin {
		return true
	}
	if bucket == "" {
		return a == AccessList
	}
	acc, ok := p.buckets[bucket]
	return ok && (a == AccessAny || slices.Contains(acc, a))
}

func (p *testPrincipal) MayUse(_ context.Context, keyID string) error {
	if p.admin || slices.Contains(p.keys, keyID) {
		return nil
	}
	return fmt.Errorf("%w: %s", kms.ErrNotGranted, keyID)
}

type testPrincipals map[string]*testPrincipal

func (t testPrincipals) Principal(ak string) (Principal, bool) {
	p, ok := t[ak]
	return p, ok
}

// accessEnv is a proxy with two CMKs and three principals besides the
// admin: alice (bucket bkt, first key), bob (bkt, second key) and carol
// (bucket other only, both keys).
func accessEnv(t *testing.T) (e *env, second string, clients map[string]*s3.Client, obs *recordingObserver) {
	t.Helper()
	all := []Access{AccessRead, AccessWrite, AccessList, AccessDelete}
	var first string
	ps := testPrincipals{clientAK: {name: "root", admin: true}}
	obs = &recordingObserver{cipher: map[string]int64{}, cipherD: map[string]time.Duration{}}
	e = newEnv(t, func(c *Config) {
		creds := staticCreds{clientAK: clientSecret, "ALICE": "alice-secret", "BOB": "bob-secret", "CAROL": "carol-secret"}
		c.Auth = &sigv4.Verifier{Credentials: creds, Region: "us-east-1"}
		c.Principals = ps
		c.Keys.Grants = true
		c.Observer = obs
		first = c.Keys.KeyID
	})
	k2, err := e.keyring.CreateKey("second")
	if err != nil {
		t.Fatal(err)
	}
	e.proxy.keys.Allowed = kms.NewAllowList(e.keyring, first, k2.ID)
	e.store.buckets["other"] = true
	ps["ALICE"] = &testPrincipal{name: "alice", buckets: map[string][]Access{testBucket: all}, keys: []string{first}}
	ps["BOB"] = &testPrincipal{name: "bob", buckets: map[string][]Access{testBucket: all}, keys: []string{k2.ID}}
	ps["CAROL"] = &testPrincipal{name: "carol", buckets: map[string][]Access{"other": all}, keys: []string{first, k2.ID}}
	clients = map[string]*s3.Client{"root": e.client}
	for ak, name := range map[string]string{"ALICE": "alice", "BOB": "bob", "CAROL": "carol"} {
		clients[name] = newClientFor(t, e.srv.URL, ak, name+"-secret")
	}
	return e, k2.ID, clients, obs
}

func TestPrincipalGrants(t *testing.T) {
	e, second, c, obs := accessEnv(t)
	e.put(t, "first", []byte("under the first key"), nil)
	if _, err := e.client.PutObject(bg(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("second"),
		Body: bytes.NewReader([]byte("under the second key")), ServerSideEncryption: types.ServerSideEncryptionAwsKms,
		SSEKMSKeyId: aws.String(second)}); err != nil {
		t.Fatal(err)
	}
	get := func(who, key string) error {
		out, err := c[who].GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
		if err == nil {
			out.Body.Close()
		}
		return err
	}
	put := func(who, key, cmk string) error {
		in := &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), Body: bytes.NewReader([]byte("x"))}
		if cmk != "" {
			in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String(cmk)
		}
		_, err := c[who].PutObject(bg(), in)
		return err
	}
	copyFrom := func(who, srcBucket string) error {
		_, err := c[who].CopyObject(bg(), &s3.CopyObjectInput{Bucket: aws.String(testBucket), Key: aws.String("copy-" + who),
			CopySource: aws.String(srcBucket + "/first")})
		return err
	}
	e.store.put("other", "first", nil, nil)
	up, err := c["alice"].CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c["alice"].UploadPart(bg(), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String("mp"),
		UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("only part"))})
	if err != nil {
		t.Fatal(err)
	}
	uploadPart := func(who string) error {
		_, err := c[who].UploadPart(bg(), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String("mp"),
			UploadId: up.UploadId, PartNumber: aws.Int32(2), Body: bytes.NewReader([]byte("more"))})
		return err
	}
	complete := func(who string) error {
		_, err := c[who].CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("mp"),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}})
		return err
	}
	tests := []struct {
		name    string
		op      func() error
		allowed bool
	}{
		{"alice reads under her key", func() error { return get("alice", "first") }, true},
		{"alice reads under bob's key", func() error { return get("alice", "second") }, false},
		{"bob reads under his key", func() error { return get("bob", "second") }, true},
		{"bob reads under alice's key", func() error { return get("bob", "first") }, false},
		{"carol reads a bucket she has no grant on", func() error { return get("carol", "first") }, false},
		{"alice writes under the default key", func() error { return put("alice", "a1", "") }, true},
		{"bob writes under the default key", func() error { return put("bob", "b1", "") }, false},
		{"bob writes under his key", func() error { return put("bob", "b2", second) }, true},
		{"alice copies from a bucket she may not read", func() error { return copyFrom("alice", "other") }, false},
		{"bob copies alice's object", func() error { return copyFrom("bob", testBucket) }, false},
		{"alice copies her object", func() error { return copyFrom("alice", testBucket) }, true},
		{"bob adds a part to alice's upload", func() error { return uploadPart("bob") }, false},
		{"bob completes alice's upload", func() error { return complete("bob") }, false},
		{"alice completes her upload", func() error { return complete("alice") }, true},
		{"carol creates a bucket", func() error {
			_, err := c["carol"].CreateBucket(bg(), &s3.CreateBucketInput{Bucket: aws.String("other")})
			return err
		}, false},
	}
	for _, tt := range tests {
		puts := storedPuts(e.store)
		err := tt.op()
		if tt.allowed {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if code, status := apiError(t, err); code != "AccessDenied" || status != http.StatusForbidden {
			t.Errorf("%s: %s %d, want AccessDenied 403", tt.name, code, status)
		}
		if storedPuts(e.store) != puts {
			t.Errorf("%s: a refused request made the store write", tt.name)
		}
	}
	obs.mu.Lock()
	denied := slices.Clone(obs.denied)
	obs.mu.Unlock()
	slices.Sort(denied)
	want := []string{"CompleteMultipartUpload", "CopyObject", "CopyObject", "CreateBucket", "GetObject", "GetObject", "GetObject", "PutObject", "UploadPart"}
	if !slices.Equal(denied, want) {
		t.Errorf("denials observed %v, want %v", denied, want)
	}
}

// ListBuckets shows a principal only the buckets it has grants on.
func TestPrincipalListBuckets(t *testing.T) {
	e, _, c, _ := accessEnv(t)
	e.store.buckets["third"] = true
	for who, want := range map[string][]string{"root": {testBucket, "other", "third"}, "alice": {testBucket}, "carol": {"other"}} {
		out, err := c[who].ListBuckets(bg(), &s3.ListBucketsInput{})
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		var got []string
		for _, b := range out.Buckets {
			got = append(got, aws.ToString(b.Name))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %v, want %v", who, got, want)
		}
	}
	// A principal removed since it signed is refused.
	delete(e.proxy.principals.(testPrincipals), "ALICE")
	_, err := c["alice"].ListBuckets(bg(), &s3.ListBucketsInput{})
	if code, _ := apiError(t, err); code != "AccessDenied" {
		t.Errorf("removed principal: %s", code)
	}
	if !strings.Contains(fmt.Sprint(err), "Access Denied") {
		t.Errorf("error %v", err)
	}
}

// Bob (bucket grant on bkt, key grant on the second CMK only) cannot
// complete Alice's upload (under the first CMK) with a token he forged to
// name his CMK: Complete opens the token's key and verifies its tag, so its
// KeyID is the upload's, not the client's word.
func TestForgedTokenCannotCompleteOthersUpload(t *testing.T) {
	e, second, c, _ := accessEnv(t)
	up, err := c["alice"].CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c["alice"].UploadPart(bg(), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String("mp"),
		UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("alice's only part"))}); err != nil {
		t.Fatal(err)
	}
	// Bob learns the store's upload id from a listing he may make (list).
	lu, err := c["bob"].ListMultipartUploads(bg(), &s3.ListMultipartUploadsInput{Bucket: aws.String(testBucket)})
	if err != nil || len(lu.Uploads) != 1 {
		t.Fatalf("list uploads: %v %d", err, len(lu.Uploads))
	}
	listed, _ := envelope.ParseUploadToken(aws.ToString(lu.Uploads[0].UploadId))
	parts, err := c["bob"].ListParts(bg(), &s3.ListPartsInput{Bucket: aws.String(testBucket), Key: aws.String("mp"), UploadId: lu.Uploads[0].UploadId})
	if err != nil {
		t.Fatal(err)
	}
	// Bob's own honest attempt is refused (the case TestPrincipalGrants covers).
	_, err = c["bob"].CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("mp"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: parts.Parts[0].ETag, PartNumber: aws.Int32(1)}}}})
	if code, _ := apiError(t, err); code != "AccessDenied" {
		t.Fatalf("honest attempt: %v", err)
	}
	// The forged token: full, naming Bob's CMK, with junk key and tag.
	field := func(b, s []byte) []byte { return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...) }
	b := []byte{0x01}
	b = field(b, []byte(listed.UploadID))
	b = field(b, []byte(second))
	b = field(b, []byte("junk"))
	b = append(b, make([]byte, 16)...)
	forged := base64.RawURLEncoding.EncodeToString(b)
	_, err = c["bob"].CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("mp"),
		UploadId: aws.String(forged), MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: parts.Parts[0].ETag, PartNumber: aws.Int32(1)}}}})
	if err == nil {
		t.Errorf("bob completed alice's upload with a forged token naming his CMK")
	}
	if e.store.get(testBucket, "mp") != nil {
		t.Errorf("the store has alice's object, completed by bob")
	}
}
