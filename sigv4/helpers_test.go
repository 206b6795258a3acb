package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/httpbinding"
)

const (
	testAK     = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
)

func testVerifier() *Verifier {
	return &Verifier{Credentials: StaticCredentials{testAK: testSecret}, Region: testRegion}
}

// result is what the test server saw for one request.
type result struct {
	status   int
	code     string
	body     []byte
	req      *Request
	checksum string
}

// roundTrip sends req through a real net/http server whose handler runs
// v.Verify and reads the body like the proxy would, so that requests are
// parsed by net/http exactly as in production.
func roundTrip(t *testing.T, v *Verifier, req *http.Request) result {
	t.Helper()
	var res result
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sr, err := v.Verify(r)
		if err == nil {
			res.req = sr
			res.body, err = io.ReadAll(sr.Body)
			res.checksum = sr.ChecksumValue()
			sr.Body.Close()
		}
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				t.Errorf("error %v (%T) is not an *Error", err, err)
				w.WriteHeader(599)
				return
			}
			res.code = e.Code
			w.WriteHeader(e.Status)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	su, _ := url.Parse(srv.URL)
	// Point the request at the test server but keep the Host the client
	// signed (virtual-host style names, custom endpoints).
	if req.Host == "" {
		req.Host = req.URL.Host
	}
	req.URL.Scheme, req.URL.Host = su.Scheme, su.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	res.status = resp.StatusCode
	return res
}

// objectURL builds an S3 URL the way the AWS SDK serializes keys: each
// segment percent-encoded (smithy's httpbinding.EscapePath), '/' kept.
func objectURL(host, bucketPath, key, rawQuery string) *url.URL {
	return &url.URL{
		Scheme:   "http",
		Host:     host,
		Path:     bucketPath + key,
		RawPath:  bucketPath + httpbinding.EscapePath(key, false),
		RawQuery: rawQuery,
	}
}

func payload(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func b64Sum(h hash.Hash, b []byte) string {
	h.Write(b)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func crc32b64(b []byte) string { return b64Sum(crc32.NewIEEE(), b) }

// sha256Hasher adapts crypto/sha256 to minio-go's md5simd.Hasher, which its
// streaming signer takes for chunk hashes.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// unsignedChunked frames data as STREAMING-UNSIGNED-PAYLOAD-TRAILER the way
// the AWS SDKs do (aws-sdk-go-v2 has no exported encoder): hex-size CRLF
// data CRLF ... "0" CRLF, trailer lines, CRLF. Built from the AWS spec.
func unsignedChunked(data []byte, chunk int, trailers ...string) []byte {
	var b bytes.Buffer
	for len(data) > 0 {
		n := min(chunk, len(data))
		b.WriteString(strconv.FormatInt(int64(n), 16) + "\r\n")
		b.Write(data[:n])
		b.WriteString("\r\n")
		data = data[n:]
	}
	b.WriteString("0\r\n")
	for _, t := range trailers {
		b.WriteString(t + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func mustNewRequest(t *testing.T, method string, u *url.URL, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL = u
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	return req
}

var _ = time.Now

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
