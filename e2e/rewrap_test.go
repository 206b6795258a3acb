package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/tags"

	"github.com/s3seal/s3seal/internal/testkms"
)

// minioEnv is the MinIO upstream alone: the rewrap tests exercise the
// command, not each store's copy semantics (which the copy tests cover).
func minioEnv(t *testing.T) testEnv {
	t.Helper()
	for _, e := range allEnvs(t) {
		if e.name == "minio" {
			return e
		}
	}
	t.Skip("MinIO not running: run scripts/test")
	return testEnv{}
}

// rewrapSummary is the part of `s3seal rewrap --json` the tests read.
type rewrapSummary struct {
	Counts    map[string]int `json:"counts"`
	Skipped   []rewrapResult `json:"skipped"`
	Failed    []rewrapResult `json:"failed"`
	Completed bool           `json:"completed"`
}

type rewrapResult struct{ Key, Reason string }

// rewrapCmd is `s3seal rewrap --json` with in's configuration, a data dir
// of its own (kept across runs: the resume journal lives there) and a
// metrics listener at metricsAddr ("" for none).
func rewrapCmd(in *instance, dataDir, metricsAddr string, args ...string) *exec.Cmd {
	cmd := exec.Command(binPath, append([]string{"rewrap", "--json", "--metrics-addr", metricsAddr}, args...)...)
	cmd.Env = append(append([]string(nil), in.env...), "S3SEAL_DATA_DIR="+dataDir, "S3SEAL_LOG_LEVEL=warn")
	return cmd
}

// runRewrap runs a rewrap to its end and returns its exit code and summary.
func runRewrap(t *testing.T, in *instance, dataDir string, args ...string) (int, rewrapSummary) {
	t.Helper()
	return startRewrap(t, in, dataDir, "", args...).wait(t)
}

// bgRewrap is a rewrap running beside a test that acts while it runs.
type bgRewrap struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// startRewrap starts a rewrap (see rewrapCmd).
func startRewrap(t *testing.T, in *instance, dataDir, metricsAddr string, args ...string) *bgRewrap {
	t.Helper()
	s3sealBinary(t)
	b := &bgRewrap{cmd: rewrapCmd(in, dataDir, metricsAddr, args...)}
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return b
}

