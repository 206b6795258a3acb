package sigv4

// AWS Signature Version 2 (HMAC-SHA1), in its two forms: the header
// "Authorization: AWS AK:signature" and presigned URLs with AWSAccessKeyId,
// Signature and Expires. The string to sign is S3's, as MinIO checks it
// (cmd/signature-v2.go):
//
//	METHOD \n Content-MD5 \n Content-Type \n Date-or-Expires \n
//	x-amz-name:value \n ... (lowercase, sorted, values trimmed, joined by ',')
//	/bucket/path?sub-resources (sorted)
//
// SigV2 signs far less than SigV4: not the host (hence the bucket in the
// resource, found as the proxy finds it: Verifier.Domain), not the body
// (only Content-MD5 and checksums, when sent, cover it, as on S3), and of the
// query only the sub-resources below. What it signs is verified as strictly
// as SigV4: clock skew, expiry, constant-time comparison.

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const v2Algorithm = "AWS"

// v2SubResources are the query parameters a SigV2 resource includes when
// present. It is the union of MinIO's list (which minio-go shares), botocore's
// and s3cmd's, plus the other parameters that select an S3 operation: a
// parameter that picks the operation must be signed, or a signature for one
// operation (a presigned CreateBucket, say) could be replayed as another
// (PutPublicAccessBlock, with a body of the holder's choosing). A client
// whose signer leaves one of these out of its resource gets
// SignatureDoesNotMatch, as it would from MinIO for the parameters MinIO
// signs. GetObjectAttributes' "attributes" is left out on purpose: no SigV2
// signer includes it, and it turns a read of an object into a read of less.
var v2SubResources = map[string]bool{
	"accelerate": true, "acl": true, "analytics": true, "cors": true, "delete": true,
	"encryption": true, "intelligent-tiering": true, "inventory": true, "legal-hold": true,
	"lifecycle": true, "location": true, "logging": true, "metrics": true, "notification": true,
	"object-lock": true, "ownershipControls": true, "partNumber": true, "policy": true,
	"policyStatus": true, "publicAccessBlock": true, "replication": true, "requestPayment": true,
	"response-cache-control": true, "response-content-disposition": true,
	"response-content-encoding": true, "response-content-language": true,
	"response-content-type": true, "response-expires": true, "restore": true, "retention": true,
	"select": true, "select-type": true, "tagging": true, "torrent": true, "uploadId": true,
	"uploads": true, "versionId": true, "versioning": true, "versions": true, "website": true,
}

// v2Auth is what a SigV2 request's signature claims, before it is checked.
type v2Auth struct {
	accessKey string
	signature []byte
	presigned bool
	// dateLines are the values the string to sign may have in its date
	// line: Expires for a presigned URL; the Date header, or "" when
	// x-amz-date gives the time (S3's rule; MinIO signs Date even then).
	dateLines []string
	time      time.Time // the request time (header auth); zero when presigned
}

// isSigV2 reports whether r claims SigV2: an "AWS AK:signature"
// Authorization header or, without one, SigV2's query parameters and no
// SigV4 presigning.
func isSigV2(r *http.Request) bool {
	if authz := r.Header.Get("Authorization"); authz != "" {
		alg, _, _ := strings.Cut(strings.TrimSpace(authz), " ")
		return alg == v2Algorithm
	}
	q := r.URL.Query()
	return hasV2Query(q) && !hasV4Query(q)
}

func hasV2Query(q url.Values) bool { return q.Has("AWSAccessKeyId") || q.Has("Signature") }

func hasV4Query(q url.Values) bool {
	return q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Signature")
}

// verifyV2 authenticates a SigV2 request. Its body is checked as an
// UNSIGNED-PAYLOAD one is (Content-MD5, x-amz-checksum-*), or against
// x-amz-content-sha256 if the client sent one: SigV2 signs every x-amz-*
// header, that one included.
func (v *Verifier) verifyV2(r *http.Request) (*Request, error) {
	a, err := v.authenticateV2(r)
	if err != nil {
		return nil, err
	}
	// The proxy forwards a query's x-amz-* parameters as headers
	// (botocore's SigV2 presigner puts signed headers there), so they are
	// headers here too, and signed as such.
	h := signedHeader(r, true)
	mode, payloadHash, err := v2Payload(r, h)
	if err != nil {
		return nil, err
	}
	secret, err := v.secret(a.accessKey)
	if err != nil {
		return nil, err
	}
	date, err := checkV2Signature(r, h, a, secret, v.Domain)
	if err != nil {
		return nil, err
	}
	b, err := newBody(r, h, mode, payloadHash, nil)
	if err != nil {
		return nil, err
	}
	return &Request{
		AccessKey:     a.accessKey,
		Time:          a.time,
		Presigned:     a.presigned,
		Payload:       mode,
		SignedHeaders: v2SignedHeaders(h, !a.presigned && date != ""),
		Body:          b,
		ContentLength: b.wantLen,
		Checksum:      b.checksumAlgo,
		SigV2:         true,
		body:          b,
	}, nil
}

