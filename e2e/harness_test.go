// Package e2e tests s3seal as users run it: the real binary in front of real
// S3 stores, every test against each — MinIO and versitygw, which
// scripts/test starts, and s3seal's own embedded store, which s3seal starts
// when no upstream is configured — and a real KMS-API server (local-kms),
// driven by real S3 clients. scripts/test starts the stores and local-kms
// on 127.0.0.1 and passes their addresses in S3SEAL_TEST_* variables; the
// tests start s3seal processes themselves and stop them by PID.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/internal/embeddedstore"
	"github.com/s3seal/s3seal/internal/testkms"
	"github.com/s3seal/s3seal/internal/testlog"
)

const region = "us-east-1"

// testEnv is one upstream store and the KMS-API server, seen from one test.
type testEnv struct {
	name   string // "minio", "versitygw" or "embedded": the subtest name
	kmsURL string
	// storeURL, storeAK and storeSK reach a store that runs on its own (one
	// scripts/test started, or an adversary.Store). They are empty for the
	// embedded store, whose address and credential change at every start
	// of the s3seal that runs it: see storeAccess.
	storeURL, storeAK, storeSK string
	// emb is this test's embedded store; nil for the other upstreams.
	emb *embedded
}

// embedded is s3seal's own store as one test sees it: it lives in a data
// dir of the test's (kept across restarts of s3seal) and is reachable only
// while the s3seal that runs it is up, at the address and with the
// credential that s3seal writes to DATA_DIR/store.json
// (embeddedstore.Discover).
type embedded struct {
	dataDir string

	mu    sync.Mutex
	owner *instance          // the s3seal running the store now, or nil
	info  embeddedstore.Info // how to reach it, while owner runs
}

// isEmbedded reports whether e is s3seal's embedded store.
func (e testEnv) isEmbedded() bool { return e.emb != nil }

// storeAccess is how to reach e's store directly now: for the embedded
// store, at the address and with the credential of its current start.
func (e testEnv) storeAccess(t *testing.T) (storeURL, accessKey, secretKey string) {
	t.Helper()
	if e.emb == nil {
		return e.storeURL, e.storeAK, e.storeSK
	}
	e.emb.mu.Lock()
	defer e.emb.mu.Unlock()
	if e.emb.owner == nil {
		t.Fatalf("the embedded store in %s runs only while its s3seal does: start s3seal first", e.emb.dataDir)
	}
	return e.emb.info.URL, e.emb.info.AccessKey, e.emb.info.SecretKey
}

// upstreams are the stores the suite runs against, in the order they run.
// Each but "embedded" is configured by S3SEAL_TEST_<NAME>_ENDPOINT,
// _ACCESS_KEY and _SECRET_KEY; "embedded" needs only the s3seal binary.
var upstreams = []string{"minio", "versitygw", "embedded"}

// allEnvs returns the environment for every store scripts/test started,
// and the embedded store. In CI every store must be there; elsewhere a test
// skips when the KMS or every store is missing, and the embedded store is
// left out only if the s3seal binary cannot be built.
func allEnvs(t *testing.T) []testEnv {
	t.Helper()
	kmsURL := os.Getenv(testkms.EndpointEnv)
	ci := os.Getenv("CI") != ""
	var envs []testEnv
	var missing []string
	for _, name := range upstreams {
		e := testEnv{name: name, kmsURL: kmsURL}
		if name == "embedded" {
			if _, err := buildBinary(); err != nil {
				if ci {
					t.Fatalf("the embedded store needs the s3seal binary: %v", err)
				}
				t.Logf("not testing the embedded store: %v", err)
				continue
			}
			envs = append(envs, e) // emb is made per test, in forEachUpstream
			continue
		}
		prefix := "S3SEAL_TEST_" + strings.ToUpper(name) + "_"
		e.storeURL = os.Getenv(prefix + "ENDPOINT")
		e.storeAK, e.storeSK = os.Getenv(prefix+"ACCESS_KEY"), os.Getenv(prefix+"SECRET_KEY")
		if e.storeURL == "" {
			missing = append(missing, prefix+"ENDPOINT")
			continue
		}
		envs = append(envs, e)
	}
	if kmsURL == "" {
		missing = append(missing, testkms.EndpointEnv)
	}
	if ci && len(missing) > 0 {
		t.Fatalf("%s must be set in CI (scripts/test sets them)", strings.Join(missing, ", "))
	}
	if kmsURL == "" || len(envs) == 0 {
		t.Skip("end-to-end tests need local-kms and the stores: run scripts/test")
	}
	return envs
}

