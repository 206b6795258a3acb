package envelope

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestSealedChecksumRoundTrip(t *testing.T) {
	dk := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name    string
		c       Checksum
		encoded string
	}{
		{"crc32", Checksum{Algorithm: "CRC32", Type: ChecksumFullObject, Value: []byte{1, 2, 3, 4}}, "AQIDBA=="},
		{"crc32c", Checksum{Algorithm: "CRC32C", Type: ChecksumFullObject, Value: []byte{4, 3, 2, 1}}, "BAMCAQ=="},
		{"crc64nvme", Checksum{Algorithm: "CRC64NVME", Type: ChecksumFullObject, Value: make([]byte, 8)}, "AAAAAAAAAAA="},
		{"sha1", Checksum{Algorithm: "SHA1", Type: ChecksumFullObject, Value: make([]byte, 20)}, base64.StdEncoding.EncodeToString(make([]byte, 20))},
		{"sha256 composite", Checksum{Algorithm: "SHA256", Type: ChecksumComposite, Parts: 3, Value: make([]byte, 32)},
			base64.StdEncoding.EncodeToString(make([]byte, 32)) + "-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := SealChecksum(dk, tt.c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := OpenChecksum(dk, sealed)
			if err != nil {
				t.Fatal(err)
			}
			if got.Algorithm != tt.c.Algorithm || got.Type != tt.c.Type || got.Parts != tt.c.Parts || !bytes.Equal(got.Value, tt.c.Value) {
				t.Errorf("opened %+v, sealed %+v", got, tt.c)
			}
			if got.Encoded() != tt.encoded {
				t.Errorf("encoded %q, want %q", got.Encoded(), tt.encoded)
			}
		})
	}
}

// TestSealedChecksumTampering: any change to a sealed checksum, or another
// data key, fails; it never opens to another value.
func TestSealedChecksumTampering(t *testing.T) {
	dk := bytes.Repeat([]byte{7}, 32)
	sealed, err := SealChecksum(dk, Checksum{Algorithm: "CRC32C", Type: ChecksumFullObject, Value: []byte{1, 2, 3, 4}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(sealed)
			b[i] ^= bit
			if c, err := OpenChecksum(dk, b); err == nil {
				t.Fatalf("byte %d ^ %#x opened to %+v", i, bit, c)
			}
		}
	}
	other := bytes.Repeat([]byte{8}, 32)
	if _, err := OpenChecksum(other, sealed); !errors.Is(err, ErrChecksumAuthentication) {
		t.Errorf("another data key: %v", err)
	}
	for _, n := range []int{0, 4, len(sealed) - 1} {
		if _, err := OpenChecksum(dk, sealed[:n]); err == nil {
			t.Errorf("cut to %d bytes opened", n)
		}
	}
	if _, err := OpenChecksum(dk, append(bytes.Clone(sealed), 0)); err == nil {
		t.Error("a byte appended opened")
	}
}

func TestSealChecksumRefuses(t *testing.T) {
	dk := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name string
		c    Checksum
	}{
		{"unknown algorithm", Checksum{Algorithm: "MD5", Type: ChecksumFullObject, Value: make([]byte, 16)}},
		{"wrong size", Checksum{Algorithm: "CRC32", Type: ChecksumFullObject, Value: make([]byte, 8)}},
		{"unknown type", Checksum{Algorithm: "CRC32", Type: "PARTIAL", Value: make([]byte, 4)}},
		{"too many parts", Checksum{Algorithm: "CRC32", Type: ChecksumComposite, Parts: MaxSegments + 1, Value: make([]byte, 4)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SealChecksum(dk, tt.c); err == nil {
				t.Error("sealed")
			}
		})
	}
}

// TestChecksumMetadata: version 3 carries s3seal-s, with or without a
// context, and reads back; a malformed s3seal-s is malformed metadata.
func TestChecksumMetadata(t *testing.T) {
	dk := bytes.Repeat([]byte{7}, 32)
	sealed, err := SealChecksum(dk, Checksum{Algorithm: "SHA256", Type: ChecksumFullObject, Value: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	base := Metadata{KeyID: "k", WrappedKey: []byte("wrapped"), Checksum: sealed}
	withCtx := base
	withCtx.Context = map[string]string{"a": "b"}
	for _, m := range []Metadata{base, withCtx} {
		u := m.UserMetadata()
		if u["s3seal-v"] != "3" {
			t.Errorf("version %q, want 3", u["s3seal-v"])
		}
		got, err := ParseUserMetadata(u)
		if err != nil || !bytes.Equal(got.Checksum, sealed) || len(got.Context) != len(m.Context) {
			t.Errorf("read back %+v, %v", got, err)
		}
	}
	good := base.UserMetadata()
	tests := []struct {
		name string
		s    string
		drop bool
	}{
		{"missing", "", true},
		{"not base64", "!!", false},
		{"unknown algorithm", base64.StdEncoding.EncodeToString(append([]byte{9}, sealed[1:]...)), false},
		{"cut", base64.StdEncoding.EncodeToString(sealed[:len(sealed)-1]), false},
		{"unpadded", strings.TrimRight(good["s3seal-s"], "="), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := map[string]string{}
			for k, v := range good {
				u[k] = v
			}
			u["s3seal-s"] = tt.s
			if tt.drop {
				delete(u, "s3seal-s")
			}
			if _, err := ParseUserMetadata(u); !errors.Is(err, ErrMalformedMetadata) {
				t.Errorf("got %v, want malformed", err)
			}
		})
	}
	// A checksum in version 1 or 2 is an unknown field.
	u := map[string]string{}
	for k, v := range good {
		u[k] = v
	}
	u["s3seal-v"] = "1"
	if _, err := ParseUserMetadata(u); !errors.Is(err, ErrMalformedMetadata) {
		t.Errorf("checksum in version 1: %v", err)
	}
}

// A sealed checksum hides its value: a checksum of the plaintext would
// give a short plaintext back, or confirm a guess. Two seals of one value
// differ (a fresh nonce each).
func TestSealedChecksumHidesValue(t *testing.T) {
	dk := bytes.Repeat([]byte{7}, 32)
	value := []byte{0x0f, 0x0e, 0x03, 0xe1}
	c := Checksum{Algorithm: "CRC32", Type: ChecksumFullObject, Value: value}
	a, err := SealChecksum(dk, c)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SealChecksum(dk, c)
	if bytes.Contains(a, value) || bytes.Equal(a, b) {
		t.Fatalf("sealed %x shows the value %x, or repeats", a, value)
	}
	if parsed, err := parseSealedChecksum(a); err != nil || parsed.Value != nil || parsed.Algorithm != "CRC32" {
		t.Fatalf("the clear fields: %+v, %v", parsed, err)
	}
}
