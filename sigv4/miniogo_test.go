package sigv4

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

func TestMinioSignV4(t *testing.T) {
	body := payload(5000)
	for _, key := range []string{"a b", "ü/日本", "a+b=c", "~x", "a%2Fb"} {
		req := mustNewRequest(t, http.MethodPut, objectURL("play.example.com:9000", "/bucket/", key, "x=1&y=&x=0"), body)
		req.Header.Set("X-Amz-Content-Sha256", hexSHA256(body))
		req = signer.SignV4(*req, testAK, testSecret, "", testRegion)
		res := roundTrip(t, testVerifier(), req)
		if res.status != 200 || !bytes.Equal(res.body, body) {
			t.Fatalf("%q: status %d code %q", key, res.status, res.code)
		}
	}
}

func TestMinioPreSignV4(t *testing.T) {
	req := mustNewRequest(t, http.MethodGet, objectURL("play.example.com", "/bucket/", "dir/ob j+", "versionId=3"), nil)
	req = signer.PreSignV4(*req, testAK, testSecret, "", testRegion, 120)
	if res := roundTrip(t, testVerifier(), req); res.status != 200 || !res.req.Presigned {
		t.Fatalf("status %d code %q", res.status, res.code)
	}
	req = mustNewRequest(t, http.MethodGet, objectURL("play.example.com", "/bucket/", "obj", ""), nil)
	req = signer.PreSignV4(*req, testAK, testSecret, "", testRegion, 120)
	v := testVerifier()
	v.Now = func() time.Time { return time.Now().Add(121 * time.Second) }
	if res := roundTrip(t, v, req); res.status != 403 || res.code != CodeAccessDenied {
		t.Fatalf("expired: status %d code %q", res.status, res.code)
	}
}

// minioStreaming returns a request signed with minio-go's chunk signer
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or ...-TRAILER when trailer is set)
// and its encoded body, read out so that tests can alter it on the "wire".
func minioStreaming(t *testing.T, body []byte, trailer http.Header) (*http.Request, []byte) {
	t.Helper()
	req := mustNewRequest(t, http.MethodPut, objectURL("s3.example.com", "/bucket/", "stream obj", ""), body)
	req.Trailer = trailer
	req = signer.StreamingSignV4(req, testAK, testSecret, "", testRegion, int64(len(body)), time.Now().UTC(), sha256Hasher{sha256.New()})
	enc, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	// minio-go computes ContentLength 0 for an empty payload (its
	// getStreamLength returns 0 for dataLen 0); withBody fixes that.
	if len(body) > 0 && int64(len(enc)) != req.ContentLength {
		t.Fatalf("encoded %d bytes, ContentLength %d", len(enc), req.ContentLength)
	}
	return req, enc
}

func withBody(req *http.Request, enc []byte) *http.Request {
	r := req.Clone(req.Context())
	r.Body, r.ContentLength = readCloser(enc), int64(len(enc))
	r.TransferEncoding = nil
	return r
}

// chunkOffsets returns the offsets of chunk header lines in a signed stream.
func chunkOffsets(enc []byte) []int {
	var offs []int
	for i := 0; i < len(enc); {
		offs = append(offs, i)
		j := bytes.IndexByte(enc[i:], ';')
		size, err := strconv.ParseInt(string(enc[i:i+j]), 16, 64)
		if err != nil || size == 0 {
			break
		}
		i += bytes.Index(enc[i:], []byte("\r\n")) + 2 + int(size) + 2
	}
	return offs
}

func TestMinioStreaming(t *testing.T) {
	crc := func(b []byte) http.Header { return http.Header{"x-amz-checksum-crc32": {crc32b64(b)}} }
	for _, size := range []int{0, 1, 64 << 10, 200 << 10} {
		body := payload(size)
		for _, tr := range []http.Header{nil, crc(body)} {
			name := strconv.Itoa(size) + "/trailer=" + strconv.FormatBool(tr != nil)
			t.Run(name, func(t *testing.T) {
				req, enc := minioStreaming(t, body, tr)
				res := roundTrip(t, testVerifier(), withBody(req, enc))
				if res.status != 200 || !bytes.Equal(res.body, body) {
					t.Fatalf("status %d code %q", res.status, res.code)
				}
				want := PayloadStreaming
				if tr != nil {
					want = PayloadStreamingSignedTrailer
					if res.checksum != crc32b64(body) {
						t.Fatalf("checksum %q", res.checksum)
					}
				}
				if res.req.Payload != want || res.req.ContentLength != int64(size) {
					t.Fatalf("payload %v length %d", res.req.Payload, res.req.ContentLength)
				}
			})
		}
	}
}

