package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
)

const kib = 1024

func bg() context.Context { return context.Background() }

// create starts an upload through c.
func create(t testing.TB, c *s3.Client, key string, meta map[string]string) string {
	t.Helper()
	out, err := c.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key), Metadata: meta})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	return aws.ToString(out.UploadId)
}

func uploadPart(c *s3.Client, key, id string, k int, data []byte) (string, error) {
	out, err := c.UploadPart(bg(), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: aws.String(id),
		PartNumber: aws.Int32(int32(k)), Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

func complete(c *s3.Client, key, id string, etags []string) (*s3.CompleteMultipartUploadOutput, error) {
	var parts []types.CompletedPart
	for i, e := range etags {
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(e)})
	}
	return c.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
}

// multipartPut uploads parts in reverse order, in parallel, and completes.
func (e *env) multipartPut(t testing.TB, key string, parts [][]byte) string {
	t.Helper()
	id := create(t, e.client, key, map[string]string{"owner": "mp"})
	etags := make([]string, len(parts))
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for i := len(parts) - 1; i >= 0; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			etag, err := uploadPart(e.client, key, id, i+1, parts[i])
			etags[i] = etag
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("UploadPart: %v", err)
		}
	}
	out, err := complete(e.client, key, id, etags)
	if err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	return aws.ToString(out.ETag)
}

func splitParts(data []byte, sizes ...int) [][]byte {
	var out [][]byte
	for _, n := range sizes {
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func TestMultipartRoundTrip(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(2*128*kib+100000, 1)
	parts := splitParts(data, 128*kib, 128*kib, 100000)
	etag := e.multipartPut(t, "mp/obj", parts)
	if !strings.HasSuffix(etag, `-3"`) {
		t.Errorf("ETag %s", etag)
	}
	o := e.store.get(testBucket, "mp/obj")
	if int64(len(o.data)) != v1Layout(128*kib, 128*kib, 100000).CiphertextSize() || bytes.Contains(o.data, data[:32]) {
		t.Fatalf("stored %d bytes", len(o.data))
	}
	got, out, err := e.get(t, "mp/obj")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET: %v, %d bytes", err, len(got))
	}
	if out.Metadata["owner"] != "mp" || out.ServerSideEncryption != "aws:kms" || aws.ToInt64(out.ContentLength) != int64(len(data)) {
		t.Errorf("GET metadata %v SSE %q length %d", out.Metadata, out.ServerSideEncryption, aws.ToInt64(out.ContentLength))
	}
	for k := range out.Metadata {
		if envelope.IsReserved(k) {
			t.Errorf("client sees %s", k)
		}
	}
	head, err := e.client.HeadObject(bg(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("mp/obj")})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(data)) {
		t.Fatalf("HEAD: %v %d", err, aws.ToInt64(head.ContentLength))
	}
	list, err := e.client.ListObjectsV2(bg(), &s3.ListObjectsV2Input{Bucket: aws.String(testBucket)})
	if err != nil || len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != int64(len(data)) {
		t.Fatalf("list: %v %+v", err, list)
	}
	if e.store.uploadCount() != 0 {
		t.Error("upload left behind")
	}
}

func TestMultipartPartChecksumAndToken(t *testing.T) {
	e := newEnv(t)
	id := create(t, e.client, "k", nil)
	if len(id) > 400 {
		t.Errorf("token is %d characters", len(id))
	}
	out, err := e.client.UploadPart(bg(), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String("k"), UploadId: aws.String(id),
		PartNumber: aws.Int32(1), Body: strings.NewReader("hello"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ChecksumCRC32) != "NhCmhg==" || out.ServerSideEncryption != "aws:kms" {
		t.Errorf("UploadPart checksum %q SSE %q", aws.ToString(out.ChecksumCRC32), out.ServerSideEncryption)
	}

	// Malformed tokens, tokens of other objects, tampered tokens: no such upload.
	other := create(t, e.client, "other", nil)
	tampered := []byte(id)
	tampered[len(tampered)-3] ^= 1
	if tampered[len(tampered)-3] == '_' || tampered[len(tampered)-3] == '-' {
		tampered[len(tampered)-3] = 'A'
	}
	for _, bad := range []string{"u", "", other, string(tampered), envelope.ListedUploadToken("nope")} {
		_, err := uploadPart(e.client, "k", bad, 1, []byte("x"))
		code, status := apiError(t, err)
		if bad == envelope.ListedUploadToken("nope") {
			if status != 400 {
				t.Errorf("listed token: %s %d", code, status)
			}
			continue
		}
		if code != "NoSuchUpload" || status != 404 {
			t.Errorf("token %.20q: %s %d", bad, code, status)
		}
	}
	// Part numbers.
	for _, k := range []int{0, 10001} {
		_, err := uploadPart(e.client, "k", id, k, []byte("x"))
		if code, _ := apiError(t, err); code != "InvalidArgument" {
			t.Errorf("part %d: %s", k, code)
		}
	}
	// Reserved metadata.
	_, err = e.client.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Metadata: map[string]string{"s3seal-k": "x"}})
	if code, _ := apiError(t, err); code != "InvalidArgument" {
		t.Errorf("reserved metadata: %s", code)
	}
}

