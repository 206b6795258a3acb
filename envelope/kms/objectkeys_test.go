package kms_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// TestWrongBinding moves an object's ciphertext and metadata to another
// bucket or key: its data key no longer unwraps.
func TestWrongBinding(t *testing.T) {
	ctx := context.Background()
	kr, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := kr.CreateKey("binding test")
	if err != nil {
		t.Fatal(err)
	}
	ok := kms.ObjectKeys{Keys: kr, KeyID: info.ID, Allowed: kms.NewAllowList(kr, info.ID)}
	dk, meta, err := ok.New(ctx, "bucket", "dir/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ok.Open(ctx, meta, "bucket", "dir/a.txt")
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("own binding: %v", err)
	}
	for _, where := range [][2]string{{"bucket", "dir/b.txt"}, {"other", "dir/a.txt"}, {"bucket", "dir/a.txt "}, {"bucketdir", "/a.txt"}} {
		if _, err := ok.Open(ctx, meta, where[0], where[1]); !errors.Is(err, kms.ErrInvalidCiphertext) {
			t.Errorf("moved to %s/%s: got %v, want kms.ErrInvalidCiphertext", where[0], where[1], err)
		}
	}
	// A server-side copy rebinds: the new name opens the same data key, the
	// old metadata does not open at the new name.
	moved, err := ok.Rebind(ctx, meta, "bucket", "dir/a.txt", "other", "copy.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err = ok.Open(ctx, moved, "other", "copy.txt")
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("rebound copy: %v", err)
	}
	if _, err := ok.Open(ctx, moved, "bucket", "dir/a.txt"); !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Fatalf("rebound metadata opened at the old name: %v", err)
	}
}
