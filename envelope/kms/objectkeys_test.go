package kms_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/s3seal/s3seal/envelope"

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
	// What describes the unchanged bytes goes with them.
	meta.Framing, meta.PartAlgorithm, meta.PartType, meta.Checksum = envelope.FramingV2, "CRC32C", envelope.ChecksumComposite, []byte{1}
	moved, err = ok.Rebind(ctx, meta, "bucket", "dir/a.txt", "other", "copy.txt")
	if err != nil || moved.Framing != envelope.FramingV2 || moved.PartAlgorithm != "CRC32C" ||
		moved.PartType != envelope.ChecksumComposite || !bytes.Equal(moved.Checksum, []byte{1}) {
		t.Fatalf("rebound metadata lost the framing or checksums: %+v, %v", moved, err)
	}
}

// grantOnly lets a client use one CMK.
type grantOnly string

func (g grantOnly) MayUse(_ context.Context, keyID string) error {
	if keyID == string(g) {
		return nil
	}
	return kms.ErrNotGranted
}

// With Grants, every operation asks the request's grant about each CMK it
// uses, and a request without one is refused.
func TestObjectKeysGrants(t *testing.T) {
	kr, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := kr.CreateKey("a")
	b, _ := kr.CreateKey("b")
	allowed := kms.NewAllowList(kr, a.ID, b.ID)
	plain := kms.ObjectKeys{Keys: kr, KeyID: a.ID, Allowed: allowed}
	_, meta, err := plain.New(context.Background(), "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	ok := plain
	ok.Grants = true
	onA := kms.WithGrant(context.Background(), grantOnly(a.ID))
	onB := kms.WithGrant(context.Background(), grantOnly(b.ID))
	tests := []struct {
		name string
		err  error
	}{
		{"new, granted", lastErr(ok.New(onA, "bkt", "n"))},
		{"open, granted", lastErr(ok.Open(onA, meta, "bkt", "k"))},
		{"rebind to a granted key", lastErr(ok.Under(a.ID).Rebind(onA, meta, "bkt", "k", "bkt", "c"))},
	}
	for _, tt := range tests {
		if tt.err != nil {
			t.Errorf("%s: %v", tt.name, tt.err)
		}
	}
	refused := []struct {
		name string
		err  error
	}{
		{"new without a grant", lastErr(ok.New(context.Background(), "bkt", "n"))},
		{"new under a key not granted", lastErr(ok.New(onB, "bkt", "n"))},
		{"open without a grant", lastErr(ok.Open(context.Background(), meta, "bkt", "k"))},
		{"open under a key not granted", lastErr(ok.Open(onB, meta, "bkt", "k"))},
		{"rebind from a key not granted", lastErr(ok.Under(b.ID).Rebind(onB, meta, "bkt", "k", "bkt", "c"))},
		{"rebind to a key not granted", lastErr(ok.Under(b.ID).Rebind(onA, meta, "bkt", "k", "bkt", "c"))},
	}
	for _, tt := range refused {
		if !errors.Is(tt.err, kms.ErrNotGranted) {
			t.Errorf("%s: %v, want ErrNotGranted", tt.name, tt.err)
		}
	}
}

// lastErr is the error a call returned last, whatever else it returned.
func lastErr(vals ...any) error {
	err, _ := vals[len(vals)-1].(error)
	return err
}