func TestMinioStreamingTampered(t *testing.T) {
	body := payload(200 << 10) // chunks: 64K 64K 64K 8K 0
	flip := func(at func(enc []byte) int) func([]byte) []byte {
		return func(enc []byte) []byte {
			e := bytes.Clone(enc)
			i := at(e)
			if e[i] == 'a' {
				e[i] = 'b'
			} else if e[i] >= '0' && e[i] <= '9' || e[i] >= 'a' && e[i] <= 'f' {
				e[i] = 'a'
			} else {
				e[i] ^= 1
			}
			return e
		}
	}
	sigStart := func(chunk int) func([]byte) int {
		return func(e []byte) int {
			o := chunkOffsets(e)[chunk]
			return o + bytes.Index(e[o:], []byte("=")) + 5
		}
	}
	cases := []struct {
		name    string
		trailer bool
		mutate  func([]byte) []byte
		status  int
		code    string
	}{
		{"chunk data byte", false, flip(func(e []byte) int { return chunkOffsets(e)[1] + 100 }), 403, CodeSignatureDoesNotMatch},
		{"last chunk data byte", false, flip(func(e []byte) int { return chunkOffsets(e)[4] - 3 }), 403, CodeSignatureDoesNotMatch},
		{"chunk signature", false, flip(sigStart(2)), 403, CodeSignatureDoesNotMatch},
		{"final chunk signature", false, flip(sigStart(4)), 403, CodeSignatureDoesNotMatch},
		{"chunk size", false, func(e []byte) []byte {
			e = bytes.Clone(e)
			o := chunkOffsets(e)[3]
			copy(e[o:], "1fff") // 8K chunk announced one byte short
			return e
		}, 403, CodeSignatureDoesNotMatch},
		{"dropped chunk", false, func(e []byte) []byte {
			o := chunkOffsets(e)
			return append(bytes.Clone(e[:o[1]]), e[o[2]:]...)
		}, 403, CodeSignatureDoesNotMatch},
		{"reordered chunks", false, func(e []byte) []byte {
			o := chunkOffsets(e)
			out := bytes.Clone(e[:o[0]])
			out = append(out, e[o[1]:o[2]]...)
			out = append(out, e[o[0]:o[1]]...)
			return append(out, e[o[2]:]...)
		}, 403, CodeSignatureDoesNotMatch},
		{"truncated in chunk", false, func(e []byte) []byte { return e[:chunkOffsets(e)[2]+1000] }, 400, CodeIncompleteBody},
		{"truncated before final chunk", false, func(e []byte) []byte { return e[:chunkOffsets(e)[4]] }, 400, CodeIncompleteBody},
		{"garbage after final chunk", false, func(e []byte) []byte { return append(bytes.Clone(e), "x:y\r\n\r\n"...) }, 400, CodeInvalidRequest},
		{"trailer value", true, func(e []byte) []byte {
			i := bytes.Index(e, []byte("x-amz-checksum-crc32:")) + len("x-amz-checksum-crc32:")
			e = bytes.Clone(e)
			e[i] ^= 1
			return e
		}, 403, CodeSignatureDoesNotMatch},
		{"trailer signature", true, flip(func(e []byte) int {
			return bytes.Index(e, []byte("x-amz-trailer-signature:")) + 30
		}), 403, CodeSignatureDoesNotMatch},
		{"trailer dropped", true, func(e []byte) []byte {
			i := bytes.Index(e, []byte("x-amz-checksum-crc32:"))
			j := bytes.Index(e, []byte("x-amz-trailer-signature:"))
			return append(bytes.Clone(e[:i]), e[j:]...)
		}, 400, CodeIncompleteBody},
		{"trailer signature dropped", true, func(e []byte) []byte {
			j := bytes.Index(e, []byte("x-amz-trailer-signature:"))
			return append(bytes.Clone(e[:j]), "\r\n"...)
		}, 400, CodeIncompleteBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tr http.Header
			if c.trailer {
				tr = http.Header{"x-amz-checksum-crc32": {crc32b64(body)}}
			}
			req, enc := minioStreaming(t, body, tr)
			res := roundTrip(t, testVerifier(), withBody(req, c.mutate(enc)))
			if res.status != c.status || res.code != c.code {
				t.Fatalf("got %d %q, want %d %q", res.status, res.code, c.status, c.code)
			}
		})
	}
	t.Run("wrong trailer checksum", func(t *testing.T) {
		// Signed by the client, so the signature holds; the checksum does not.
		req, enc := minioStreaming(t, body, http.Header{"x-amz-checksum-crc32": {crc32b64(body[1:])}})
		res := roundTrip(t, testVerifier(), withBody(req, enc))
		if res.status != 400 || res.code != CodeBadDigest {
			t.Fatalf("got %d %q", res.status, res.code)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		req := mustNewRequest(t, http.MethodPut, objectURL("s3.example.com", "/bucket/", "k", ""), body)
		req = signer.StreamingSignV4(req, testAK, "wrong", "", testRegion, int64(len(body)), time.Now().UTC(), sha256Hasher{sha256.New()})
		res := roundTrip(t, testVerifier(), req)
		if res.status != 403 || res.code != CodeSignatureDoesNotMatch {
			t.Fatalf("got %d %q", res.status, res.code)
		}
	})
}

func TestMinioUnsignedTrailer(t *testing.T) {
	for _, size := range []int{0, 10, 64 << 10, 130 << 10} {
		body := payload(size)
		for _, good := range []bool{true, false} {
			t.Run(strconv.Itoa(size)+"/"+strconv.FormatBool(good), func(t *testing.T) {
				sum := crc32b64(body)
				if !good {
					sum = crc32b64(append(body, 1))
				}
				req := mustNewRequest(t, http.MethodPut, objectURL("s3.example.com", "/bucket/", "unsigned trailer", ""), body)
				req.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
				req = signer.SignV4Trailer(*req, testAK, testSecret, "", testRegion, http.Header{"x-amz-checksum-crc32": {sum}})
				// Read the stream out: minio-go announces ContentLength 0
				// for an empty payload although it sends a frame.
				enc, err := io.ReadAll(req.Body)
				if err != nil {
					t.Fatal(err)
				}
				res := roundTrip(t, testVerifier(), withBody(req, enc))
				if good && (res.status != 200 || !bytes.Equal(res.body, body) || res.checksum != sum || res.req.Payload != PayloadStreamingUnsignedTrailer) {
					t.Fatalf("status %d code %q", res.status, res.code)
				}
				if !good && (res.status != 400 || res.code != CodeBadDigest) {
					t.Fatalf("status %d code %q", res.status, res.code)
				}
			})
		}
	}
}