// forEachUpstream runs f as one subtest per store (t.Run("minio", ...),
// t.Run("versitygw", ...), t.Run("embedded", ...)), so every end-to-end
// test shows s3seal in front of each. On "embedded" the store is the
// subtest's own: it lives in a data dir made for the subtest and starts
// with the first s3seal the subtest starts.
func forEachUpstream(t *testing.T, f func(t *testing.T, e testEnv)) {
	t.Helper()
	for _, e := range allEnvs(t) {
		t.Run(e.name, func(t *testing.T) {
			if e.name == "embedded" {
				e.emb = &embedded{dataDir: t.TempDir()}
			}
			f(t, e)
		})
	}
}

// embeddedEnv is the embedded upstream alone, for tests of the zero-config
// path; it skips (or fails in CI) as allEnvs does.
func embeddedEnv(t *testing.T) testEnv {
	t.Helper()
	for _, e := range allEnvs(t) {
		if e.name == "embedded" {
			e.emb = &embedded{dataDir: t.TempDir()}
			return e
		}
	}
	t.Skip("the s3seal binary cannot be built")
	return testEnv{}
}

var (
	buildOnce sync.Once
	binPath   string
	binDir    string // the directory buildBinary built into; TestMain removes it
	buildErr  error
)

// TestMain removes the binary buildBinary built (some 40 MB a run).
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds cmd/s3seal once per test run, or returns
// S3SEAL_TEST_BINARY when that names an s3seal binary built already.
func buildBinary() (string, error) {
	buildOnce.Do(func() {
		if p := os.Getenv("S3SEAL_TEST_BINARY"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "s3seal-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binDir, binPath = dir, filepath.Join(dir, "s3seal")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/s3seal").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// s3sealBinary is buildBinary's binary; the test fails if it cannot be built.
func s3sealBinary(t *testing.T) string {
	t.Helper()
	p, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newCMK creates a CMK with a fresh alias and returns the alias.
func newCMK(t *testing.T, endpoint string) string {
	t.Helper()
	keyID := testkms.CreateKey(t, endpoint)
	alias := "alias/s3seal-e2e-" + randHex(4)
	in := &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(keyID)}
	if _, err := testkms.Client(t, endpoint).CreateAlias(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	return alias
}

// instance is one running s3seal process.
type instance struct {
	URL        string // S3 endpoint for clients
	MetricsURL string
	KMSAPIURL  string // the KMS API (S3SEAL_KMS_API_ADDR; served with the keyring provider only)
	AccessKey  string
	SecretKey  string
	KeyAlias   string
	env        []string // the configuration, without addresses, data directory and (via) upstream
	// dataDir is the data directory of every start; "" means a fresh one
	// each time (a restart then keeps no state). dataDirNow is the current
	// start's.
	dataDir, dataDirNow string
	emb                 *embedded // the embedded store this instance runs, or nil
	// via is an embedded store run by another instance that this one uses
	// as its upstream (S3SEAL_UPSTREAM_URL), at the address of the store's
	// current start; nil for none.
	via *embedded
	// upOnly: a start waits until s3seal serves /healthz, not /readyz
	// (startS3sealNotReady).
	upOnly bool
	cmd    *exec.Cmd
	logs   *testlog.Buffer
}

// startS3seal runs s3seal in front of e's store with the given KMS endpoint
// and CMK (a new one when alias is ""), plus extra environment. It is
// stopped with SIGTERM when the test ends.
//
// On the embedded store the first s3seal a test starts runs the store: it
// gets no S3SEAL_UPSTREAM_* and the test's data dir. Only one s3seal can
// run a data dir's store, so any further s3seal of the test (another CMK,
// a replica) is a second process that uses that store as its configured
// upstream, as a second s3seal on another machine would.
func startS3seal(t *testing.T, e testEnv, kmsURL, alias string, extra ...string) *instance {
	t.Helper()
	in := newInstance(t, e, kmsURL, alias, extra...)
	in.launch(t)
	return in
}

// startS3sealNotReady is startS3seal for a store or KMS that is down: it
// returns once s3seal serves /healthz, ready or not. Its restarts wait the
// same way.
func startS3sealNotReady(t *testing.T, e testEnv, kmsURL, alias string, extra ...string) *instance {
	t.Helper()
	in := newInstance(t, e, kmsURL, alias, extra...)
	in.upOnly = true
	in.launch(t)
	return in
}

// newInstance configures startS3seal's s3seal, to be stopped with SIGTERM
// when the test ends, and does not start it.
func newInstance(t *testing.T, e testEnv, kmsURL, alias string, extra ...string) *instance {
	t.Helper()
	if alias == "" {
		alias = newCMK(t, kmsURL)
	}
	in := &instance{
		URL: "http://" + freeAddr(t), MetricsURL: "http://" + freeAddr(t), KMSAPIURL: "http://" + freeAddr(t),
		AccessKey: "E2E" + strings.ToUpper(randHex(8)), SecretKey: randHex(20), KeyAlias: alias,
	}
	in.env = append(os.Environ(),
		"S3SEAL_ACCESS_KEY="+in.AccessKey, "S3SEAL_SECRET_KEY="+in.SecretKey,
		"S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID="+alias,
		"S3SEAL_KMS_ENDPOINT="+kmsURL, "S3SEAL_KMS_REGION="+region,
		"AWS_ACCESS_KEY_ID=e2e", "AWS_SECRET_ACCESS_KEY=e2e",
		"S3SEAL_LOG_LEVEL=debug",
	)
	switch {
	case e.emb == nil:
		in.env = append(in.env, "S3SEAL_UPSTREAM_URL="+e.storeURL,
			"S3SEAL_UPSTREAM_ACCESS_KEY="+e.storeAK, "S3SEAL_UPSTREAM_SECRET_KEY="+e.storeSK)
	case e.emb.running():
		in.via = e.emb
	default:
		in.emb, in.dataDir = e.emb, e.emb.dataDir
	}
	in.env = append(in.env, extra...)
	for _, kv := range extra {
		if strings.HasPrefix(kv, "S3SEAL_TLS_CERT=") {
			in.URL = strings.Replace(in.URL, "http://", "https://", 1)
		}
	}
	t.Cleanup(func() { in.stop(t) })
	return in
}

// startReplica runs a second s3seal process with the same configuration as
// in (store, KMS, CMK, client credential) on addresses of its own: a replica
// behind the same load balancer. A replica of the s3seal that runs an
// embedded store uses that store as its upstream (see startS3seal), at the
// address of the store's start when the replica (re)starts.
func startReplica(t *testing.T, in *instance) *instance {
	t.Helper()
	r := &instance{
		URL: "http://" + freeAddr(t), MetricsURL: "http://" + freeAddr(t), KMSAPIURL: "http://" + freeAddr(t),
		AccessKey: in.AccessKey, SecretKey: in.SecretKey, KeyAlias: in.KeyAlias,
		env: append([]string(nil), in.env...), via: in.via,
	}
	if in.emb != nil {
		r.via = in.emb
	}
	t.Cleanup(func() { r.stop(t) })
	r.launch(t)
	return r
}

// running reports whether an s3seal runs the store now.
func (m *embedded) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owner != nil
}

// launch starts the process on in's addresses and waits until it is ready.
// A first start that finds an address taken (freeAddr only picked a free
// port; something may take it before s3seal binds it) tries again on
// others; a restart keeps its addresses, which its clients use.
func (in *instance) launch(t *testing.T) {
	t.Helper()
	first := in.cmd == nil
	for attempt := 1; ; attempt++ {
		err := in.start(t)
		if err == nil {
			break
		}
		if !first || attempt == 3 || !strings.Contains(in.logs.String(), "address already in use") {
			t.Fatalf("%v; logs:\n%s", err, in.logs)
		}
		in.URL = strings.Replace(in.URL, hostPort(in.URL), freeAddr(t), 1)
		in.MetricsURL = "http://" + freeAddr(t)
		in.KMSAPIURL = "http://" + freeAddr(t)
	}
	if in.emb != nil {
		info, err := embeddedstore.Discover(in.dataDirNow)
		if err != nil {
			t.Fatalf("s3seal runs, but its embedded store cannot be found: %v", err)
		}
		in.emb.mu.Lock()
		in.emb.owner, in.emb.info = in, info
		in.emb.mu.Unlock()
	}
}

// start runs the process once and waits until it is ready.
func (in *instance) start(t *testing.T) error {
	t.Helper()
	in.logs = &testlog.Buffer{}
	in.dataDirNow = in.dataDir
	if in.dataDirNow == "" {
		in.dataDirNow = t.TempDir()
	}
	env := append(append([]string(nil), in.env...),
		"S3SEAL_ADDR="+hostPort(in.URL), "S3SEAL_METRICS_ADDR="+hostPort(in.MetricsURL),
		"S3SEAL_KMS_API_ADDR="+hostPort(in.KMSAPIURL), "S3SEAL_DATA_DIR="+in.dataDirNow)
	if in.via != nil {
		u, ak, sk := testEnv{emb: in.via}.storeAccess(t)
		env = append(env, "S3SEAL_UPSTREAM_URL="+u, "S3SEAL_UPSTREAM_ACCESS_KEY="+ak, "S3SEAL_UPSTREAM_SECRET_KEY="+sk)
	}
	cmd := exec.Command(s3sealBinary(t))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = in.logs, in.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.cmd = cmd
	return in.awaitReady()
}

// awaitReady waits up to 20 s for /readyz (with upOnly, /healthz) to
// answer 200, and fails at once if the process exits meanwhile.
func (in *instance) awaitReady() error {
	path := "/readyz"
	if in.upOnly {
		path = "/healthz"
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(in.MetricsURL + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if exited(in.pid()) {
			in.cmd.Wait()
			return errors.New("s3seal exited at start")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("s3seal: no 200 on %s in 20 s", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exited reports whether a child process has exited (and waits to be
// reaped), without reaping it: whoever calls cmd.Wait still can.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

func hostPort(u string) string {
	return strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
}

// restart stops the process with SIGTERM and starts it again with the same
// configuration on the same addresses. Against MinIO and versitygw it
// keeps no state between the two (a fresh data directory, an empty
// data-key cache); on the embedded store the data dir stays, since the
// store lives in it, and the store restarts with the process (at another
// address, with another credential).
func (in *instance) restart(t *testing.T) {
	t.Helper()
	in.stopWith(t, syscall.SIGTERM)
	in.launch(t)
}

// pid is the process id of the running s3seal.
func (in *instance) pid() int { return in.cmd.Process.Pid }

func (in *instance) stop(t *testing.T) { in.stopWith(t, os.Interrupt) }

func (in *instance) stopWith(t *testing.T, sig os.Signal) {
	if in.cmd == nil || in.cmd.ProcessState != nil {
		in.released()
		return
	}
	in.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- in.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		in.cmd.Process.Kill()
		<-done
		t.Errorf("s3seal did not stop on %v within 15 s", sig)
	}
	in.released()
	if t.Failed() || os.Getenv("S3SEAL_TEST_SHOW_LOGS") == "1" {
		t.Logf("s3seal logs:\n%s", in.logs)
	}
}

// released notes that in no longer runs its embedded store.
func (in *instance) released() {
	if in.emb == nil {
		return
	}
	in.emb.mu.Lock()
	defer in.emb.mu.Unlock()
	if in.emb.owner == in {
		in.emb.owner, in.emb.info = nil, embeddedstore.Info{}
	}
}

// store is a minio-go client straight to e's store: what the store holds.
func store(t *testing.T, e testEnv) *minio.Client {
	t.Helper()
	storeURL, ak, sk := e.storeAccess(t)
	u, err := url.Parse(storeURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(ak, sk, ""), Region: region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newBucket makes a bucket directly in the store (bucket operations pass
// through s3seal unchanged; the client tests create theirs through it).
func newBucket(t *testing.T, e testEnv) string {
	t.Helper()
	name := "e2e-" + randHex(6)
	if err := store(t, e).MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}
