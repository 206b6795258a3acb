package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
)

func (e *env) copy(t *testing.T, in *s3.CopyObjectInput) (*s3.CopyObjectOutput, error) {
	t.Helper()
	if in.Bucket == nil {
		in.Bucket = aws.String(testBucket)
	}
	return e.client.CopyObject(bg(), in)
}

func (e *env) mustGet(t *testing.T, bucket, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := e.client.GetObject(bg(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(out.Body); err != nil {
		t.Fatalf("GET %s/%s body: %v", bucket, key, err)
	}
	return b.Bytes(), out
}

func TestCopyObject(t *testing.T) {
	e := newEnv(t)
	e.store.buckets["other"] = true
	data := randomBytes(200000, 11)
	e.put(t, "src", data, map[string]string{"owner": "a"})
	srcStored := append([]byte(nil), e.store.get(testBucket, "src").data...)

	// COPY (the default): the source's metadata; data copied by the store.
	out, err := e.copy(t, &s3.CopyObjectInput{Key: aws.String("dst"), CopySource: aws.String(testBucket + "/src")})
	if err != nil {
		t.Fatal(err)
	}
	if out.ServerSideEncryption != "aws:kms" || out.CopyObjectResult == nil || aws.ToString(out.CopyObjectResult.ETag) == "" {
		t.Errorf("copy answer %+v", out)
	}
	got, g := e.mustGet(t, testBucket, "dst")
	if !bytes.Equal(got, data) || g.Metadata["owner"] != "a" {
		t.Errorf("copy: %d bytes, metadata %v", len(got), g.Metadata)
	}
	if !bytes.Equal(e.store.get(testBucket, "dst").data, srcStored) {
		t.Error("the store's copy differs from the source's stored bytes")
	}
	for _, r := range e.store.recorded() {
		if r.Method == http.MethodPut && strings.HasSuffix(r.Path, "/dst") && r.Header.Get("X-Amz-Metadata-Directive") != "REPLACE" {
			t.Error("copy without REPLACE")
		}
	}

	// REPLACE: the client's metadata; another bucket; a key with odd bytes.
	_, err = e.copy(t, &s3.CopyObjectInput{Bucket: aws.String("other"), Key: aws.String("d st+ü"), CopySource: aws.String(testBucket + "/src"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"owner": "b"}, ContentType: aws.String("text/x")})
	if err != nil {
		t.Fatal(err)
	}
	got, g = e.mustGet(t, "other", "d st+ü")
	if !bytes.Equal(got, data) || g.Metadata["owner"] != "b" || aws.ToString(g.ContentType) != "text/x" {
		t.Errorf("REPLACE copy: metadata %v type %q", g.Metadata, aws.ToString(g.ContentType))
	}
	// The source still reads.
	if got, _ := e.mustGet(t, testBucket, "src"); !bytes.Equal(got, data) {
		t.Error("source damaged")
	}
	// Onto itself with REPLACE (a metadata update).
	if _, err := e.copy(t, &s3.CopyObjectInput{Key: aws.String("src"), CopySource: aws.String(testBucket + "/src"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"owner": "c"}}); err != nil {
		t.Fatal(err)
	}
	if got, g := e.mustGet(t, testBucket, "src"); !bytes.Equal(got, data) || g.Metadata["owner"] != "c" {
		t.Error("self copy")
	}

	// Raw ciphertext and metadata moved by someone else do not decrypt.
	o := e.store.get(testBucket, "dst")
	e.store.put(testBucket, "moved", o.data, o.header.Clone())
	if _, _, err := e.get(t, "moved"); err == nil {
		t.Error("moved ciphertext decrypted")
	}

	// Source conditions.
	_, err = e.copy(t, &s3.CopyObjectInput{Key: aws.String("dst2"), CopySource: aws.String(testBucket + "/src"), CopySourceIfMatch: aws.String(`"nope"`)})
	if code, status := apiError(t, err); code != "PreconditionFailed" || status != 412 {
		t.Errorf("if-match: %s %d", code, status)
	}
	_, err = e.copy(t, &s3.CopyObjectInput{Key: aws.String("dst2"), CopySource: aws.String(testBucket + "/src"), CopySourceIfNoneMatch: aws.String(e.store.get(testBucket, "src").etag)})
	if code, status := apiError(t, err); code != "PreconditionFailed" || status != 412 {
		t.Errorf("if-none-match: %s %d", code, status)
	}
	// A source without s3seal metadata, a missing source, reserved metadata.
	e.store.put(testBucket, "plain", []byte("plaintext"), nil)
	_, err = e.copy(t, &s3.CopyObjectInput{Key: aws.String("dst3"), CopySource: aws.String(testBucket + "/plain")})
	if code, status := apiError(t, err); code != "AccessDenied" || status != 403 {
		t.Errorf("plain source: %s %d", code, status)
	}
	_, err = e.copy(t, &s3.CopyObjectInput{Key: aws.String("dst3"), CopySource: aws.String(testBucket + "/missing")})
	if code, status := apiError(t, err); code != "NoSuchKey" || status != 404 {
		t.Errorf("missing source: %s %d", code, status)
	}
	_, err = e.copy(t, &s3.CopyObjectInput{Key: aws.String("dst3"), CopySource: aws.String("nobucket/missing")})
	if code, status := apiError(t, err); code != "NoSuchBucket" || status != 404 {
		t.Errorf("source in a missing bucket: %s %d", code, status)
	}
	_, err = e.copy(t, &s3.CopyObjectInput{Key: aws.String("dst3"), CopySource: aws.String(testBucket + "/src"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"s3seal-c": "x"}})
	if code, _ := apiError(t, err); code != "InvalidArgument" {
		t.Errorf("reserved metadata: %s", code)
	}
	if e.store.get(testBucket, "dst2") != nil || e.store.get(testBucket, "dst3") != nil {
		t.Error("refused copy stored something")
	}
}

func TestCopyObjectToAnotherCMK(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(70000, 12)
	e.put(t, "src", data, nil)
	k2, err := e.keyring.CreateKey("second")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := New(Config{Upstream: e.proxy.store.Endpoint(), UpstreamAccessKey: upstreamAK, UpstreamSecretKey: upstreamSecret,
		Auth: e.proxy.auth, Keys: kms.ObjectKeys{Keys: e.keyring, KeyID: k2.ID, Allowed: kms.NewAllowList(e.keyring, k2.ID, e.keyID)}, Logger: e.proxy.log})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(p2)
	defer srv2.Close()
	c2 := newClient(t, srv2.URL, clientSecret)
	out, err := c2.CopyObject(bg(), &s3.CopyObjectInput{Bucket: aws.String(testBucket), Key: aws.String("dst"), CopySource: aws.String(testBucket + "/src")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.SSEKMSKeyId) != k2.ID {
		t.Errorf("copy key id %q, want %q", aws.ToString(out.SSEKMSKeyId), k2.ID)
	}
	meta, err := parseMetadata(e.store.get(testBucket, "dst").header)
	if err != nil || meta.KeyID != k2.ID {
		t.Fatalf("stored metadata %v %v", meta.KeyID, err)
	}
	// The proxy configured with both CMKs reads it; the one that knows only
	// the first refuses, without asking the key service.
	e2 := &env{client: c2}
	if got, _, err := e2.get(t, "dst"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("copy under the second CMK: %v", err)
	}
	_, _, err = e.get(t, "dst")
	if code, status := apiError(t, err); code != "AccessDenied" || status != http.StatusForbidden {
		t.Errorf("read under a CMK outside the allow-list: %v", err)
	}
}

func TestCopyMultipartSource(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(3*64*kib+500, 13)
	e.multipartPut(t, "mp", splitParts(data, 64*kib, 128*kib, 500))
	out, err := e.copy(t, &s3.CopyObjectInput{Key: aws.String("mp-copy"), CopySource: aws.String(testBucket + "/mp")})
	if err != nil {
		t.Fatal(err)
	}
	if etag := aws.ToString(out.CopyObjectResult.ETag); !strings.HasSuffix(etag, `-3"`) {
		t.Errorf("copy ETag %s, want a 3-part ETag", etag)
	}
	got, g := e.mustGet(t, testBucket, "mp-copy")
	if !bytes.Equal(got, data) || g.Metadata["owner"] != "mp" {
		t.Fatalf("multipart copy: metadata %v", g.Metadata)
	}
	e.proxy.layouts = newLayoutCache()
	if got, err := e.rangeGet(t, "mp-copy", 64*kib-10, 64*kib+20); err != nil || !bytes.Equal(got, data[64*kib-10:128*kib+10]) {
		t.Fatalf("range of the copy: %v", err)
	}
	list, _ := e.client.ListObjectsV2(bg(), &s3.ListObjectsV2Input{Bucket: aws.String(testBucket)})
	for _, row := range list.Contents {
		if aws.ToInt64(row.Size) != int64(len(data)) {
			t.Errorf("listed size of %s: %d", aws.ToString(row.Key), aws.ToInt64(row.Size))
		}
	}
	if e.store.uploadCount() != 0 {
		t.Error("upload left behind")
	}
}

func TestUploadPartCopy(t *testing.T) {
	e := newEnv(t)
	a := randomBytes(200000, 14)
	e.put(t, "a", a, nil)
	b := randomBytes(3*64*kib+77, 15)
	e.multipartPut(t, "b", splitParts(b, 64*kib, 128*kib, 77))
	e.proxy.layouts = newLayoutCache()

	id := create(t, e.client, "dst", nil)
	var etags []string
	for i, src := range []struct {
		key, rng string
	}{
		{"a", "bytes=0-131071"},     // a ranged copy of a single-part object
		{"b", "bytes=60000-191071"}, // across parts of a multipart object
		{"b", ""},                   // the whole of it
	} {
		in := &s3.UploadPartCopyInput{Bucket: aws.String(testBucket), Key: aws.String("dst"), UploadId: aws.String(id),
			PartNumber: aws.Int32(int32(i + 1)), CopySource: aws.String(testBucket + "/" + src.key)}
		if src.rng != "" {
			in.CopySourceRange = aws.String(src.rng)
		}
		out, err := e.client.UploadPartCopy(bg(), in)
		if err != nil {
			t.Fatalf("UploadPartCopy %d: %v", i+1, err)
		}
		etags = append(etags, aws.ToString(out.CopyPartResult.ETag))
	}
	if _, err := complete(e.client, "dst", id, etags); err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte(nil), a[:131072]...), b[60000:191072]...), b...)
	if got, _ := e.mustGet(t, testBucket, "dst"); !bytes.Equal(got, want) {
		t.Fatal("UploadPartCopy result differs")
	}

	// Bad ranges and sources.
	id = create(t, e.client, "dst2", nil)
	for _, rng := range []string{"bytes=0-200000", "bytes=5-", "lines=1-2"} {
		_, err := e.client.UploadPartCopy(bg(), &s3.UploadPartCopyInput{Bucket: aws.String(testBucket), Key: aws.String("dst2"), UploadId: aws.String(id),
			PartNumber: aws.Int32(1), CopySource: aws.String(testBucket + "/a"), CopySourceRange: aws.String(rng)})
		if _, status := apiError(t, err); status != 400 {
			t.Errorf("range %s: %d", rng, status)
		}
	}
	e.store.put(testBucket, "plain", []byte("plaintext"), nil)
	_, err := e.client.UploadPartCopy(bg(), &s3.UploadPartCopyInput{Bucket: aws.String(testBucket), Key: aws.String("dst2"), UploadId: aws.String(id),
		PartNumber: aws.Int32(1), CopySource: aws.String(testBucket + "/plain")})
	if code, _ := apiError(t, err); code != "AccessDenied" {
		t.Errorf("plain source: %s", code)
	}
	// A tampered source fails; nothing is stored as the part.
	o := e.store.get(testBucket, "a")
	o.data[envelope.HeaderSize+10] ^= 1
	_, err = e.client.UploadPartCopy(bg(), &s3.UploadPartCopyInput{Bucket: aws.String(testBucket), Key: aws.String("dst2"), UploadId: aws.String(id),
		PartNumber: aws.Int32(1), CopySource: aws.String(testBucket + "/a")})
	if code, _ := apiError(t, err); code != codeStoredObjectCorrupt {
		t.Errorf("tampered source: %s", code)
	}
	lp, err := e.client.ListParts(bg(), &s3.ListPartsInput{Bucket: aws.String(testBucket), Key: aws.String("dst2"), UploadId: aws.String(id)})
	if err != nil || len(lp.Parts) != 0 {
		t.Errorf("parts after failed copies: %v %+v", err, lp.Parts)
	}
}