// until waits up to 30 s for cond to hold, and fails (killing the rewrap)
// if it does not.
func (b *bgRewrap) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.cmd.Process.Kill()
			b.cmd.Wait()
			t.Fatalf("rewrap: %s did not happen in 30 s\n%s", what, b.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits for the rewrap to end and returns its exit code and summary.
func (b *bgRewrap) wait(t *testing.T) (int, rewrapSummary) {
	t.Helper()
	err := b.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var sum rewrapSummary
	if err := json.Unmarshal(b.stdout.Bytes(), &sum); err != nil {
		t.Fatalf("rewrap %v: exit %d, summary %q: %v\nstderr: %s", b.cmd.Args, code, b.stdout.String(), err, b.stderr.String())
	}
	return code, sum
}

// storedObject is what the store holds for key: its bytes' digest and the
// CMK s3seal's metadata names.
func storedObject(t *testing.T, st *minio.Client, bucket, key string) (digest [32]byte, cmk string) {
	t.Helper()
	obj, err := st.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	h := sha256.New()
	if _, err := io.Copy(h, obj); err != nil {
		t.Fatalf("reading %s from the store: %v", key, err)
	}
	info, _ := obj.Stat()
	copy(digest[:], h.Sum(nil))
	return digest, info.Metadata.Get("X-Amz-Meta-S3seal-C")
}

// keyARN is the ARN of the CMK alias names.
func keyARN(t *testing.T, kmsURL, alias string) string {
	t.Helper()
	out, err := testkms.Client(t, kmsURL).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// TestRewrapToAnotherCMK moves a versioned bucket of single-part and
// multipart objects to another CMK with an interruption (kill -9) in the
// middle, then disables the old CMK: every object reads byte for byte with
// its metadata and tags, the store's bytes are unchanged, and no object was
// copied twice (each has exactly one version more).
func TestRewrapToAnotherCMK(t *testing.T) {
	e := minioEnv(t)
	ctx := context.Background()
	oldKey, newKey := newCMK(t, e.kmsURL), newCMK(t, e.kmsURL)
	in := startS3seal(t, e, e.kmsURL, oldKey, "S3SEAL_KMS_DECRYPT_KEY_IDS="+newKey, "S3SEAL_DATAKEY_CACHE_SIZE=0")
	bucket := newBucket(t, e)
	st := store(t, e)
	if err := st.EnableVersioning(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	files := writeRewrapObjects(t, in, bucket)
	before := map[string][32]byte{}
	oldARN, newARN := keyARN(t, e.kmsURL, oldKey), keyARN(t, e.kmsURL, newKey)
	for key := range files {
		d, cmk := storedObject(t, st, bucket, key)
		if cmk != oldARN {
			t.Fatalf("%s stored under %q, want %q", key, cmk, oldARN)
		}
		before[key] = d
	}

	dataDir := t.TempDir()
	killMidway(t, in, dataDir, "--bucket", bucket, "--to-key", newKey, "--concurrency", "1", "--kms-rate", "4")
	code, sum := runRewrap(t, in, dataDir, "--bucket", bucket, "--to-key", newKey)
	if code != 0 || !sum.Completed || len(sum.Failed) > 0 || sum.Counts["rewrapped"]+sum.Counts["up_to_date"] != len(files) || sum.Counts["up_to_date"] == 0 {
		t.Fatalf("resumed rewrap: exit %d, %+v", code, sum)
	}
	if code, sum := runRewrap(t, in, dataDir, "--bucket", bucket, "--to-key", newKey); code != 0 || sum.Counts["up_to_date"] != len(files) {
		t.Fatalf("a third run: exit %d, %+v", code, sum)
	}

	// The old CMK goes; everything reads under the new one.
	disableKey(t, e.kmsURL, oldKey)
	for key, plain := range files {
		d, cmk := storedObject(t, st, bucket, key)
		if d != before[key] || cmk != newARN {
			t.Errorf("%s: stored bytes changed %v, CMK %q, want %q", key, d != before[key], cmk, newARN)
		}
		checkRewrapped(t, in, bucket, key, plain)
		versions := 0
		for v := range st.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
			if v.Err != nil {
				t.Fatal(v.Err)
			}
			if v.Key == key {
				versions++
			}
		}
		if versions != 2 {
			t.Errorf("%s has %d versions, want 2 (the original and one rewrap)", key, versions)
		}
	}
}

// writeRewrapObjects writes, through s3seal with the AWS CLI, small objects
// and one over the CLI's multipart threshold with metadata and tags.
func writeRewrapObjects(t *testing.T, in *instance, bucket string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	env := clientEnv(in)
	files := map[string][]byte{"big.bin": plaintext(20<<20+5, 7)}
	for i := range 12 {
		files[fmt.Sprintf("small/%02d", i)] = plaintext(1000*i+1, byte(i))
	}
	for key, b := range files {
		path := writeFile(t, dir, strings.ReplaceAll(key, "/", "_"), b)
		run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3", "cp", path, "s3://"+bucket+"/"+key,
			"--metadata", "owner=e2e", "--content-type", "application/x-e2e", "--cache-control", "max-age=60")
	}
	run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3api", "put-object-tagging", "--bucket", bucket, "--key", "big.bin",
		"--tagging", "TagSet=[{Key=team,Value=blue}]")
	return files
}

// checkRewrapped reads key through s3seal and checks body, metadata and,
// for big.bin, its tags and parts.
func checkRewrapped(t *testing.T, in *instance, bucket, key string, plain []byte) {
	t.Helper()
	env := clientEnv(in)
	out := filepath.Join(t.TempDir(), "out")
	run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3", "cp", "s3://"+bucket+"/"+key, out)
	sameFile(t, out, plain)
	head := run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3api", "head-object", "--bucket", bucket, "--key", key)
	for _, want := range []string{`"owner": "e2e"`, `"ContentType": "application/x-e2e"`, `"CacheControl": "max-age=60"`} {
		if !strings.Contains(head, want) {
			t.Errorf("%s: head-object lacks %s:\n%s", key, want, head)
		}
	}
	if key != "big.bin" {
		return
	}
	if !strings.Contains(head, `-3\""`) {
		t.Errorf("big.bin is no longer 3 parts:\n%s", head)
	}
	tagging := run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3api", "get-object-tagging", "--bucket", bucket, "--key", key)
	if !strings.Contains(tagging, `"Value": "blue"`) {
		t.Errorf("big.bin lost its tags: %s", tagging)
	}
}

