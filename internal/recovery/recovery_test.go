package recovery

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// sealed is one object encrypted as s3seal writes it, with the report
// Inspect would give, and the keys to open it.
func sealed(t *testing.T, plain []byte) (Report, []byte, kms.ObjectKeys) {
	t.Helper()
	kr, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := kr.CreateKey("recovery")
	keys := kms.ObjectKeys{Keys: kr, KeyID: key.ID, Allowed: kms.NewAllowList(kr, key.ID)}
	dk, meta, err := keys.New(context.Background(), "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	enc, err := envelope.NewEncryptReader(bytes.NewReader(plain), dk, 1, int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(enc)
	if err != nil {
		t.Fatal(err)
	}
	r := Report{Bucket: "b", Key: "k", FormatVersion: 1, CMK: meta.KeyID, EncryptionContext: kms.BindingContext("b", "k"),
		WrappedKey: base64.StdEncoding.EncodeToString(meta.WrappedKey), StoredSize: int64(len(stored)),
		Parts: []Part{{Number: 1, StoredSize: int64(len(stored))}}}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	return r, stored, keys
}

func TestDecrypt(t *testing.T) {
	plain := bytes.Repeat([]byte("recover me "), 20000)
	good, stored, keys := sealed(t, plain)
	if good.PlaintextSize != int64(len(plain)) {
		t.Fatalf("report plaintext size %d", good.PlaintextSize)
	}
	var out bytes.Buffer
	if n, err := Decrypt(context.Background(), keys, good, bytes.NewReader(stored), &out); err != nil || n != int64(len(plain)) || !bytes.Equal(out.Bytes(), plain) {
		t.Fatalf("decrypt: %d %v", n, err)
	}
	flipped := bytes.Clone(stored)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name   string
		report func(Report) Report
		stored []byte
		want   error
	}{
		{"cut at a chunk boundary", nil, stored[:envelope.HeaderSize+envelope.ChunkSize+16], envelope.ErrAuthentication},
		{"cut inside a chunk", nil, stored[:len(stored)-100], envelope.ErrAuthentication},
		{"tampered", nil, flipped, envelope.ErrAuthentication},
		{"another name", func(r Report) Report { r.Key = "other"; return r }, stored, nil},
		{"another context", func(r Report) Report { r.EncryptionContext = map[string]string{"s3seal:bucket": "b"}; return r }, stored, nil},
		{"another version", func(r Report) Report { r.FormatVersion = 3; return r }, stored, envelope.ErrUnsupportedVersion},
		{"version 2 without a context", func(r Report) Report { r.FormatVersion = 2; return r }, stored, envelope.ErrMalformedMetadata},
		{"a client's context it was not bound to", func(r Report) Report {
			r.EncryptionContext = kms.BindingContext("b", "k", map[string]string{"tenant": "x"})
			r.FormatVersion = 2
			return r
		}, stored, kms.ErrInvalidCiphertext},
		{"a damaged wrapped key", func(r Report) Report { r.WrappedKey = "AAAA" + r.WrappedKey[4:]; return r }, stored, kms.ErrInvalidCiphertext},
		{"a CMK not configured", func(r Report) Report { r.CMK = "someone-elses"; return r }, stored, kms.ErrKeyNotAllowed},
		{"no parts", func(r Report) Report { r.Parts = nil; return r }, stored, envelope.ErrImpossibleSize},
		{"sizes that are not the format's", func(r Report) Report { r.StoredSize++; return r }, stored, envelope.ErrImpossibleSize},
	}
	for _, tc := range tests {
		r := good
		if tc.report != nil {
			r = tc.report(good)
		}
		var out bytes.Buffer
		_, err := Decrypt(context.Background(), keys, r, bytes.NewReader(tc.stored), &out)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if !bytes.HasPrefix(plain, out.Bytes()) {
			t.Errorf("%s: wrote bytes that are not a prefix of the plaintext", tc.name)
		}
	}
}
