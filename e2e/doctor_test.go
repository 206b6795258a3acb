package e2e

// `s3seal doctor` against the real stores and local-kms, and against stores
// and a KMS that misbehave; and the same checks at serve's start.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/internal/adversary"
	"github.com/s3seal/s3seal/internal/testkms"
)

// doctorReport is `s3seal doctor --json`.
type doctorReport struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Name     string `json:"name"`
		Required bool   `json:"required"`
		Status   string `json:"status"`
		Message  string `json:"message"`
		Fix      string `json:"fix"`
	} `json:"checks"`
}

func (r doctorReport) failing() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == "fail" {
			out = append(out, c.Name)
		}
	}
	return out
}

func (r doctorReport) check(name string) (status, message string) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Status, c.Message
		}
	}
	return "", ""
}

// s3sealEnv configures an s3seal (serve or doctor) in front of e's store
// with the KMS at kmsURL and the CMK alias. On the embedded store it is the
// zero-config configuration on the test's data dir: the doctor then checks
// the store of the s3seal running there, or starts it for its run.
func s3sealEnv(t *testing.T, e testEnv, kmsURL, alias string) []string {
	env := append(os.Environ(),
		"S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID="+alias,
		"S3SEAL_KMS_ENDPOINT="+kmsURL, "S3SEAL_KMS_REGION="+region,
		"AWS_ACCESS_KEY_ID=e2e", "AWS_SECRET_ACCESS_KEY=e2e",
	)
	if e.isEmbedded() {
		return append(env, "S3SEAL_DATA_DIR="+e.emb.dataDir)
	}
	return append(env, "S3SEAL_DATA_DIR="+t.TempDir(),
		"S3SEAL_UPSTREAM_URL="+e.storeURL,
		"S3SEAL_UPSTREAM_ACCESS_KEY="+e.storeAK, "S3SEAL_UPSTREAM_SECRET_KEY="+e.storeSK)
}

// storeRunning makes sure e's store runs: the embedded store runs only
// while an s3seal does, so one is started there (with a CMK of its own).
func storeRunning(t *testing.T, e testEnv) {
	t.Helper()
	if e.isEmbedded() {
		startS3seal(t, e, e.kmsURL, "")
	}
}

// runDoctor runs `s3seal doctor --bucket bucket --json` with env and
// returns its exit code and report.
func runDoctor(t *testing.T, env []string, bucket string) (int, doctorReport) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s3sealBinary(t), "doctor", "--bucket", bucket, "--json")
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("s3seal doctor: %v\n%s", err, stderr.String())
	}
	var rep doctorReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("s3seal doctor --json printed no report (%v):\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if strings.Contains(stderr.String(), "may be left") {
		t.Errorf("probe objects left: %s", stderr.String())
	}
	return code, rep
}

// checkNoProbes: the doctor left nothing in the bucket.
func checkNoProbes(t *testing.T, e testEnv, bucket string) {
	t.Helper()
	for obj := range store(t, e).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		t.Errorf("left in the bucket: %s", obj.Key)
	}
}

// TestDoctorPasses: against MinIO, versitygw and the embedded store (a
// running s3seal's), and local-kms, every check passes and nothing is left
// behind.
func TestDoctorPasses(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		storeRunning(t, e)
		bucket := newBucket(t, e)
		code, rep := runDoctor(t, s3sealEnv(t, e, e.kmsURL, newCMK(t, e.kmsURL)), bucket)
		if code != 0 || !rep.OK {
			t.Errorf("exit %d, ok %v", code, rep.OK)
		}
		for _, c := range rep.Checks {
			if c.Status != "pass" {
				t.Errorf("%s: %s %s; fix: %s", c.Name, c.Status, c.Message, c.Fix)
			}
		}
		if len(rep.Checks) < 16 {
			t.Errorf("%d checks", len(rep.Checks))
		}
		checkNoProbes(t, e, bucket)
	})
}

// TestDoctorCatchesStoreLies: a store that strips -N from multipart ETags,
// ignores partNumber or ignores sub-resources fails the matching check,
// with a line saying what the store did, and the doctor exits 1.
func TestDoctorCatchesStoreLies(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		storeRunning(t, e)
		alias := newCMK(t, e.kmsURL)
		for _, tc := range []struct {
			name  string
			lie   adversary.Lie
			check string
			says  string
		}{
			{"ETags without -N", adversary.Lie{Kind: adversary.ETagParts, N: -1}, "multipart-etag", "for a 2-part upload — s3seal then asks the store for each object's part count"},
			{"partNumber ignored", adversary.Lie{Kind: adversary.IgnorePartNumber}, "part-number", "bytes and no part count"},
			{"sub-resources ignored", adversary.Lie{Kind: adversary.IgnoreSubresources}, "subresources", "PUT ?tagging changed the object itself"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bucket := newBucket(t, e)
				liar, lying := lyingStore(t, e)
				liar.Set(tc.lie)
				code, rep := runDoctor(t, s3sealEnv(t, lying, e.kmsURL, alias), bucket)
				if code != 1 || rep.OK {
					t.Errorf("exit %d, ok %v", code, rep.OK)
				}
				if got := rep.failing(); len(got) != 1 || got[0] != tc.check {
					t.Errorf("failing %v, want [%s]", got, tc.check)
				}
				if _, msg := rep.check(tc.check); !strings.Contains(msg, tc.says) {
					t.Errorf("%s: %q, want it to say %q", tc.check, msg, tc.says)
				}
				checkNoProbes(t, e, bucket)
			})
		}
	})
}