// authenticateV2 parses the claimed identity and checks the request's time,
// everything but the signature itself.
func (v *Verifier) authenticateV2(r *http.Request) (*v2Auth, error) {
	q := r.URL.Query()
	authz := r.Header.Get("Authorization")
	if authz != "" && (hasV2Query(q) || hasV4Query(q)) {
		return nil, newError(CodeInvalidArgument, http.StatusBadRequest,
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
	}
	// As with SigV4: a session token would be part of what the client
	// signed that nothing here can check.
	if r.Header.Get("X-Amz-Security-Token") != "" || q.Has("X-Amz-Security-Token") {
		return nil, newError(CodeInvalidToken, http.StatusBadRequest,
			"The provided token is malformed or otherwise invalid: session tokens are not supported.")
	}
	if authz != "" {
		return v.parseV2Header(r, authz)
	}
	return v.parseV2Query(q)
}

func (v *Verifier) parseV2Header(r *http.Request, authz string) (*v2Auth, error) {
	_, cred, _ := strings.Cut(strings.TrimSpace(authz), " ")
	ak, sig, ok := strings.Cut(strings.TrimSpace(cred), ":")
	if !ok || ak == "" || sig == "" || strings.ContainsAny(sig, ": ") {
		return nil, newError(CodeInvalidArgument, http.StatusBadRequest,
			"AWS authorization header is invalid.  Expected AwsAccessKeyId:signature")
	}
	a := &v2Auth{accessKey: ak, signature: decodeV2Signature(sig)}
	xd, d := r.Header.Get("X-Amz-Date"), r.Header.Get("Date")
	var err error
	switch {
	case xd != "":
		a.time, err = parseV2Time(xd)
		a.dateLines = []string{""}
		if d != "" {
			a.dateLines = append(a.dateLines, d)
		}
	case d != "":
		a.time, err = parseV2Time(d)
		a.dateLines = []string{d}
	default:
		err = errAccessDenied("no date")
	}
	if err != nil {
		return nil, wrapError(CodeAccessDenied, http.StatusForbidden,
			"AWS authentication requires a valid Date or x-amz-date header", err)
	}
	if skew := v.now().Sub(a.time); skew > v.maxSkew() || skew < -v.maxSkew() {
		return nil, newError(CodeRequestTimeTooSkewed, http.StatusForbidden,
			"The difference between the request time and the current time is too large.")
	}
	return a, nil
}

// parseV2Query reads a presigned URL's parameters. S3 puts no bound on a
// SigV2 URL's lifetime; s3seal holds it to SigV4's (seven days). Since a
// SigV2 URL does not say when it was signed, the bound is on how far ahead
// of now Expires lies.
func (v *Verifier) parseV2Query(q url.Values) (*v2Auth, error) {
	for _, k := range []string{"AWSAccessKeyId", "Signature", "Expires"} {
		if len(q[k]) != 1 || q.Get(k) == "" {
			return nil, errAccessDenied("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
		}
	}
	expires := q.Get("Expires")
	secs, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || secs < 0 {
		return nil, wrapError(CodeAccessDenied, http.StatusForbidden,
			"Invalid date (should be seconds since epoch): "+expires, err)
	}
	now, exp := v.now(), time.Unix(secs, 0)
	if now.After(exp) {
		return nil, errAccessDenied("Request has expired")
	}
	if exp.Sub(now) > maxPresignExpiry {
		return nil, newError(CodeAuthorizationQueryParametersError, http.StatusBadRequest,
			"Expires must be less than a week (604800 seconds) from now: s3seal holds SigV2 presigned URLs to the SigV4 limit")
	}
	return &v2Auth{
		accessKey: q.Get("AWSAccessKeyId"),
		signature: decodeV2Signature(q.Get("Signature")),
		presigned: true,
		dateLines: []string{expires},
	}, nil
}

// decodeV2Signature decodes a base64 signature; nil (which matches nothing)
// if it is not base64. A '+' that reached the query unencoded has been
// decoded to a space: it is put back, as the signer meant it.
func decodeV2Signature(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(s, " ", "+"))
	if err != nil {
		return nil
	}
	return b
}

// v2TimeLayouts are the forms of Date and x-amz-date clients send: HTTP
// dates (RFC 1123 with GMT, or a numeric zone as s3cmd sends), the obsolete
// HTTP forms, and ISO 8601 as in SigV4.
var v2TimeLayouts = []string{http.TimeFormat, time.RFC1123Z, time.RFC1123,
	"Mon, 2 Jan 2006 15:04:05 GMT", time.RFC850, time.ANSIC, iso8601Basic}

func parseV2Time(s string) (time.Time, error) {
	var err error
	for _, layout := range v2TimeLayouts {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// v2Payload decides how the body is checked. aws-chunked framing and its
// chunk signatures are SigV4's: with SigV2 there is no seed signature to
// chain them from, so they are refused.
func v2Payload(r *http.Request, h http.Header) (PayloadMode, string, error) {
	for _, ce := range r.Header.Values("Content-Encoding") {
		for tok := range strings.SplitSeq(ce, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "aws-chunked") {
				return 0, "", invalidRequest("aws-chunked bodies are signed with AWS Signature Version 4; they cannot be sent with Signature Version 2.")
			}
		}
	}
	hash := h.Get("X-Amz-Content-Sha256")
	if hash == "" || hash == unsignedPayload {
		return PayloadUnsigned, unsignedPayload, nil
	}
	mode, err := parsePayloadMode(hash)
	if err != nil {
		return 0, "", err
	}
	if mode != PayloadSignedSHA256 {
		return 0, "", invalidRequest("x-amz-content-sha256 " + hash + " is a Signature Version 4 payload; it cannot be sent with Signature Version 2.")
	}
	return mode, hash, nil
}

// checkV2Signature recomputes the signature over each form of the string to
// sign the request may have been signed in and compares in constant time.
// It returns the date line that matched.
func checkV2Signature(r *http.Request, h http.Header, a *v2Auth, secret, domain string) (string, error) {
	resources, err := v2Resources(r, domain)
	if err != nil {
		return "", err
	}
	for _, res := range resources {
		for _, date := range a.dateLines {
			mac := hmac.New(sha1.New, []byte(secret))
			mac.Write([]byte(v2StringToSign(r.Method, h, date, res)))
			if hmac.Equal(mac.Sum(nil), a.signature) {
				return date, nil
			}
		}
	}
	return "", errSignatureMismatch()
}

// v2StringToSign is S3's SigV2 string to sign; h holds the request's
// headers and the x-amz-* parameters of its query.
func v2StringToSign(method string, h http.Header, date, resource string) string {
	var b strings.Builder
	for _, line := range []string{method, h.Get("Content-Md5"), h.Get("Content-Type"), date} {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	amz := amzHeaders(h)
	for _, name := range sortedKeys(amz) {
		b.WriteString(name + ":" + strings.Join(amz[name], ",") + "\n")
	}
	b.WriteString(resource)
	return b.String()
}

// amzHeaders returns h's x-amz-* headers by lowercase name, values trimmed.
func amzHeaders(h http.Header) map[string][]string {
	amz := map[string][]string{}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-amz-") {
			continue
		}
		for _, v := range vs {
			amz[lk] = append(amz[lk], strings.TrimSpace(v))
		}
	}
	return amz
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// v2SignedHeaders lists what the signature covered: Content-MD5 and
// Content-Type (present or not), Date when it was in the string to sign,
// and every x-amz-* header.
func v2SignedHeaders(h http.Header, date bool) []string {
	names := []string{"content-md5", "content-type"}
	if date {
		names = append(names, "date")
	}
	names = append(names, sortedKeys(amzHeaders(h))...)
	sort.Strings(names)
	return names
}

// v2Resources returns the forms of r's canonical resource a client may have
// signed: the path as sent (MinIO's rule) and, if it differs, the path
// encoded as the SDKs encode it, each with the sub-resources. A
// virtual-hosted-style request signs its bucket as the resource's first
// segment.
func v2Resources(r *http.Request, domain string) ([]string, error) {
	sub, err := v2SubResourceQuery(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if bucket := v2VirtualBucket(r.Host, domain); bucket != "" {
		prefix = "/" + bucket
	}
	paths := []string{rawPath(r)}
	if c := canonicalURI(r.URL); c != paths[0] {
		paths = append(paths, c)
	}
	for i, p := range paths {
		paths[i] = prefix + p + sub
	}
	return paths, nil
}

// rawPath is the request path exactly as the client sent it.
func rawPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		p, _, _ := strings.Cut(r.RequestURI, "?")
		return p
	}
	if p := r.URL.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// v2VirtualBucket returns the bucket of a virtual-hosted-style request
// (BUCKET.domain), "" for a path-style one. It must agree with the proxy's
// bucketKey (proxy/route.go): the bucket is signed only as part of the
// resource, so a bucket found elsewhere than the proxy finds it would let a
// signature for one bucket serve for another.
func v2VirtualBucket(host, domain string) string {
	if domain == "" {
		return ""
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	suffix := "." + strings.ToLower(strings.TrimSuffix(domain, "."))
	if lh := strings.ToLower(host); strings.HasSuffix(lh, suffix) && len(lh) > len(suffix) {
		return host[:len(host)-len(suffix)]
	}
	return ""
}

// v2SubResourceQuery returns "?k=v&k2" for the sub-resources in rawQuery,
// sorted by name, values decoded, "=" only before a non-empty value. A
// sub-resource given twice is refused: the signature would cover one value
// while the store might act on the other.
func v2SubResourceQuery(rawQuery string) (string, error) {
	vals := map[string]string{}
	var names []string
	for part := range strings.SplitSeq(rawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if !v2SubResources[k] {
			continue
		}
		if _, dup := vals[k]; dup {
			return "", newError(CodeInvalidArgument, http.StatusBadRequest,
				"The query parameter "+strconv.Quote(k)+" is given more than once.")
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		vals[k] = v
		names = append(names, k)
	}
	if len(names) == 0 {
		return "", nil
	}
	sort.Strings(names)
	for i, k := range names {
		if vals[k] != "" {
			names[i] = k + "=" + vals[k]
		}
	}
	return "?" + strings.Join(names, "&"), nil
}
