package recovery

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// sealed is an object of the given part sizes encrypted as s3seal writes
// it — FramingV1 segments, or FramingV2 ones with CRC32C part records and
// version 4 metadata; version 5, its data key derived from a bucket key;
// with a sealed checksum or not — with the report Inspect would give, the
// plaintext, the stored offset of each part and the keys to open it.
func sealed(t *testing.T, f envelope.Framing, version int, checksum bool, parts ...int64) (Report, []byte, []byte, []int64, kms.ObjectKeys) {
	t.Helper()
	kr, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := kr.CreateKey("recovery")
	keys := kms.ObjectKeys{Keys: kr, KeyID: key.ID, Allowed: kms.NewAllowList(kr, key.ID)}
	if version == 5 {
		if keys.BucketKeys, err = kms.NewBucketKeys(time.Hour, 100); err != nil {
			t.Fatal(err)
		}
	}
	dk, meta, err := keys.New(context.Background(), "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	if f == envelope.FramingV2 {
		meta.Framing, meta.PartAlgorithm, meta.PartType = envelope.FramingV2, "CRC32C", envelope.ChecksumComposite
	}
	if checksum { // a sealed checksum (§6.2), which decrypting carries along
		c, _ := envelope.NewChecksum("CRC32C", "AAAAAA==")
		if meta.Checksum, err = envelope.SealChecksum(dk, c); err != nil {
			t.Fatal(err)
		}
	}
	r := newReport("b", "k", meta)
	var plain, stored []byte
	var offsets []int64
	for i, n := range parts {
		p := bytes.Repeat([]byte{byte('a' + i)}, int(n))
		var enc io.Reader
		if f == envelope.FramingV2 {
			enc, err = envelope.NewRecordEncryptReader(bytes.NewReader(p), dk, uint32(i+1), n, func() (envelope.Checksum, error) {
				return envelope.Checksum{Algorithm: "CRC32C", Type: envelope.ChecksumComposite,
					Value: binary.BigEndian.AppendUint32(nil, crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)))}, nil
			})
		} else {
			enc, err = envelope.NewEncryptReader(bytes.NewReader(p), dk, uint32(i+1), n)
		}
		if err != nil {
			t.Fatal(err)
		}
		seg, err := io.ReadAll(enc)
		if err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, int64(len(stored)))
		r.Parts = append(r.Parts, Part{Number: i + 1, StoredSize: int64(len(seg))})
		plain, stored = append(plain, p...), append(stored, seg...)
	}
	r.StoredSize = int64(len(stored))
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	return r, plain, stored, offsets, keys
}