// denyingKMS is a KMS-API endpoint in front of target that answers op with
// AccessDeniedException and forwards everything else.
func denyingKMS(t *testing.T, target, op string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "TrentService."+op {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"__type":"AccessDeniedException","message":"denied"}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestDoctorKMSFailures: a disabled CMK fails the key check; a KMS that
// denies ReEncrypt fails the ReEncrypt check. Either way the doctor exits 1.
func TestDoctorKMSFailures(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		ctx := context.Background()
		storeRunning(t, e)
		bucket := newBucket(t, e)

		alias := newCMK(t, e.kmsURL)
		c := testkms.Client(t, e.kmsURL)
		key, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: key.KeyMetadata.KeyId}); err != nil {
			t.Fatal(err)
		}
		code, rep := runDoctor(t, s3sealEnv(t, e, e.kmsURL, alias), bucket)
		if status, msg := rep.check("kms-key"); code != 1 || status != "fail" || !strings.Contains(msg, "Disabled") {
			t.Errorf("disabled CMK: exit %d, kms-key %s %q", code, status, msg)
		}

		code, rep = runDoctor(t, s3sealEnv(t, e, denyingKMS(t, e.kmsURL, "ReEncrypt"), newCMK(t, e.kmsURL)), bucket)
		if got := rep.failing(); code != 1 || len(got) != 1 || got[0] != "kms-reencrypt" {
			t.Errorf("ReEncrypt denied: exit %d, failing %v", code, got)
		}
		if _, msg := rep.check("kms-reencrypt"); !strings.Contains(msg, "denies s3seal ReEncrypt") || strings.Contains(msg, "denied\"") {
			t.Errorf("kms-reencrypt: %q", msg)
		}
		checkNoProbes(t, e, bucket)
	})
}

// TestDoctorServeNotReadyUntilKMS: serve runs the doctor's checks that
// write nothing at start. A KMS that does not answer does not stop it: it
// starts not ready, /readyz names the KMS check and says why, and it
// becomes ready by itself once a KMS answers on that address.
func TestDoctorServeNotReadyUntilKMS(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		kmsAddr := freeAddr(t) // nothing listens there yet
		// It fails the test if s3seal exits.
		in := startS3sealNotReady(t, e, "http://"+kmsAddr, newCMK(t, e.kmsURL), "AWS_MAX_ATTEMPTS=1")
		code, body := readyz(t, in)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "kms-key") || !strings.Contains(body, "does not answer") {
			t.Errorf("readyz with the KMS down: %d %s", code, body)
		}

		// A KMS on that address: local-kms behind a proxy listening there.
		target, err := url.Parse(e.kmsURL)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", kmsAddr)
		if err != nil {
			t.Fatalf("listening on the KMS address: %v", err)
		}
		srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target)}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		deadline := time.Now().Add(40 * time.Second)
		for {
			code, body = readyz(t, in)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not ready 40 s after the KMS came up: %d %s", code, body)
			}
			time.Sleep(time.Second)
		}
	})
}

// TestDoctorStopsServe: a CMK that does not exist stops serve at start,
// with the doctor's line for the key check.
func TestDoctorStopsServe(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		missing := "alias/s3seal-e2e-missing-" + randHex(4)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, s3sealBinary(t))
		cmd.Env = append(s3sealEnv(t, e, e.kmsURL, missing), "S3SEAL_ADDR="+freeAddr(t), "S3SEAL_METRICS_ADDR="+freeAddr(t), "S3SEAL_KMS_API_ADDR="+freeAddr(t))
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		last := lines[len(lines)-1]
		want := `s3seal serve: the KMS key (S3SEAL_KMS_KEY_ID) resolves and is enabled: S3SEAL_KMS_KEY_ID "` + missing + `" names no CMK`
		if !strings.HasPrefix(last, want) || !strings.Contains(last, "; fix: ") {
			t.Errorf("last line %q, want it to start %q", last, want)
		}
	})
}

func readyz(t *testing.T, in *instance) (int, string) {
	t.Helper()
	resp, err := http.Get(in.MetricsURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
