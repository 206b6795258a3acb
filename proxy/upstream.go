package proxy

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// upstream builds, signs and sends requests to the store. Every request is
// built fresh from what s3seal decided to send: nothing of the client's
// authentication, framing or body checksums can leak through by accident.
type upstream struct {
	base       *url.URL
	ak, sk     string
	region     string
	httpClient *http.Client
	obs        Observer
}

// unsignedPayload is sent as x-amz-content-sha256 on every request: hashing
// every byte of every body a second time would cost more than the encryption.
// minio-go's SignV4 signs whatever that header says (and, without the header,
// signs UNSIGNED-PAYLOAD but sends no header, which MinIO then reads as the
// hash of an empty body), so it is always set explicitly.
const unsignedPayload = "UNSIGNED-PAYLOAD"

// newRequest builds a request for bucket/key (either may be empty) with the
// given query and headers. size is the body's exact length, or -1.
func (u *upstream) newRequest(ctx context.Context, method, bucket, key string, query url.Values, header http.Header, body io.Reader, size int64) (*http.Request, error) {
	path := strings.TrimSuffix(u.base.Path, "/") + "/"
	if bucket != "" {
		path += bucket
		if key != "" {
			path += "/" + key
		}
	}
	target := &url.URL{
		Scheme: u.base.Scheme,
		Host:   u.base.Host,
		Path:   path,
		// The signer canonicalizes the path with s3utils.EncodePath; sending
		// exactly that encoding keeps what is signed and what is sent equal
		// for keys with spaces, '+', '%', non-ASCII and the like.
		RawPath:  s3utils.EncodePath(path),
		RawQuery: strings.ReplaceAll(query.Encode(), "+", "%20"),
	}
	if body == nil || size == 0 {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), body)
	if err != nil {
		return nil, err
	}
	// NewRequest re-parses the URL; keep the exact encoding.
	req.URL = target
	req.ContentLength = size
	if body == http.NoBody {
		req.ContentLength = 0
	}
	if header != nil {
		req.Header = header
	}
	req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	return req, nil
}

// do signs and sends req. Accept-Encoding is set after signing (the signer
// ignores it): identity keeps the transport from decompressing bodies, which
// would change their length under s3seal's size math.
func (u *upstream) do(req *http.Request) (*http.Response, error) {
	signed := signer.SignV4(*req, u.ak, u.sk, "", u.region)
	signed.Header.Set("Accept-Encoding", "identity")
	start := time.Now()
	resp, err := u.httpClient.Do(signed)
	u.obs.ObserveUpstream(opFrom(req.Context()), time.Since(start))
	return resp, err
}

// hopByHop are connection-level headers (RFC 9110 §7.6.1) never forwarded.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// clientOnlyHeaders belong to the client's request to s3seal: its
// authentication, its body framing, and its checksums of that body, which
// s3seal has verified and which do not describe what the store receives.
var clientOnlyHeaders = []string{
	"Authorization", "X-Amz-Content-Sha256", "X-Amz-Date", "X-Amz-Security-Token",
	"X-Amz-Decoded-Content-Length", "X-Amz-Trailer", "X-Amz-Sdk-Checksum-Algorithm",
	"Content-Length", "Expect", "Host", "Accept-Encoding", "User-Agent",
	"X-Amz-Checksum-Mode",
}

// passthroughHeader is the client's header set minus what belongs to its own
// connection and authentication. The body is forwarded byte for byte, so its
// Content-MD5 and x-amz-checksum-* headers still describe it.
func passthroughHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, k := range hopByHop {
		out.Del(k)
	}
	for _, k := range clientOnlyHeaders {
		out.Del(k)
	}
	dropReserved(out)
	setContentEncoding(out, h)
	return out
}

// setContentEncoding copies Content-Encoding without aws-chunked, which only
// framed the client's body to s3seal.
func setContentEncoding(dst, src http.Header) {
	dst.Del("Content-Encoding")
	var keep []string
	for _, v := range src.Values("Content-Encoding") {
		for _, enc := range strings.Split(v, ",") {
			enc = strings.TrimSpace(enc)
			if enc != "" && !strings.EqualFold(enc, "aws-chunked") {
				keep = append(keep, enc)
			}
		}
	}
	if len(keep) > 0 {
		dst.Set("Content-Encoding", strings.Join(keep, ","))
	}
}

// copyHeaders copies the headers named exactly or by prefix (lowercase,
// ending in '-') from src to dst.
func copyHeaders(dst, src http.Header, names ...string) {
	for k, vs := range src {
		lk := strings.ToLower(k)
		for _, n := range names {
			if lk == n || (strings.HasSuffix(n, "-") && strings.HasPrefix(lk, n)) {
				dst[k] = append([]string(nil), vs...)
				break
			}
		}
	}
}

// Headers a client may send with an object write that describe the object
// (not its body's bytes) and so go to the store unchanged.
var putObjectHeaders = []string{
	"content-type", "cache-control", "content-disposition", "content-language",
	"expires", "x-amz-meta-", "x-amz-tagging", "x-amz-storage-class", "x-amz-acl",
	"x-amz-grant-", "x-amz-object-lock-", "x-amz-website-redirect-location",
	"x-amz-expected-bucket-owner", "x-amz-request-payer",
	"if-match", "if-none-match",
}

// Headers of an object read that go to the store: conditions and the
// request's owner and payer. Range is not among them: it is plaintext
// offsets, which s3seal maps to stored bytes itself.
var getObjectHeaders = []string{
	"if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
	"x-amz-expected-bucket-owner", "x-amz-request-payer",
}
