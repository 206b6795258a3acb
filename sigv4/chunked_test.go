package sigv4

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

var fixedTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// minioFrames signs body with minio-go's streaming signer at fixedTime and
// returns the encoded stream and a chain signer seeded like Verify would.
func minioFrames(tb testing.TB, body []byte, trailer http.Header) ([]byte, *chainSigner, *http.Request) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPut, "http://s3.example.com/bucket/obj", bytes.NewReader(body))
	req.Trailer = trailer
	req = signer.StreamingSignV4(req, testAK, testSecret, "", testRegion, int64(len(body)), fixedTime, sha256Hasher{sha256.New()})
	enc, err := io.ReadAll(req.Body)
	if err != nil {
		tb.Fatal(err)
	}
	auth := req.Header.Get("Authorization")
	seed := auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
	sc := scope{date: fixedTime.Format(scopeDateLayout), region: testRegion, service: "s3"}
	return enc, &chainSigner{key: signingKey(testSecret, sc), date: fixedTime.Format(iso8601Basic), scope: sc.String(), prev: []byte(seed)}, req
}

func decode(r io.Reader, s *chainSigner, signedTrailer bool, names ...string) ([]byte, error) {
	var out bytes.Buffer
	_, err := io.Copy(&out, newChunkedReader(r, s, signedTrailer, names))
	return out.Bytes(), err
}

func TestChunkedUnsignedFraming(t *testing.T) {
	data := []byte("hello, world")
	crc := "x-amz-checksum-crc32:" + crc32b64(data)
	cases := []struct {
		name  string
		enc   string
		names []string
		code  string // "" = success
	}{
		{"aws sdk style", string(unsignedChunked(data, 5, crc)), []string{"x-amz-checksum-crc32"}, ""},
		{"minio style LF trailer", "c\r\nhello, world\r\n0\r\n" + crc + "\n\r\n\r\n", []string{"x-amz-checksum-crc32"}, ""},
		{"no trailer", "c\r\nhello, world\r\n0\r\n\r\n", nil, ""},
		{"uppercase hex", "C\r\nhello, world\r\n0\r\n\r\n", nil, ""},
		{"missing final CRLF", "c\r\nhello, world\r\n0\r\n", nil, CodeIncompleteBody},
		{"missing final chunk", "c\r\nhello, world\r\n", nil, CodeIncompleteBody},
		{"bad hex", "z\r\nhello, world\r\n0\r\n\r\n", nil, CodeInvalidRequest},
		{"empty size", "\r\nhello, world\r\n0\r\n\r\n", nil, CodeInvalidRequest},
		{"LF only", "c\nhello, world\r\n0\r\n\r\n", nil, CodeInvalidRequest},
		{"no CRLF after data", "c\r\nhello, worldXX0\r\n\r\n", nil, CodeInvalidRequest},
		{"size too long", "000000000c\r\nhello, world\r\n0\r\n\r\n", nil, CodeInvalidRequest},
		{"chunk too big", "1000001\r\n", nil, CodeInvalidRequest},
		{"extension in unsigned", "c;chunk-signature=00\r\nhello, world\r\n0\r\n\r\n", nil, CodeInvalidRequest},
		{"short data", "c\r\nhello", nil, CodeIncompleteBody},
		{"unannounced trailer", "c\r\nhello, world\r\n0\r\n" + crc + "\r\n\r\n", nil, CodeInvalidRequest},
		{"duplicate trailer", "c\r\nhello, world\r\n0\r\n" + crc + "\r\n" + crc + "\r\n\r\n", []string{"x-amz-checksum-crc32"}, CodeInvalidRequest},
		{"trailer without colon", "c\r\nhello, world\r\n0\r\nx-amz-checksum-crc32\r\n\r\n", []string{"x-amz-checksum-crc32"}, CodeInvalidRequest},
		{"huge trailer", "0\r\n" + strings.Repeat("x", 5000) + "\r\n\r\n", nil, CodeInvalidRequest},
		{"long header line", strings.Repeat("0", 5000) + "\r\n", nil, CodeInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decode(strings.NewReader(c.enc), nil, false, c.names...)
			if c.code == "" {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("got %q, %v", got, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != c.code {
				t.Fatalf("err = %v, want code %s", err, c.code)
			}
		})
	}
}

func TestChunkedSignedFraming(t *testing.T) {
	body := payload(70 << 10)
	enc, s, _ := minioFrames(t, body, nil)
	got, err := decode(bytes.NewReader(enc), s, false)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("decode: %v", err)
	}
	// One byte at a time through the reader: state machine across reads.
	_, s, _ = minioFrames(t, body, nil)
	var out bytes.Buffer
	cr := newChunkedReader(bytes.NewReader(enc), s, false, nil)
	buf := make([]byte, 1)
	for {
		n, err := cr.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), body) {
		t.Fatal("byte-wise decode differs")
	}
	// Missing chunk-signature in a signed stream.
	_, s, _ = minioFrames(t, body, nil)
	if _, err := decode(strings.NewReader("0\r\n\r\n"), s, false); err == nil {
		t.Fatal("unsigned final chunk accepted in signed stream")
	}
}

