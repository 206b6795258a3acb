package proxy

// Attacks on multipart checksums (FORMAT.md §3.4) that an adversarial
// review found: each must now fail, never answer a checksum that is not
// the stored plaintext's.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
)

// putMultipartSum uploads parts through the proxy under an upload declaring
// algo and typ, each part with its checksum.
func (e *env) putMultipartSum(t *testing.T, key, algo, typ string, parts [][]byte) {
	t.Helper()
	created, err := e.client.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		ChecksumAlgorithm: types.ChecksumAlgorithm(algo), ChecksumType: types.ChecksumType(typ)})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, part := range parts {
		out, err := e.client.UploadPart(bg(), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: created.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part), ChecksumAlgorithm: types.ChecksumAlgorithm(algo)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	if _, err := e.client.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		UploadId: created.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
}

// TestFullObjectChecksumLayoutLie: a store that reports other part sizes
// (same total and count) and serves the true headers and records where
// those sizes place them would make a FULL_OBJECT checksum, combined with
// its sizes, come out wrong; each record's MAC binds its part's size, so
// the answer fails instead.
func TestFullObjectChecksumLayoutLie(t *testing.T) {
	e := newEnv(t)
	const C = 64 * kib
	data := randomBytes(3*C+5, 21)
	parts := splitParts(data, 2*C, C, 5)
	_, want := expectedChecksums(t, "CRC32C", envelope.ChecksumFullObject, parts)
	e.putMultipartSum(t, "lie/layout", "CRC32C", "FULL_OBJECT", parts)

	o := e.store.get(testBucket, "lie/layout")
	trueOffs := envelope.Layout{Framing: envelope.FramingV2, Parts: []int64{2 * C, C, 5}}.StoredOffsets()
	fakeOffs := envelope.Layout{Framing: envelope.FramingV2, Parts: []int64{C, C, C + 5}}.StoredOffsets()
	if trueOffs[3] != fakeOffs[3] {
		t.Fatal("totals differ")
	}
	fake := make([]byte, len(o.data))
	const R, H = envelope.RecordSize, 16
	copy(fake[0:H], o.data[0:H]) // header 1
	for i := 1; i <= 2; i++ {    // record i ‖ header i+1
		copy(fake[fakeOffs[i]-R:fakeOffs[i]+H], o.data[trueOffs[i]-R:trueOffs[i]+H])
	}
	copy(fake[len(fake)-R:], o.data[len(o.data)-R:]) // record 3
	o.data = fake
	o.parts = []int64{envelope.SegmentSize(C), envelope.SegmentSize(C), envelope.SegmentSize(C + 5)}

	e.proxy.layouts = newLayoutCache()
	head, err := e.client.HeadObject(bg(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("lie/layout"), ChecksumMode: types.ChecksumModeEnabled})
	if err == nil {
		t.Errorf("HEAD under lying part sizes answered FULL_OBJECT CRC32C %q (the plaintext's is %q)", aws.ToString(head.ChecksumCRC32C), want)
	}
	e.proxy.layouts = newLayoutCache()
	attrs, err := e.client.GetObjectAttributes(bg(), &s3.GetObjectAttributesInput{Bucket: aws.String(testBucket), Key: aws.String("lie/layout"),
		ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesChecksum}})
	if code, _ := apiError(t, err); code != codeStoredObjectCorrupt {
		t.Errorf("GetObjectAttributes under lying part sizes: %v", err)
	} else if attrs != nil {
		t.Errorf("GetObjectAttributes answered %q", aws.ToString(attrs.Checksum.ChecksumCRC32C))
	}
}

// TestChecksumCacheETagReplay: part records are cached per object version
// and data key, so a store that replays an old object's ETag for a new one
// gets the new one's records read, not the old one's checksum answered.
func TestChecksumCacheETagReplay(t *testing.T) {
	e := newEnv(t)
	const C = 64 * kib
	a := randomBytes(C+5, 31)
	b := randomBytes(C+5, 32)
	pa, pb := splitParts(a, C, 5), splitParts(b, C, 5)
	_, wantA := expectedChecksums(t, "CRC32C", envelope.ChecksumComposite, pa)
	_, wantB := expectedChecksums(t, "CRC32C", envelope.ChecksumComposite, pb)

	e.putMultipartSum(t, "lie/cache", "CRC32C", "COMPOSITE", pa)
	etagA := e.store.get(testBucket, "lie/cache").etag
	// An overwrite through s3seal (new data key, same part sizes).
	e.putMultipartSum(t, "lie/cache", "CRC32C", "COMPOSITE", pb)
	e.store.get(testBucket, "lie/cache").etag = etagA // the store replays A's ETag

	got, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("lie/cache"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || !bytes.Equal(body, b) {
		t.Fatalf("GET: %d bytes, %v", len(body), err)
	}
	if v := aws.ToString(got.ChecksumCRC32C); v != wantB {
		t.Errorf("GET returned B's plaintext with checksum %q (A's is %q, B's %q)", v, wantA, wantB)
	}
}

// TestRecordFromEarlierPartUpload: a store that keeps an earlier upload of a
// part (same data key, same size) and serves its header and record to the
// record reads, but the later upload in the body, would pair one plaintext
// with another's checksum (COMPOSITE: no SDK checks it). The body's records
// are compared with those the checksum came from, so the read fails.
func TestRecordFromEarlierPartUpload(t *testing.T) {
	e := newEnv(t)
	const C = 64 * kib
	key := "lie/reupload"
	p1 := randomBytes(C, 41)
	first, second := []byte("aaaaa"), []byte("bbbbb")
	created, err := e.client.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
	if err != nil {
		t.Fatal(err)
	}
	up := func(k int32, b []byte) *string {
		out, err := e.client.UploadPart(bg(), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: created.UploadId,
			PartNumber: aws.Int32(k), Body: bytes.NewReader(b), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
		if err != nil {
			t.Fatal(err)
		}
		return out.ETag
	}
	e1 := up(1, p1)
	up(2, first)
	var old []byte
	e.store.mu.Lock()
	for _, u := range e.store.uploads {
		if u.key == key {
			old = append([]byte(nil), u.parts[2].data...)
		}
	}
	e.store.mu.Unlock()
	e2 := up(2, second)
	if _, err := e.client.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		UploadId: created.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: e1}, {PartNumber: aws.Int32(2), ETag: e2}}}}); err != nil {
		t.Fatal(err)
	}
	o := e.store.get(testBucket, key)
	alt := append([]byte(nil), o.data...)
	copy(alt[envelope.SegmentSize(C):], old)
	scripted(t, e, func(w http.ResponseWriter, r *http.Request) bool {
		rg := r.Header.Get("Range")
		if r.Method != http.MethodGet || rg == "" || r.URL.Query().Has("partNumber") || !strings.HasSuffix(r.URL.Path, key) {
			return false
		}
		a, b, _ := parseFakeRange(rg, int64(len(alt)))
		w.Header().Set("ETag", o.etag)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, len(alt)))
		w.Header().Set("Content-Length", strconv.FormatInt(b-a+1, 10))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(alt[a : b+1])
		return true
	})
	_, wantNew := expectedChecksums(t, "CRC32C", envelope.ChecksumComposite, [][]byte{p1, second})
	_, wantOld := expectedChecksums(t, "CRC32C", envelope.ChecksumComposite, [][]byte{p1, first})
	e.proxy.layouts = newLayoutCache()
	got, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err == nil {
		t.Errorf("GET returned %q with checksum %q (the earlier upload's is %q, this one's %q)", body[C:], aws.ToString(got.ChecksumCRC32C), wantOld, wantNew)
	}
}