func TestMultipartReuploadAndStateless(t *testing.T) {
	e := newEnv(t)
	// A second proxy with its own key cache, sharing store and keyring:
	// another replica, or this one restarted.
	p2, err := New(Config{Upstream: e.proxy.store.Endpoint(), UpstreamAccessKey: upstreamAK, UpstreamSecretKey: upstreamSecret,
		Auth: e.proxy.auth, Keys: kms.ObjectKeys{Keys: kms.NewCache(e.keyring, 10, time.Minute), KeyID: e.keyID, Allowed: kms.NewAllowList(e.keyring, e.keyID)},
		Logger: e.proxy.log, MinPartSize: e.proxy.minPartSize})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(p2)
	defer srv2.Close()
	c2 := newClient(t, srv2.URL, clientSecret)

	data := randomBytes(4*64*kib+5, 2)
	parts := splitParts(data, 64*kib, 64*kib, 64*kib, 64*kib+5)
	id := create(t, e.client, "s", nil)
	etags := make([]string, 4)
	for i := range parts {
		c := e.client
		if i%2 == 1 {
			c = c2
		}
		// First other bytes, then the real ones: a re-upload replaces.
		if _, err := uploadPart(c, "s", id, i+1, randomBytes(len(parts[i]), 99)); err != nil {
			t.Fatal(err)
		}
		if etags[i], err = uploadPart(c, "s", id, i+1, parts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := complete(c2, "s", id, etags); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*s3.Client{e.client, c2} {
		out, err := c.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("s")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("GET: %v", err)
		}
	}
}

func TestMultipartCompleteRules(t *testing.T) {
	e := newEnv(t)
	// A part that is not a multiple of 64 KiB before the last.
	id := create(t, e.client, "bad", nil)
	e1, _ := uploadPart(e.client, "bad", id, 1, randomBytes(100000, 1))
	e2, _ := uploadPart(e.client, "bad", id, 2, randomBytes(10, 2))
	_, err := complete(e.client, "bad", id, []string{e1, e2})
	code, status := apiError(t, err)
	if code != "InvalidPart" || status != 400 || !strings.Contains(err.Error(), "64 KiB") {
		t.Errorf("part size rule: %s %d %v", code, status, err)
	}
	if e.store.uploadCount() != 0 || e.store.get(testBucket, "bad") != nil {
		t.Error("refused upload left behind")
	}
	// An empty part before the last is too small, as on S3: the upload
	// stays, for the part to be uploaded again.
	id = create(t, e.client, "bad", nil)
	e1, _ = uploadPart(e.client, "bad", id, 1, nil)
	e2, _ = uploadPart(e.client, "bad", id, 2, randomBytes(10, 2))
	_, err = complete(e.client, "bad", id, []string{e1, e2})
	if code, _ := apiError(t, err); code != "EntityTooSmall" || e.store.uploadCount() != 1 {
		t.Errorf("empty first part: %s, %d uploads", code, e.store.uploadCount())
	}
	if _, err := e.client.AbortMultipartUpload(bg(), &s3.AbortMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("bad"), UploadId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}

	// Gaps and disorder: refused, the upload stays for a correct retry.
	id = create(t, e.client, "gap", nil)
	var etags []string
	for k := 1; k <= 3; k++ {
		etag, err := uploadPart(e.client, "gap", id, k, randomBytes(64*kib, uint64(k)))
		if err != nil {
			t.Fatal(err)
		}
		etags = append(etags, etag)
	}
	try := func(nums ...int) (string, int) {
		var parts []types.CompletedPart
		for _, n := range nums {
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(n)), ETag: aws.String(etags[n-1])})
		}
		_, err := e.client.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("gap"), UploadId: aws.String(id),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return apiError(t, err)
	}
	if code, status := try(1, 3); code != "InvalidPart" || status != 400 {
		t.Errorf("gap: %s %d", code, status)
	}
	if code, _ := try(2, 1, 3); code != "InvalidPartOrder" {
		t.Errorf("disorder: %s", code)
	}
	if code, _ := try(2, 3); code != "InvalidPart" {
		t.Errorf("not from 1: %s", code)
	}
	// A wrong ETag.
	etags[1] = `"00000000000000000000000000000000"`
	if code, _ := try(1, 2); code != "InvalidPart" {
		t.Errorf("wrong ETag: %s", code)
	}
	if e.store.uploadCount() != 1 {
		t.Errorf("%d uploads, want the one still open", e.store.uploadCount())
	}
	// Completing with a prefix of the parts is fine.
	etags[1], _ = uploadPart(e.client, "gap", id, 2, randomBytes(64*kib, 2))
	if _, err := complete(e.client, "gap", id, etags[:2]); err != nil {
		t.Fatal(err)
	}
	got, _, err := e.get(t, "gap")
	if err != nil || !bytes.Equal(got, append(randomBytes(64*kib, 1), randomBytes(64*kib, 2)...)) {
		t.Fatalf("GET: %v", err)
	}
}

