// Package sigv4 authenticates S3 clients' AWS Signature Version 4 requests
// (Authorization header and presigned URLs) and decodes and verifies their
// bodies as they stream: aws-chunked framing, chunk and trailer signatures,
// the signed payload SHA-256, Content-MD5 and x-amz-checksum-* values.
//
// SigV4 with HMAC-SHA256 and long-term credentials is supported, and, where
// Verifier.SigV2 allows it, S3's Signature Version 2 (v2.go): anonymous
// requests, SigV4a and session tokens are refused.
package sigv4

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Credentials looks up the secret key for an access key.
type Credentials interface {
	Secret(accessKey string) (secret string, ok bool)
}

// StaticCredentials is a fixed set of credentials: access key to secret key.
// It is a map so that several credentials (one per client or team) fit in
// it as readily as one.
type StaticCredentials map[string]string

// Secret returns the secret key of accessKey.
func (c StaticCredentials) Secret(accessKey string) (string, bool) {
	secret, ok := c[accessKey]
	return secret, ok
}

// DefaultMaxSkew is the clock skew tolerated when MaxSkew is zero; it is what
// S3 allows.
const DefaultMaxSkew = 15 * time.Minute

// maxPresignExpiry is S3's upper bound for X-Amz-Expires (seven days).
const maxPresignExpiry = 7 * 24 * time.Hour

// Verifier authenticates SigV4-signed S3 requests. Its fields are read-only
// once Verify is in use; it is safe for concurrent use.
type Verifier struct {
	Credentials Credentials
	Region      string           // region clients must sign for; "" accepts any region in the scope
	Service     string           // service in the credential scope; "" means "s3"
	MaxSkew     time.Duration    // tolerated clock skew; 0 means DefaultMaxSkew
	Now         func() time.Time // clock; nil means time.Now
	// SigV2 accepts S3's Signature Version 2 besides SigV4 (service "s3"
	// only: it is S3's alone, and the KMS API leaves it false). false
	// refuses it as an unsupported mechanism.
	SigV2 bool
	// Domain is the base domain of virtual-hosted-style requests
	// (BUCKET.Domain), as the proxy's: SigV2 signs the bucket only as part
	// of the path, so it is found in the Host exactly where the proxy
	// finds it. SigV4 signs the Host itself and does not need it.
	Domain string
}

// Request is an authenticated request.
type Request struct {
	AccessKey string
	Region    string    // region of the credential scope
	Time      time.Time // signing time
	Presigned bool
	Payload   PayloadMode
	// SignedHeaders are the lowercase header names covered by the
	// signature; other headers may have been altered in transit.
	SignedHeaders []string
	// Body yields the decoded payload (aws-chunked framing removed) and
	// verifies it while it flows. Any verification failure is returned by
	// Read as an *Error, with or instead of io.EOF: the payload is
	// authentic only once Read has returned a clean io.EOF.
	Body io.ReadCloser
	// ContentLength is the decoded length: Content-Length, or
	// x-amz-decoded-content-length for aws-chunked bodies; -1 if unknown.
	ContentLength int64
	// Checksum is the x-amz-checksum-* algorithm the client asked for
	// ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"), given as a
	// header, a trailer or x-amz-sdk-checksum-algorithm; "" if none.
	Checksum string
	// SigV2 is set for a Signature Version 2 request. It has no Region;
	// Time is zero when it is presigned (a SigV2 URL carries only its
	// expiry). Its body is covered by the signature only through an
	// x-amz-content-sha256 header, which SigV2 signs as any x-amz-* one
	// (Payload PayloadSignedSHA256); without one (PayloadUnsigned) only
	// Content-MD5 and checksums, when given, are checked.
	SigV2 bool

	body *body
}

// ChecksumValue returns the base64 checksum of the payload for the
// algorithm in Checksum, as S3 returns it in x-amz-checksum-*. It is only
// set once Body has returned a clean io.EOF, and the value has then been
// checked against the one the client sent, if any.
func (r *Request) ChecksumValue() string {
	if r.body == nil {
		return ""
	}
	return r.body.checksumValue
}

// ExpectedChecksum returns the base64 x-amz-checksum-* value the body is
// verified against as it flows, when the client gave it before the body
// (a header, or a presigned URL's query), and "" otherwise (a trailer, or
// only an algorithm). It is known before the body is read; the body is
// authentic only once Body has returned a clean io.EOF.
func (r *Request) ExpectedChecksum() string {
	if r.body == nil || r.body.wantChecksum == nil || r.body.trailerName != "" {
		return ""
	}
	return base64.StdEncoding.EncodeToString(r.body.wantChecksum)
}