// killMidway starts a rewrap and kills it (SIGKILL) once it has rewrapped
// a few objects and before it is done.
func killMidway(t *testing.T, in *instance, dataDir string, args ...string) {
	t.Helper()
	metricsAddr := freeAddr(t)
	b := startRewrap(t, in, dataDir, metricsAddr, args...)
	b.until(t, "two objects rewrapped", func() bool { return rewrapMetric(metricsAddr, "rewrapped") >= 2 })
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.cmd.Wait()
}

// rewrapMetric reads s3seal_rewrap_objects_total{outcome} from a running
// rewrap, or -1 when it cannot.
func rewrapMetric(addr, outcome string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	prefix := `s3seal_rewrap_objects_total{outcome="` + outcome + `"} `
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return -1
}

func disableKey(t *testing.T, kmsURL, alias string) {
	t.Helper()
	kc := testkms.Client(t, kmsURL)
	if _, err := kc.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(keyARN(t, kmsURL, alias))}); err != nil {
		t.Fatal(err)
	}
}

// TestRewrapSkipsAnObjectChangedMeanwhile overwrites an object after the
// rewrap has decided on it and before its copy (the KMS rate limit holds
// the copy back): the rewrap skips it and reports it, and the new content
// stays.
func TestRewrapSkipsAnObjectChangedMeanwhile(t *testing.T) {
	e := minioEnv(t)
	oldKey, newKey := newCMK(t, e.kmsURL), newCMK(t, e.kmsURL)
	in := startS3seal(t, e, e.kmsURL, oldKey, "S3SEAL_KMS_DECRYPT_KEY_IDS="+newKey)
	bucket := newBucket(t, e)
	env := clientEnv(in)
	dir := t.TempDir()
	for _, key := range []string{"a", "b"} {
		run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3", "cp", writeFile(t, dir, key, []byte("old "+key)), "s3://"+bucket+"/"+key)
	}
	// A target serve could not read from is refused before anything.
	unconfigured := exec.Command(binPath, "rewrap", "--bucket", bucket, "--to-key", newCMK(t, e.kmsURL), "--metrics-addr", "")
	unconfigured.Env = append(append([]string(nil), in.env...), "S3SEAL_DATA_DIR="+t.TempDir())
	if out, err := unconfigured.CombinedOutput(); err == nil || !strings.Contains(string(out), "S3SEAL_KMS_DECRYPT_KEY_IDS") {
		t.Fatalf("--to-key outside serve's CMKs: %v %s", err, out)
	}
	// One KMS call every 10 s: "a" is rewrapped at once, then "b" is read
	// and its copy waits for the next call, while b is overwritten (by an
	// in-process client: a CLI's start-up on a loaded machine could take
	// much of the window).
	metricsAddr := freeAddr(t)
	b := startRewrap(t, in, t.TempDir(), metricsAddr, "--bucket", bucket, "--to-key", newKey, "--concurrency", "1", "--kms-rate", "0.1")
	b.until(t, "the first object rewrapped", func() bool { return rewrapMetric(metricsAddr, "rewrapped") >= 1 })
	time.Sleep(500 * time.Millisecond)
	if _, err := sdkClient(t, in).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("b"), Body: strings.NewReader("new b")}); err != nil {
		t.Fatal(err)
	}
	if code, sum := b.wait(t); code != 0 || len(sum.Skipped) != 1 || sum.Skipped[0].Key != "b" || !strings.Contains(sum.Skipped[0].Reason, "changed") || sum.Counts["rewrapped"] != 1 {
		t.Fatalf("exit %d, summary %+v, want a rewrapped and b skipped as changed", code, sum)
	}
	out := filepath.Join(dir, "got")
	run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3", "cp", "s3://"+bucket+"/b", out)
	sameFile(t, out, []byte("new b"))
}

