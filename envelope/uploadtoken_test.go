package envelope

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestUploadToken(t *testing.T) {
	dk := bytes.Repeat([]byte{7}, DataKeySize)
	meta := Metadata{KeyID: "key-1", WrappedKey: []byte("wrapped data key")}
	tok, err := NewUploadToken("upload-1", meta, dk, "bkt", "dir/obj")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseUploadToken(tok)
	if err != nil || !got.HasKey || got.UploadID != "upload-1" || got.Meta.KeyID != meta.KeyID || !bytes.Equal(got.Meta.WrappedKey, meta.WrappedKey) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if !got.Verify(dk, "bkt", "dir/obj") {
		t.Fatal("own token does not verify")
	}
	other := bytes.Repeat([]byte{8}, DataKeySize)
	for _, tc := range []struct {
		name        string
		dk          []byte
		bucket, key string
	}{
		{"other data key", other, "bkt", "dir/obj"},
		{"other bucket", dk, "bkt2", "dir/obj"},
		{"other key", dk, "bkt", "dir/obj2"},
		{"bucket and key shifted", dk, "bktdir", "/obj"},
	} {
		if got.Verify(tc.dk, tc.bucket, tc.key) {
			t.Errorf("%s: verifies", tc.name)
		}
	}

	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		b := bytes.Clone(raw)
		b[i] ^= 1
		if p, err := ParseUploadToken(base64.RawURLEncoding.EncodeToString(b)); err == nil && p.Verify(dk, "bkt", "dir/obj") {
			t.Errorf("byte %d flipped: still verifies", i)
		}
	}

	listed, err := ParseUploadToken(ListedUploadToken("upload-1"))
	if err != nil || listed.HasKey || listed.UploadID != "upload-1" || listed.Verify(dk, "bkt", "dir/obj") {
		t.Errorf("listed token: %+v, %v", listed, err)
	}
	for _, bad := range []string{"", "!", base64.RawURLEncoding.EncodeToString([]byte{tokenFull}),
		base64.RawURLEncoding.EncodeToString([]byte{3, 0, 1, 'x'}), tok + "AA", tok[:len(tok)-4],
		ListedUploadToken(strings.Repeat("u", MaxUploadID+1))} {
		if _, err := ParseUploadToken(bad); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("ParseUploadToken(%q) = %v, want ErrMalformedToken", bad, err)
		}
	}
	if _, err := NewUploadToken(strings.Repeat("u", MaxUploadID+1), meta, dk, "b", "k"); err == nil {
		t.Error("an over-long upload id made a token")
	}
}

// A token carries the upload's encryption context, under its tag.
func TestUploadTokenContext(t *testing.T) {
	dk := make([]byte, DataKeySize)
	meta := Metadata{KeyID: "k", WrappedKey: []byte("wrapped"), Context: map[string]string{"tenant": "a"}}
	tok, err := NewUploadToken("upload", meta, dk, "b", "o")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseUploadToken(tok)
	if err != nil || got.Meta.Context["tenant"] != "a" || !got.Verify(dk, "b", "o") {
		t.Fatalf("%+v %v", got, err)
	}
	other, _ := NewUploadToken("upload", Metadata{KeyID: "k", WrappedKey: []byte("wrapped"), Context: map[string]string{"tenant": "b"}}, make([]byte, DataKeySize), "b", "o")
	// The context of one token under the tag of the other: refused.
	a, _ := base64.RawURLEncoding.DecodeString(tok)
	b, _ := base64.RawURLEncoding.DecodeString(other)
	swapped := append(append([]byte(nil), b[:len(b)-tokenTagLen]...), a[len(a)-tokenTagLen:]...)
	if got, err := ParseUploadToken(base64.RawURLEncoding.EncodeToString(swapped)); err == nil && got.Verify(dk, "b", "o") {
		t.Fatal("a token with another context verified")
	}
}

// TestUploadTokenV2: a FramingV2 upload's token carries its part checksum,
// under the tag, with and without a context.
func TestUploadTokenV2(t *testing.T) {
	dk := bytes.Repeat([]byte{7}, DataKeySize)
	for _, meta := range []Metadata{
		{KeyID: "key-1", WrappedKey: []byte("wk"), Framing: FramingV2, PartAlgorithm: "CRC32C", PartType: ChecksumComposite},
		{KeyID: "key-1", WrappedKey: []byte("wk"), Framing: FramingV2, PartAlgorithm: "CRC64NVME", PartType: ChecksumFullObject,
			Context: map[string]string{"team": "a"}},
	} {
		tok, err := NewUploadToken("upload-1", meta, dk, "bkt", "obj")
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseUploadToken(tok)
		if err != nil || !got.Verify(dk, "bkt", "obj") || got.Meta.Framing != FramingV2 ||
			got.Meta.PartAlgorithm != meta.PartAlgorithm || got.Meta.PartType != meta.PartType || len(got.Meta.Context) != len(meta.Context) {
			t.Fatalf("%+v: round trip %+v, %v", meta, got.Meta, err)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		for i := range raw {
			b := bytes.Clone(raw)
			b[i] ^= 1
			if p, err := ParseUploadToken(base64.RawURLEncoding.EncodeToString(b)); err == nil && p.Verify(dk, "bkt", "obj") {
				t.Errorf("byte %d flipped: still verifies", i)
			}
		}
		// Made a version 1 token, it no longer verifies.
		raw[0] = tokenFull
		if p, err := ParseUploadToken(base64.RawURLEncoding.EncodeToString(raw)); err == nil && p.Verify(dk, "bkt", "obj") {
			t.Error("a FramingV2 token relabelled FramingV1 verifies")
		}
	}
	v1, _ := NewUploadToken("u", Metadata{KeyID: "k", WrappedKey: []byte("w")}, dk, "b", "o")
	if got, err := ParseUploadToken(v1); err != nil || got.Meta.Framing != FramingV1 {
		t.Fatalf("version 1 token: %+v, %v", got.Meta, err)
	}
}