// TestBodyErrorsNeverCleanEOF checks the consumer contract: a failing body
// never ends with a clean io.EOF, whichever read size the consumer uses.
func TestBodyErrorsNeverCleanEOF(t *testing.T) {
	body := payload(100 << 10)
	enc, _, req := minioFrames(t, body, nil)
	bad := bytes.Clone(enc)
	bad[len(bad)-200] ^= 1 // in the last data chunk
	v := &Verifier{Credentials: StaticCredentials{testAK: testSecret}, Now: func() time.Time { return fixedTime }}
	for _, size := range []int{1, 7, 4096, 1 << 20} {
		r := req.Clone(req.Context())
		r.Body = readCloser(bad)
		sr, err := v.Verify(r)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, size)
		for {
			_, err := sr.Body.Read(buf)
			if err == io.EOF {
				t.Fatalf("read size %d: clean EOF on a tampered body", size)
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeSignatureDoesNotMatch {
					t.Fatalf("err = %v", err)
				}
				// Sticky.
				if _, err2 := sr.Body.Read(buf); err2 != err {
					t.Fatalf("error not sticky: %v", err2)
				}
				break
			}
		}
	}
}

func TestTruncatedPlainBody(t *testing.T) {
	// net/http reports a body shorter than Content-Length as
	// io.ErrUnexpectedEOF; Verify must turn it into IncompleteBody.
	body := payload(1000)
	req := httptest.NewRequest(http.MethodPut, "http://s3.example.com/bucket/k", io.MultiReader(bytes.NewReader(body[:10]), errReader{io.ErrUnexpectedEOF}))
	req.ContentLength = int64(len(body))
	req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	req = signer.SignV4(*req, testAK, testSecret, "", testRegion)
	sr, err := testVerifier().Verify(req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(sr.Body)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeIncompleteBody || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestErrorType(t *testing.T) {
	cause := errors.New("cause")
	e := wrapError(CodeBadDigest, 400, "msg", cause)
	if !errors.Is(e, cause) || !strings.Contains(e.Error(), "BadDigest") || !strings.Contains(e.Error(), "cause") {
		t.Fatalf("%v", e)
	}
	if s := newError(CodeAccessDenied, 403, "m").Error(); s != "sigv4: AccessDenied: m" {
		t.Fatal(s)
	}
}

func TestParsePayloadMode(t *testing.T) {
	for v, want := range map[string]PayloadMode{
		unsignedPayload: PayloadUnsigned, streamingPayload: PayloadStreaming,
		streamingUnsignedTrailer: PayloadStreamingUnsignedTrailer, streamingSignedTrailer: PayloadStreamingSignedTrailer,
		emptySHA256Hex: PayloadSignedSHA256, strings.ToUpper(emptySHA256Hex): PayloadSignedSHA256,
	} {
		if got, err := parsePayloadMode(v); err != nil || got != want {
			t.Errorf("%s: %v %v", v, got, err)
		}
	}
	for _, v := range []string{"", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "abc", emptySHA256Hex + "00"} {
		if _, err := parsePayloadMode(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

func FuzzChunkedDecoder(f *testing.F) {
	body := payload(300)
	crc := http.Header{"x-amz-checksum-crc32": {crc32b64(body)}}
	encPlain, _, _ := minioFrames(f, body, nil)
	encTrailer, _, _ := minioFrames(f, body, crc)
	f.Add(encPlain, uint8(1))
	f.Add(encTrailer, uint8(2))
	f.Add(unsignedChunked(body, 100, "x-amz-checksum-crc32:"+crc32b64(body)), uint8(0))
	f.Add([]byte("0\r\n\r\n"), uint8(0))
	f.Add([]byte("ffffff\r\n"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		var s *chainSigner
		signedTrailer := false
		switch mode % 3 {
		case 1:
			_, s, _ = minioFrames(t, body, nil)
		case 2:
			_, s, _ = minioFrames(t, body, crc)
			signedTrailer = true
		}
		cr := newChunkedReader(bytes.NewReader(data), s, signedTrailer, []string{"x-amz-checksum-crc32"})
		n, err := io.Copy(io.Discard, cr)
		if n > int64(len(data)) {
			t.Fatalf("decoded %d bytes from %d", n, len(data))
		}
		if err == nil {
			// Success must be sticky EOF.
			if _, err := cr.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("after EOF: %v", err)
			}
		} else if !errors.As(err, new(*Error)) {
			t.Fatalf("error %v is not an *Error", err)
		}
	})
}

// TestStreamingDecodeAllocations: checking a chunk's signature allocates
// nothing, so a streamed body of 16 chunks costs the allocations of one of
// a single chunk.
func TestStreamingDecodeAllocations(t *testing.T) {
	buf := make([]byte, 32<<10)
	allocs := func(size int) float64 {
		body := payload(size)
		enc, s, _ := minioFrames(t, body, nil)
		return testing.AllocsPerRun(5, func() {
			signer := *s
			signer.prev = slices.Clone(s.prev)
			n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{newChunkedReader(bytes.NewReader(enc), &signer, false, nil)}, buf)
			if err != nil || n != int64(len(body)) {
				t.Fatalf("decoded %d bytes: %v", n, err)
			}
		})
	}
	// A few allocations of slack: the runtime (the race detector, a GC
	// cycle on a loaded machine) sometimes adds one; an allocation per
	// chunk would add 15.
	if one, many := allocs(64<<10), allocs(1<<20); many > one+3 {
		t.Errorf("decoding 1 chunk allocated %v times, 16 chunks %v times", one, many)
	}
}

func BenchmarkStreamingDecode(b *testing.B) {
	const size = 64 << 20
	body := payload(size)
	enc, _, req := minioFrames(b, body, nil)
	v := &Verifier{Credentials: StaticCredentials{testAK: testSecret}, Now: func() time.Time { return fixedTime }}
	buf := make([]byte, 32<<10)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := req.Clone(req.Context())
		r.Body = readCloser(enc)
		sr, err := v.Verify(r)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{sr.Body}, buf)
		if err != nil || n != size {
			b.Fatalf("%d %v", n, err)
		}
	}
}

var _ = strconv.Itoa
