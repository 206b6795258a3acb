package envelope

import (
	"bytes"
	"encoding/base64"
	"errors"
	"maps"
	"strings"
	"testing"
)

// A realistic AWS KMS data key blob is 184 bytes and its key ARN ~75 chars.
var awsLike = Metadata{
	KeyID:      "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
	WrappedKey: bytes.Repeat([]byte{0xa5}, 184),
}

func TestMetadataRoundTrip(t *testing.T) {
	h := map[string]string{"X-Amz-Meta-Owner": "alice"} // the user's own metadata is left alone
	for k, v := range awsLike.UserMetadata() {
		h["X-Amz-Meta-"+k] = v
	}
	got, err := ParseUserMetadata(h)
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyID != awsLike.KeyID || !bytes.Equal(got.WrappedKey, awsLike.WrappedKey) {
		t.Fatalf("round trip: got %+v", got)
	}
	// minio-go style: no prefix, lower or canonical case.
	got, err = ParseUserMetadata(map[string]string{"S3seal-V": "1", "s3seal-c": awsLike.KeyID,
		"X-Amz-Meta-S3seal-K": base64.StdEncoding.EncodeToString(awsLike.WrappedKey), "owner": "alice"})
	if err != nil || got.KeyID != awsLike.KeyID {
		t.Fatalf("user metadata: %+v, %v", got, err)
	}
}

// TestMetadataSize keeps s3seal's share of the 2 KB S3 user-metadata limit
// small (S3 counts the UTF-8 bytes of names without the prefix and values).
func TestMetadataSize(t *testing.T) {
	n := 0
	for k, v := range awsLike.UserMetadata() {
		n += len(k) + len(v)
	}
	if n > 400 {
		t.Fatalf("s3seal metadata takes %d bytes of the 2048 S3 allows", n)
	}
}

func TestMetadataErrors(t *testing.T) {
	good := awsLike.UserMetadata()
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "<delete>" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		meta map[string]string
		want error
	}{
		{"none", map[string]string{"owner": "alice"}, ErrNoMetadata},
		{"empty", nil, ErrNoMetadata},
		{"no version", with("s3seal-v", "<delete>"), ErrMalformedMetadata},
		{"version 2 without a context", with("s3seal-v", "2"), ErrMalformedMetadata},
		{"version 6", with("s3seal-v", "6"), ErrUnsupportedVersion},
		{"version 0", with("s3seal-v", "0"), ErrMalformedMetadata},
		{"version text", with("s3seal-v", "one"), ErrMalformedMetadata},
		{"no key id", with("s3seal-c", "<delete>"), ErrMalformedMetadata},
		{"key id with space", with("s3seal-c", "a b"), ErrMalformedMetadata},
		{"key id too long", with("s3seal-c", strings.Repeat("k", 3000)), ErrMalformedMetadata},
		{"no wrapped key", with("s3seal-k", "<delete>"), ErrMalformedMetadata},
		{"wrapped key not base64", with("s3seal-k", "!!!"), ErrMalformedMetadata},
		{"wrapped key unpadded", with("s3seal-k", "YWJj="), ErrMalformedMetadata},
		{"wrapped key too long", with("s3seal-k", strings.Repeat("A", 9000)), ErrMalformedMetadata},
		{"unknown field", with("s3seal-q", "1"), ErrMalformedMetadata},
		{"a context in version 1", with("s3seal-x", EncodeContext(map[string]string{"a": "b"})), ErrMalformedMetadata},
		{"duplicate in two cases", with("S3SEAL-V", "1"), ErrMalformedMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUserMetadata(tt.meta)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// What a client may send as its context encodes within the bound, so what
// is stored reads back: HTML-sensitive characters are not escaped.
func TestContextEncodesWithinBound(t *testing.T) {
	raw := `{"a":"` + strings.Repeat("<&>", 250) + `"}`
	c, err := DecodeContext(base64.StdEncoding.EncodeToString([]byte(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeContext(EncodeContext(c)); err != nil || got["a"] != c["a"] {
		t.Fatalf("re-encoded: %v", err)
	}
}

// Version 2 adds the client's encryption context; every way it can be
// wrong is malformed metadata.
func TestMetadataContext(t *testing.T) {
	m := awsLike
	m.Context = map[string]string{"tenant": "a", "purpose": "x y"}
	u := m.UserMetadata()
	if u["s3seal-v"] != "2" {
		t.Fatalf("version %s with a context", u["s3seal-v"])
	}
	got, err := ParseUserMetadata(u)
	if err != nil || len(got.Context) != 2 || got.Context["purpose"] != "x y" || got.KeyID != m.KeyID {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for name, x := range map[string]string{
		"not base64":    "!!",
		"not JSON":      base64.StdEncoding.EncodeToString([]byte("{")),
		"not strings":   base64.StdEncoding.EncodeToString([]byte(`{"a":1}`)),
		"empty object":  base64.StdEncoding.EncodeToString([]byte(`{}`)),
		"reserved key":  EncodeContext(map[string]string{"s3seal:bucket": "other"}),
		"reserved case": EncodeContext(map[string]string{"S3SEAL:key": "other"}),
		"too long":      EncodeContext(map[string]string{"a": strings.Repeat("b", 2000)}),
		"duplicate key": base64.StdEncoding.EncodeToString([]byte(`{"a":"1","a":"2"}`)),
		"empty value":   base64.StdEncoding.EncodeToString([]byte(`{"a":""}`)),
		"null value":    base64.StdEncoding.EncodeToString([]byte(`{"a":null}`)),
		"invalid UTF-8": base64.StdEncoding.EncodeToString([]byte("{\"a\":\"\xff\"}")),
		"trailing data": base64.StdEncoding.EncodeToString([]byte(`{"a":"1"} {}`)),
	} {
		bad := maps.Clone(u)
		bad["s3seal-x"] = x
		if _, err := ParseUserMetadata(bad); !errors.Is(err, ErrMalformedMetadata) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestIsReserved(t *testing.T) {
	tests := map[string]bool{
		"x-amz-meta-s3seal-k": true, "X-Amz-Meta-S3seal-V": true, "s3seal-anything": true, "S3SEAL-C": true,
		"x-amz-meta-owner": false, "owner": false, "x-amz-meta-s3sealx": false, "content-type": false,
	}
	for name, want := range tests {
		if got := IsReserved(name); got != want {
			t.Errorf("IsReserved(%q) = %v, want %v", name, got, want)
		}
	}
}