func TestListPartsAndUploads(t *testing.T) {
	e := newEnv(t)
	id := create(t, e.client, "lp", nil)
	for k, n := range []int{128 * kib, 70000} {
		if _, err := uploadPart(e.client, "lp", id, k+1, randomBytes(n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	lp, err := e.client.ListParts(bg(), &s3.ListPartsInput{Bucket: aws.String(testBucket), Key: aws.String("lp"), UploadId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(lp.UploadId) != id || len(lp.Parts) != 2 || aws.ToInt64(lp.Parts[0].Size) != 128*kib || aws.ToInt64(lp.Parts[1].Size) != 70000 {
		t.Errorf("ListParts: %s %+v", aws.ToString(lp.UploadId), lp.Parts)
	}
	// Paginated: one part a page.
	lp, err = e.client.ListParts(bg(), &s3.ListPartsInput{Bucket: aws.String(testBucket), Key: aws.String("lp"), UploadId: aws.String(id), MaxParts: aws.Int32(1), PartNumberMarker: aws.String("1")})
	if err != nil || len(lp.Parts) != 1 || aws.ToInt64(lp.Parts[0].Size) != 70000 {
		t.Errorf("ListParts page 2: %v %+v", err, lp)
	}

	lu, err := e.client.ListMultipartUploads(bg(), &s3.ListMultipartUploadsInput{Bucket: aws.String(testBucket)})
	if err != nil || len(lu.Uploads) != 1 {
		t.Fatalf("ListMultipartUploads: %v %+v", err, lu)
	}
	listed := aws.ToString(lu.Uploads[0].UploadId)
	if aws.ToString(lu.Uploads[0].Key) != "lp" || listed == "" || listed == id {
		t.Errorf("listed upload %+v", lu.Uploads[0])
	}
	// A listed id lists parts and aborts, but cannot upload or complete.
	lp, err = e.client.ListParts(bg(), &s3.ListPartsInput{Bucket: aws.String(testBucket), Key: aws.String("lp"), UploadId: aws.String(listed)})
	if err != nil || len(lp.Parts) != 2 || aws.ToString(lp.UploadId) != listed {
		t.Errorf("ListParts with a listed id: %v", err)
	}
	_, err = uploadPart(e.client, "lp", listed, 3, []byte("x"))
	if code, status := apiError(t, err); code != "InvalidArgument" || status != 400 {
		t.Errorf("UploadPart with a listed id: %s %d", code, status)
	}
	_, err = e.client.CompleteMultipartUpload(bg(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("lp"),
		UploadId: aws.String(listed), MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: lp.Parts[0].ETag}}}})
	if code, status := apiError(t, err); code != "InvalidArgument" || status != 400 {
		t.Errorf("CompleteMultipartUpload with a listed id: %s %d", code, status)
	}
	if _, err := e.client.AbortMultipartUpload(bg(), &s3.AbortMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("lp"), UploadId: aws.String(listed)}); err != nil {
		t.Fatal(err)
	}
	if e.store.uploadCount() != 0 {
		t.Error("abort did not reach the store")
	}
	_, err = e.client.AbortMultipartUpload(bg(), &s3.AbortMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("lp"), UploadId: aws.String("garbage")})
	if code, _ := apiError(t, err); code != "NoSuchUpload" {
		t.Errorf("abort with garbage id: %s", code)
	}
}

