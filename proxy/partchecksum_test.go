package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
)

// sumOf is the aws-sdk's field of algo in a checksum-bearing output.
func sumOf(algo string, crc32, crc32c, crc64, sha1, sha256 *string) string {
	return aws.ToString(map[string]*string{"CRC32": crc32, "CRC32C": crc32c, "CRC64NVME": crc64, "SHA1": sha1, "SHA256": sha256}[algo])
}

// expectedChecksums are the part checksums and the object checksum S3 gives
// parts of the given algorithm and type.
func expectedChecksums(t *testing.T, algo, typ string, parts [][]byte) ([]string, string) {
	t.Helper()
	var sums []envelope.Checksum
	var sizes []int64
	var encoded []string
	for _, p := range parts {
		h := envelope.NewChecksumHash(algo)
		h.Write(p)
		c := envelope.Checksum{Algorithm: algo, Value: h.Sum(nil)}
		sums, sizes = append(sums, c), append(sizes, int64(len(p)))
		encoded = append(encoded, c.Encoded())
	}
	obj, err := envelope.ObjectChecksum(typ, sums, sizes)
	if err != nil {
		t.Fatal(err)
	}
	return encoded, obj.Encoded()
}

// TestMultipartChecksums: an upload declaring a CRC keeps its parts'
// checksums in their records (FORMAT.md §3.4), and answers them as S3 does:
// on UploadPart, Complete, GET and HEAD with checksum mode (where the SDK
// validates a FULL_OBJECT one), a COMPOSITE object's part reads, and
// GetObjectAttributes. Whether the client sends each part's checksum or
// s3seal computes it, the values are the same.
func TestMultipartChecksums(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(2*128*kib+100000, 7)
	parts := splitParts(data, 128*kib, 128*kib, 100000)
	tests := []struct {
		algo, typ  string // typ "" leaves x-amz-checksum-type out: S3's default
		wantType   string
		clientSums bool // the client sends each part's checksum
	}{
		{"CRC32", "", envelope.ChecksumComposite, true},
		{"CRC32C", "COMPOSITE", envelope.ChecksumComposite, false},
		{"CRC32C", "FULL_OBJECT", envelope.ChecksumFullObject, true},
		{"CRC64NVME", "", envelope.ChecksumFullObject, true},
		{"CRC64NVME", "FULL_OBJECT", envelope.ChecksumFullObject, false},
	}
	for _, tt := range tests {
		t.Run(tt.algo+" "+tt.wantType, func(t *testing.T) {
			key := "mpc/" + tt.algo + tt.typ
			partSums, objSum := expectedChecksums(t, tt.algo, tt.wantType, parts)
			created, err := e.client.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
				ChecksumAlgorithm: types.ChecksumAlgorithm(tt.algo), ChecksumType: types.ChecksumType(tt.typ)})
			if err != nil {
				t.Fatal(err)
			}
			if string(created.ChecksumAlgorithm) != tt.algo || string(created.ChecksumType) != tt.wantType {
				t.Fatalf("CreateMultipartUpload answered %s %s", created.ChecksumAlgorithm, created.ChecksumType)
			}
			var done []types.CompletedPart
			for i, part := range parts {
				in := &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: created.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part)}
				if tt.clientSums {
					in.ChecksumAlgorithm = types.ChecksumAlgorithm(tt.algo)
				}
				out, err := e.client.UploadPart(bg(), in, func(o *s3.Options) {
					if !tt.clientSums {
						o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
					}
				})
				if err != nil {
					t.Fatalf("UploadPart %d: %v", i+1, err)
				}
				if got := sumOf(tt.algo, out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256); got != partSums[i] {
					t.Fatalf("UploadPart %d answered checksum %q, want %q", i+1, got, partSums[i])
				}
				cp := types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32,
					ChecksumCRC32C: out.ChecksumCRC32C, ChecksumCRC64NVME: out.ChecksumCRC64NVME}
				done = append(done, cp)
			}
			fin, err := e.client.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
				UploadId: created.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
			if err != nil {
				t.Fatal(err)
			}
			if got := sumOf(tt.algo, fin.ChecksumCRC32, fin.ChecksumCRC32C, fin.ChecksumCRC64NVME, fin.ChecksumSHA1, fin.ChecksumSHA256); got != objSum || string(fin.ChecksumType) != tt.wantType {
				t.Fatalf("Complete answered %q %s, want %q %s", got, fin.ChecksumType, objSum, tt.wantType)
			}
			// A fresh proxy has no cache: it reads the records.
			e.proxy.layouts = newLayoutCache()
			got, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(got.Body) // the SDK validates a FULL_OBJECT checksum here
			got.Body.Close()
			if err != nil || !bytes.Equal(body, data) {
				t.Fatalf("GET: %d bytes, %v", len(body), err)
			}
			if v := sumOf(tt.algo, got.ChecksumCRC32, got.ChecksumCRC32C, got.ChecksumCRC64NVME, got.ChecksumSHA1, got.ChecksumSHA256); v != objSum || string(got.ChecksumType) != tt.wantType {
				t.Fatalf("GET answered %q %s, want %q", v, got.ChecksumType, objSum)
			}
			e.proxy.layouts = newLayoutCache()
			head, err := e.client.HeadObject(bg(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			if v := sumOf(tt.algo, head.ChecksumCRC32, head.ChecksumCRC32C, head.ChecksumCRC64NVME, head.ChecksumSHA1, head.ChecksumSHA256); v != objSum {
				t.Fatalf("HEAD answered %q, want %q", v, objSum)
			}
			part, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key),
				PartNumber: aws.Int32(2), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			body, err = io.ReadAll(part.Body) // validated by the SDK when answered
			part.Body.Close()
			v := sumOf(tt.algo, part.ChecksumCRC32, part.ChecksumCRC32C, part.ChecksumCRC64NVME, part.ChecksumSHA1, part.ChecksumSHA256)
			if wantPart := map[bool]string{true: partSums[1]}[tt.wantType == envelope.ChecksumComposite]; err != nil || v != wantPart || !bytes.Equal(body, parts[1]) {
				t.Fatalf("GET part 2 answered %q (want %q), %d bytes, %v", v, wantPart, len(body), err)
			}
			attrs, err := e.client.GetObjectAttributes(bg(), &s3.GetObjectAttributesInput{Bucket: aws.String(testBucket), Key: aws.String(key),
				ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesChecksum, types.ObjectAttributesObjectParts}})
			if err != nil {
				t.Fatal(err)
			}
			c := attrs.Checksum
			if v := sumOf(tt.algo, c.ChecksumCRC32, c.ChecksumCRC32C, c.ChecksumCRC64NVME, c.ChecksumSHA1, c.ChecksumSHA256); v != objSum || string(c.ChecksumType) != tt.wantType {
				t.Fatalf("GetObjectAttributes Checksum %q %s, want %q", v, c.ChecksumType, objSum)
			}
			for i, p := range attrs.ObjectParts.Parts {
				if v := sumOf(tt.algo, p.ChecksumCRC32, p.ChecksumCRC32C, p.ChecksumCRC64NVME, p.ChecksumSHA1, p.ChecksumSHA256); v != partSums[i] {
					t.Fatalf("GetObjectAttributes part %d checksum %q, want %q", i+1, v, partSums[i])
				}
			}
		})
	}
}