// authInfo is what a request's signature claims, before it is checked.
type authInfo struct {
	accessKey     string
	scope         scope
	signedHeaders []string
	signature     string
	time          time.Time
	presigned     bool
	payloadHash   string
}

// Verify authenticates r. On success it returns the request's identity and a
// body reader that yields the decoded payload and verifies, as the bytes
// flow, every chunk signature, the payload SHA-256, Content-MD5 and any
// x-amz-checksum-* (header or trailer). Failures are *Error values.
func (v *Verifier) Verify(r *http.Request) (*Request, error) {
	if v.SigV2 && v.service() == "s3" && isSigV2(r) {
		return v.verifyV2(r)
	}
	info, err := v.authenticate(r)
	if err != nil {
		return nil, err
	}
	mode, err := parsePayloadMode(info.payloadHash)
	if err != nil {
		return nil, err
	}
	secret, err := v.secret(info.accessKey)
	if err != nil {
		return nil, err
	}
	key := signingKey(secret, info.scope)
	seed, err := checkSignature(r, info, key)
	if err != nil {
		return nil, err
	}
	b, err := newBody(r, signedHeader(r, info.presigned), mode, info.payloadHash, &chainSigner{
		key:   key,
		date:  info.time.UTC().Format(iso8601Basic),
		scope: info.scope.String(),
		prev:  []byte(seed),
	})
	if err != nil {
		return nil, err
	}
	return &Request{
		AccessKey:     info.accessKey,
		Region:        info.scope.region,
		Time:          info.time,
		Presigned:     info.presigned,
		Payload:       mode,
		SignedHeaders: info.signedHeaders,
		Body:          b,
		ContentLength: b.wantLen,
		Checksum:      b.checksumAlgo,
		body:          b,
	}, nil
}

// signedHeader is r's header plus, for a presigned request, the x-amz-*
// parameters of its query: presigners hoist headers there (a checksum among
// them), the signature covers them, and the body must be checked against
// them as if they were headers.
func signedHeader(r *http.Request, presigned bool) http.Header {
	if !presigned {
		return r.Header
	}
	h := r.Header.Clone()
	for k, vs := range r.URL.Query() {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") && !presignOnly[lk] {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
	}
	return h
}

// presignOnly are the query parameters of a presigned URL's own signature.
var presignOnly = map[string]bool{
	"x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true, "x-amz-expires": true,
	"x-amz-signedheaders": true, "x-amz-signature": true, "x-amz-security-token": true, "x-amz-content-sha256": true,
}

