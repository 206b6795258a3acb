package proxy

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/envelope/kms"
)

// sseEnv is a proxy whose allow-list holds its default CMK and a second one
// under an alias; a third CMK exists in the keyring but is not allowed.
func sseEnv(t *testing.T) (e *env, second, outside string) {
	t.Helper()
	e = newEnv(t)
	k2, err := e.keyring.CreateKey("second")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.keyring.CreateAlias("alias/second", k2.ID); err != nil {
		t.Fatal(err)
	}
	k3, err := e.keyring.CreateKey("outside")
	if err != nil {
		t.Fatal(err)
	}
	e.proxy.keys.Allowed = kms.NewAllowList(e.keyring, e.keyID, "alias/second")
	return e, k2.ID, k3.ID
}

func TestSSEKMSHeaders(t *testing.T) {
	e, second, outside := sseEnv(t)
	tests := []struct {
		name    string
		header  map[string]string
		wantKey string // "" means the request is refused
		code    string
		status  int
	}{
		{name: "none", wantKey: e.keyID},
		{name: "aws:kms alone", header: map[string]string{sseHeader: "aws:kms"}, wantKey: e.keyID},
		{name: "SSE-S3", header: map[string]string{sseHeader: "AES256"}, wantKey: e.keyID},
		{name: "allowed alias", header: map[string]string{sseHeader: "aws:kms", sseKeyHeader: "alias/second"}, wantKey: second},
		{name: "allowed id", header: map[string]string{sseHeader: "aws:kms", sseKeyHeader: second}, wantKey: second},
		{name: "bucket key", header: map[string]string{sseHeader: "aws:kms", sseBucketKey: "true"}, wantKey: e.keyID},
		{name: "key outside the allow-list", header: map[string]string{sseHeader: "aws:kms", sseKeyHeader: outside}, code: "AccessDenied", status: 403},
		{name: "no such key", header: map[string]string{sseHeader: "aws:kms", sseKeyHeader: "alias/nope"}, code: "AccessDenied", status: 403},
		{name: "key id without aws:kms", header: map[string]string{sseKeyHeader: second}, code: "InvalidArgument", status: 400},
		{name: "key id with SSE-S3", header: map[string]string{sseHeader: "AES256", sseKeyHeader: second}, code: "InvalidArgument", status: 400},
		{name: "unknown algorithm", header: map[string]string{sseHeader: "aws:xyz"}, code: "InvalidArgument", status: 400},
		{name: "bad bucket key", header: map[string]string{sseHeader: "aws:kms", sseBucketKey: "maybe"}, code: "InvalidArgument", status: 400},
		{name: "dual-layer", header: map[string]string{sseHeader: "aws:kms:dsse"}, code: "NotImplemented", status: 501},
		{name: "context", header: map[string]string{sseHeader: "aws:kms", sseContextHeader: "eyJhIjoiYiJ9"}, wantKey: e.keyID},
		{name: "context without aws:kms", header: map[string]string{sseContextHeader: "eyJhIjoiYiJ9"}, code: "InvalidArgument", status: 400},
		{name: "context not base64", header: map[string]string{sseHeader: "aws:kms", sseContextHeader: "{}"}, code: "InvalidArgument", status: 400},
		{name: "context with a reserved key", header: map[string]string{sseHeader: "aws:kms", sseContextHeader: envelope.EncodeContext(map[string]string{"s3seal:key": "x"})}, code: "InvalidArgument", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := "sse-" + strings.NewReplacer(" ", "-", ":", "-").Replace(tc.name)
			for _, op := range []string{"put", "create", "copy"} {
				h := http.Header{}
				for k, v := range tc.header {
					h.Set(k, v)
				}
				status, body, keyID := e.sseWrite(t, op, key+"-"+op, h)
				if tc.wantKey == "" {
					if status != tc.status || !strings.Contains(body, "<Code>"+tc.code+"</Code>") {
						t.Errorf("%s: %d %s, want %d %s", op, status, body, tc.status, tc.code)
					}
					if e.store.get(testBucket, key+"-"+op) != nil {
						t.Errorf("%s: refused write stored an object", op)
					}
					continue
				}
				if status != 200 || keyID != tc.wantKey {
					t.Errorf("%s: %d %s, key %q, want %q", op, status, body, keyID, tc.wantKey)
				}
			}
		})
	}
}