// TestMultipartChecksumRefusals: what S3 refuses about multipart checksums
// is refused before anything is stored, and a whole-object checksum on
// Complete, which s3seal could check only after writing, is refused too.
func TestMultipartChecksumRefusals(t *testing.T) {
	e := newEnv(t)
	key := "mpc/refused"
	for _, tt := range []struct{ algo, typ string }{{"SHA256", "FULL_OBJECT"}, {"CRC64NVME", "COMPOSITE"}, {"MD5", ""}} {
		_, err := e.client.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
			ChecksumAlgorithm: types.ChecksumAlgorithm(tt.algo), ChecksumType: types.ChecksumType(tt.typ)})
		if code, status := apiError(t, err); code != "InvalidRequest" || status != http.StatusBadRequest {
			t.Errorf("%s %s: %s %d", tt.algo, tt.typ, code, status)
		}
	}
	if n := e.store.uploadCount(); n != 0 {
		t.Fatalf("%d uploads begun", n)
	}
	created, err := e.client.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
	if err != nil {
		t.Fatal(err)
	}
	puts := storedPuts(e.store)
	_, err = e.client.UploadPart(bg(), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: created.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("x")), ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	if code, status := apiError(t, err); code != "InvalidRequest" || status != http.StatusBadRequest {
		t.Errorf("part of another algorithm: %s %d", code, status)
	}
	if storedPuts(e.store) != puts {
		t.Error("a refused part reached the store")
	}
	out, err := e.client.UploadPart(bg(), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: created.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("x")), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		UploadId: created.UploadId, ChecksumCRC32C: out.ChecksumCRC32C, ChecksumType: types.ChecksumTypeFullObject,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: out.ETag}}}})
	if code, status := apiError(t, err); code != "NotImplemented" || status != http.StatusNotImplemented {
		t.Errorf("Complete with a whole-object checksum: %s %d", code, status)
	}
	_, err = e.client.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		UploadId: created.UploadId, ChecksumType: types.ChecksumTypeFullObject,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: out.ETag}}}})
	if code, status := apiError(t, err); code != "InvalidRequest" || status != http.StatusBadRequest {
		t.Errorf("Complete with another checksum type: %s %d", code, status)
	}
	if e.store.get(testBucket, key) != nil {
		t.Fatal("a refused Complete wrote the object")
	}
}

