package envelope

import (
	"bytes"
	"errors"
	"maps"
	"testing"
)

func TestDeriveObjectKey(t *testing.T) {
	bk, salt := testKey(30), bytes.Repeat([]byte{0x31}, BucketKeySaltSize)
	dk, err := DeriveObjectKey(bk, salt, "bkt", "dir/a")
	if err != nil || len(dk) != DataKeySize {
		t.Fatalf("DeriveObjectKey = %x, %v", dk, err)
	}
	// Each input changes the key; "bkt"/"dir/a" and "bktd"/"ir/a" differ.
	for name, other := range map[string]func() ([]byte, error){
		"another salt": func() ([]byte, error) {
			return DeriveObjectKey(bk, bytes.Repeat([]byte{0x32}, BucketKeySaltSize), "bkt", "dir/a")
		},
		"another bucket key":  func() ([]byte, error) { return DeriveObjectKey(testKey(31), salt, "bkt", "dir/a") },
		"another key":         func() ([]byte, error) { return DeriveObjectKey(bk, salt, "bkt", "dir/b") },
		"another bucket":      func() ([]byte, error) { return DeriveObjectKey(bk, salt, "bkt2", "dir/a") },
		"the name split else": func() ([]byte, error) { return DeriveObjectKey(bk, salt, "bktd", "ir/a") },
	} {
		got, err := other()
		if err != nil || bytes.Equal(got, dk) {
			t.Errorf("%s: same key (%v)", name, err)
		}
	}
	for _, bad := range [][2][]byte{{bk[:31], salt}, {bk, salt[:16]}} {
		if _, err := DeriveObjectKey(bad[0], bad[1], "b", "k"); err == nil {
			t.Errorf("derived from a %d-byte key and a %d-byte salt", len(bad[0]), len(bad[1]))
		}
	}
	// The known answer is FORMAT.md §6.3's vector (TestFormatVectors).
}

func TestMetadataVersion5(t *testing.T) {
	salt := bytes.Repeat([]byte{7}, BucketKeySaltSize)
	for _, m := range []Metadata{
		{KeyID: "k", WrappedKey: []byte{1}, BucketKeySalt: salt},
		{KeyID: "k", WrappedKey: []byte{1}, BucketKeySalt: salt, Checksum: sealedForTest(t)},
	} {
		u := m.UserMetadata()
		if u["s3seal-v"] != "5" {
			t.Fatalf("%+v: version %q", m, u["s3seal-v"])
		}
		got, err := ParseUserMetadata(u)
		if err != nil || !bytes.Equal(got.BucketKeySalt, salt) || !bytes.Equal(got.Checksum, m.Checksum) || got.Framing != FramingV1 {
			t.Fatalf("%+v: parsed %+v, %v", m, got, err)
		}
	}
	base := (Metadata{KeyID: "k", WrappedKey: []byte{1}, BucketKeySalt: salt}).UserMetadata()
	for name, change := range map[string][2]string{
		"short salt":      {"s3seal-b", "AAAA"},
		"salt not base64": {"s3seal-b", "!!"},
		"a context":       {"s3seal-x", "eyJhIjoiYiJ9"},
		"a part checksum": {"s3seal-p", "CRC32C/COMPOSITE"},
	} {
		u := maps.Clone(base)
		u[change[0]] = change[1]
		if _, err := ParseUserMetadata(u); !errors.Is(err, ErrMalformedMetadata) {
			t.Errorf("%s: %v, want ErrMalformedMetadata", name, err)
		}
	}
	delete(base, "s3seal-b")
	if _, err := ParseUserMetadata(base); !errors.Is(err, ErrMalformedMetadata) {
		t.Errorf("version 5 without its salt: %v", err)
	}
}

// sealedForTest is a sealed checksum to carry.
func sealedForTest(t *testing.T) []byte {
	c, _ := NewChecksum("CRC32C", "AAAAAA==")
	s, err := SealChecksum(testKey(1), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
