package proxy

// Header rules: which of a client's headers go to the store with each kind
// of request. Everything not named here stays with s3seal: the client's
// authentication, its body's framing and checksums (which describe bytes the
// store never receives), and s3seal's own metadata.

import (
	"net/http"
	"slices"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

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

// Header names below are lower case; one ending in '-' names a prefix.
var (
	// ownerHeaders go with every request about an object or bucket, when
	// the client sent them: whose bucket it must be, and who pays.
	ownerHeaders = []string{"x-amz-expected-bucket-owner", "x-amz-request-payer"}

	// describingHeaders describe an object, not its bytes: stored with it
	// and answered with it. (Content-Encoding too, without aws-chunked:
	// setContentEncoding.)
	describingHeaders = []string{
		"content-type", "cache-control", "content-disposition", "content-language",
		"expires", "x-amz-meta-", "x-amz-website-redirect-location",
	}

	// settingHeaders are an object write's settings the store applies.
	settingHeaders = []string{
		"x-amz-tagging", "x-amz-storage-class", "x-amz-acl", "x-amz-grant-", "x-amz-object-lock-",
	}

	// writeConditions make a write conditional on the object it replaces.
	writeConditions = []string{"if-match", "if-none-match"}

	// readConditions make a read conditional on the object.
	readConditions = []string{"if-match", "if-none-match", "if-modified-since", "if-unmodified-since"}

	// putObjectHeaders go with PutObject and CreateMultipartUpload.
	putObjectHeaders = slices.Concat(describingHeaders, settingHeaders, ownerHeaders, writeConditions)

	// getObjectHeaders go with an object read. Range is not among them: it
	// is plaintext offsets, which s3seal maps to stored bytes itself.
	getObjectHeaders = slices.Concat(readConditions, ownerHeaders)

	// copyRequestHeaders go with a CopyObject whatever its directive; the
	// describing headers come from the source (COPY) or the request
	// (REPLACE).
	copyRequestHeaders = slices.Concat(settingHeaders, ownerHeaders, writeConditions,
		[]string{"x-amz-tagging-directive", "x-amz-source-expected-bucket-owner"})
)

// copyHeaders copies the headers named in names (see above) from src to
// dst.
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

// objectWriteHeader is what the store gets with a new object (PutObject,
// CreateMultipartUpload): the client's putObjectHeaders and the object's
// s3seal metadata.
func objectWriteHeader(client http.Header, meta envelope.Metadata) http.Header {
	h := http.Header{}
	copyHeaders(h, client, putObjectHeaders...)
	setContentEncoding(h, client)
	dropReserved(h)
	setMetadata(h, meta)
	return h
}

// setMetadata writes an object's s3seal metadata into the headers of a
// store request that writes it.
func setMetadata(h http.Header, m envelope.Metadata) {
	for k, v := range m.UserMetadata() {
		h.Set("X-Amz-Meta-"+k, v)
	}
}

// parseMetadata reads an object's s3seal metadata from a store's answer.
func parseMetadata(h http.Header) (envelope.Metadata, error) {
	return envelope.ParseHeader(h)
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

// dropReserved removes s3seal's metadata from headers bound for the store.
// Clients cannot send it (checkHeaders); this keeps a copy source's out of
// the copy's headers.
func dropReserved(h http.Header) {
	for k := range h {
		if envelope.IsReserved(k) && strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") {
			delete(h, k)
		}
	}
}

// sourceReads maps a copy's source conditions and source owner to those of
// a read of the source.
var sourceReads = map[string]string{
	"x-amz-copy-source-if-match":            "If-Match",
	"x-amz-copy-source-if-none-match":       "If-None-Match",
	"x-amz-copy-source-if-modified-since":   "If-Modified-Since",
	"x-amz-copy-source-if-unmodified-since": "If-Unmodified-Since",
	"x-amz-source-expected-bucket-owner":    "X-Amz-Expected-Bucket-Owner",
	"x-amz-request-payer":                   "X-Amz-Request-Payer",
}

// sourceReadHeader is the header of a read of a copy's source
// (sourceReads).
func sourceReadHeader(client http.Header) http.Header {
	h := http.Header{}
	for k, vs := range client {
		if name, ok := sourceReads[strings.ToLower(k)]; ok {
			h[name] = vs
		}
	}
	return h
}