// sseWrite sends a PutObject, CreateMultipartUpload or CopyObject (of
// "sse-src") with header, and returns the answer and the CMK the stored
// object or upload names.
func (e *env) sseWrite(t *testing.T, op, key string, header http.Header) (int, string, string) {
	t.Helper()
	if e.store.get(testBucket, "sse-src") == nil {
		e.put(t, "sse-src", []byte("source"), nil)
	}
	var req *http.Request
	switch op {
	case "put":
		req = e.signedRequest(t, http.MethodPut, "/"+testBucket+"/"+key, bytes.NewReader([]byte("data")), 4, header)
	case "create":
		req = e.signedRequest(t, http.MethodPost, "/"+testBucket+"/"+key+"?uploads", nil, 0, header)
	case "copy":
		header.Set("X-Amz-Copy-Source", testBucket+"/sse-src")
		req = e.signedRequest(t, http.MethodPut, "/"+testBucket+"/"+key, nil, 0, header)
	}
	status, body, resp := e.sendResp(t, req)
	return status, body, resp.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
}

func (e *env) sendResp(t *testing.T, req *http.Request) (int, string, http.Header) {
	t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), resp.Header
}

// The stored object names the chosen CMK and reads back through a proxy
// that allows it; SSE headers on a read are refused as S3 refuses them.
func TestSSEKMSChosenKeyStoredAndRead(t *testing.T) {
	e, second, _ := sseEnv(t)
	_, err := e.client.PutObject(bg(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"),
		Body: bytes.NewReader([]byte("chosen")), ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String("alias/second")})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := parseMetadata(e.store.get(testBucket, "k").header)
	if err != nil || meta.KeyID != second {
		t.Fatalf("stored CMK %q (%v), want %q", meta.KeyID, err, second)
	}
	got, out, err := e.get(t, "k")
	if err != nil || string(got) != "chosen" || aws.ToString(out.SSEKMSKeyId) != second {
		t.Fatalf("read back: %q %v", got, err)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req := e.signedRequest(t, method, "/"+testBucket+"/k", nil, 0, http.Header{"X-Amz-Server-Side-Encryption": {"aws:kms"}})
		if status, _, _ := e.sendResp(t, req); status != http.StatusBadRequest {
			t.Errorf("%s with an SSE header: %d", method, status)
		}
	}
	q := url.Values{"uploadId": {"x"}, "partNumber": {"1"}}
	req := e.signedRequest(t, http.MethodPut, "/"+testBucket+"/k?"+q.Encode(), bytes.NewReader([]byte("x")), 1,
		http.Header{"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": {second}})
	if status, body, _ := e.sendResp(t, req); status != http.StatusBadRequest || !strings.Contains(body, "InvalidArgument") {
		t.Errorf("UploadPart with an SSE header: %d %s", status, body)
	}
}