// TestRewrapEncryptsPlaintext converts a bucket of objects written straight
// to MinIO, one over 100 MiB: afterwards MinIO holds ciphertext with the
// objects' metadata and tags, every object reads through s3seal as it was,
// and a second run does nothing.
func TestRewrapEncryptsPlaintext(t *testing.T) {
	e := minioEnv(t)
	ctx := context.Background()
	in := startS3seal(t, e, e.kmsURL, "")
	bucket := newBucket(t, e)
	st := store(t, e)
	files := map[string][]byte{"big": plaintext(100<<20+12345, 3), "dir/small": []byte("small plaintext"), "empty": {}}
	for key, b := range files {
		opts := minio.PutObjectOptions{ContentType: "text/x-plain", UserMetadata: map[string]string{"origin": "direct"},
			UserTags: map[string]string{"kept": "yes"}, PartSize: 16 << 20}
		if _, err := st.PutObject(ctx, bucket, key, bytes.NewReader(b), int64(len(b)), opts); err != nil {
			t.Fatal(err)
		}
	}
	// Without versioning there is no history to replay: deleting the "old"
	// version would delete the object.
	if code, sum := runRewrap(t, in, t.TempDir(), "--bucket", bucket, "--all-versions", "--encrypt-plaintext"); code != 1 || sum.Completed || len(sum.Counts) > 0 {
		t.Fatalf("--all-versions on an unversioned bucket: exit %d, %+v", code, sum)
	}
	if code, sum := runRewrap(t, in, t.TempDir(), "--bucket", bucket); code != 0 || len(sum.Skipped) != len(files) {
		t.Fatalf("without --encrypt-plaintext: exit %d, %+v, want every object skipped", code, sum)
	}
	code, sum := runRewrap(t, in, t.TempDir(), "--bucket", bucket, "--encrypt-plaintext")
	if code != 0 || sum.Counts["encrypted"] != len(files) {
		t.Fatalf("--encrypt-plaintext: exit %d, %+v", code, sum)
	}
	env := clientEnv(in)
	for key, plain := range files {
		checkStored(t, e, bucket, key, plain)
		out := filepath.Join(t.TempDir(), "out")
		run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3", "cp", "s3://"+bucket+"/"+key, out)
		sameFile(t, out, plain)
		info, err := st.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
		if err != nil || info.ContentType != "text/x-plain" || info.UserMetadata["Origin"] != "direct" {
			t.Errorf("%s: metadata %v %+v", key, err, info.UserMetadata)
		}
		tg, err := st.GetObjectTagging(ctx, bucket, key, minio.GetObjectTaggingOptions{})
		if err != nil || tg.ToMap()["kept"] != "yes" {
			t.Errorf("%s: tags %v %v", key, err, tagMap(tg))
		}
	}
	if code, sum := runRewrap(t, in, t.TempDir(), "--bucket", bucket, "--encrypt-plaintext"); code != 0 || sum.Counts["up_to_date"] != len(files) {
		t.Fatalf("second run: exit %d, %+v, want nothing to do", code, sum)
	}
}

func tagMap(t *tags.Tags) map[string]string {
	if t == nil {
		return nil
	}
	return t.ToMap()
}

