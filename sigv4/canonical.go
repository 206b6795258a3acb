package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm        = "AWS4-HMAC-SHA256"
	terminator       = "aws4_request"
	iso8601Basic     = "20060102T150405Z"
	scopeDateLayout  = "20060102"
	emptySHA256Hex   = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	chunkAlgorithm   = "AWS4-HMAC-SHA256-PAYLOAD"
	trailerAlgorithm = "AWS4-HMAC-SHA256-TRAILER"
)

// uriEncode percent-encodes s the way SigV4 requires: every byte outside the
// RFC 3986 unreserved set is encoded with uppercase hex (space is %20, never
// '+'). keepSlash keeps '/' literal, as in the canonical URI.
func uriEncode(s string, keepSlash bool) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || (keepSlash && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// canonicalURI re-encodes the request path the way S3 clients sign it: each
// segment is decoded once and encoded once with the unreserved set. Working
// per segment keeps an encoded slash (%2F) inside a segment distinct from a
// path separator. S3 does not double-encode, unlike other AWS services.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if dec, err := url.PathUnescape(seg); err == nil {
			seg = dec
		}
		segs[i] = uriEncode(seg, false)
	}
	return strings.Join(segs, "/")
}

// canonicalQueries builds the canonical query string from the raw query,
// leaving out skip (X-Amz-Signature for presigned URLs). AWS sorts pairs by
// encoded key, then encoded value; a key without '=' has an empty value and
// '+' decodes to a space, as every SDK's signer treats it. minio-go (and the
// MinIO server) keep repeated keys' values in request order instead of
// sorting them, so when that order differs a second form is returned to try.
func canonicalQueries(rawQuery, skip string) []string {
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if skip != "" && k == skip {
			continue
		}
		pairs = append(pairs, pair{uriEncode(k, false), uriEncode(v, false)})
	}
	join := func() string {
		var b strings.Builder
		for i, p := range pairs {
			if i > 0 {
				b.WriteByte('&')
			}
			b.WriteString(p.k)
			b.WriteByte('=')
			b.WriteString(p.v)
		}
		return b.String()
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].k < pairs[j].k })
	byKey := join()
	sort.SliceStable(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	if aws := join(); aws != byKey {
		return []string{aws, byKey}
	}
	return []string{byKey}
}

// headerValue returns the canonical value of a signed header: all values
// joined by ',', each trimmed with inner runs of spaces collapsed. Headers
// that net/http moves out of r.Header are reconstructed from the request.
func headerValue(r *http.Request, name, host string) string {
	switch name {
	case "host":
		return collapseSpaces(host)
	case "content-length":
		if len(r.Header.Values(name)) == 0 && r.ContentLength >= 0 {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	case "transfer-encoding":
		if len(r.Header.Values(name)) == 0 {
			return strings.Join(r.TransferEncoding, ",")
		}
	}
	vals := r.Header.Values(name)
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(collapseSpaces(v))
	}
	return b.String()
}

// collapseSpaces trims s and replaces inner runs of spaces by one space.
func collapseSpaces(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prevSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// canonicalRequest assembles the SigV4 canonical request.
func canonicalRequest(r *http.Request, host string, signedHeaders []string, query, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	for _, h := range signedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(r, h, host))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// scope is the credential scope of a request: date/region/service/aws4_request.
type scope struct {
	date    string // yyyymmdd
	region  string
	service string
}

func (s scope) String() string {
	return s.date + "/" + s.region + "/" + s.service + "/" + terminator
}

// signingKey derives the SigV4 signing key for secret and scope.
func signingKey(secret string, sc scope) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), sc.date)
	k = hmacSHA256(k, sc.region)
	k = hmacSHA256(k, sc.service)
	return hmacSHA256(k, terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// stringToSign is the SigV4 string to sign for a canonical request.
func stringToSign(t time.Time, sc scope, canonical string) string {
	return algorithm + "\n" + t.UTC().Format(iso8601Basic) + "\n" + sc.String() + "\n" + sha256Hex(canonical)
}