// TestUploadPartCopyStoreAnswersEarly: a store that refuses a part before
// reading it (here, NoSuchUpload), then drains the rest of the body slowly,
// gets its answer relayed. store.Client.Put stops the transport reading the
// copy's source (which UploadPartCopy frees, data key included, once Put
// returns), which makes the transport close the connection the answer came
// on; so Put reads such an answer before it returns (TestPut checks that no
// read reaches the source after Put).
func TestUploadPartCopyStoreAnswersEarly(t *testing.T) {
	var early atomic.Bool
	e := newEnv(t, func(c *Config) {
		next := httputil.NewSingleHostReverseProxy(c.Upstream)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !early.Load() || r.Method != http.MethodPut || r.URL.Query().Get("uploadId") == "" {
				next.ServeHTTP(w, r)
				return
			}
			http.NewResponseController(w).EnableFullDuplex()
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>`)
			http.NewResponseController(w).Flush()
			for buf := make([]byte, 64<<10); ; time.Sleep(time.Millisecond) {
				if _, err := r.Body.Read(buf); err != nil {
					return
				}
			}
		}))
		t.Cleanup(srv.Close)
		c.Upstream, _ = url.Parse(srv.URL)
	})
	src := randomBytes(8<<20, 16)
	e.multipartPut(t, "src", splitParts(src, 1<<20, 1<<20, 1<<20, 1<<20, 1<<20, 1<<20, 1<<20, 1<<20))
	early.Store(true)
	for i := range 3 {
		id := create(t, e.client, "dst", nil)
		_, err := e.client.UploadPartCopy(bg(), &s3.UploadPartCopyInput{Bucket: aws.String(testBucket), Key: aws.String("dst"),
			UploadId: aws.String(id), PartNumber: aws.Int32(1), CopySource: aws.String(testBucket + "/src")})
		if code, status := apiError(t, err); code != "NoSuchUpload" || status != http.StatusNotFound {
			t.Fatalf("copy %d: %s %d, want the store's 404 NoSuchUpload", i, code, status)
		}
	}
}

// TestPutStoreErrorTooLong: a store's error answer to a PUT longer than
// any S3 error document is refused (502 BadStoreAnswer), never relayed cut
// short to the limit store.Client.Put reads it to.
func TestPutStoreErrorTooLong(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		next := httputil.NewSingleHostReverseProxy(c.Upstream)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPut {
				next.ServeHTTP(w, r)
				return
			}
			io.Copy(io.Discard, r.Body) // else closing with it unread resets the answer
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "<Error><Code>AccessDenied</Code><Message>"+strings.Repeat("x", 200<<10)+"</Message></Error>")
		}))
		t.Cleanup(srv.Close)
		c.Upstream, _ = url.Parse(srv.URL)
	})
	_, err := e.client.PutObject(bg(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Body: bytes.NewReader(randomBytes(1000, 17))})
	if code, status := apiError(t, err); code != "BadStoreAnswer" || status != http.StatusBadGateway {
		t.Errorf("answered %s %d, want 502 BadStoreAnswer", code, status)
	}
}

// A copy of an object onto itself that changes nothing is S3's 400
// InvalidRequest, refused before any KMS call or store write; one that
// changes metadata, storage class or encryption (as rewrap's do) is not.
func TestCopyOntoItself(t *testing.T) {
	e := newEnv(t)
	e.put(t, "self", []byte("self content"), map[string]string{"a": "1"})
	tests := []struct {
		name   string
		header http.Header
		status int
	}{
		{"nothing changed", http.Header{}, http.StatusBadRequest},
		{"metadata directive COPY", http.Header{"X-Amz-Metadata-Directive": {"COPY"}}, http.StatusBadRequest},
		{"metadata replaced", http.Header{"X-Amz-Metadata-Directive": {"REPLACE"}, "X-Amz-Meta-A": {"2"}}, http.StatusOK},
		{"storage class", http.Header{"X-Amz-Storage-Class": {"STANDARD"}}, http.StatusOK},
		{"encryption", http.Header{"X-Amz-Server-Side-Encryption": {"aws:kms"}}, http.StatusOK},
	}
	for _, tt := range tests {
		tt.header.Set("X-Amz-Copy-Source", testBucket+"/self")
		before := storedPuts(e.store)
		status, body, _ := e.sendResp(t, e.signedRequest(t, http.MethodPut, "/"+testBucket+"/self", nil, 0, tt.header))
		if status != tt.status || (status == http.StatusBadRequest && !strings.Contains(body, "<Code>InvalidRequest</Code>")) {
			t.Errorf("%s: %d %s", tt.name, status, body)
		}
		if status == http.StatusBadRequest && storedPuts(e.store) != before {
			t.Errorf("%s: refused, yet the store wrote", tt.name)
		}
	}
	if got, _, err := e.get(t, "self"); err != nil || string(got) != "self content" {
		t.Errorf("the object after the copies: %q, %v", got, err)
	}
}
