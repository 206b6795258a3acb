package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/envelope"
)

// startZeroConfig starts s3seal as a new user does, with no configuration:
// the embedded keyring, the embedded store and a generated credential, all
// in dataDir. Only the two listen addresses (so that tests can run side by
// side) and the data dir are set; every other S3SEAL_* variable of the
// test's environment is left out. The credential is read from the banner.
func startZeroConfig(t *testing.T, dataDir string) *instance {
	t.Helper()
	in := &instance{URL: "http://" + freeAddr(t), MetricsURL: "http://" + freeAddr(t), dataDir: dataDir}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "S3SEAL_") {
			in.env = append(in.env, kv)
		}
	}
	t.Cleanup(func() { in.stop(t) })
	in.launch(t)
	in.AccessKey, in.SecretKey = bannerCredential(t, in, dataDir)
	return in
}

// bannerField is the value of one line of s3seal's start banner
// ("  access key  AKID..."), "" if there is none.
func bannerField(banner, name string) string {
	m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + ` +(\S+)`).FindStringSubmatch(banner)
	if m == nil {
		return ""
	}
	return m[1]
}

// bannerCredential reads the generated credential from in's banner and
// checks it against DATA_DIR/credentials.json, where the banner says it is.
func bannerCredential(t *testing.T, in *instance, dataDir string) (accessKey, secretKey string) {
	t.Helper()
	banner := in.logs.String()
	accessKey, secretKey = bannerField(banner, "access key"), bannerField(banner, "secret key")
	credFile := filepath.Join(dataDir, "credentials.json")
	if accessKey == "" || secretKey == "" || !strings.Contains(banner, "(kept in "+credFile+")") {
		t.Fatalf("the banner shows no generated credential kept in %s:\n%s", credFile, banner)
	}
	var file struct {
		Credentials []struct {
			AccessKey string `json:"access_key"`
			SecretKey string `json:"secret_key"`
		} `json:"credentials"`
	}
	b, err := os.ReadFile(credFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("%s: %v", credFile, err)
	}
	if len(file.Credentials) != 1 || file.Credentials[0].AccessKey != accessKey || file.Credentials[0].SecretKey != secretKey {
		t.Fatalf("%s does not hold the credential the banner shows", credFile)
	}
	if up := bannerField(banner, "upstream"); up != "embedded" {
		t.Fatalf("upstream %q in the banner, want the embedded store:\n%s", up, banner)
	}
	return accessKey, secretKey
}

// headObject runs `aws s3api head-object` and decodes what it prints.
func headObject(t *testing.T, aws func(args ...string) string, bucket, key string) (size int64, etag string) {
	t.Helper()
	var head struct {
		ContentLength int64
		ETag          string
	}
	out := aws("s3api", "head-object", "--bucket", bucket, "--key", key)
	if err := json.Unmarshal([]byte(out), &head); err != nil {
		t.Fatalf("head-object: %v\n%s", err, out)
	}
	return head.ContentLength, head.ETag
}