// rangeGet reads bytes [off, off+n) of key with a ranged GET.
func (e *env) rangeGet(t *testing.T, key string, off, n int64) ([]byte, error) {
	t.Helper()
	out, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	if want := fmt.Sprintf("bytes %d-%d/", off, off+n-1); !strings.HasPrefix(aws.ToString(out.ContentRange), want) {
		t.Errorf("Content-Range %q, want %s...", aws.ToString(out.ContentRange), want)
	}
	return io.ReadAll(out.Body)
}

func partHeads(s *fakeStore) int {
	n := 0
	for _, r := range s.recorded() {
		if r.Method == http.MethodHead && strings.Contains(r.Query, "partNumber=") {
			n++
		}
	}
	return n
}

func TestMultipartRanges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int
	}{
		{"equal", []int{128 * kib, 128 * kib, 128 * kib, 50000}},
		{"unequal", []int{128 * kib, 192 * kib, 64 * kib, 30000}},
		{"two", []int{192 * kib, 200000}},
		{"empty-last", []int{64 * kib, 64 * kib, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			total := 0
			for _, n := range tc.sizes {
				total += n
			}
			data := randomBytes(total, 3)
			e.multipartPut(t, "r", splitParts(data, tc.sizes...))
			var bounds []int64
			var at int64
			for _, n := range tc.sizes[:len(tc.sizes)-1] {
				at += int64(n)
				bounds = append(bounds, at)
			}
			type rng struct{ off, n int64 }
			var ranges []rng
			for _, b := range bounds {
				ranges = append(ranges, rng{b - 1, 2}, rng{b - 70000, 140000}, rng{b, 1}, rng{b + 1, 65536}, rng{b + 65540, 10})
			}
			ranges = append(ranges, rng{0, int64(total)}, rng{1, int64(total) - 2}, rng{int64(total) - 1, 1}, rng{100, 300000})
			check := func(label string) {
				for _, r := range ranges {
					r.off = max(0, min(r.off, int64(total)-1))
					r.n = max(1, min(r.n, int64(total)-r.off))
					got, err := e.rangeGet(t, "r", r.off, r.n)
					if err != nil || !bytes.Equal(got, data[r.off:r.off+r.n]) {
						t.Fatalf("%s: bytes %d+%d: %v (%d bytes)", label, r.off, r.n, err, len(got))
					}
				}
			}
			check("layout from Complete")
			if n := partHeads(e.store); n != 0 {
				t.Errorf("%d part HEADs with the layout known from Complete", n)
			}
			e.proxy.layouts = newLayoutCache() // as another replica would start
			check("discovered layout")
			heads := partHeads(e.store)
			if tc.name == "equal" && heads != 4 {
				t.Errorf("%d part HEADs for equal parts, want 4 (part 1, then each middle part and the last once)", heads)
			}
			if tc.name == "unequal" && heads > 2+len(tc.sizes) {
				t.Errorf("%d part HEADs for unequal parts, want the guess, one check and then all", heads)
			}
			// A HEAD with a Range needs no layout.
			head, err := e.client.HeadObject(bg(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("r"), Range: aws.String("bytes=10-19")})
			if err != nil || aws.ToInt64(head.ContentLength) != 10 || aws.ToString(head.ContentRange) != fmt.Sprintf("bytes 10-19/%d", total) {
				t.Errorf("HEAD range: %v %d %q", err, aws.ToInt64(head.ContentLength), aws.ToString(head.ContentRange))
			}
		})
	}
}

// A guessed layout that is wrong only in the middle of a range: the sizes
// of the middle parts a range touches are confirmed before the answer
// starts, so the read succeeds.
func TestMultipartWrongGuessInsideRange(t *testing.T) {
	e := newEnv(t)
	sizes := []int{128 * kib, 192 * kib, 64 * kib, 30000}
	data := randomBytes(128*kib+192*kib+64*kib+30000, 4)
	e.multipartPut(t, "w", splitParts(data, sizes...))
	for _, r := range [][2]int64{{100000, 200000}, {61072, 140000}, {0, int64(len(data))}} {
		e.proxy.layouts = newLayoutCache()
		got, err := e.rangeGet(t, "w", r[0], r[1])
		if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %v: %v", r, err)
		}
	}
}

