package envelope

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestAWSKMSKeyStatus(t *testing.T) {
	for _, state := range []types.KeyState{types.KeyStateEnabled, types.KeyStateDisabled, types.KeyStatePendingDeletion, types.KeyStatePendingImport} {
		f := &fakeKMS{keyState: state}
		st, err := NewAWSKMS(f).KeyStatus(t.Context(), "alias/x")
		if err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		if st.State != KeyState(state) || !slices.Equal(st.IDs, []string{fakeKeyID, fakeARN}) {
			t.Errorf("%s: status %+v", state, st)
		}
		if !slices.Equal(f.described, []string{"alias/x"}) {
			t.Errorf("described %q", f.described)
		}
	}
	// DescribeKey's failures keep their kind; a key without names is malformed.
	f := &fakeKMS{describeErr: apiErr(400, "NotFoundException", secret)}
	if _, err := NewAWSKMS(f).KeyStatus(t.Context(), "alias/x"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("not found: %v", err)
	}
	f = &fakeKMS{keyState: types.KeyStateEnabled, noMetadata: true}
	if _, err := NewAWSKMS(f).KeyStatus(t.Context(), "alias/x"); !errors.Is(err, ErrKMSUnavailable) {
		t.Errorf("no metadata: %v", err)
	}
}

func TestKeyringKeyStatus(t *testing.T) {
	k, err := OpenKeyring(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := k.CreateKey("status")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.CreateAlias("alias/status", info.ID); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if st, err := k.KeyStatus(ctx, "alias/status"); err != nil || st.State != KeyEnabled || !slices.Equal(st.IDs, []string{info.ID}) {
		t.Errorf("enabled: %+v %v", st, err)
	}
	if err := k.DisableKey(info.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := k.KeyStatus(ctx, info.ID); err != nil || st.State != KeyDisabled {
		t.Errorf("disabled: %+v %v", st, err)
	}
	if _, err := k.KeyStatus(ctx, "alias/none"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("missing: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := k.KeyStatus(cancelled, info.ID); !errors.Is(err, ErrKMSUnavailable) {
		t.Errorf("cancelled: %v", err)
	}
}
