package envelope

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestFormatVectors checks the code against the test vectors published in
// docs/FORMAT.md, so the specification and the implementation cannot drift.
// Each vector is a fenced block opened by ```vector; on a mismatch the
// failure prints the value the code computes.
func TestFormatVectors(t *testing.T) {
	vectors := readVectors(t, "../docs/FORMAT.md")
	if len(vectors) < 4 {
		t.Fatalf("docs/FORMAT.md has %d vectors, want at least 4", len(vectors))
	}
	for _, v := range vectors {
		t.Run(v["name"], func(t *testing.T) {
			switch v["kind"] {
			case "segment":
				checkSegmentVector(t, v)
			case "metadata":
				checkMetadataVector(t, v)
			case "bucket-key":
				checkBucketKeyVector(t, v)
			default:
				t.Fatalf("unknown vector kind %q", v["kind"])
			}
		})
	}
}

func readVectors(t *testing.T, path string) []map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]string
	var cur map[string]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "```vector":
			cur = map[string]string{}
		case line == "```" && cur != nil:
			out = append(out, cur)
			cur = nil
		case cur != nil && line != "":
			k, val, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("vector line without a colon: %q", line)
			}
			k, val = strings.TrimSpace(k), strings.TrimSpace(val)
			cur[k] += val // long hex values may continue on lines with the same key
		}
	}
	return out
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func vectorPlaintext(t *testing.T, v map[string]string) []byte {
	if p, ok := v["plaintext"]; ok {
		return mustHex(t, p)
	}
	n, err := strconv.Atoi(v["plaintext-length"])
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i) // "plaintext-length: N" means bytes 0, 1, ..., 255, 0, 1, ...
	}
	return p
}

func checkSegmentVector(t *testing.T, v map[string]string) {
	key, salt := mustHex(t, v["data-key"]), mustHex(t, v["salt"])
	part, err := strconv.ParseUint(v["part"], 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	plain := vectorPlaintext(t, v)
	f, record := FramingV1, RecordFunc(nil)
	if v["framing"] == "2" {
		c := Checksum{Algorithm: v["record-algorithm"], Type: v["record-type"], Value: mustHex(t, v["record-value"])}
		f, record = FramingV2, func() (Checksum, error) { return c, nil }
	}
	seg, err := newSegment(key, f, uint32(part), salt)
	if err != nil {
		t.Fatal(err)
	}
	// The derived segment key, for implementers checking HKDF alone.
	if want, ok := v["segment-key"]; ok {
		info := binary.BigEndian.AppendUint32([]byte(segmentInfo[f]), seg.part())
		info = append(info, 0, 1, 0, 0) // ChunkSize, uint32 BE
		vsalt := salt
		if f == FramingV2 {
			vsalt = salt[:v2SaltSize]
		}
		if got := hex.EncodeToString(hkdfKeyForTest(t, key, vsalt, info)); got != want {
			t.Errorf("segment-key = %s, want %s", got, want)
		}
	}
	r, err := newEncryptReader(bytes.NewReader(plain), key, uint32(part), int64(len(plain)), salt, record)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if want, ok := v["ciphertext"]; ok {
		if got := hex.EncodeToString(stored); got != want {
			t.Errorf("ciphertext =\n%s\nwant\n%s", got, want)
		}
	}
	if want, ok := v["ciphertext-length"]; ok {
		if got := strconv.Itoa(len(stored)); got != want {
			t.Errorf("ciphertext-length = %s, want %s", got, want)
		}
	}
	if want, ok := v["ciphertext-sha256"]; ok {
		sum := sha256.Sum256(stored)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("ciphertext-sha256 = %s, want %s", got, want)
		}
	}
	if f == FramingV2 {
		c, _ := record()
		got, err := OpenRecord(key, stored[:f.HeaderLen()], stored[len(stored)-RecordSize:], uint32(part), int64(len(plain)), c.Algorithm, c.Type)
		if err != nil || !bytes.Equal(got.Value, c.Value) {
			t.Errorf("record opens to %x, %v; want %x", got.Value, err, c.Value)
		}
	}
	// And back: the vector decrypts at its position in an object.
	dec := NewDecryptReader(bytes.NewReader(stored), key, f, 0)
	if part != 1 {
		l := Layout{Framing: f, Parts: make([]int64, part)}
		l.Parts[part-1] = int64(len(plain))
		sp := span{Offset: 0, segment: int(part - 1), plain: int64(len(plain))}
		rr, err := newRangeReader(bytes.NewReader(stored), key, l, sp, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rr)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("vector does not decrypt as part %d: %v", part, err)
		}
		return
	}
	got, err := io.ReadAll(dec)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("vector does not decrypt: %v", err)
	}
}

func checkMetadataVector(t *testing.T, v map[string]string) {
	m := Metadata{KeyID: v["key-id"], WrappedKey: mustHex(t, v["wrapped-key"])}
	got := m.UserMetadata()
	for _, name := range []string{"x-amz-meta-s3seal-v", "x-amz-meta-s3seal-c", "x-amz-meta-s3seal-k"} {
		if got[strings.TrimPrefix(name, "x-amz-meta-")] != v[name] {
			t.Errorf("%s = %q, want %q", name, got[strings.TrimPrefix(name, "x-amz-meta-")], v[name])
		}
	}
	parsed, err := ParseUserMetadata(map[string]string{
		"x-amz-meta-s3seal-v": v["x-amz-meta-s3seal-v"],
		"x-amz-meta-s3seal-c": v["x-amz-meta-s3seal-c"],
		"x-amz-meta-s3seal-k": v["x-amz-meta-s3seal-k"],
	})
	if err != nil || parsed.KeyID != m.KeyID || !bytes.Equal(parsed.WrappedKey, m.WrappedKey) {
		t.Fatalf("vector metadata does not parse back: %v", err)
	}
	if _, err := base64.StdEncoding.DecodeString(v["x-amz-meta-s3seal-k"]); err != nil {
		t.Fatal(err)
	}
}

func hkdfKeyForTest(t *testing.T, key, salt, info []byte) []byte {
	k, err := hkdf.Key(sha256.New, key, salt, string(info), 32)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func checkBucketKeyVector(t *testing.T, v map[string]string) {
	dk, err := DeriveObjectKey(mustHex(t, v["bucket-key"]), mustHex(t, v["salt"]), v["bucket"], v["key"])
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(dk); got != v["data-key"] {
		t.Errorf("data-key = %s, want %s", got, v["data-key"])
	}
}
