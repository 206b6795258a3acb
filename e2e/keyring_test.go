package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/internal/testkms"
)

// operatorCmd runs `s3seal args...` on dataDir, as an operator beside a
// running serve does, and returns its standard output.
func operatorCmd(t *testing.T, dataDir string, args ...string) string {
	t.Helper()
	return string(runS3seal(t, append(os.Environ(), "S3SEAL_DATA_DIR="+dataDir), args...))
}

// runS3seal runs `s3seal args...` with env and returns its standard
// output; a failure fails the test, with what the command said.
func runS3seal(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(s3sealBinary(t), args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("s3seal %v: %v\n%s%s", args, err, out, stderr.String())
	}
	return out
}

// materialVersion is the keyring material version that wrapped key's data
// key (docs/FORMAT.md §7: 0x01, id length, id, uint32 version, ...).
func materialVersion(t *testing.T, e testEnv, bucket, key string) uint32 {
	t.Helper()
	info, err := store(t, e).StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := base64.StdEncoding.DecodeString(info.Metadata.Get("X-Amz-Meta-S3seal-K"))
	if err != nil || len(blob) < 2 || len(blob) < 2+int(blob[1])+4 {
		t.Fatalf("%s: not a keyring blob (%v)", key, err)
	}
	return binary.BigEndian.Uint32(blob[2+int(blob[1]):])
}

// TestLiveKeyring changes the embedded keyring with s3seal keys while serve
// runs: automatic rotation with a short period gives new objects new
// material while old objects still read, and a disabled key stops PUTs
// within 5 seconds.
func TestLiveKeyring(t *testing.T) {
	e := embeddedEnv(t)
	ctx := context.Background()
	in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_KMS_PROVIDER=keyring", "S3SEAL_KMS_KEY_ID=alias/s3seal",
		"S3SEAL_KMS_ENDPOINT=", "S3SEAL_KMS_REGION=")
	c := sdkClient(t, in)
	bucket := newBucket(t, e)
	put := func(key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte("body of " + key))})
		return err
	}
	if err := put("old"); err != nil {
		t.Fatal(err)
	}
	if v := materialVersion(t, e, bucket, "old"); v != 1 {
		t.Fatalf("first object under material version %d", v)
	}
	operatorCmd(t, e.emb.dataDir, "keys", "enable-rotation", "alias/s3seal", "-period", "1s")
	time.Sleep(4 * time.Second) // due after 1 s, rotated by serve within its 2 s poll
	operatorCmd(t, e.emb.dataDir, "keys", "disable-rotation", "alias/s3seal")
	if err := put("new"); err != nil {
		t.Fatal(err)
	}
	if v := materialVersion(t, e, bucket, "new"); v < 2 {
		t.Fatalf("an object after the rotation uses material version %d", v)
	}
	for _, key := range []string{"old", "new"} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("%s after the rotation: %v", key, err)
		}
		b := new(bytes.Buffer)
		b.ReadFrom(out.Body)
		out.Body.Close()
		if b.String() != "body of "+key {
			t.Fatalf("%s reads %q", key, b)
		}
	}

	operatorCmd(t, e.emb.dataDir, "keys", "disable", "alias/s3seal")
	disabled := time.Now()
	for {
		err := put("after-disable")
		if code, _ := apiCode(err); code == "KMS.DisabledException" {
			break
		}
		if time.Since(disabled) > 5*time.Second {
			t.Fatalf("PUTs still work (last: %v) 5 s after the key was disabled", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("PUTs refused %v after the key was disabled", time.Since(disabled).Round(time.Millisecond))
}

// TestKeysListAWS lists the CMKs s3seal is configured with from a KMS-API
// server, with their aliases, state, origin and rotation.
func TestKeysListAWS(t *testing.T) {
	e := minioEnv(t)
	other := newCMK(t, e.kmsURL)
	in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_KMS_DECRYPT_KEY_IDS="+other)
	kc := testkms.Client(t, e.kmsURL)
	if _, err := kc.EnableKeyRotation(context.Background(), &kms.EnableKeyRotationInput{KeyId: aws.String(keyARN(t, e.kmsURL, other))}); err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		ID, ARN, State, Origin string
		Aliases                []string
		Rotation               string `json:"rotation_period"`
	}
	out := s3sealCmd(t, in, "keys", "list", "-json")
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(rows) != 2 {
		t.Fatalf("%d CMKs listed, want the 2 configured:\n%s", len(rows), out)
	}
	for i, alias := range []string{in.KeyAlias, other} {
		r := rows[i]
		if r.ARN != keyARN(t, e.kmsURL, alias) || r.State != "Enabled" || r.Origin != "AWS_KMS" || !slices.Contains(r.Aliases, alias) {
			t.Errorf("row %d: %+v, want %s", i, r, alias)
		}
	}
	if rows[0].Rotation != "" || rows[1].Rotation == "" {
		t.Errorf("rotation: %q and %q, want off and on", rows[0].Rotation, rows[1].Rotation)
	}
	text := string(s3sealCmd(t, in, "keys", "describe", other))
	if !strings.Contains(text, other) || !strings.Contains(text, "Enabled") {
		t.Errorf("describe:\n%s", text)
	}
}
