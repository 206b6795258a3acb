package proxy

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
	"github.com/s3seal/s3seal/internal/store"
)

// How a test client frames and protects a request body.
type bodyMode int

const (
	modeUnsigned bodyMode = iota // UNSIGNED-PAYLOAD with Content-MD5
	modeSigned                   // the body's SHA-256 in x-amz-content-sha256
	modeChunked                  // aws-chunked with a signature per chunk (minio-go's signer)
	modeTrailer                  // aws-chunked, unsigned, with a CRC32 trailer
)

var modeNames = [...]string{"unsigned+md5", "signed", "chunk-signed", "crc32-trailer"}

// wireRequest builds a signed request whose body is protected as mode says;
// with tamper, one byte of the payload is changed after signing, so the body
// must fail verification (an empty body is then signed as if it held "x").
func (e *env) wireRequest(t testing.TB, method, path string, body []byte, mode bodyMode, tamper bool, header http.Header) *http.Request {
	t.Helper()
	sent := bytes.Clone(body)
	signedBody := body
	if tamper && len(sent) > 0 {
		sent[len(sent)/2] ^= 0x40
	} else if tamper {
		signedBody = []byte("x")
	}
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	switch mode {
	case modeUnsigned:
		sum := md5Sum(signedBody)
		h.Set("Content-Md5", sum)
		return e.signedRequest(t, method, path, bytes.NewReader(sent), int64(len(sent)), h)
	case modeSigned:
		s := sha256.Sum256(signedBody)
		h.Set("X-Amz-Content-Sha256", hex.EncodeToString(s[:]))
		return e.signedRequest(t, method, path, bytes.NewReader(sent), int64(len(sent)), h)
	case modeTrailer:
		enc := awsChunked(sent, 8192, "x-amz-checksum-crc32:"+crc32Sum(signedBody))
		h.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		h.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		h.Set("Content-Encoding", "aws-chunked")
		h.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(sent)))
		return e.signedRequest(t, method, path, bytes.NewReader(enc), int64(len(enc)), h)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(signedBody))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req = signer.StreamingSignV4(req, clientAK, clientSecret, "", "us-east-1", int64(len(signedBody)), time.Now().UTC(), sha256Hasher{sha256.New()})
	enc, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if tamper { // signedBody has a byte at least
		i := bytes.Index(enc, []byte("\r\n")) + 2 + len(signedBody)/2 // a byte of the first chunk's data
		enc[min(i, len(enc)-1)] ^= 0x40
	}
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(enc)), int64(len(enc))
	return req
}

// sha256Hasher adapts crypto/sha256 to minio-go's md5simd.Hasher.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

