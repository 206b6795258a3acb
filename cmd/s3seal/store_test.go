package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The embedded store on its own: a real S3 client (minio-go, the family
// s3seal's upstream side speaks to) creates a bucket, puts and gets an
// object, and the object lands as a file under the store dir.
func TestEmbeddedStore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), storeDir)
	store, err := startEmbeddedStore(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if store.URL.Hostname() != "127.0.0.1" {
		t.Errorf("store listens on %s, want 127.0.0.1", store.URL.Host)
	}
	client, err := minio.New(store.URL.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(store.Credential.AccessKey, store.Credential.SecretKey, ""),
		Region: store.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.MakeBucket(ctx, "demo", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	body := []byte("hello, embedded store")
	if _, err := client.PutObject(ctx, "demo", "dir/hello.txt", bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "text/plain", DisableContentSha256: true}); err != nil {
		t.Fatal(err)
	}
	obj, err := client.GetObject(ctx, "demo", "dir/hello.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("get = %q, %v; want %q", got, err, body)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "buckets", "demo", "dir", "hello.txt"))
	if err != nil || !bytes.Equal(onDisk, body) {
		t.Fatalf("file on disk = %q, %v; want %q", onDisk, err, body)
	}
	buckets, err := client.ListBuckets(ctx)
	if err != nil || len(buckets) != 1 || buckets[0].Name != "demo" {
		t.Fatalf("buckets = %+v, %v", buckets, err)
	}
}

// Buckets survive a restart of the store: they live in the directory.
func TestEmbeddedStorePersists(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), storeDir)
	for i, want := range []int{0, 1} {
		store, err := startEmbeddedStore(dir, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		client, err := minio.New(store.URL.Host, &minio.Options{Creds: credentials.NewStaticV4("a", "b", ""), Region: store.Region})
		if err != nil {
			t.Fatal(err)
		}
		buckets, err := client.ListBuckets(ctx)
		if err != nil || len(buckets) != want {
			t.Errorf("start %d: %d buckets (%v), want %d", i, len(buckets), err, want)
		}
		if i == 0 {
			if err := client.MakeBucket(ctx, "kept", minio.MakeBucketOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A copy onto itself keeps the object's bytes and takes the new metadata:
// it is how an object is re-wrapped under a new CMK.
func TestEmbeddedStoreSelfCopy(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), storeDir)
	store, err := startEmbeddedStore(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	client, err := minio.New(store.URL.Host, &minio.Options{Creds: credentials.NewStaticV4("a", "b", ""), Region: store.Region})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.MakeBucket(ctx, "demo", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("kept across a self-copy "), 10000)
	if _, err := client.PutObject(ctx, "demo", "k", bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{UserMetadata: map[string]string{"v": "1"}, DisableContentSha256: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: "demo", Object: "k", ReplaceMetadata: true, UserMetadata: map[string]string{"v": "2"}},
		minio.CopySrcOptions{Bucket: "demo", Object: "k"}); err != nil {
		t.Fatal(err)
	}
	obj, err := client.GetObject(ctx, "demo", "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after a self-copy: %d bytes, %v; want the %d put", len(got), err, len(body))
	}
	info, err := obj.Stat()
	if err != nil || info.UserMetadata["V"] != "2" {
		t.Errorf("metadata after a self-copy: %v, %v; want v=2", info.UserMetadata, err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".copy-*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}
