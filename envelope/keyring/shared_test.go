package keyring

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"
)

// Two Keyrings on one file are two processes: serve and s3seal keys, or
// two replicas. Neither loses the other's changes, and Reload shows a
// running one what the other did.
func TestSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	serve, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := serve.CreateKey("shared")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := serve.Reload(); err != nil || changed {
		t.Fatalf("Reload of an unchanged file: %v %v", changed, err)
	}
	if err := admin.DisableKey(key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := serve.GenerateDataKey(context.Background(), key.ID, nil); err != nil {
		t.Fatalf("before Reload serve still uses its state: %v", err)
	}
	if changed, err := serve.Reload(); err != nil || !changed {
		t.Fatalf("Reload after a change: %v %v", changed, err)
	}
	if _, err := serve.GenerateDataKey(context.Background(), key.ID, nil); !errors.Is(err, kms.ErrKeyDisabled) {
		t.Fatalf("after Reload: %v, want disabled", err)
	}
	// A change made by serve from its older state keeps admin's: it is
	// made to the file as it is.
	if err := admin.EnableKey(key.ID); err != nil {
		t.Fatal(err)
	}
	if err := serve.CreateAlias("alias/by-serve", key.ID); err != nil {
		t.Fatal(err)
	}
	reread, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := reread.DescribeKey("alias/by-serve")
	if err != nil || info.State != kms.KeyEnabled {
		t.Fatalf("the file lost a change: %+v %v", info, err)
	}
}

// Concurrent changes from several Keyrings on one file all land.
func TestSharedFileConcurrentChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	var wg sync.WaitGroup
	for range 4 {
		k, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range 5 {
				if _, err := k.CreateKey("concurrent"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	k, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(k.ListKeys()); n != 20 {
		t.Fatalf("%d keys, want 20", n)
	}
}

func TestAutomaticRotation(t *testing.T) {
	clock := &krClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "k.json")
	k, err := openKeyring(path, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := k.CreateKey("rotating")
	imported, _ := k.ImportKey(make([]byte, 32), "imported")
	if _, err := k.EnableKeyRotation(imported.ID, DefaultRotationPeriod); !errors.Is(err, kms.ErrInvalidKMSRequest) {
		t.Errorf("rotation of imported material: %v", err)
	}
	if _, err := k.EnableKeyRotation(key.ID, 0); !errors.Is(err, kms.ErrInvalidKMSRequest) {
		t.Errorf("a zero period: %v", err)
	}
	info, err := k.EnableKeyRotation(key.ID, time.Hour)
	if err != nil || info.RotationPeriod != time.Hour || !info.NextRotation.Equal(clock.now().Add(time.Hour)) {
		t.Fatalf("%+v %v", info, err)
	}
	old, _ := k.GenerateDataKey(context.Background(), key.ID, nil)
	tests := []struct {
		advance  time.Duration
		versions int
	}{
		{59 * time.Minute, 1}, // not yet
		{time.Minute, 2},      // due
		{30 * time.Minute, 2}, // not again
		{5*time.Hour + 1, 3},  // asleep several periods: one rotation
		{29 * time.Minute, 3}, // the schedule kept its phase: next at 7h
		{time.Minute, 4},
	}
	for i, tc := range tests {
		clock.advance(tc.advance)
		if _, err := k.RotateDue(); err != nil {
			t.Fatal(err)
		}
		got, _ := k.DescribeKey(key.ID)
		if got.Versions != tc.versions {
			t.Fatalf("step %d: %d versions, want %d", i, got.Versions, tc.versions)
		}
	}
	if pt, err := k.Decrypt(context.Background(), key.ID, old.Ciphertext, nil); err != nil || string(pt) != string(old.Plaintext) {
		t.Fatalf("a key wrapped before the rotations: %v", err)
	}
	// A second process sees the schedule and does not rotate twice.
	other, err := openKeyring(path, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Hour)
	r1, err1 := k.RotateDue()
	r2, err2 := other.RotateDue()
	if err1 != nil || err2 != nil || len(r1)+len(r2) != 1 {
		t.Fatalf("two processes rotated %d and %d times (%v %v), want once in all", len(r1), len(r2), err1, err2)
	}
	if info, _ := k.DisableKeyRotation(key.ID); info.RotationPeriod != 0 || !info.NextRotation.IsZero() {
		t.Fatalf("after DisableKeyRotation: %+v", info)
	}
}
