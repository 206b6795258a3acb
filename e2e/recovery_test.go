package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	"github.com/s3seal/s3seal/envelope"
)

// s3sealCmd runs an s3seal command with in's configuration and returns its
// standard output.
func s3sealCmd(t *testing.T, in *instance, args ...string) []byte {
	t.Helper()
	env := append(append([]string(nil), in.env...), "S3SEAL_DATA_DIR="+t.TempDir(), "S3SEAL_LOG_LEVEL=warn")
	return runS3seal(t, env, args...)
}

// TestRecovery gets a multipart object out without a running s3seal: from
// the store, and offline from a copy of its stored bytes and the JSON
// s3seal inspect printed.
func TestRecovery(t *testing.T) {
	e := minioEnv(t)
	in := startS3seal(t, e, e.kmsURL, "")
	bucket := newBucket(t, e)
	dir := t.TempDir()
	plain := plaintext(20<<20+99, 11) // the CLI uploads it in 3 parts
	run(t, clientEnv(in), "/usr/bin/aws", "--endpoint-url", in.URL, "s3", "cp", writeFile(t, dir, "orig", plain), "s3://"+bucket+"/dir/obj")
	in.stop(t) // no s3seal from here on

	report := s3sealCmd(t, in, "inspect", "s3://"+bucket+"/dir/obj")
	var r struct {
		FormatVersion     int               `json:"format_version"`
		CMK               string            `json:"cmk"`
		EncryptionContext map[string]string `json:"encryption_context"`
		PlaintextSize     int64             `json:"plaintext_size"`
		Parts             []struct {
			PlaintextSize int64 `json:"plaintext_size"`
		} `json:"parts"`
	}
	if err := json.Unmarshal(report, &r); err != nil {
		t.Fatal(err)
	}
	if r.FormatVersion != 1 || r.CMK != keyARN(t, e.kmsURL, in.KeyAlias) || r.EncryptionContext["s3seal:key"] != "dir/obj" ||
		r.PlaintextSize != int64(len(plain)) || len(r.Parts) != 3 || r.Parts[0].PlaintextSize != 8<<20 {
		t.Fatalf("inspect:\n%s", report)
	}

	s3sealCmd(t, in, "decrypt", "s3://"+bucket+"/dir/obj", "-o", filepath.Join(dir, "online"))
	sameFile(t, filepath.Join(dir, "online"), plain)

	ciphertext := filepath.Join(dir, "stored")
	if err := store(t, e).FGetObject(context.Background(), bucket, "dir/obj", ciphertext, minio.GetObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	meta := writeFile(t, dir, "obj.json", report)
	s3sealCmd(t, in, "decrypt", "-ciphertext", ciphertext, "-metadata", meta, "-o", filepath.Join(dir, "offline"))
	sameFile(t, filepath.Join(dir, "offline"), plain)
}

// recoveryProgram writes the Python program that follows the marker
// <!-- name --> in docs/RECOVERY.md to dir and returns its path.
func recoveryProgram(t *testing.T, dir, name string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/RECOVERY.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- "+name+" -->\n```python\n")
	program, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("docs/RECOVERY.md has no %s program", name)
	}
	return writeFile(t, dir, name, []byte(program))
}

// python runs a program of RECOVERY.md and returns its standard output.
func python(t *testing.T, program string, args ...string) []byte {
	t.Helper()
	out, _ := pythonStderr(t, program, args...)
	return out
}

// pythonStderr runs a program of RECOVERY.md and returns its standard
// output and standard error.
func pythonStderr(t *testing.T, program string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	out, errOut, err := runPython(program, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(program), args, err, errOut)
	}
	return out, errOut
}

func runPython(program string, args ...string) (stdout, stderr []byte, err error) {
	var errOut bytes.Buffer
	cmd := exec.Command("/usr/bin/python3", append([]string{program}, args...)...)
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	return out, errOut.Bytes(), err
}

// TestRecoveryByHand follows docs/RECOVERY.md's "Without s3seal" with the
// AWS CLI, the KMS and its Python program, for a multipart object.
func TestRecoveryByHand(t *testing.T) {
	e := minioEnv(t)
	in := startS3seal(t, e, e.kmsURL, "")
	bucket := newBucket(t, e)
	dir := t.TempDir()
	plain := plaintext(20<<20+7, 12)
	run(t, clientEnv(in), "/usr/bin/aws", "--endpoint-url", in.URL, "s3", "cp", writeFile(t, dir, "orig", plain), "s3://"+bucket+"/a key")
	in.stop(t)

	storeEnv := []string{"AWS_ACCESS_KEY_ID=" + e.storeAK, "AWS_SECRET_ACCESS_KEY=" + e.storeSK, "AWS_DEFAULT_REGION=" + region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER="}
	meta := run(t, storeEnv, "/usr/bin/aws", "--endpoint-url", e.storeURL, "s3api", "head-object", "--bucket", bucket, "--key", "a key", "--query", "Metadata")
	var m map[string]string
	if err := json.Unmarshal([]byte(meta), &m); err != nil {
		t.Fatalf("%v in %s", err, meta)
	}
	stored := filepath.Join(dir, "stored")
	run(t, storeEnv, "/usr/bin/aws", "--endpoint-url", e.storeURL, "s3api", "get-object", "--bucket", bucket, "--key", "a key", stored)
	wrapped, err := base64.StdEncoding.DecodeString(m["s3seal-k"])
	if err != nil {
		t.Fatal(err)
	}
	kmsEnv := []string{"AWS_ACCESS_KEY_ID=e2e", "AWS_SECRET_ACCESS_KEY=e2e", "AWS_DEFAULT_REGION=" + region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER="}
	dk := run(t, kmsEnv, "/usr/bin/aws", "--endpoint-url", e.kmsURL, "kms", "decrypt",
		"--ciphertext-blob", "fileb://"+writeFile(t, dir, "wrapped", wrapped), "--key-id", m["s3seal-c"],
		"--encryption-context", `{"s3seal:bucket":"`+bucket+`","s3seal:key":"a key"}`, "--query", "Plaintext", "--output", "text")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(dk))
	if err != nil {
		t.Fatal(err)
	}
	got := python(t, recoveryProgram(t, dir, "s3seal_decrypt.py"), writeFile(t, dir, "datakey", key), stored)
	if !bytes.Equal(got, plain) {
		t.Fatalf("the program decrypted %d bytes, want the %d uploaded", len(got), len(plain))
	}
}

// TestRecoveryByHandKeyring unwraps with keyring.json and RECOVERY.md's
// keyring program, then decrypts with its other program.
func TestRecoveryByHandKeyring(t *testing.T) {
	e := embeddedEnv(t)
	ctx := context.Background()
	in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_KMS_PROVIDER=keyring", "S3SEAL_KMS_KEY_ID=alias/s3seal",
		"S3SEAL_KMS_ENDPOINT=", "S3SEAL_KMS_REGION=")
	bucket := newBucket(t, e)
	plain := plaintext(3*65536+5, 13)
	if _, err := sdkClient(t, in).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader(plain)}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stored := filepath.Join(dir, "stored")
	st := store(t, e)
	if err := st.FGetObject(ctx, bucket, "k", stored, minio.GetObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := st.StatObject(ctx, bucket, "k", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dk := python(t, recoveryProgram(t, dir, "keyring_unwrap.py"), filepath.Join(e.emb.dataDir, "keyring.json"), bucket, "k",
		info.Metadata.Get("X-Amz-Meta-S3seal-K"))
	got := python(t, recoveryProgram(t, dir, "s3seal_decrypt.py"), writeFile(t, dir, "datakey", dk), stored)
	if !bytes.Equal(got, plain) {
		t.Fatalf("decrypted %d bytes, want the %d written", len(got), len(plain))
	}

	// A version 2 object: the client's context joins the binding.
	encCtx := base64.StdEncoding.EncodeToString([]byte(`{"tenant":"a"}`))
	if _, err := sdkClient(t, in).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("v2"), Body: bytes.NewReader(plain),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSEncryptionContext: aws.String(encCtx)}); err != nil {
		t.Fatal(err)
	}
	if err := st.FGetObject(ctx, bucket, "v2", stored, minio.GetObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err = st.StatObject(ctx, bucket, "v2", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dk = python(t, recoveryProgram(t, dir, "keyring_unwrap.py"), filepath.Join(e.emb.dataDir, "keyring.json"), bucket, "v2",
		info.Metadata.Get("X-Amz-Meta-S3seal-K"), info.Metadata.Get("X-Amz-Meta-S3seal-X"))
	if got := python(t, recoveryProgram(t, dir, "s3seal_decrypt.py"), writeFile(t, dir, "datakey", dk), stored); !bytes.Equal(got, plain) {
		t.Fatal("the version 2 object decrypted differently")
	}
}

// TestRecoveryProgramFramings runs RECOVERY.md's s3seal_decrypt.py on
// objects the envelope package makes, no store or s3seal needed: multipart
// objects of either framing, FramingV2's with CRC32C part records, which the
// program prints. A FramingV2 object read as another version, or with a
// part record changed, fails.
func TestRecoveryProgramFramings(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import cryptography").Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("docs/RECOVERY.md's programs need /usr/bin/python3 with cryptography (scripts/deps)")
		}
		t.Skip("no /usr/bin/python3 with cryptography: run scripts/deps")
	}
	dir := t.TempDir()
	program := recoveryProgram(t, dir, "s3seal_decrypt.py")
	dataKey := plaintext(envelope.DataKeySize, 14)
	keyFile := writeFile(t, dir, "datakey", dataKey)
	const C = envelope.ChunkSize
	tests := []struct {
		name    string
		framing envelope.Framing
		version string // x-amz-meta-s3seal-v: "" leaves it out, as before version 4
		parts   []int
	}{
		{"FramingV1", envelope.FramingV1, "", []int{2 * C, C, 1000}},
		{"FramingV1, version 3", envelope.FramingV1, "3", []int{C, 0}},
		{"FramingV2", envelope.FramingV2, "4", []int{2 * C, C, 1000}},
		{"FramingV2, full and empty last parts", envelope.FramingV2, "4", []int{C, C, 0}},
		{"FramingV2, one part", envelope.FramingV2, "4", []int{5}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var plain, stored []byte
			var records []string
			var recordAt []int
			for k, n := range tc.parts {
				part := plaintext(n, byte(20+i*8+k))
				crc := binary.BigEndian.AppendUint32(nil, crc32.Checksum(part, crc32.MakeTable(crc32.Castagnoli)))
				var enc io.Reader
				var err error
				if tc.framing == envelope.FramingV2 {
					enc, err = envelope.NewRecordEncryptReader(bytes.NewReader(part), dataKey, uint32(k+1), int64(n), func() (envelope.Checksum, error) {
						return envelope.Checksum{Algorithm: "CRC32C", Type: envelope.ChecksumComposite, Value: crc}, nil
					})
				} else {
					enc, err = envelope.NewEncryptReader(bytes.NewReader(part), dataKey, uint32(k+1), int64(n))
				}
				if err != nil {
					t.Fatal(err)
				}
				seg, err := io.ReadAll(enc)
				if err != nil {
					t.Fatal(err)
				}
				plain, stored = append(plain, part...), append(stored, seg...)
				records = append(records, fmt.Sprintf("part %d CRC32C %s\n", k+1, base64.StdEncoding.EncodeToString(crc)))
				recordAt = append(recordAt, len(stored)-envelope.RecordSize)
			}
			args := []string{keyFile, writeFile(t, dir, "stored", stored)}
			if tc.version != "" {
				args = append(args, tc.version)
			}
			if tc.framing == envelope.FramingV2 {
				args = append(args, "CRC32C/COMPOSITE")
			}
			got, stderr := pythonStderr(t, program, args...)
			if !bytes.Equal(got, plain) {
				t.Fatalf("the program decrypted %d bytes, want the %d sealed", len(got), len(plain))
			}
			if want := strings.Join(records, ""); tc.framing == envelope.FramingV2 && string(stderr) != want {
				t.Fatalf("the program printed\n%s\nwant the part records\n%s", stderr, want)
			}
			if tc.framing != envelope.FramingV2 {
				if len(stderr) > 0 {
					t.Fatalf("the program printed %q", stderr)
				}
				return
			}
			for _, v := range []string{"1", "3"} {
				if got, _, err := runPython(program, keyFile, args[1], v); err == nil || len(got) > 0 {
					t.Errorf("read as version %s: %d bytes, %v", v, len(got), err)
				}
			}
			for k, at := range recordAt {
				for _, off := range []int{0, envelope.RecordSize - 1} {
					bad := bytes.Clone(stored)
					bad[at+off] ^= 1
					if got, _, err := runPython(program, keyFile, writeFile(t, dir, "bad", bad), tc.version); err == nil || !bytes.HasPrefix(plain, got) {
						t.Errorf("part %d's record changed at byte %d: %d bytes, %v", k+1, off, len(got), err)
					}
				}
			}
		})
	}
}

// TestRecoveryProgramBucketKey runs RECOVERY.md's bucket_key_derive.py, no
// store or s3seal needed: it derives what envelope.DeriveObjectKey does,
// the known answer of envelope/bucketkey_test.go among them.
func TestRecoveryProgramBucketKey(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import cryptography").Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("docs/RECOVERY.md's programs need /usr/bin/python3 with cryptography (scripts/deps)")
		}
		t.Skip("no /usr/bin/python3 with cryptography: run scripts/deps")
	}
	dir := t.TempDir()
	program := recoveryProgram(t, dir, "bucket_key_derive.py")
	tests := []struct {
		bucketKey, salt []byte
		bucket, key     string
		want            string // hex; "" for DeriveObjectKey's
	}{
		{bytes.Repeat([]byte{0x1e}, 32), bytes.Repeat([]byte{0x31}, 32), "bkt", "dir/a",
			"26c0606686f367b52d0fb9b3acec8dfcb3627c6e181f0fc9b60176287388b64c"},
		{plaintext(32, 1), plaintext(32, 2), "e2e-bucket", "dir/ü é,x=y", ""},
		{plaintext(32, 1), plaintext(32, 2), "e2e-bucketd", "ir/ü é,x=y", ""},
	}
	for _, tc := range tests {
		want, err := envelope.DeriveObjectKey(tc.bucketKey, tc.salt, tc.bucket, tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want != "" && hex.EncodeToString(want) != tc.want {
			t.Fatalf("DeriveObjectKey(%s, %s) = %x, want %s", tc.bucket, tc.key, want, tc.want)
		}
		got := python(t, program, writeFile(t, dir, "bucketkey", tc.bucketKey), tc.bucket, tc.key, base64.StdEncoding.EncodeToString(tc.salt))
		if !bytes.Equal(got, want) {
			t.Fatalf("%s/%s: the program derived %x, want %x", tc.bucket, tc.key, got, want)
		}
	}
	if _, _, err := runPython(program, writeFile(t, dir, "short", make([]byte, 16)), "b", "k", base64.StdEncoding.EncodeToString(make([]byte, 32))); err == nil {
		t.Error("the program derived from a 16-byte bucket key")
	}
}

// TestRecoveryBucketKey gets version 5 objects (S3SEAL_BUCKET_KEY) out of
// the embedded store without a running s3seal, with either key service:
// with s3seal inspect and decrypt, from the store and offline, and by hand
// as docs/RECOVERY.md says — the bucket key unwrapped under the bucket's
// context alone (aws kms decrypt, or keyring_unwrap.py --bucket-key), the
// data key derived with bucket_key_derive.py, the bytes decrypted with
// s3seal_decrypt.py.
func TestRecoveryBucketKey(t *testing.T) {
	for _, provider := range []string{"aws", "keyring"} {
		t.Run(provider, func(t *testing.T) {
			e := embeddedEnv(t)
			ctx := context.Background()
			alias, extra := "", []string{"S3SEAL_BUCKET_KEY=true"}
			if provider == "keyring" {
				alias = "alias/s3seal"
				extra = append(extra, "S3SEAL_KMS_PROVIDER=keyring", "S3SEAL_KMS_ENDPOINT=", "S3SEAL_KMS_REGION=")
			}
			in := startS3seal(t, e, e.kmsURL, alias, extra...)
			bucket := newBucket(t, e)
			dir := t.TempDir()
			type object struct {
				plain            []byte
				stored           string // a file of its stored bytes
				wrapped, salt, v string // its s3seal-k, s3seal-b and s3seal-v
				cmk              string // its s3seal-c
			}
			objects := map[string]*object{"dir/a": {plain: plaintext(3*65536+5, 15)}, "dir/ü é,x=y": {plain: plaintext(1000, 16)}}
			st := store(t, e)
			for key, o := range objects {
				if _, err := sdkClient(t, in).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(o.plain)}); err != nil {
					t.Fatal(err)
				}
				o.stored = filepath.Join(dir, fmt.Sprintf("stored-%d", len(o.plain)))
				if err := st.FGetObject(ctx, bucket, key, o.stored, minio.GetObjectOptions{}); err != nil {
					t.Fatal(err)
				}
				info, err := st.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				o.v, o.cmk = info.Metadata.Get("X-Amz-Meta-S3seal-V"), info.Metadata.Get("X-Amz-Meta-S3seal-C")
				o.wrapped, o.salt = info.Metadata.Get("X-Amz-Meta-S3seal-K"), info.Metadata.Get("X-Amz-Meta-S3seal-B")
				if o.v != "5" || o.salt == "" {
					t.Fatalf("%s stored as version %q, salt %q", key, o.v, o.salt)
				}
			}
			if objects["dir/a"].wrapped != objects["dir/ü é,x=y"].wrapped {
				t.Error("two objects of one bucket under different bucket keys")
			}
			in.stop(t) // no s3seal from here on

			// s3seal inspect and decrypt, which start the embedded store and
			// open the keyring (or ask local-kms) themselves.
			cliEnv := append(append([]string(nil), in.env...), "S3SEAL_DATA_DIR="+e.emb.dataDir, "S3SEAL_LOG_LEVEL=warn")
			for key, o := range objects {
				report := runS3seal(t, cliEnv, "inspect", "s3://"+bucket+"/"+key)
				var r struct {
					FormatVersion     int               `json:"format_version"`
					EncryptionContext map[string]string `json:"encryption_context"`
					WrappedKey        string            `json:"wrapped_key"`
					BucketKeySalt     string            `json:"bucket_key_salt"`
					PlaintextSize     int64             `json:"plaintext_size"`
				}
				if err := json.Unmarshal(report, &r); err != nil {
					t.Fatal(err)
				}
				if r.FormatVersion != 5 || !maps.Equal(r.EncryptionContext, map[string]string{"s3seal:bucket": bucket}) ||
					r.WrappedKey != o.wrapped || r.BucketKeySalt != o.salt || r.PlaintextSize != int64(len(o.plain)) {
					t.Fatalf("inspect %s:\n%s", key, report)
				}
				online := filepath.Join(dir, "online")
				runS3seal(t, cliEnv, "decrypt", "s3://"+bucket+"/"+key, "-o", online)
				sameFile(t, online, o.plain)
				offline := filepath.Join(dir, "offline")
				runS3seal(t, cliEnv, "decrypt", "-ciphertext", o.stored, "-metadata", writeFile(t, dir, "obj.json", report), "-o", offline)
				sameFile(t, offline, o.plain)
			}

			// By hand.
			derive := recoveryProgram(t, dir, "bucket_key_derive.py")
			decrypt := recoveryProgram(t, dir, "s3seal_decrypt.py")
			var bucketKey []byte
			o := objects["dir/a"]
			if provider == "keyring" {
				bucketKey = python(t, recoveryProgram(t, dir, "keyring_unwrap.py"), "--bucket-key", filepath.Join(e.emb.dataDir, "keyring.json"), bucket, "dir/a", o.wrapped)
				// Without --bucket-key the program binds the key too, which
				// a bucket key is not bound to.
				if _, _, err := runPython(filepath.Join(dir, "keyring_unwrap.py"), filepath.Join(e.emb.dataDir, "keyring.json"), bucket, "dir/a", o.wrapped); err == nil {
					t.Error("keyring_unwrap.py unwrapped a bucket key under the object's context")
				}
			} else {
				wrapped, err := base64.StdEncoding.DecodeString(o.wrapped)
				if err != nil {
					t.Fatal(err)
				}
				kmsEnv := []string{"AWS_ACCESS_KEY_ID=e2e", "AWS_SECRET_ACCESS_KEY=e2e", "AWS_DEFAULT_REGION=" + region,
					"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER="}
				out := run(t, kmsEnv, "/usr/bin/aws", "--endpoint-url", e.kmsURL, "kms", "decrypt",
					"--ciphertext-blob", "fileb://"+writeFile(t, dir, "wrapped", wrapped), "--key-id", o.cmk,
					"--encryption-context", "s3seal:bucket="+bucket, "--query", "Plaintext", "--output", "text")
				if bucketKey, err = base64.StdEncoding.DecodeString(strings.TrimSpace(out)); err != nil {
					t.Fatal(err)
				}
			}
			bucketKeyFile := writeFile(t, dir, "bucketkey", bucketKey)
			for key, o := range objects {
				dk := python(t, derive, bucketKeyFile, bucket, key, o.salt)
				if got := python(t, decrypt, writeFile(t, dir, "datakey", dk), o.stored, o.v); !bytes.Equal(got, o.plain) {
					t.Fatalf("%s: the programs decrypted %d bytes, want the %d written", key, len(got), len(o.plain))
				}
				// Derived for another name, the key does not decrypt.
				dk = python(t, derive, bucketKeyFile, bucket, key+"x", o.salt)
				if got, _, err := runPython(decrypt, writeFile(t, dir, "datakey", dk), o.stored, o.v); err == nil || len(got) > 0 {
					t.Errorf("%s: a key derived for another name decrypted %d bytes (%v)", key, len(got), err)
				}
			}
		})
	}
}
