package embeddedstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/s3seal/s3seal/internal/embeddedstore"
)

// TestMain lets this test binary be the store's child process, as s3seal's
// binary is.
func TestMain(m *testing.M) {
	embeddedstore.RunIfChild()
	os.Exit(m.Run())
}

func start(t *testing.T, dataDir string) *embeddedstore.Store {
	t.Helper()
	s, err := embeddedstore.Start(context.Background(), embeddedstore.Options{DataDir: dataDir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func client(t *testing.T, s *embeddedstore.Store, secret string) *minio.Client {
	t.Helper()
	u, _ := url.Parse(s.URL)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, secret, ""), Region: s.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServesOnlySignedRequestsOnLoopback: the store answers on 127.0.0.1,
// to requests signed with this start's credential only.
func TestServesOnlySignedRequestsOnLoopback(t *testing.T) {
	s := start(t, t.TempDir())
	u, _ := url.Parse(s.URL)
	if host, _, _ := net.SplitHostPort(u.Host); host != "127.0.0.1" {
		t.Errorf("store listens on %s", u.Host)
	}
	ctx := context.Background()
	c := client(t, s, s.SecretKey)
	if err := c.MakeBucket(ctx, "bkt", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, "bkt", "k", strings.NewReader("data"), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, req := range []func() (*http.Response, error){
		func() (*http.Response, error) { return http.Get(s.URL + "/bkt/k") },
		func() (*http.Response, error) {
			r, _ := http.NewRequest(http.MethodPut, s.URL+"/bkt/k", strings.NewReader("overwritten"))
			return http.DefaultClient.Do(r)
		},
		func() (*http.Response, error) {
			r, _ := http.NewRequest(http.MethodDelete, s.URL+"/bkt/k", nil)
			return http.DefaultClient.Do(r)
		},
	} {
		resp, err := req()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			t.Errorf("an unsigned %s was answered %d", resp.Request.Method, resp.StatusCode)
		}
	}
	if _, err := client(t, s, "wrong-secret-wrong-secret-wrong-secret!").StatObject(ctx, "bkt", "k", minio.StatObjectOptions{}); err == nil {
		t.Error("a request signed with another secret was answered")
	}
	obj, err := c.GetObject(ctx, "bkt", "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(obj); string(b) != "data" {
		t.Errorf("object reads %q", b)
	}
	if got, want := filepath.Join(s.Dir, "bkt", "k"), s.Dir; !strings.HasPrefix(got, want) || !fileExists(got) {
		t.Errorf("object not kept as the file %s", got)
	}
}

// TestMultipartETagsMarked: the store ends multipart ETags with -N and
// reports part counts, which s3seal relies on for this store
// (proxy.Config.StoreMarksMultipartETags).
func TestMultipartETagsMarked(t *testing.T) {
	s := start(t, t.TempDir())
	ctx := context.Background()
	c := client(t, s, s.SecretKey)
	if err := c.MakeBucket(ctx, "bkt", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	core := minio.Core{Client: c}
	id, err := core.NewMultipartUpload(ctx, "bkt", "mp", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var parts []minio.CompletePart
	for i, data := range [][]byte{bytes.Repeat([]byte("a"), 5<<20), []byte("tail")} {
		p, err := core.PutObjectPart(ctx, "bkt", "mp", id, i+1, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: i + 1, ETag: p.ETag})
	}
	info, err := core.CompleteMultipartUpload(ctx, "bkt", "mp", id, parts, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.Trim(info.ETag, `"`), "-2") {
		t.Errorf("multipart ETag %s has no -2", info.ETag)
	}
	req, _ := http.NewRequest(http.MethodHead, s.URL+"/bkt/mp?partNumber=1", nil)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	resp, err := http.DefaultClient.Do(signer.SignV4(*req, s.AccessKey, s.SecretKey, "", s.Region))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != 5<<20 || resp.Header.Get("X-Amz-Mp-Parts-Count") != "2" {
		t.Errorf("HEAD ?partNumber=1: %d, size %d, parts %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("X-Amz-Mp-Parts-Count"))
	}
}

// TestDataDirLocked: a second store on a data dir in use is refused, with
// the holder named; once released, a restart finds the objects, under a
// new credential.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	ctx := context.Background()
	c := client(t, s, s.SecretKey)
	if err := c.MakeBucket(ctx, "bkt", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, "bkt", "k", strings.NewReader("kept"), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := embeddedstore.Start(ctx, embeddedstore.Options{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, embeddedstore.ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second store on the data dir: %v", err)
	}
	info, err := embeddedstore.Discover(dir)
	if err != nil || info.URL != s.URL || info.SecretKey != s.SecretKey {
		t.Errorf("Discover: %+v, %v", info, err)
	}
	first := s.SecretKey
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := embeddedstore.Discover(dir); err == nil {
		t.Error("a stopped store is still discoverable")
	}
	s2 := start(t, dir)
	if s2.SecretKey == first {
		t.Error("the credential did not change between starts")
	}
	obj, err := client(t, s2, s2.SecretKey).GetObject(ctx, "bkt", "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(obj); string(b) != "kept" {
		t.Errorf("after a restart the object reads %q", b)
	}
	if mode, _ := os.ReadFile(filepath.Join(dir, "store-metadata")); s2.Metadata != strings.TrimSpace(string(mode)) {
		t.Errorf("metadata mode %q, recorded %q", s2.Metadata, mode)
	}
}

// TestStopsWithItsParent: closing the store ends the child process.
func TestStopsWithItsParent(t *testing.T) {
	s := start(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Exited():
	default:
		t.Fatal("the child still runs after Close")
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://")); err == nil {
		c.Close()
		t.Error("the store still listens after Close")
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestSidecarMetadata: on a filesystem without user xattrs the store keeps
// object metadata in sidecar files (the choice is recorded in
// DATA_DIR/store-metadata at the first start; seeded here, since the test's
// filesystem has xattrs). It starts, and an object's metadata survives a
// restart. (versitygw refused the sidecar dir once: it was named
// store-sidecar, which starts with the store root's path.)
func TestSidecarMetadata(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "store-metadata"), []byte("sidecar\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := start(t, dataDir)
	if s.Metadata != "sidecar" {
		t.Fatalf("metadata kept in %q, want sidecar", s.Metadata)
	}
	c := client(t, s, s.SecretKey)
	if err := c.MakeBucket(ctx, "bkt", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := minio.PutObjectOptions{UserMetadata: map[string]string{"s3seal-k": "wrapped"}}
	if _, err := c.PutObject(ctx, "bkt", "obj", strings.NewReader("body"), 4, opts); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = start(t, dataDir)
	info, err := client(t, s, s.SecretKey).StatObject(ctx, "bkt", "obj", minio.StatObjectOptions{})
	if err != nil || info.UserMetadata["S3seal-K"] != "wrapped" {
		t.Fatalf("after a restart: metadata %v, err %v", info.UserMetadata, err)
	}
}