// TestMultipartChecksumLies: a store that changes a part's record, or the
// algorithm the metadata declares, makes the reads that ask for checksums
// fail (and whole reads too: the final chunk authenticates the record);
// it never makes s3seal answer another value. SHA256, which no record
// holds, is verified per part and not kept.
func TestMultipartChecksumLies(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(2*128*kib+5, 8)
	parts := splitParts(data, 128*kib, 128*kib, 5)
	put := func(key, algo string) { e.putMultipartSum(t, key, algo, "", parts) }
	head := func(key string) (*s3.HeadObjectOutput, error) {
		e.proxy.layouts = newLayoutCache()
		return e.client.HeadObject(bg(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
	}
	put("lies/sha256", "SHA256")
	if out, err := head("lies/sha256"); err != nil || out.ChecksumSHA256 != nil {
		t.Fatalf("SHA256 upload: HEAD answered %v, %v; s3seal keeps none", aws.ToString(out.ChecksumSHA256), err)
	}

	put("lies/record", "CRC32C")
	o := e.store.get(testBucket, "lies/record")
	second := envelope.SegmentSize(128*kib) * 2 // end of part 2
	o.data[second-1] ^= 1                       // part 2's record MAC
	if _, err := head("lies/record"); !isCorrupt(t, err) {
		t.Errorf("HEAD of a changed record: %v", err)
	}
	if _, _, err := e.get(t, "lies/record"); err == nil {
		t.Error("GET of an object with a changed record succeeded")
	}
	o.data[second-1] ^= 1
	if _, err := head("lies/record"); err != nil {
		t.Fatalf("restored record: %v", err)
	}
	o.header.Set("X-Amz-Meta-S3seal-P", "CRC32/COMPOSITE") // same value size, another algorithm
	if _, err := head("lies/record"); !isCorrupt(t, err) {
		t.Errorf("HEAD with the metadata's algorithm changed: %v", err)
	}
	o.header.Del("X-Amz-Meta-S3seal-P")
	if _, err := head("lies/record"); err == nil {
		t.Error("HEAD with s3seal-p dropped succeeded")
	}
}

// isCorrupt reports a HEAD refused as StoredObjectCorrupt: a HEAD's answer
// has no body, so its status says it.
func isCorrupt(t *testing.T, err error) bool {
	_, status := apiError(t, err)
	return status == http.StatusBadGateway
}

// TestMultipartChecksumCopies: UploadPartCopy into an upload declaring a
// CRC records the copied plaintext's checksum, and a CopyObject of such an
// object keeps its parts, records and all, so the copy answers the same
// checksum.
func TestMultipartChecksumCopies(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(128*kib+300, 9)
	e.put(t, "copies/src", data, nil)
	parts := splitParts(data, 128*kib, 300)
	partSums, objSum := expectedChecksums(t, "CRC32C", envelope.ChecksumComposite, parts)
	created, err := e.client.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("copies/mp"),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, r := range []string{"bytes=0-131071", "bytes=131072-131371"} {
		out, err := e.client.UploadPartCopy(bg(), &s3.UploadPartCopyInput{Bucket: aws.String(testBucket), Key: aws.String("copies/mp"),
			UploadId: created.UploadId, PartNumber: aws.Int32(int32(i + 1)), CopySource: aws.String(testBucket + "/copies/src"), CopySourceRange: aws.String(r)})
		if err != nil {
			t.Fatalf("UploadPartCopy %d: %v", i+1, err)
		}
		if got := aws.ToString(out.CopyPartResult.ChecksumCRC32C); got != partSums[i] {
			t.Fatalf("UploadPartCopy %d answered %q, want %q", i+1, got, partSums[i])
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.CopyPartResult.ETag})
	}
	if _, err := e.client.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("copies/mp"),
		UploadId: created.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CopyObject(bg(), &s3.CopyObjectInput{Bucket: aws.String(testBucket), Key: aws.String("copies/dst"),
		CopySource: aws.String(testBucket + "/copies/mp")}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"copies/mp", "copies/dst"} {
		e.proxy.layouts = newLayoutCache()
		out, err := e.client.HeadObject(bg(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil || aws.ToString(out.ChecksumCRC32C) != objSum {
			t.Fatalf("%s: HEAD answered %q, want %q (%v)", key, aws.ToString(out.ChecksumCRC32C), objSum, err)
		}
	}
	if got, _, err := e.get(t, "copies/dst"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copy reads back %d bytes, %v", len(got), err)
	}
}

// TestCompleteObjectSize: a Complete's x-amz-mp-object-size (SDKs send it)
// is checked against the parts' plaintext size, as S3 checks it; a wrong
// one writes nothing.
func TestCompleteObjectSize(t *testing.T) {
	e := newEnv(t)
	parts := splitParts(randomBytes(128*kib+7, 11), 128*kib, 7)
	for _, tt := range []struct {
		size *int64
		ok   bool
	}{{aws.Int64(128*kib + 8), false}, {aws.Int64(128*kib + 7), true}, {nil, true}} {
		key := fmt.Sprintf("size/%v", tt.ok)
		id := create(t, e.client, key, nil)
		var etags []string
		for i, p := range parts {
			etag, err := uploadPart(e.client, key, id, i+1, p)
			if err != nil {
				t.Fatal(err)
			}
			etags = append(etags, etag)
		}
		var done []types.CompletedPart
		for i, etag := range etags {
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(etag)})
		}
		_, err := e.client.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key),
			UploadId: aws.String(id), MpuObjectSize: tt.size, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		switch {
		case tt.ok && err != nil:
			t.Errorf("x-amz-mp-object-size %v: %v", aws.ToInt64(tt.size), err)
		case !tt.ok:
			if code, _ := apiError(t, err); code != "InvalidRequest" {
				t.Errorf("x-amz-mp-object-size %v: %v", aws.ToInt64(tt.size), err)
			}
		}
		if (e.store.get(testBucket, key) != nil) != tt.ok {
			t.Errorf("x-amz-mp-object-size %v: object written %v", aws.ToInt64(tt.size), !tt.ok)
		}
	}
}