func TestMultipartPartNumberReads(t *testing.T) {
	e := newEnv(t)
	sizes := []int{128 * kib, 192 * kib, 30000}
	data := randomBytes(128*kib+192*kib+30000, 5)
	parts := splitParts(data, sizes...)
	e.multipartPut(t, "p", parts)
	e.put(t, "single", data[:1000], nil)
	var off int
	for k, want := range parts {
		out, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("p"), PartNumber: aws.Int32(int32(k + 1))})
		if err != nil {
			t.Fatalf("part %d: %v", k+1, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("part %d: %v, %d bytes", k+1, err, len(got))
		}
		wantRange := fmt.Sprintf("bytes %d-%d/%d", off, off+len(want)-1, len(data))
		if aws.ToString(out.ContentRange) != wantRange || aws.ToInt32(out.PartsCount) != 3 || aws.ToInt64(out.ContentLength) != int64(len(want)) {
			t.Errorf("part %d: range %q parts %d length %d", k+1, aws.ToString(out.ContentRange), aws.ToInt32(out.PartsCount), aws.ToInt64(out.ContentLength))
		}
		head, err := e.client.HeadObject(bg(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("p"), PartNumber: aws.Int32(int32(k + 1))})
		if err != nil || aws.ToString(head.ContentRange) != wantRange || aws.ToInt64(head.ContentLength) != int64(len(want)) || aws.ToInt32(head.PartsCount) != 3 {
			t.Errorf("HEAD part %d: %v", k+1, err)
		}
		off += len(want)
	}
	_, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("p"), PartNumber: aws.Int32(4)})
	if _, status := apiError(t, err); status != 416 {
		t.Errorf("part 4 of 3: %d", status)
	}
	out, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("single"), PartNumber: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, data[:1000]) {
		t.Error("part 1 of a single-part object")
	}
}

func TestMultipartTampering(t *testing.T) {
	e := newEnv(t)
	sizes := []int{64 * kib, 64 * kib, 64 * kib, 1000}
	data := randomBytes(3*64*kib+1000, 6)
	e.multipartPut(t, "t", splitParts(data, sizes...))
	e.multipartPut(t, "u", splitParts(randomBytes(len(data), 7), sizes...))
	orig := e.store.get(testBucket, "t")
	other := e.store.get(testBucket, "u")

	reads := func(label string) {
		t.Helper()
		e.proxy.layouts = newLayoutCache()
		if got, _, err := e.get(t, "t"); err == nil {
			t.Errorf("%s: whole GET succeeded", label)
		} else if !bytes.Equal(got, data[:len(got)]) {
			t.Errorf("%s: whole GET returned wrong bytes", label)
		}
		for _, r := range [][2]int64{{64*kib + 10, 100}, {0, int64(len(data))}, {64*kib - 5, 10}, {64*kib + 5, 70000}} {
			got, err := e.rangeGet(t, "t", r[0], min(r[1], int64(len(data))-r[0]))
			if err == nil {
				t.Errorf("%s: range %v succeeded", label, r)
			} else if !bytes.Equal(got, data[r[0]:r[0]+int64(len(got))]) {
				t.Errorf("%s: range %v returned wrong bytes", label, r)
			}
		}
		out, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("t"), PartNumber: aws.Int32(2)})
		if err == nil {
			got, rerr := io.ReadAll(out.Body)
			out.Body.Close()
			if rerr == nil {
				t.Errorf("%s: part 2 read succeeded", label)
			} else if !bytes.Equal(got, data[64*kib:64*kib+len(got)]) {
				t.Errorf("%s: part 2 read returned wrong bytes", label)
			}
		}
	}

	parts := orig.storedParts()
	flipped := append([]byte(nil), parts[1]...)
	flipped[100] ^= 1
	e.store.putParts(testBucket, "t", [][]byte{parts[0], flipped, parts[2], parts[3]}, orig.header)
	reads("byte flipped in part 2")

	e.store.putParts(testBucket, "t", [][]byte{parts[0], parts[2], parts[1], parts[3]}, orig.header)
	reads("parts 2 and 3 swapped")

	e.store.putParts(testBucket, "t", [][]byte{parts[0], other.storedParts()[1], parts[2], parts[3]}, orig.header)
	reads("part 2 from another object")

	// Sanity: the original parts, rebuilt, read fine.
	e.store.putParts(testBucket, "t", parts, orig.header)
	e.proxy.layouts = newLayoutCache()
	if got, _, err := e.get(t, "t"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("rebuilt original: %v", err)
	}
}