// TestSSEKMSChoice has the AWS CLI choose CMKs the S3 way: an allowed CMK
// is used (and named in the answer), any other is AccessDenied with nothing
// stored, and malformed SSE headers are S3's 400s (SSE headers on reads,
// which the CLI cannot send, are refused in proxy's tests).
func TestSSEKMSChoice(t *testing.T) {
	e := minioEnv(t)
	other, outside := newCMK(t, e.kmsURL), newCMK(t, e.kmsURL)
	in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_KMS_DECRYPT_KEY_IDS="+other)
	bucket := newBucket(t, e)
	env := clientEnv(in)
	path := writeFile(t, t.TempDir(), "f", []byte("chosen by the client"))
	aws := func(args ...string) (string, error) {
		cmd := exec.Command("/usr/bin/aws", append([]string{"--endpoint-url", in.URL}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := aws("s3", "cp", path, "s3://"+bucket+"/ok", "--sse", "aws:kms", "--sse-kms-key-id", other); err != nil {
		t.Fatalf("allowed CMK: %v %s", err, out)
	}
	if _, cmk := storedObject(t, store(t, e), bucket, "ok"); cmk != keyARN(t, e.kmsURL, other) {
		t.Errorf("stored under %q, want %s", cmk, other)
	}
	head, _ := aws("s3api", "head-object", "--bucket", bucket, "--key", "ok")
	if !strings.Contains(head, keyARN(t, e.kmsURL, other)) {
		t.Errorf("head-object does not name the chosen CMK:\n%s", head)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"s3", "cp", path, "s3://" + bucket + "/denied", "--sse", "aws:kms", "--sse-kms-key-id", outside}, "AccessDenied"},
		{[]string{"s3api", "put-object", "--bucket", bucket, "--key", "denied", "--body", path, "--server-side-encryption", "AES256", "--ssekms-key-id", other}, "InvalidArgument"},
		{[]string{"s3api", "put-object", "--bucket", bucket, "--key", "denied", "--body", path, "--ssekms-key-id", other}, "InvalidArgument"},
	} {
		out, err := aws(tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %v %s, want %s", tc.args, err, out, tc.want)
		}
	}
	if _, err := store(t, e).StatObject(context.Background(), bucket, "denied", minio.StatObjectOptions{}); err == nil {
		t.Error("a refused write stored an object")
	}

	// An encryption context is bound, kept, answered, and survives a rewrap.
	encCtx := base64.StdEncoding.EncodeToString([]byte(`{"tenant":"a"}`))
	put, err := aws("s3api", "put-object", "--bucket", bucket, "--key", "ctx", "--body", path,
		"--server-side-encryption", "aws:kms", "--ssekms-key-id", other, "--ssekms-encryption-context", encCtx)
	if err != nil || !strings.Contains(put, encCtx) {
		t.Fatalf("put-object with a context: %v %s", err, put)
	}
	if code, sum := runRewrap(t, in, t.TempDir(), "--bucket", bucket, "--to-key", in.KeyAlias); code != 0 || sum.Counts["rewrapped"] != 2 {
		t.Fatalf("rewrap: exit %d %+v", code, sum)
	}
	var report struct {
		FormatVersion     int               `json:"format_version"`
		EncryptionContext map[string]string `json:"encryption_context"`
	}
	if err := json.Unmarshal(s3sealCmd(t, in, "inspect", "s3://"+bucket+"/ctx"), &report); err != nil || (report.FormatVersion != 2 && report.FormatVersion != 3) || // 3: the CLI's checksum kept too
		report.EncryptionContext["tenant"] != "a" || report.EncryptionContext["s3seal:key"] != "ctx" {
		t.Fatalf("inspect after the rewrap: %+v %v", report, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if got, err := aws("s3", "cp", "s3://"+bucket+"/ctx", out); err != nil {
		t.Fatalf("reading it back: %v %s", err, got)
	}
	sameFile(t, out, []byte("chosen by the client"))
}

// TestRewrapInPlaceAfterRotation rotates the CMK (RotateKeyOnDemand) and
// re-wraps every object under its new material, with an interruption: the
// resumed run skips what the first did (its journal in the data dir), each
// object gets a new wrapped key and exactly one version more, and all read.
func TestRewrapInPlaceAfterRotation(t *testing.T) {
	e := minioEnv(t)
	ctx := context.Background()
	in := startS3seal(t, e, e.kmsURL, "")
	bucket := newBucket(t, e)
	st := store(t, e)
	if err := st.EnableVersioning(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	wrapped := map[string]string{}
	for i := range 8 {
		key := fmt.Sprintf("obj-%d", i)
		files[key] = plaintext(5000*i+3, byte(i))
		if _, err := sdkClient(t, in).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(files[key])}); err != nil {
			t.Fatal(err)
		}
		info, err := st.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wrapped[key] = info.Metadata.Get("X-Amz-Meta-S3seal-K")
	}
	kc := testkms.Client(t, e.kmsURL)
	if _, err := kc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(keyARN(t, e.kmsURL, in.KeyAlias))}); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	killMidway(t, in, dataDir, "--bucket", bucket, "--concurrency", "1", "--kms-rate", "3")
	code, sum := runRewrap(t, in, dataDir, "--bucket", bucket)
	if code != 0 || sum.Counts["rewrapped"]+sum.Counts["up_to_date"] != len(files) || sum.Counts["up_to_date"] < 2 {
		t.Fatalf("resumed rotation in place: exit %d, %+v", code, sum)
	}
	if entries, _ := os.ReadDir(filepath.Join(dataDir, "rewrap")); len(entries) != 0 {
		t.Errorf("a completed run left its journal: %v", entries)
	}
	for key, plain := range files {
		info, err := st.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
		if err != nil || info.Metadata.Get("X-Amz-Meta-S3seal-K") == wrapped[key] {
			t.Errorf("%s: wrapped key unchanged (%v)", key, err)
		}
		got, err := sdkClient(t, in).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if !bytes.Equal(b, plain) {
			t.Errorf("%s reads differently after the rewrap", key)
		}
		versions := 0
		for v := range st.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
			if v.Err == nil && v.Key == key {
				versions++
			}
		}
		if versions != 2 {
			t.Errorf("%s has %d versions, want 2", key, versions)
		}
	}
}

