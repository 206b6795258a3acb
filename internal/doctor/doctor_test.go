package doctor

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/internal/adversary"
	"github.com/s3seal/s3seal/internal/embeddedstore"
)

// TestMain lets this test binary be the embedded store's child process:
// the store checks run against a real store (versitygw, posix backend),
// with internal/adversary in front of it to lie.
func TestMain(m *testing.M) {
	embeddedstore.RunIfChild()
	code := m.Run()
	if shared.store != nil {
		shared.store.Close()
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

var shared struct {
	once  sync.Once
	store *embeddedstore.Store
	dir   string
	err   error
}

const testBucket = "doctor-test"

// realStore is the package's embedded store with testBucket in it.
func realStore(t *testing.T) *embeddedstore.Store {
	t.Helper()
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "doctor-test"); shared.err != nil {
			return
		}
		shared.store, shared.err = embeddedstore.Start(context.Background(), embeddedstore.Options{DataDir: shared.dir,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if shared.err != nil {
			return
		}
		shared.err = storeClient(t, shared.store.URL).MakeBucket(context.Background(), testBucket, minio.MakeBucketOptions{})
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.store
}

func storeClient(t *testing.T, rawURL string) *minio.Client {
	u, _ := url.Parse(rawURL)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(shared.store.AccessKey, shared.store.SecretKey, ""), Region: embeddedstore.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func storeConfig(t *testing.T, rawURL string) Store {
	t.Helper()
	st := realStore(t)
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return Store{URL: u, AccessKey: st.AccessKey, SecretKey: st.SecretKey, Region: st.Region}
}

// newKeyring makes an embedded keyring with an enabled key under alias.
func newKeyring(t *testing.T, alias string) (*keyring.Keyring, keyring.KeyInfo) {
	t.Helper()
	k, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := k.CreateKey("doctor test")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.CreateAlias(alias, info.ID); err != nil {
		t.Fatal(err)
	}
	return k, info
}

func kmsConfig(ks kms.KeyService, k *keyring.Keyring, keyID string, decrypt ...string) KMS {
	return KMS{Keys: ks, Status: k, Resolver: k, KeyID: keyID, DecryptKeyIDs: decrypt, Keyring: true}
}

// run runs every check and returns the report with the results by name.
func run(t *testing.T, cfg Config) (Report, map[string]Result) {
	t.Helper()
	rep := NewSession(cfg).RunAll(context.Background(), Checks(), nil)
	byName := map[string]Result{}
	for _, r := range rep.Checks {
		byName[r.Name] = r
	}
	if rep.Cleanup != nil {
		t.Errorf("cleanup: %v", rep.Cleanup)
	}
	return rep, byName
}

func failing(rep Report) []string {
	var out []string
	for _, r := range rep.Checks {
		if r.Status == Fail {
			out = append(out, r.Name)
		}
	}
	return out
}

// checkNoProbesLeft: every probe object and upload is gone.
func checkNoProbesLeft(t *testing.T) {
	t.Helper()
	c := storeClient(t, realStore(t).URL)
	for obj := range c.ListObjects(context.Background(), testBucket, minio.ListObjectsOptions{Prefix: Probe, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		t.Errorf("probe object left: %s", obj.Key)
	}
	uploads, err := minio.Core{Client: c}.ListMultipartUploads(context.Background(), testBucket, Probe, "", "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uploads.Uploads {
		t.Errorf("upload left: %s %s", u.Key, u.UploadID)
	}
}

// TestHonestStore: against a real store and the keyring every check passes.
func TestHonestStore(t *testing.T) {
	st := realStore(t)
	k, _ := newKeyring(t, "alias/doctor")
	rep, byName := run(t, Config{Store: storeConfig(t, st.URL), KMS: kmsConfig(k, k, "alias/doctor"), Bucket: testBucket})
	if !rep.OK || rep.WritesSkipped {
		t.Errorf("report not OK: %+v", rep.Checks)
	}
	for _, r := range rep.Checks {
		if r.Status != Pass {
			t.Errorf("%s", r.Line())
		}
	}
	if len(rep.Checks) != len(Checks()) {
		t.Errorf("%d results for %d checks", len(rep.Checks), len(Checks()))
	}
	if got := byName["multipart-etag"].Message; !strings.Contains(got, "-2") {
		t.Errorf("multipart-etag: %q", got)
	}
	checkNoProbesLeft(t)
}

// TestStoreLies: each lie fails the check that is about it, and only that
// one, with a line that says what the store did and what breaks.
func TestStoreLies(t *testing.T) {
	st := realStore(t)
	k, _ := newKeyring(t, "alias/doctor")
	u, _ := url.Parse(st.URL)
	for _, tc := range []struct {
		name     string
		lie      adversary.Lie
		failing  []string
		says     string
		required bool
	}{
		{"ETags without -N", adversary.Lie{Kind: adversary.ETagParts, N: -1}, []string{"multipart-etag"}, "for a 2-part upload — s3seal then asks the store for each object's part count", true},
		{"ETags with a wrong -N", adversary.Lie{Match: adversary.Match{Method: "POST"}, Kind: adversary.ETagParts, N: 3}, []string{"multipart-etag"}, "refuse every multipart object", true},
		{"partNumber ignored", adversary.Lie{Kind: adversary.IgnorePartNumber}, []string{"part-number"}, "answered 5243904 bytes and no part count", true},
		{"sub-resources ignored", adversary.Lie{Kind: adversary.IgnoreSubresources}, []string{"subresources"}, "PUT ?tagging changed the object itself", true},
		{"Range ignored", adversary.Lie{Kind: adversary.IgnoreRange}, []string{"range", "upload-part-copy"}, "answered 1000 bytes", true},
		{"If-Match ignored", adversary.Lie{Kind: adversary.IgnoreIfMatch}, []string{"if-match"}, "answered 200", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			liar, err := adversary.New(u, st.AccessKey, st.SecretKey, st.Region)
			if err != nil {
				t.Fatal(err)
			}
			liar.Set(tc.lie)
			srv := httptest.NewServer(liar)
			defer srv.Close()
			rep, byName := run(t, Config{Store: storeConfig(t, srv.URL), KMS: kmsConfig(k, k, "alias/doctor"), Bucket: testBucket})
			if got := failing(rep); !slices.Equal(got, tc.failing) {
				t.Errorf("failing %v, want %v", got, tc.failing)
			}
			if rep.OK == tc.required {
				t.Errorf("report OK %v", rep.OK)
			}
			r := byName[tc.failing[0]]
			if !strings.Contains(r.Message, tc.says) || r.Fix == "" || r.Unavailable {
				t.Errorf("%s", r.Line())
			}
			t.Log(r.Line())
			checkNoProbesLeft(t)
		})
	}
}

// TestNoBucket: the checks that write are skipped, not failed, and say how
// to run them.
func TestNoBucket(t *testing.T) {
	st := realStore(t)
	k, _ := newKeyring(t, "alias/doctor")
	rep, _ := run(t, Config{Store: storeConfig(t, st.URL), KMS: kmsConfig(k, k, "alias/doctor")})
	if !rep.OK || !rep.WritesSkipped {
		t.Errorf("OK %v, WritesSkipped %v", rep.OK, rep.WritesSkipped)
	}
	for _, c := range Checks() {
		var r Result
		for _, x := range rep.Checks {
			if x.Name == c.Name {
				r = x
			}
		}
		if want := map[bool]Status{true: Skip, false: Pass}[c.Writes]; r.Status != want {
			t.Errorf("%s: %s", c.Name, r.Line())
		}
		if c.Writes && !strings.Contains(r.Message, "--bucket") {
			t.Errorf("%s: %s", c.Name, r.Line())
		}
	}
}

// TestMissingBucket: one clear failure, the other writing checks skipped.
func TestMissingBucket(t *testing.T) {
	st := realStore(t)
	k, _ := newKeyring(t, "alias/doctor")
	rep, byName := run(t, Config{Store: storeConfig(t, st.URL), KMS: kmsConfig(k, k, "alias/doctor"), Bucket: "no-such-bucket"})
	if got := failing(rep); !slices.Equal(got, []string{"bucket"}) || rep.OK {
		t.Errorf("failing %v", got)
	}
	if r := byName["bucket"]; !strings.Contains(r.Message, "does not exist") {
		t.Errorf("%s", r.Line())
	}
	if r := byName["range"]; r.Status != Skip || !strings.Contains(r.Message, "needs bucket") {
		t.Errorf("%s", r.Line())
	}
}

// An unreachable store is a dependency that does not answer; a refused
// credential is a misconfiguration. The KMS checks run all the same.
func TestStoreUnreachableOrRefused(t *testing.T) {
	st := realStore(t)
	k, _ := newKeyring(t, "alias/doctor")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	rep, byName := run(t, Config{Store: storeConfig(t, closed), KMS: kmsConfig(k, k, "alias/doctor"), Bucket: testBucket})
	if r := byName["upstream"]; r.Status != Fail || !r.Unavailable || !strings.Contains(r.Message, "does not answer") {
		t.Errorf("%s", r.Line())
	}
	if r := byName["clock"]; r.Status != Skip {
		t.Errorf("%s", r.Line())
	}
	if r := byName["kms-reencrypt"]; r.Status != Pass {
		t.Errorf("%s", r.Line())
	}
	if rep.OK {
		t.Error("OK with the store unreachable")
	}

	cfg := storeConfig(t, st.URL)
	cfg.SecretKey = "wrong"
	_, byName = run(t, Config{Store: cfg, KMS: kmsConfig(k, k, "alias/doctor")})
	if r := byName["upstream"]; r.Status != Fail || r.Unavailable || !strings.Contains(r.Message, "SignatureDoesNotMatch") ||
		!strings.Contains(r.Fix, "S3SEAL_UPSTREAM_SECRET_KEY") {
		t.Errorf("%s", r.Line())
	}
}

// TestJudgeListBuckets: what a ListBuckets answer says of the store.
func TestJudgeListBuckets(t *testing.T) {
	tests := []struct {
		status      int
		body        string
		ok          bool
		unavailable bool
	}{
		{200, "<ListAllMyBucketsResult/>", true, false},
		{403, "<Error><Code>AccessDenied</Code></Error>", true, false},
		{403, "<Error><Code>InvalidAccessKeyId</Code></Error>", false, false},
		{403, "<Error><Code>SignatureDoesNotMatch</Code></Error>", false, false},
		{403, "<Error><Code>RequestTimeTooSkewed</Code></Error>", false, false},
		{400, "<Error><Code>AuthorizationHeaderMalformed</Code></Error>", false, false},
		{405, "", true, false},
		{500, "<Error><Code>InternalError</Code></Error>", false, true},
		{503, "", false, true},
	}
	s := NewSession(Config{Store: Store{URL: &url.URL{Scheme: "http", Host: "store"}}})
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Body: io.NopCloser(strings.NewReader(tt.body))}
		if o := s.judgeListBuckets(resp); o.OK != tt.ok || o.Unavailable != tt.unavailable {
			t.Errorf("%d %s: %+v", tt.status, tt.body, o)
		}
	}
}

// The store check signs its request with s3seal's credential and region,
// and the clock check reads the answer's Date.
func TestUpstreamSignsAndClock(t *testing.T) {
	var authz string
	var skew time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz = r.Header.Get("Authorization")
		w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
		w.Write([]byte("<ListAllMyBucketsResult/>"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	checks := Checks()[:2] // upstream, clock
	for _, tc := range []struct {
		skew time.Duration
		ok   bool
	}{{0, true}, {90 * time.Second, true}, {-10 * time.Minute, false}, {20 * time.Minute, false}} {
		skew = tc.skew
		rep := NewSession(Config{Store: Store{URL: u, AccessKey: "AKID", SecretKey: "secret", Region: "eu-west-1"}}).RunAll(context.Background(), checks, nil)
		if rep.Checks[0].Status != Pass {
			t.Fatalf("%s", rep.Checks[0].Line())
		}
		if clock := rep.Checks[1]; (clock.Status == Pass) != tc.ok {
			t.Errorf("skew %v: %s", tc.skew, clock.Line())
		} else if !tc.ok && !strings.Contains(clock.Message, "ahead of") && !strings.Contains(clock.Message, "behind") {
			t.Errorf("skew %v: %s", tc.skew, clock.Line())
		}
	}
	if !strings.HasPrefix(authz, "AWS4-HMAC-SHA256 Credential=AKID/") || !strings.Contains(authz, "/eu-west-1/s3/aws4_request") {
		t.Errorf("Authorization = %q", authz)
	}
}

// denying makes one key-service operation fail with err.
type denying struct {
	kms.KeyService
	op  string
	err error
}

func (d denying) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	if d.op == "GenerateDataKey" {
		return kms.DataKey{}, d.err
	}
	return d.KeyService.GenerateDataKey(ctx, keyID, encCtx)
}

func (d denying) ReEncrypt(ctx context.Context, ct []byte, src string, srcCtx map[string]string, dst string, dstCtx map[string]string) (kms.Wrapped, error) {
	if d.op == "ReEncrypt" {
		return kms.Wrapped{}, d.err
	}
	return d.KeyService.ReEncrypt(ctx, ct, src, srcCtx, dst, dstCtx)
}

// recording notes the encryption contexts it is asked for.
type recording struct {
	kms.KeyService
	contexts []map[string]string
}

func (r *recording) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	r.contexts = append(r.contexts, encCtx)
	return r.KeyService.GenerateDataKey(ctx, keyID, encCtx)
}

func kmsOnly(t *testing.T, k KMS) map[string]Result {
	t.Helper()
	sess := NewSession(Config{KMS: k})
	out := map[string]Result{}
	for _, c := range kmsChecks() {
		out[c.Name] = sess.Run(context.Background(), c)
	}
	return out
}

func TestKMSChecks(t *testing.T) {
	k, info := newKeyring(t, "alias/doctor")
	rec := &recording{KeyService: k}
	res := kmsOnly(t, kmsConfig(rec, k, "alias/doctor"))
	for _, r := range res {
		if r.Status != Pass {
			t.Errorf("%s", r.Line())
		}
	}
	if len(rec.contexts) != 1 || rec.contexts[0]["s3seal:probe"] != "doctor" {
		t.Errorf("encryption contexts %v", rec.contexts)
	}

	denied := &kms.KMSError{Op: "ReEncrypt", Kind: kms.ErrAccessDenied, Code: "AccessDeniedException"}
	res = kmsOnly(t, kmsConfig(denying{KeyService: k, op: "ReEncrypt", err: denied}, k, "alias/doctor"))
	if r := res["kms-reencrypt"]; r.Status != Fail || r.Unavailable || !strings.Contains(r.Message, "denies s3seal ReEncrypt") ||
		!strings.Contains(r.Message, "CopyObject") {
		t.Errorf("%s", r.Line())
	}
	if res["kms-decrypt"].Status != Pass {
		t.Errorf("%s", res["kms-decrypt"].Line())
	}

	down := &kms.KMSError{Op: "GenerateDataKey", Kind: kms.ErrKMSUnavailable}
	res = kmsOnly(t, kmsConfig(denying{KeyService: k, op: "GenerateDataKey", err: down}, k, "alias/doctor"))
	if r := res["kms-generate-data-key"]; r.Status != Fail || !r.Unavailable {
		t.Errorf("%s", r.Line())
	}
	if r := res["kms-decrypt"]; r.Status != Skip {
		t.Errorf("%s", r.Line())
	}

	res = kmsOnly(t, kmsConfig(k, k, "alias/typo"))
	if r := res["kms-key"]; r.Status != Fail || !strings.Contains(r.Message, `S3SEAL_KMS_KEY_ID "alias/typo" names no CMK`) || !strings.Contains(r.Fix, "s3seal keys create") {
		t.Errorf("%s", r.Line())
	}
	for _, name := range []string{"kms-generate-data-key", "kms-decrypt", "kms-reencrypt", "kms-allow-list"} {
		if res[name].Status != Skip {
			t.Errorf("%s", res[name].Line())
		}
	}

	res = kmsOnly(t, kmsConfig(k, k, "alias/doctor", "alias/gone"))
	if r := res["kms-allow-list"]; r.Status != Fail || !strings.Contains(r.Message, `S3SEAL_KMS_DECRYPT_KEY_IDS lists "alias/gone"`) {
		t.Errorf("%s", r.Line())
	}

	if err := k.DisableKey(info.ID); err != nil {
		t.Fatal(err)
	}
	res = kmsOnly(t, kmsConfig(k, k, "alias/doctor"))
	if r := res["kms-key"]; r.Status != Fail || !strings.Contains(r.Message, "is Disabled") || !strings.Contains(r.Fix, "s3seal keys enable "+"alias/doctor") {
		t.Errorf("%s", r.Line())
	}
	if _, err := k.ScheduleKeyDeletion(info.ID, 7); err != nil {
		t.Fatal(err)
	}
	res = kmsOnly(t, kmsConfig(k, k, "alias/doctor"))
	if r := res["kms-key"]; r.Status != Fail || !strings.Contains(r.Message, "PendingDeletion") || !strings.Contains(r.Fix, "cancel-deletion") {
		t.Errorf("%s", r.Line())
	}
}

func TestResultLines(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{Result{Title: "t", Status: Pass, Message: "t (detail)", Required: true}, "✓ t (detail)"},
		{Result{Title: "t", Status: Pass, Required: true}, "✓ t"},
		{Result{Title: "t", Status: Fail, Message: "m — b", Fix: "f", Required: true}, "✗ t: m — b; fix: f"},
		{Result{Title: "t", Status: Fail, Message: "m", Fix: "f"}, "✗ t: m; fix: f (not required)"},
		{Result{Title: "t", Status: Skip, Message: "why"}, "- t: skipped: why"},
	} {
		if got := tc.r.Line(); got != tc.want {
			t.Errorf("Line() = %q, want %q", got, tc.want)
		}
	}
	b, err := json.Marshal(Result{Name: "n", Title: "t", Required: true, Status: Fail, Message: "m", Fix: "f", Unavailable: true})
	if err != nil || string(b) != `{"name":"n","required":true,"status":"fail","message":"m","fix":"f"}` {
		t.Errorf("JSON %s %v", b, err)
	}
}

// Every check is well formed: unique names, needs that come earlier, and
// serve's start checks write nothing.
func TestChecksWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Checks() {
		if seen[c.Name] || c.Name == "" || c.Title == "" || c.Run == nil {
			t.Errorf("check %q: duplicate or incomplete", c.Name)
		}
		for _, n := range c.Needs {
			if !seen[n] {
				t.Errorf("%s needs %s, which does not run before it", c.Name, n)
			}
		}
		seen[c.Name] = true
	}
	var start []string
	for _, c := range StartChecks() {
		if c.Writes {
			t.Errorf("start check %s writes", c.Name)
		}
		start = append(start, c.Name)
	}
	want := []string{"upstream", "kms-key", "kms-generate-data-key", "kms-decrypt", "kms-reencrypt", "kms-allow-list"}
	if !slices.Equal(start, want) {
		t.Errorf("start checks %v, want %v", start, want)
	}
}