func md5Sum(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func crc32Sum(b []byte) string {
	var out [4]byte
	c := crc32.ChecksumIEEE(b)
	out[0], out[1], out[2], out[3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	return base64.StdEncoding.EncodeToString(out[:])
}

// awsChunked frames data as STREAMING-UNSIGNED-PAYLOAD-TRAILER does.
func awsChunked(data []byte, chunk int, trailer string) []byte {
	var b bytes.Buffer
	for len(data) > 0 {
		n := min(chunk, len(data))
		fmt.Fprintf(&b, "%x\r\n", n)
		b.Write(data[:n])
		b.WriteString("\r\n")
		data = data[n:]
	}
	fmt.Fprintf(&b, "0\r\n%s\r\n\r\n", trailer)
	return b.Bytes()
}

// send sends req and returns the status, the S3 error code if any, and the
// body, once the proxy has finished the request.
func (e *env) send(t testing.TB, req *http.Request) (int, string, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.drain(t, 1)
	return resp.StatusCode, store.ErrorCode(body), body
}

// writesSince returns the requests the store received since the n-th that
// would change something (anything but GET and HEAD), and whether any of
// them arrived complete.
func (s *fakeStore) writesSince(n int) (writes []recorded, complete bool) {
	s.quiesce()
	for _, r := range s.recorded()[n:] {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writes = append(writes, r)
			complete = complete || r.Complete
		}
	}
	return writes, complete
}

const taggingDoc = `<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>`

// TestVerifyThenForward: a request whose body fails any check it carries
// never makes the store act. Documents are verified whole before anything
// is sent; encrypted bodies reach the store only as a request cut short.
func TestVerifyThenForward(t *testing.T) {
	e := newEnv(t)
	e.put(t, "obj", []byte("an object"), nil)
	uploadID := e.createUpload(t, "mp")
	policy := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}]}`)
	del := []byte(`<Delete><Object><Key>obj</Key></Object></Delete>`)
	complete := []byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>`)
	copyHeader := http.Header{"X-Amz-Copy-Source": {testBucket + "/obj"}}
	tests := []struct {
		name, method, path string
		body               []byte
		header             http.Header
		encrypted          bool // the store may see the request begin, never end
	}{
		{"PutBucketPolicy", "PUT", "/bkt?policy", policy, nil, false},
		{"PutObjectTagging", "PUT", "/bkt/obj?tagging", []byte(taggingDoc), nil, false},
		{"DeleteObjects", "POST", "/bkt?delete", del, nil, false},
		{"CompleteMultipartUpload", "POST", "/bkt/mp?uploadId=" + uploadID, complete, nil, false},
		{"CopyObject", "PUT", "/bkt/copy", nil, copyHeader, false},
		{"CopyObject with a body", "PUT", "/bkt/copy", []byte("junk"), copyHeader, false},
		{"UploadPartCopy", "PUT", "/bkt/mp?partNumber=2&uploadId=" + uploadID, nil, copyHeader, false},
		{"DeleteObject", "DELETE", "/bkt/obj", nil, nil, false},
		{"DeleteBucket", "DELETE", "/bkt", nil, nil, false},
		{"PutObject", "PUT", "/bkt/new", randomBytes(200000, 3), nil, true},
		{"UploadPart", "PUT", "/bkt/mp?partNumber=1&uploadId=" + uploadID, randomBytes(100000, 4), nil, true},
	}
	for _, tt := range tests {
		for mode := range modeNames {
			t.Run(tt.name+"/"+modeNames[mode], func(t *testing.T) {
				before := len(e.store.recorded())
				status, code, body := e.send(t, e.wireRequest(t, tt.method, tt.path, tt.body, bodyMode(mode), true, tt.header))
				// A Complete carrying a checksum is refused before its body
				// is read: on S3 it is the object's (checkObjectChecksumHeader).
				refusedFirst := tt.name == "CompleteMultipartUpload" && status == http.StatusNotImplemented
				if status != http.StatusBadRequest && status != http.StatusForbidden && !refusedFirst {
					t.Errorf("tampered body: %d %s", status, body)
				}
				writes, completed := e.store.writesSince(before)
				switch {
				case completed:
					t.Errorf("a tampered body (%s) made the store complete %d write(s)", code, len(writes))
				case !tt.encrypted && len(writes) > 0:
					t.Errorf("a tampered %s body (%s) reached the store", tt.name, code)
				}
			})
		}
	}
	if got, _, err := e.get(t, "obj"); err != nil || string(got) != "an object" {
		t.Errorf("the object changed: %q %v", got, err)
	}
}

// TestVerifiedDocumentsForwarded: the same requests, intact, are forwarded
// with their bodies and every framing removed.
func TestVerifiedDocumentsForwarded(t *testing.T) {
	e := newEnv(t)
	e.put(t, "obj", []byte("an object"), nil)
	for mode := range modeNames {
		before := len(e.store.recorded())
		status, _, body := e.send(t, e.wireRequest(t, "PUT", "/bkt/obj?tagging", []byte(taggingDoc), bodyMode(mode), false, nil))
		writes, _ := e.store.writesSince(before)
		if status != http.StatusOK || len(writes) != 1 || string(writes[0].Body) != taggingDoc || !writes[0].Complete {
			t.Errorf("%s: %d %s; store saw %d writes", modeNames[mode], status, body, len(writes))
		}
	}
}