// TestBucketDefaultCMK sets a bucket's default CMK with the AWS CLI through
// one s3seal process; a second one (a replica) writes new objects under
// it, and the setting lives in the store, not in either process.
func TestBucketDefaultCMK(t *testing.T) {
	e := minioEnv(t)
	other := newCMK(t, e.kmsURL)
	in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_KMS_DECRYPT_KEY_IDS="+other)
	replica := startReplica(t, in)
	bucket := newBucket(t, e)
	env := clientEnv(in)
	conf := `{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"` + other + `"}}]}`
	run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3api", "put-bucket-encryption", "--bucket", bucket, "--server-side-encryption-configuration", conf)
	got := run(t, env, "/usr/bin/aws", "--endpoint-url", replica.URL, "s3api", "get-bucket-encryption", "--bucket", bucket)
	if !strings.Contains(got, keyUUID(t, e.kmsURL, other)) {
		t.Errorf("the replica's get-bucket-encryption:\n%s", got)
	}
	path := writeFile(t, t.TempDir(), "f", []byte("under the bucket's CMK"))
	run(t, env, "/usr/bin/aws", "--endpoint-url", replica.URL, "s3", "cp", path, "s3://"+bucket+"/obj")
	if _, cmk := storedObject(t, store(t, e), bucket, "obj"); cmk != keyARN(t, e.kmsURL, other) {
		t.Errorf("written through the replica under %q, want the bucket's %s", cmk, other)
	}
	run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3api", "delete-bucket-encryption", "--bucket", bucket)
	in.restart(t) // nothing kept in the process: the restarted one reads the store
	got = run(t, env, "/usr/bin/aws", "--endpoint-url", in.URL, "s3api", "get-bucket-encryption", "--bucket", bucket)
	if !strings.Contains(got, keyUUID(t, e.kmsURL, in.KeyAlias)) {
		t.Errorf("after delete-bucket-encryption:\n%s", got)
	}
}

// keyUUID is the key id of the CMK alias names (the end of its ARN), which
// every name s3seal gives the key contains.
func keyUUID(t *testing.T, kmsURL, alias string) string {
	_, id, _ := strings.Cut(keyARN(t, kmsURL, alias), ":key/")
	return id
}