func TestDecrypt(t *testing.T) {
	const C = envelope.ChunkSize
	objects := []struct {
		name     string
		framing  envelope.Framing
		parts    []int64
		version  int
		checksum bool
	}{
		{"FramingV1, one part", envelope.FramingV1, []int64{220000}, 1, false},
		{"FramingV1, a sealed checksum", envelope.FramingV1, []int64{220000}, 3, true},
		{"FramingV1, multipart", envelope.FramingV1, []int64{2 * C, C, 5000}, 1, false},
		{"FramingV2, multipart", envelope.FramingV2, []int64{2 * C, C, 5000}, 4, false},
		{"FramingV2, an empty last part", envelope.FramingV2, []int64{C, 0}, 4, false},
		{"FramingV1, under a bucket key", envelope.FramingV1, []int64{220000}, 5, false},
		{"FramingV1, under a bucket key, a sealed checksum", envelope.FramingV1, []int64{4096}, 5, true},
	}
	for _, o := range objects {
		t.Run(o.name, func(t *testing.T) {
			good, plain, stored, offsets, keys := sealed(t, o.framing, o.version, o.checksum, o.parts...)
			if good.FormatVersion != o.version || good.Framing() != o.framing || good.PlaintextSize != int64(len(plain)) {
				t.Fatalf("report: version %d, framing %d, plaintext size %d", good.FormatVersion, good.Framing(), good.PlaintextSize)
			}
			// A bucket key is unwrapped under its bucket's context alone;
			// the salt and the name give the object's data key (§6.3).
			bk := o.version == 5
			salt, err := base64.StdEncoding.DecodeString(good.BucketKeySalt)
			if bk && (!maps.Equal(good.EncryptionContext, kms.BucketContext("b")) || err != nil || len(salt) != envelope.BucketKeySaltSize) ||
				!bk && (good.BucketKeySalt != "" || !maps.Equal(good.EncryptionContext, kms.BindingContext("b", "k"))) {
				t.Fatalf("report: context %v, bucket key salt %q", good.EncryptionContext, good.BucketKeySalt)
			}
			if (good.SealedChecksum != "") != o.checksum {
				t.Fatalf("report: sealed checksum %q", good.SealedChecksum)
			}
			for i, p := range good.Parts {
				if p.PlaintextSize != o.parts[i] {
					t.Fatalf("report part %d: plaintext size %d, want %d", i+1, p.PlaintextSize, o.parts[i])
				}
			}
			// What s3seal decrypt -metadata reads back.
			js, err := json.Marshal(good)
			if bk != bytes.Contains(js, []byte(`"bucket_key_salt":`)) {
				t.Fatalf("report JSON: %s", js)
			}
			if err != nil {
				t.Fatal(err)
			}
			var offline Report
			if err := json.Unmarshal(js, &offline); err != nil {
				t.Fatal(err)
			}
			for _, r := range []Report{good, offline} {
				var out bytes.Buffer
				if n, err := Decrypt(context.Background(), keys, r, bytes.NewReader(stored), &out); err != nil || n != int64(len(plain)) || !bytes.Equal(out.Bytes(), plain) {
					t.Fatalf("decrypt: %d %v", n, err)
				}
			}

			hlen := int64(o.framing.HeaderLen())
			flip := func(at int64) []byte { b := bytes.Clone(stored); b[at] ^= 1; return b }
			otherFraming := func(r Report) Report {
				if r.Framing() == envelope.FramingV2 {
					r.FormatVersion, r.PartChecksum = 1, ""
				} else {
					r.FormatVersion, r.PartChecksum = 4, "CRC32C/COMPOSITE"
				}
				return r
			}
			// pick is what a case fails with: own for an object with a data
			// key of its own, bucketKey for one under a bucket key.
			pick := func(own, bucketKey error) error {
				if bk {
					return bucketKey
				}
				return own
			}
			// rename moves the report to bucket/key, with the context the
			// key service would need there.
			rename := func(bucket, key string) func(Report) Report {
				return func(r Report) Report {
					r.Bucket, r.Key = bucket, key
					if bk {
						r.EncryptionContext = kms.BucketContext(bucket)
					} else {
						r.EncryptionContext = kms.BindingContext(bucket, key)
					}
					return r
				}
			}
			b64 := base64.StdEncoding.EncodeToString
			tests := []struct {
				name   string
				report func(Report) Report
				stored []byte
				want   error
			}{
				{"cut at a chunk boundary", nil, stored[:min(hlen+C+16, int64(len(stored))-1)], envelope.ErrAuthentication}, // inside the only chunk of a small object
				{"cut inside a chunk", nil, stored[:len(stored)-100], envelope.ErrAuthentication},
				{"last part dropped", nil, stored[:offsets[len(offsets)-1]], envelope.ErrTruncated},
				{"tampered", nil, flip(int64(len(stored)) / 2), envelope.ErrAuthentication},
				{"last byte (a tag's, or a part record's) flipped", nil, flip(int64(len(stored)) - 1), envelope.ErrAuthentication},
				{"first part's last byte flipped", nil, flip(good.Parts[0].StoredSize - 1), envelope.ErrAuthentication},
				// Version 5 has no FramingV2 form: its metadata is refused.
				{"read as the other framing", otherFraming, stored, pick(envelope.ErrAuthentication, envelope.ErrMalformedMetadata)},
				{"another name", func(r Report) Report { r.Key = "other"; return r }, stored, nil},
				// A bucket key's context is the bucket's alone: the
				// per-object one is another.
				{"another context", func(r Report) Report {
					r.EncryptionContext = kms.BucketContext("b")
					if bk {
						r.EncryptionContext = kms.BindingContext("b", "k")
					}
					return r
				}, stored, nil},
				// The key service unwraps a bucket key for any of its
				// bucket's names; the name in the derivation fails.
				{"another name, its context to match", rename("b", "other"), stored, pick(kms.ErrInvalidCiphertext, envelope.ErrAuthentication)},
				{"another bucket, its context to match", rename("b2", "k"), stored, kms.ErrInvalidCiphertext},
				{"another salt", func(r Report) Report { r.BucketKeySalt = b64(bytes.Repeat([]byte{9}, 32)); return r }, stored, pick(nil, envelope.ErrAuthentication)},
				{"version 5 without its salt", func(r Report) Report { r.FormatVersion, r.BucketKeySalt = 5, ""; return r }, stored, pick(nil, envelope.ErrMalformedMetadata)},
				{"a salt of 16 bytes", func(r Report) Report { r.BucketKeySalt = b64(make([]byte, 16)); return r }, stored, pick(nil, envelope.ErrMalformedMetadata)},
				{"a salt that is not base64", func(r Report) Report { r.BucketKeySalt = "!!"; return r }, stored, pick(nil, envelope.ErrMalformedMetadata)},
				{"a salt in version 1", func(r Report) Report {
					r.FormatVersion, r.SealedChecksum, r.BucketKeySalt = 1, "", b64(bytes.Repeat([]byte{9}, 32))
					return r
				}, stored, pick(nil, envelope.ErrMalformedMetadata)},
				{"another version", func(r Report) Report { r.FormatVersion = 6; return r }, stored, envelope.ErrUnsupportedVersion},
				{"version 3 without its sealed checksum", func(r Report) Report { r.FormatVersion, r.SealedChecksum = 3, ""; return r }, stored, envelope.ErrMalformedMetadata},
				{"version 2 without a context", func(r Report) Report { r.FormatVersion = 2; return r }, stored, envelope.ErrMalformedMetadata},
				{"version 4 without a part checksum", func(r Report) Report { r.FormatVersion, r.PartChecksum = 4, ""; return r }, stored, envelope.ErrMalformedMetadata},
				{"a part checksum in version 1", func(r Report) Report { r.FormatVersion, r.PartChecksum = 1, "CRC32C/COMPOSITE"; return r }, stored, envelope.ErrMalformedMetadata},
				{"a part checksum no record holds", func(r Report) Report { r.FormatVersion, r.PartChecksum = 4, "SHA256/COMPOSITE"; return r }, stored, envelope.ErrMalformedMetadata},
				{"a part checksum without its type", func(r Report) Report { r.FormatVersion, r.PartChecksum = 4, "CRC32C"; return r }, stored, envelope.ErrMalformedMetadata},
				{"a client's context it was not bound to", func(r Report) Report {
					r.EncryptionContext = kms.BindingContext("b", "k", map[string]string{"tenant": "x"})
					if r.FormatVersion == 1 {
						r.FormatVersion = 2
					}
					return r
				}, stored, pick(kms.ErrInvalidCiphertext, nil)},
				{"a damaged wrapped key", func(r Report) Report { r.WrappedKey = "AAAA" + r.WrappedKey[4:]; return r }, stored, kms.ErrInvalidCiphertext},
				{"a CMK not configured", func(r Report) Report { r.CMK = "someone-elses"; return r }, stored, kms.ErrKeyNotAllowed},
				{"no parts", func(r Report) Report { r.Parts = nil; return r }, stored, envelope.ErrImpossibleSize},
				{"sizes that are not the format's", func(r Report) Report { r.StoredSize++; return r }, stored, envelope.ErrImpossibleSize},
			}
			for _, tc := range tests {
				r := good
				r.Parts = append([]Part(nil), good.Parts...) // Check writes into them
				if tc.report != nil {
					r = tc.report(r)
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
		})
	}
}