// CompleteMultipartUpload takes the upload's own SSE headers (minio-go
// sends them to stores other than AWS), and refuses another CMK's.
func TestCompleteWithSSEHeaders(t *testing.T) {
	e, second, _ := sseEnv(t)
	for _, tc := range []struct {
		name, keyID string
		status      int
	}{
		{"the upload's CMK by alias", "alias/second", 200},
		{"the upload's CMK by id", second, 200},
		{"another CMK", e.keyID, 400},
	} {
		out, err := e.client.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("mp"),
			ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String("alias/second")})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(out.UploadId)
		etag, err := uploadPart(e.client, "mp", id, 1, []byte("one part"))
		if err != nil {
			t.Fatal(err)
		}
		doc := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>` + etag + `</ETag></Part></CompleteMultipartUpload>`
		h := http.Header{"X-Amz-Server-Side-Encryption": {"aws:kms"}, "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": {tc.keyID}}
		req := e.signedRequest(t, http.MethodPost, "/"+testBucket+"/mp?uploadId="+url.QueryEscape(id), strings.NewReader(doc), int64(len(doc)), h)
		if status, body, _ := e.sendResp(t, req); status != tc.status {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
}

// A client's encryption context is bound into the data key, kept with the
// object (metadata version 2), answered on reads, carried through
// multipart uploads, and not copied to a copy that names none (as on S3).
func TestSSEKMSContext(t *testing.T) {
	e, _, _ := sseEnv(t)
	encCtx := map[string]string{"tenant": "a"}
	_, err := e.client.PutObject(bg(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("c"), Body: bytes.NewReader([]byte("with context")),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSEncryptionContext: aws.String(envelope.EncodeContext(encCtx))})
	if err != nil {
		t.Fatal(err)
	}
	o := e.store.get(testBucket, "c")
	meta, err := parseMetadata(o.header)
	// Version 3: the SDK's checksum is kept too (FORMAT.md §6.2).
	if err != nil || meta.Context["tenant"] != "a" || o.header.Get("X-Amz-Meta-S3seal-V") != "3" {
		t.Fatalf("stored metadata %+v %v", meta, err)
	}
	// The wrapped key opens only under the context too.
	if _, err := e.keyring.Decrypt(bg(), meta.KeyID, meta.WrappedKey, kms.BindingContext(testBucket, "c")); err == nil {
		t.Fatal("the data key unwraps without the client's context")
	}
	if got, _, err := e.get(t, "c"); err != nil || string(got) != "with context" {
		t.Fatalf("read back: %q %v", got, err)
	}
	// A GET answers the context it unwrapped under; a HEAD, which checks
	// nothing, does not repeat the store's claim.
	_, _, get := e.sendResp(t, e.signedRequest(t, http.MethodGet, "/"+testBucket+"/c", nil, 0, nil))
	_, _, head := e.sendResp(t, e.signedRequest(t, http.MethodHead, "/"+testBucket+"/c", nil, 0, nil))
	if get.Get("X-Amz-Server-Side-Encryption-Context") != envelope.EncodeContext(encCtx) || head.Get("X-Amz-Server-Side-Encryption-Context") != "" {
		t.Errorf("GET answers context %q, HEAD %q", get.Get("X-Amz-Server-Side-Encryption-Context"), head.Get("X-Amz-Server-Side-Encryption-Context"))
	}
	if _, err := e.copy(t, &s3.CopyObjectInput{Key: aws.String("c-copy"), CopySource: aws.String(testBucket + "/c")}); err != nil {
		t.Fatal(err)
	}
	if m, _ := parseMetadata(e.store.get(testBucket, "c-copy").header); m.Context != nil {
		t.Errorf("a copy naming no context has %v", m.Context)
	}
	if got, _, err := e.get(t, "c-copy"); err != nil || string(got) != "with context" {
		t.Errorf("the copy: %q %v", got, err)
	}
	// Multipart: the token carries the context to the parts.
	up, err := e.client.CreateMultipartUpload(bg(), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("mpc"),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSEncryptionContext: aws.String(envelope.EncodeContext(encCtx))})
	if err != nil {
		t.Fatal(err)
	}
	etag, err := uploadPart(e.client, "mpc", aws.ToString(up.UploadId), 1, []byte("part"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := complete(e.client, "mpc", aws.ToString(up.UploadId), []string{etag}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := e.get(t, "mpc"); err != nil || string(got) != "part" {
		t.Fatalf("multipart with a context: %q %v", got, err)
	}
}