// TestRewrapAllVersions moves every version of a versioned bucket's keys
// to another CMK: the history keeps its order (delete markers included)
// and its size, the old versions are gone, and with the old CMK disabled
// every version reads.
func TestRewrapAllVersions(t *testing.T) {
	e := minioEnv(t)
	ctx := context.Background()
	oldKey, newKey := newCMK(t, e.kmsURL), newCMK(t, e.kmsURL)
	in := startS3seal(t, e, e.kmsURL, oldKey, "S3SEAL_KMS_DECRYPT_KEY_IDS="+newKey, "S3SEAL_DATAKEY_CACHE_SIZE=0")
	bucket := newBucket(t, e)
	st := store(t, e)
	if err := st.EnableVersioning(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	c := sdkClient(t, in)
	put := func(key, body string) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	put("k", "first")
	put("k", "second")
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	put("k", "third")
	put("single", "only version")
	code, sum := runRewrap(t, in, t.TempDir(), "--bucket", bucket, "--to-key", newKey, "--all-versions")
	if code != 0 || sum.Counts["rewrapped"] != 4 || len(sum.Failed) > 0 {
		t.Fatalf("exit %d, %+v, want 4 versions rewrapped", code, sum)
	}
	disableKey(t, e.kmsURL, oldKey)
	var history []string
	newARN := keyARN(t, e.kmsURL, newKey)
	for v := range st.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "k", WithVersions: true}) {
		if v.Err != nil {
			t.Fatal(v.Err)
		}
		if v.IsDeleteMarker {
			history = append(history, "(deleted)")
			continue
		}
		info, err := st.StatObject(ctx, bucket, "k", minio.StatObjectOptions{VersionID: v.VersionID})
		if err != nil || info.Metadata.Get("X-Amz-Meta-S3seal-C") != newARN {
			t.Errorf("version %s under %q (%v)", v.VersionID, info.Metadata.Get("X-Amz-Meta-S3seal-C"), err)
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), VersionId: aws.String(v.VersionID)})
		if err != nil {
			t.Fatalf("reading version %s: %v", v.VersionID, err)
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		history = append(history, string(b))
	}
	if got := strings.Join(history, ","); got != "third,(deleted),second,first" {
		t.Errorf("history newest first: %s", got)
	}
	if code, sum := runRewrap(t, in, t.TempDir(), "--bucket", bucket, "--to-key", newKey, "--all-versions"); code != 0 || sum.Counts["up_to_date"] != 4 {
		t.Errorf("a second run: exit %d, %+v", code, sum)
	}
}

// TestRewrapAllVersionsYieldsToAWrite writes to a key while its history is
// being replayed (the KMS rate limit holds each step back): the replay
// stops, the client's write stays current, the old versions are kept, and
// the key is reported as failed.
func TestRewrapAllVersionsYieldsToAWrite(t *testing.T) {
	e := minioEnv(t)
	ctx := context.Background()
	oldKey, newKey := newCMK(t, e.kmsURL), newCMK(t, e.kmsURL)
	in := startS3seal(t, e, e.kmsURL, oldKey, "S3SEAL_KMS_DECRYPT_KEY_IDS="+newKey)
	bucket := newBucket(t, e)
	st := store(t, e)
	if err := st.EnableVersioning(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	c := sdkClient(t, in)
	put := func(body string) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, body := range []string{"v1", "v2", "v3"} {
		put(body)
	}
	versions := func() int {
		n := 0
		for v := range st.ListObjects(ctx, bucket, minio.ListObjectsOptions{WithVersions: true}) {
			if v.Err == nil {
				n++
			}
		}
		return n
	}
	// One KMS call every 3 s: the first copy at once, the next ones later.
	b := startRewrap(t, in, t.TempDir(), "", "--bucket", bucket, "--to-key", newKey, "--all-versions", "--kms-rate", "0.33")
	b.until(t, "the replay's first copy", func() bool { return versions() >= 4 })
	put("the client's write")
	if code, sum := b.wait(t); code != 1 || len(sum.Failed) != 3 || !strings.Contains(sum.Failed[0].Reason, "written to during the replay") {
		t.Fatalf("rewrap: exit %d, %+v", code, sum)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	current, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(current) != "the client's write" {
		t.Fatalf("current content %q, want the client's write", current)
	}
	if n := versions(); n != 5 {
		t.Errorf("%d versions, want the 3 old ones, 1 copy and the write", n)
	}
}