// TestCompleteChecksumTrailerRefused: a Complete whose body carries a
// checksum trailer (on S3, the object's checksum) is refused before the
// body is read, as a checksum header is; nothing is written.
func TestCompleteChecksumTrailerRefused(t *testing.T) {
	e := newEnv(t)
	id := e.createUpload(t, "trailer")
	doc := []byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>`)
	status, code, body := e.send(t, e.wireRequest(t, "POST", "/"+testBucket+"/trailer?uploadId="+id, doc, modeTrailer, false, nil))
	if status != http.StatusNotImplemented || code != "NotImplemented" {
		t.Fatalf("Complete with a checksum trailer: %d %s", status, body)
	}
	if e.store.get(testBucket, "trailer") != nil {
		t.Fatal("a refused Complete wrote the object")
	}
}

// TestListPartsDropsStoreChecksums: the store's checksums in ListParts are
// of the ciphertext parts s3seal sent it: they are left out.
func TestListPartsDropsStoreChecksums(t *testing.T) {
	e := newEnv(t)
	id := e.createUpload(t, "lp")
	scripted(t, e, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !r.URL.Query().Has("uploadId") {
			return false
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>%s</Bucket><Key>lp</Key><UploadId>u</UploadId>
<ChecksumAlgorithm>CRC32C</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType>
<Part><PartNumber>1</PartNumber><ETag>"e"</ETag><Size>%d</Size><ChecksumCRC32C>AAAAAA==</ChecksumCRC32C></Part></ListPartsResult>`,
			testBucket, envelope.SegmentSize(5))
		return true
	})
	out, err := e.client.ListParts(bg(), &s3.ListPartsInput{Bucket: aws.String(testBucket), Key: aws.String("lp"), UploadId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if out.ChecksumAlgorithm != "" || out.ChecksumType != "" || len(out.Parts) != 1 ||
		out.Parts[0].ChecksumCRC32C != nil || aws.ToInt64(out.Parts[0].Size) != 5 {
		t.Fatalf("ListParts relayed the store's checksums or sizes: %+v, part %+v", out, out.Parts)
	}
}