// secret is accessKey's secret key, or S3's error for a key it does not know.
func (v *Verifier) secret(accessKey string) (string, error) {
	secret, ok := v.Credentials.Secret(accessKey)
	if !ok {
		return "", newError(CodeInvalidAccessKeyID, http.StatusForbidden,
			"The AWS Access Key Id you provided does not exist in our records.")
	}
	return secret, nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

func (v *Verifier) service() string {
	if v.Service != "" {
		return v.Service
	}
	return "s3"
}

// authenticate parses the claimed identity from the Authorization header or
// the presigned query, and checks everything but the signature itself.
func (v *Verifier) authenticate(r *http.Request) (*authInfo, error) {
	q := r.URL.Query()
	authz := r.Header.Get("Authorization")
	presigned := q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Signature")
	sigV2Query := q.Has("AWSAccessKeyId") || q.Has("Signature")
	switch {
	case authz != "" && (presigned || sigV2Query):
		return nil, newError(CodeInvalidArgument, http.StatusBadRequest,
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
	case authz == "" && !presigned && sigV2Query:
		return nil, errUnsupportedAuth()
	case authz == "" && !presigned:
		return nil, errAccessDenied("Anonymous access is not supported; sign requests with AWS Signature Version 4.")
	}
	// Session tokens come from STS, which this endpoint does not have:
	// accepting one would mean ignoring part of what the client signed.
	if r.Header.Get("X-Amz-Security-Token") != "" || q.Has("X-Amz-Security-Token") {
		return nil, newError(CodeInvalidToken, http.StatusBadRequest,
			"The provided token is malformed or otherwise invalid: session tokens are not supported.")
	}
	var info *authInfo
	var err error
	if presigned {
		info, err = v.parsePresigned(r, q)
	} else {
		info, err = v.parseHeader(r, authz)
	}
	if err != nil {
		return nil, err
	}
	if err := checkSignedHeaders(r, info); err != nil {
		return nil, err
	}
	return info, nil
}

func (v *Verifier) parseHeader(r *http.Request, authz string) (*authInfo, error) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(authz), " ")
	if alg != algorithm {
		return nil, errUnsupportedAuth()
	}
	malformed := func(msg string) error {
		return newError(CodeAuthorizationHeaderMalformed, http.StatusBadRequest,
			"The authorization header is malformed; "+msg)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, malformed("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
		}
		switch k {
		case "Credential", "SignedHeaders", "Signature":
		default:
			return nil, malformed("unknown component " + strconv.Quote(k) + ".")
		}
		if _, dup := fields[k]; dup {
			return nil, malformed("duplicate component " + k + ".")
		}
		fields[k] = val
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return nil, malformed("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
		}
	}
	info := &authInfo{signature: fields["Signature"]}
	var err error
	if info.accessKey, info.scope, err = v.parseCredential(fields["Credential"], malformed); err != nil {
		return nil, err
	}
	info.signedHeaders = parseSignedHeaders(fields["SignedHeaders"])

	// The signing time comes from X-Amz-Date, or from Date if absent.
	if xd := r.Header.Get("X-Amz-Date"); xd != "" {
		info.time, err = time.Parse(iso8601Basic, xd)
	} else if d := r.Header.Get("Date"); d != "" {
		info.time, err = http.ParseTime(d)
		if err == nil && !containsString(info.signedHeaders, "date") {
			return nil, errAccessDenied("The Date header must be signed when it provides the request time.")
		}
	} else {
		err = errAccessDenied("no date")
	}
	if err != nil {
		return nil, wrapError(CodeAccessDenied, http.StatusForbidden,
			"AWS authentication requires a valid Date or x-amz-date header", err)
	}
	if d := info.time.UTC().Format(scopeDateLayout); d != info.scope.date {
		return nil, malformed("Invalid credential date " + strconv.Quote(info.scope.date) +
			". This date is not the same as X-Amz-Date: " + strconv.Quote(d) + ".")
	}
	if skew := v.now().Sub(info.time); skew > v.maxSkew() || skew < -v.maxSkew() {
		return nil, newError(CodeRequestTimeTooSkewed, http.StatusForbidden,
			"The difference between the request time and the current time is too large.")
	}
	info.payloadHash = r.Header.Get("X-Amz-Content-Sha256")
	if info.payloadHash == "" {
		return nil, newError(CodeInvalidRequest, http.StatusBadRequest,
			"Missing required header for this request: x-amz-content-sha256")
	}
	return info, nil
}

