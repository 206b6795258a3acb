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
	"sync"
	"sync/atomic"
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

// reuploaded uploads parts (CRC32C, typ), part k twice: first old, then
// parts[k-1]; it completes with the later one and has the store answer the
// record reads (ranged GETs without partNumber) from the earlier upload.
func reuploaded(t *testing.T, e *env, key, typ string, parts [][]byte, k int, old []byte) {
	t.Helper()
	created, err := e.client.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ChecksumType: types.ChecksumType(typ)})
	if err != nil {
		t.Fatal(err)
	}
	up := func(n int32, b []byte) *string {
		out, err := e.client.UploadPart(bg(), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: created.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(b), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
		if err != nil {
			t.Fatal(err)
		}
		return out.ETag
	}
	up(int32(k), old)
	var oldStored []byte
	e.store.mu.Lock()
	for _, u := range e.store.uploads {
		if u.key == key {
			oldStored = append([]byte(nil), u.parts[k].data...)
		}
	}
	e.store.mu.Unlock()
	var done []types.CompletedPart
	for i, p := range parts {
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up(int32(i+1), p)})
	}
	if _, err := e.client.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		UploadId: created.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	o := e.store.get(testBucket, key)
	var off int64
	for _, p := range parts[:k-1] {
		off += envelope.SegmentSize(int64(len(p)))
	}
	alt := append([]byte(nil), o.data...)
	copy(alt[off:], oldStored)
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
	e.proxy.layouts = newLayoutCache()
}

func readAllGet(e *env, in *s3.GetObjectInput) (*s3.GetObjectOutput, []byte, error) {
	got, err := e.client.GetObject(bg(), in)
	if err != nil {
		return nil, nil, err
	}
	defer got.Body.Close()
	b, err := io.ReadAll(got.Body)
	return got, b, err
}

// TestRecordFromEarlierPartUpload: a store that keeps an earlier upload of a
// part (same data key, same size) and serves its header and record to the
// record reads, but the later upload in the body, would pair one plaintext
// with another's checksum (COMPOSITE: no SDK checks it). The body's records
// are compared with those the checksum came from, so the read fails: cleanly
// (502) when the mismatch is in the first chunk, else cut short. An empty
// last part's check comes after every byte, but its record, bound to size
// 0, can only hold the empty part's CRC: the answer is then still right.
func TestRecordFromEarlierPartUpload(t *testing.T) {
	const C = 64 * kib
	p1 := randomBytes(C, 1)
	tests := []struct {
		name       string
		typ        string
		parts      [][]byte
		k          int
		old        []byte
		in         s3.GetObjectInput
		headFirst  bool
		clean      bool // a 502 before any byte
		rightEmpty bool // may succeed, with the body's own checksum
	}{
		{"whole GET", "COMPOSITE", [][]byte{p1, []byte("bbbbb")}, 2, []byte("aaaaa"), s3.GetObjectInput{}, false, false, false},
		{"one-chunk object", "COMPOSITE", [][]byte{[]byte("bbbbb")}, 1, []byte("aaaaa"), s3.GetObjectInput{}, false, true, false},
		{"part GET", "COMPOSITE", [][]byte{p1, []byte("bbbbb")}, 2, []byte("aaaaa"), s3.GetObjectInput{PartNumber: aws.Int32(2)}, false, true, false},
		{"GET after HEAD filled the cache", "FULL_OBJECT", [][]byte{p1, []byte("bbbbb")}, 2, []byte("aaaaa"), s3.GetObjectInput{}, true, false, false},
		{"empty last part", "COMPOSITE", [][]byte{p1, {}}, 2, []byte{}, s3.GetObjectInput{}, false, false, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			key := fmt.Sprintf("reupload/%d", i)
			reuploaded(t, e, key, tt.typ, tt.parts, tt.k, tt.old)
			if tt.headFirst {
				if _, err := e.client.HeadObject(bg(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled}); err != nil {
					t.Fatal(err)
				}
			}
			in := tt.in
			in.Bucket, in.Key, in.ChecksumMode = aws.String(testBucket), aws.String(key), types.ChecksumModeEnabled
			got, err := e.client.GetObject(bg(), &in)
			if tt.clean {
				if code, status := apiError(t, err); code != codeStoredObjectCorrupt || status != http.StatusBadGateway {
					t.Errorf("GET: %v, want a clean 502", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(got.Body)
			got.Body.Close()
			_, want := expectedChecksums(t, "CRC32C", tt.typ, tt.parts)
			switch {
			case err == nil && !tt.rightEmpty:
				t.Errorf("GET returned %d bytes with checksum %q", len(body), aws.ToString(got.ChecksumCRC32C))
			case err == nil && aws.ToString(got.ChecksumCRC32C) != want:
				t.Errorf("GET answered %q for a body whose checksum is %q", aws.ToString(got.ChecksumCRC32C), want)
			}
		})
	}
}

// TestPutRecordsRace: records are cached with the layout they were read
// under in one step, so a layout put by another request (a guess,
// exactLayout, forgetLayout) never gets records read under another.
func TestPutRecordsRace(t *testing.T) {
	c := newLayoutCache()
	const k = "b\x00k\x00etag-3"
	l := envelope.Layout{Framing: envelope.FramingV2, Parts: []int64{2 << 16, 1 << 16, 5}}
	g := envelope.Layout{Framing: envelope.FramingV2, Parts: []int64{1 << 16, 1 << 16, 1<<16 + 5}} // same total
	recs := partRecords{sums: make([]envelope.Checksum, 3), sealed: make([][]byte, 3)}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			c.putRecords(k, l, "fp", recs)
		}
	}()
	go func() {
		defer wg.Done()
		for !stop.Load() {
			c.put(k, g, false)
		}
	}()
	hit := 0
	for i := 0; i < 2000000 && hit == 0; i++ {
		if _, ok := c.records(k, g, "fp"); ok {
			hit = i + 1
		}
	}
	stop.Store(true)
	wg.Wait()
	if hit > 0 {
		t.Errorf("records read under %v served for layout %v (after %d looks)", l.Parts, g.Parts, hit)
	}
}
