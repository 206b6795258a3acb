package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/minio/minio-go/v7"
)

// s3sealCmd runs an s3seal command with in's configuration and returns its
// standard output.
func s3sealCmd(t *testing.T, in *instance, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(s3sealBinary(t), args...)
	cmd.Env = append(append([]string(nil), in.env...), "S3SEAL_DATA_DIR="+t.TempDir(), "S3SEAL_LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("s3seal %v: %v", args, err)
	}
	return out
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