func (v *Verifier) parsePresigned(r *http.Request, q url.Values) (*authInfo, error) {
	bad := func(msg string) error {
		return newError(CodeAuthorizationQueryParametersError, http.StatusBadRequest, msg)
	}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires"} {
		if len(q[k]) != 1 || q.Get(k) == "" {
			return nil, bad("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	if q.Get("X-Amz-Algorithm") != algorithm {
		return nil, bad(`X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`)
	}
	info := &authInfo{presigned: true, signature: q.Get("X-Amz-Signature")}
	var err error
	if info.accessKey, info.scope, err = v.parseCredential(q.Get("X-Amz-Credential"), func(msg string) error {
		return bad("Error parsing the X-Amz-Credential parameter; " + msg)
	}); err != nil {
		return nil, err
	}
	info.signedHeaders = parseSignedHeaders(q.Get("X-Amz-SignedHeaders"))
	if info.time, err = time.Parse(iso8601Basic, q.Get("X-Amz-Date")); err != nil {
		return nil, bad(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`)
	}
	if info.time.UTC().Format(scopeDateLayout) != info.scope.date {
		return nil, bad("Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	switch {
	case err != nil:
		return nil, bad("X-Amz-Expires should be a number")
	case secs < 1:
		return nil, bad("X-Amz-Expires must be at least 1")
	case secs > int64(maxPresignExpiry/time.Second):
		return nil, bad("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	}
	now := v.now()
	if info.time.Sub(now) > v.maxSkew() {
		return nil, errAccessDenied("Request is not valid yet")
	}
	if now.After(info.time.Add(time.Duration(secs) * time.Second)) {
		return nil, errAccessDenied("Request has expired")
	}
	// Presigned URLs normally carry no payload hash: UNSIGNED-PAYLOAD. A
	// signer may still have fixed one in the query or a signed header.
	switch {
	case q.Has("X-Amz-Content-Sha256"):
		info.payloadHash = q.Get("X-Amz-Content-Sha256")
	case r.Header.Get("X-Amz-Content-Sha256") != "":
		info.payloadHash = r.Header.Get("X-Amz-Content-Sha256")
	default:
		info.payloadHash = unsignedPayload
	}
	return info, nil
}

// parseCredential splits "AK/yyyymmdd/region/service/aws4_request" and
// checks the scope against the verifier's configuration.
func (v *Verifier) parseCredential(cred string, malformed func(string) error) (string, scope, error) {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[0] == "" {
		return "", scope{}, malformed(`the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`)
	}
	sc := scope{date: parts[1], region: parts[2], service: parts[3]}
	if _, err := time.Parse(scopeDateLayout, sc.date); err != nil || len(sc.date) != 8 {
		return "", scope{}, malformed(`incorrect date format "` + sc.date + `". This date in the credential must be in the format "yyyyMMdd".`)
	}
	if v.Region != "" && sc.region != v.Region {
		return "", scope{}, malformed("the region '" + sc.region + "' is wrong; expecting '" + v.Region + "'")
	}
	if sc.region == "" {
		return "", scope{}, malformed("the region is empty.")
	}
	if sc.service != v.service() {
		return "", scope{}, malformed(`incorrect service "` + sc.service + `". This endpoint belongs to "` + v.service() + `".`)
	}
	if parts[4] != terminator {
		return "", scope{}, malformed(`incorrect terminal "` + parts[4] + `". This endpoint uses "aws4_request".`)
	}
	return parts[0], sc, nil
}

// parseSignedHeaders returns the sorted, lowercase, deduplicated list; a
// client that signed an unsorted list simply fails the signature check.
func parseSignedHeaders(s string) []string {
	var hs []string
	for h := range strings.SplitSeq(s, ";") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" && !containsString(hs, h) {
			hs = append(hs, h)
		}
	}
	sort.Strings(hs)
	return hs
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkSignedHeaders enforces S3's rules: host is always signed, and so is
// every x-amz-* header present, since S3 acts on them (ACLs, checksums,
// metadata) and an unsigned one could be injected in transit. The one
// exception is x-amz-content-sha256: its value is the canonical request's
// last line, so the signature covers it whether or not it is listed, and
// clients of services other than S3 (KMS) sign without sending it at all,
// leaving the server to compute it and set it.
func checkSignedHeaders(r *http.Request, info *authInfo) error {
	if !containsString(info.signedHeaders, "host") {
		if info.presigned {
			return newError(CodeAuthorizationQueryParametersError, http.StatusBadRequest,
				"Query-string authentication requires the host header to be signed.")
		}
		return newError(CodeAuthorizationHeaderMalformed, http.StatusBadRequest,
			"The authorization header is malformed; SignedHeaders must include host.")
	}
	var unsigned []string
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") && lk != "x-amz-content-sha256" && !containsString(info.signedHeaders, lk) {
			unsigned = append(unsigned, lk)
		}
	}
	if len(unsigned) > 0 {
		sort.Strings(unsigned)
		return errAccessDenied("There were headers present in the request which were not signed: " + strings.Join(unsigned, ", "))
	}
	return nil
}

// checkSignature recomputes the request signature and returns it (the seed
// of chunk signatures) if it matches.
func checkSignature(r *http.Request, info *authInfo, key []byte) (string, error) {
	skip := ""
	if info.presigned {
		skip = "X-Amz-Signature"
	}
	got := strings.ToLower(info.signature)
	hosts := []string{r.Host}
	// Signers drop a default port from the host they sign, while some
	// HTTP clients still send it in the Host header.
	if h, ok := strings.CutSuffix(r.Host, ":80"); ok {
		hosts = append(hosts, h)
	} else if h, ok := strings.CutSuffix(r.Host, ":443"); ok {
		hosts = append(hosts, h)
	}
	for _, query := range canonicalQueries(r.URL.RawQuery, skip) {
		for _, host := range hosts {
			cr := canonicalRequest(r, host, info.signedHeaders, query, info.payloadHash)
			sig := hex.EncodeToString(hmacSHA256(key, stringToSign(info.time, info.scope, cr)))
			if hmac.Equal([]byte(sig), []byte(got)) {
				return sig, nil
			}
		}
	}
	return "", errSignatureMismatch()
}