// TestZeroConfigAWSCLI runs s3seal exactly as a new user does (no
// configuration: the embedded keyring and store) and drives it with the
// AWS CLI, rclone and boto3: a 100 MiB file up (multipart) and down
// (parallel ranged GETs), head-object, a ranged get-object across the
// CLI's 8 MiB part boundary, ls, sync twice, a server-side copy
// (UploadPartCopy), rclone copy and check, a boto3 multipart upload; then
// s3seal restarts on the same data dir and everything reads back again.
func TestZeroConfigAWSCLI(t *testing.T) {
	e := embeddedEnv(t) // for the skip rules; s3seal here gets no KMS
	dataDir := e.emb.dataDir
	in := startZeroConfig(t, dataDir)
	dir := t.TempDir()
	env := clientEnv(in)
	aws := func(args ...string) string {
		return run(t, env, "/usr/bin/aws", append([]string{"--endpoint-url", in.URL}, args...)...)
	}
	const bucket, size = "zero-config", 100 << 20
	const partSize = 8 << 20 // the CLI's multipart chunk size
	if out := aws("s3", "mb", "s3://"+bucket); strings.TrimSpace(out) != "make_bucket: "+bucket {
		t.Fatalf("aws s3 mb: %s", out)
	}

	// 100 MiB up: 13 parts of 8 MiB (the last 4 MiB), 10 at a time.
	src := filepath.Join(dir, "big.bin")
	sum := writeRandomFile(t, src, size)
	aws("s3", "cp", "--no-progress", src, "s3://"+bucket+"/big.bin")
	onDisk, err := os.Stat(filepath.Join(dataDir, "store", bucket, "big.bin"))
	if err != nil {
		t.Fatalf("the embedded store keeps no file for the object: %v", err)
	}
	if n, err := envelope.ObjectPlaintextSize(onDisk.Size(), 13); err != nil || n != size {
		t.Fatalf("the store's file is %d bytes: %d plaintext bytes in 13 parts (%v), want %d", onDisk.Size(), n, err, size)
	}
	// A ranged get-object across the boundary of parts 1 and 2.
	from, to := partSize-1000, partSize+999
	want := make([]byte, to-from+1)
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ReadAt(want, int64(from))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}

	// The boto3 object: 17 MiB in 5 MiB parts.
	botoPlain := plaintext(17*mib+5, 14)
	botoSrc := writeFile(t, dir, "boto.bin", botoPlain)
	boto := func(mode string) {
		t.Helper()
		script := `
import boto3, sys
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[2], config=Config(s3={"addressing_style": "path"}))
tc = TransferConfig(multipart_threshold=5*1024*1024, multipart_chunksize=5*1024*1024, max_concurrency=4)
if sys.argv[1] == "up":
    s3.upload_file(sys.argv[4], sys.argv[3], "boto/17m.bin", Config=tc)
head = s3.head_object(Bucket=sys.argv[3], Key="boto/17m.bin")
assert head["ContentLength"] == int(sys.argv[6]), head["ContentLength"]
assert head["ETag"].strip('"').endswith("-4"), head["ETag"]
s3.download_file(sys.argv[3], "boto/17m.bin", sys.argv[5], Config=tc)
print("ok")
`
		down := filepath.Join(dir, "boto-down-"+mode+".bin")
		out := run(t, env, "/usr/bin/python3", "-c", script, mode, in.URL, bucket, botoSrc, down, fmt.Sprint(len(botoPlain)))
		if strings.TrimSpace(out) != "ok" {
			t.Fatalf("boto3: %s", out)
		}
		sameFile(t, down, botoPlain)
		os.Remove(down)
	}

	// rclone: a tree with a file above its 5 MiB cutoff. See
	// TestRealClientsMultipart for the settings.
	rclone := rcloneFor(t, in)
	rcloneTree := filepath.Join(dir, "rclone-tree")
	rcloneFiles := writeTree(t, rcloneTree, map[string]int{"big.bin": 12*mib + 7, "small.txt": 100, "sub/empty": 0})

	tree := filepath.Join(dir, "tree")
	files := writeTree(t, tree, treeSizes)

	// Everything that reads back, after the upload and after the restart.
	readBack := func() {
		if n, etag := headObject(t, aws, bucket, "big.bin"); n != size || etagParts(etag) != 13 {
			t.Errorf("head-object: ContentLength %d, ETag %s; want %d in 13 parts", n, etag, size)
		}
		if ls := aws("s3", "ls", "s3://"+bucket+"/"); !regexp.MustCompile(`(?m) 104857600 big\.bin$`).MatchString(ls) {
			t.Errorf("aws s3 ls does not show big.bin at 104857600 bytes:\n%s", ls)
		}
		ranged := filepath.Join(dir, "ranged.bin")
		aws("s3api", "get-object", "--bucket", bucket, "--key", "big.bin", "--range", fmt.Sprintf("bytes=%d-%d", from, to), ranged)
		sameFile(t, ranged, want)
		for _, key := range []string{"big.bin", "copy.bin"} {
			down := filepath.Join(dir, "down.bin")
			aws("s3", "cp", "--no-progress", "s3://"+bucket+"/"+key, down)
			if got := fileSHA256(t, down); got != sum {
				t.Errorf("%s downloaded differs from the 100 MiB uploaded", key)
			}
			os.Remove(down)
		}
		if n, _ := headObject(t, aws, bucket, "copy.bin"); n != size {
			t.Errorf("head-object copy.bin: ContentLength %d, want %d", n, size)
		}
		back := filepath.Join(t.TempDir(), "tree")
		aws("s3", "sync", "--no-progress", "s3://"+bucket+"/tree/", back)
		sameTree(t, back, files)
		rclone("check", rcloneTree, "s3seal:"+bucket+"/rc")
		rclone("check", "--download", rcloneTree, "s3seal:"+bucket+"/rc")
		rcloneBack := filepath.Join(t.TempDir(), "rc")
		rclone("copy", "s3seal:"+bucket+"/rc", rcloneBack)
		sameTree(t, rcloneBack, rcloneFiles)
	}

	// Server-side copy: CreateMultipartUpload and UploadPartCopy.
	aws("s3", "cp", "--no-progress", "s3://"+bucket+"/big.bin", "s3://"+bucket+"/copy.bin")
	if out := aws("s3", "sync", "--no-progress", tree, "s3://"+bucket+"/tree/"); strings.Count(out, "upload:") != len(files) {
		t.Fatalf("first sync:\n%s", out)
	}
	if out := aws("s3", "sync", "--no-progress", tree, "s3://"+bucket+"/tree/"); strings.TrimSpace(out) != "" {
		t.Fatalf("the second sync transferred something:\n%s", out)
	}
	rclone("copy", rcloneTree, "s3seal:"+bucket+"/rc")
	boto("up")
	readBack()
	if t.Failed() {
		return
	}
	os.Remove(src)

	// The same data dir, the same command: the same store, keyring and
	// credential.
	in.restart(t)
	if ak, sk := bannerCredential(t, in, dataDir); ak != in.AccessKey || sk != in.SecretKey {
		t.Fatalf("s3seal generated another credential at its restart")
	}
	readBack()
	boto("down")
	if out := aws("s3", "sync", "--no-progress", tree, "s3://"+bucket+"/tree/"); strings.TrimSpace(out) != "" {
		t.Fatalf("sync after the restart transferred something:\n%s", out)
	}
}