// TestRefusedRequests: what s3seal does not serve, or serves only with
// checked content, is refused with a clear S3 error before the store is
// asked anything.
func TestRefusedRequests(t *testing.T) {
	e := newEnv(t)
	e.put(t, "obj", []byte("an object"), nil)
	uploadID := e.createUpload(t, "mp")
	ssec := http.Header{"X-Amz-Server-Side-Encryption-Customer-Algorithm": {"AES256"},
		"X-Amz-Server-Side-Encryption-Customer-Key":     {base64.StdEncoding.EncodeToString(make([]byte, 32))},
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5": {md5Sum(make([]byte, 32))}}
	copySSEC := http.Header{"X-Amz-Copy-Source": {"bkt/obj"}, "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key": {"a2V5"}}
	reserved := http.Header{"X-Amz-Meta-S3seal-K": {"planted"}}
	form := http.Header{"Content-Type": {"multipart/form-data; boundary=b"}}
	tests := []struct {
		method, path string
		header       http.Header
		body         string
		status       int
		code         string
	}{
		{"PUT", "/bkt/obj?restore", nil, "plaintext", 501, "NotImplemented"},
		{"GET", "/bkt/obj?restore", nil, "", 501, "NotImplemented"},
		{"PUT", "/bkt/obj?unknown", nil, "plaintext", 501, "NotImplemented"},
		{"GET", "/bkt/obj?torrent", nil, "", 501, "NotImplemented"},
		{"GET", "/bkt/obj?attributes", nil, "", 400, "InvalidArgument"},
		{"POST", "/bkt/obj", nil, "plaintext", 501, "NotImplemented"},
		{"POST", "/bkt?unknown", form, "plaintext", 501, "NotImplemented"},
		{"POST", "/bkt", form, "plaintext", 400, "MalformedPOSTRequest"}, // POST Object: a form, not this
		{"HEAD", "/bkt/obj?tagging", nil, "", 501, ""},
		{"GET", "/bkt?list-type=2&new-param=1", nil, "", 501, "NotImplemented"},
		{"PUT", "/bkt/obj?tagging", nil, "plaintext the store must never see", 400, "MalformedXML"},
		{"PUT", "/bkt/obj?tagging", nil, `<AccessControlPolicy/>`, 400, "MalformedXML"},
		{"PUT", "/bkt/obj?tagging", nil, taggingDoc + taggingDoc, 400, "MalformedXML"},
		{"PUT", "/bkt/obj?acl", nil, "plaintext", 400, "MalformedXML"},
		{"POST", "/bkt/obj?restore", nil, "plaintext", 400, "MalformedXML"},
		{"PUT", "/bkt?policy", nil, "plaintext", 400, "MalformedPolicy"},
		{"PUT", "/bkt?policy", nil, `{"a":"` + strings.Repeat("x", 21<<10) + `"}`, 400, "EntityTooLarge"},
		{"POST", "/bkt?delete", nil, "<Delete>" + strings.Repeat("<Object><Key>k</Key></Object>", 80000) + "</Delete>", 400, "EntityTooLarge"},
		{"PUT", "/bkt/new", ssec, "plaintext", 400, "InvalidRequest"},
		{"GET", "/bkt/obj", ssec, "", 400, "InvalidRequest"},
		{"HEAD", "/bkt/obj", ssec, "", 400, ""},
		{"POST", "/bkt/new?uploads", ssec, "", 400, "InvalidRequest"},
		{"PUT", "/bkt/mp?partNumber=1&uploadId=" + uploadID, ssec, "plaintext", 400, "InvalidRequest"},
		{"PUT", "/bkt/copy", copySSEC, "", 400, "InvalidRequest"},
		{"PUT", "/bkt/obj?tagging", ssec, taggingDoc, 400, "InvalidRequest"},
		{"PUT", "/bkt/new", reserved, "plaintext", 400, "InvalidArgument"},
		{"PUT", "/bkt/obj?tagging", reserved, taggingDoc, 400, "InvalidArgument"},
		{"PUT", "/bkt2", reserved, "", 400, "InvalidArgument"},
		{"PUT", "/bkt/copy", http.Header{"X-Amz-Copy-Source": {"bkt/obj"}, "X-Amz-Metadata-Directive": {"REPLACE"}, "X-Amz-Meta-S3seal-C": {"x"}}, "", 400, "InvalidArgument"},
		{"PUT", "/bkt/obj?tagging", http.Header{"X-Amz-Copy-Source": {"bkt/obj"}}, taggingDoc, 501, "NotImplemented"},
		{"DELETE", "/bkt/obj", nil, "body", 400, "UnexpectedContent"},
		{"PUT", "/bkt/a/../obj", nil, "plaintext", 400, "InvalidArgument"},
		{"GET", "/bkt/./obj", nil, "", 400, "InvalidArgument"},
		{"GET", "/../bkt/obj", nil, "", 400, "InvalidArgument"},
		{"PUT", "/bkt/copy", http.Header{"X-Amz-Copy-Source": {"bkt/x/../obj"}}, "", 400, "InvalidArgument"},
	}
	for _, tt := range tests {
		before := len(e.store.recorded())
		status, code, body := e.send(t, e.wireRequest(t, tt.method, tt.path, []byte(tt.body), modeSigned, false, tt.header))
		if status != tt.status || code != tt.code {
			t.Errorf("%s %s %v: %d %q, want %d %q\n%s", tt.method, tt.path, tt.header, status, code, tt.status, tt.code, body)
		}
		e.store.quiesce()
		if n := len(e.store.recorded()) - before; n > 0 {
			t.Errorf("%s %s: the store was asked %d thing(s)", tt.method, tt.path, n)
		}
	}
	if got, _, err := e.get(t, "obj"); err != nil || string(got) != "an object" {
		t.Errorf("the object changed: %q %v", got, err)
	}
}

// createUpload starts a multipart upload through the proxy.
func (e *env) createUpload(t testing.TB, key string) string {
	t.Helper()
	id, err := e.tryCreateUpload(t, key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// tryCreateUpload is createUpload where failing is an allowed outcome (a
// store that lies may make it fail).
func (e *env) tryCreateUpload(t testing.TB, key string) (string, error) {
	t.Helper()
	status, _, body := e.send(t, e.wireRequest(t, "POST", "/"+testBucket+"/"+key+"?uploads", nil, modeSigned, false, nil))
	_, rest, _ := strings.Cut(string(body), "<UploadId>")
	id, _, _ := strings.Cut(rest, "</UploadId>")
	if status != http.StatusOK || id == "" {
		return "", fmt.Errorf("CreateMultipartUpload: %d %s", status, body)
	}
	return id, nil
}

// Every error document names the request as its headers do: s3seal's own
// errors and the store's relayed ones (whose ids, the store's, are
// replaced), with the store's other elements kept.
func TestErrorDocumentsNameTheRequest(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path, code string
	}{
		{"the store's NoSuchKey", http.MethodGet, "/" + testBucket + "/missing", "NoSuchKey"},
		{"the store's NoSuchBucket", http.MethodGet, "/nobucket?list-type=2", "NoSuchBucket"},
		{"s3seal's NotImplemented", http.MethodGet, "/" + testBucket + "/x?torrent", "NotImplemented"},
	}
	for _, tt := range tests {
		status, body, h := e.sendResp(t, e.signedRequest(t, tt.method, tt.path, nil, 0, nil))
		var doc struct {
			Code, RequestId, HostId string
		}
		if err := xml.Unmarshal([]byte(body), &doc); err != nil || status < 400 || doc.Code != tt.code {
			t.Errorf("%s: %d %s (%v)", tt.name, status, body, err)
			continue
		}
		if doc.RequestId == "" || doc.RequestId != h.Get("X-Amz-Request-Id") || doc.HostId == "" || doc.HostId != h.Get("X-Amz-Id-2") {
			t.Errorf("%s: document ids %q %q, headers %q %q", tt.name, doc.RequestId, doc.HostId, h.Get("X-Amz-Request-Id"), h.Get("X-Amz-Id-2"))
		}
	}
}