func TestRangeWithoutPartReads(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(3*64*kib+10, 8)
	e.multipartPut(t, "n", splitParts(data, 64*kib, 128*kib, 10))
	e.proxy.layouts = newLayoutCache()
	e.store.noPartReads = true
	got, err := e.rangeGet(t, "n", 64*kib+3, 100000)
	if err != nil || !bytes.Equal(got, data[64*kib+3:64*kib+3+100000]) {
		t.Fatalf("range: %v", err)
	}
}

func TestVersionIDPassthrough(t *testing.T) {
	e := newEnv(t)
	e.put(t, "v", []byte("versioned"), nil)
	if _, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("v"), VersionId: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("v"), VersionId: aws.String("v2"), Range: aws.String("bytes=1-3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.HeadObject(bg(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("v"), VersionId: aws.String("v3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DeleteObject(bg(), &s3.DeleteObjectInput{Bucket: aws.String(testBucket), Key: aws.String("v"), VersionId: aws.String("v4")}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range e.store.recorded() {
		for _, v := range []string{"v1", "v2", "v3", "v4"} {
			if strings.Contains(r.Query, "versionId="+v) {
				seen[r.Method+" "+v] = true
			}
		}
	}
	for _, want := range []string{"GET v1", "GET v2", "HEAD v3", "DELETE v4"} {
		if !seen[want] {
			t.Errorf("store never saw %s (saw %v)", want, seen)
		}
	}
}

// Parts under S3's 5 MiB but the last fail Complete with EntityTooSmall,
// S3's details in the document, before s3seal's own part-size rule; the
// upload stays open, and completes once the part is uploaded again.
func TestEntityTooSmall(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MinPartSize = 0 }) // S3's 5 MiB
	id := create(t, e.client, "small", nil)
	small := 100000 // not a multiple of 64 KiB either: EntityTooSmall comes first
	e1, _ := uploadPart(e.client, "small", id, 1, randomBytes(small, 1))
	e2, _ := uploadPart(e.client, "small", id, 2, randomBytes(10, 2))
	req := e.signedRequest(t, http.MethodPost, "/"+testBucket+"/small?uploadId="+url.QueryEscape(id),
		strings.NewReader(completeDoc(e1, e2)), int64(len(completeDoc(e1, e2))), nil)
	status, body, _ := e.sendResp(t, req)
	for _, want := range []string{"<Code>EntityTooSmall</Code>", "<ProposedSize>100000</ProposedSize>",
		"<MinSizeAllowed>5242880</MinSizeAllowed>", "<PartNumber>1</PartNumber>", "<RequestId>", "<HostId>"} {
		if status != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Fatalf("Complete with a small part: %d %s, want %s", status, body, want)
		}
	}
	if e.store.uploadCount() != 1 {
		t.Fatal("the upload was not left open")
	}
	e1, _ = uploadPart(e.client, "small", id, 1, randomBytes(5<<20, 3))
	if _, err := complete(e.client, "small", id, []string{e1, e2}); err != nil {
		t.Fatalf("Complete once the part is large enough: %v", err)
	}
}

func completeDoc(etags ...string) string {
	var b strings.Builder
	b.WriteString("<CompleteMultipartUpload>")
	for i, etag := range etags {
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, etag)
	}
	b.WriteString("</CompleteMultipartUpload>")
	return b.String()
}

// CompleteMultipartUpload's <Location> names the object as the client
// reached s3seal: under the bucket's own host name when virtual-hosted.
func TestCompleteLocationVirtualHosted(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Domain = "s3.test" })
	id := create(t, e.client, "vh/obj", nil)
	etag, err := uploadPart(e.client, "vh/obj", id, 1, []byte("virtual"))
	if err != nil {
		t.Fatal(err)
	}
	doc := completeDoc(etag)
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/vh/obj?uploadId="+url.QueryEscape(id), strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = testBucket + ".s3.test"
	sign(t, req)
	status, body, _ := e.sendResp(t, req)
	if want := "<Location>http://" + testBucket + ".s3.test/vh/obj</Location>"; status != 200 || !strings.Contains(body, want) {
		t.Fatalf("Complete, virtual-hosted: %d %s, want %s", status, body, want)
	}
}
