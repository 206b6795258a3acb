package doctor

// The store checks. The first two write nothing (a signed ListBuckets);
// the others write probe objects under Probe in the bucket they are given,
// through minio-go straight to the store (not through s3seal), and
// Session.Cleanup deletes them.

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/tags"
	"github.com/s3seal/s3seal/internal/store"
)

// Sizes of the probe objects. MinIO refuses parts under 5 MiB but the
// last, so the two-part object's first part is 5 MiB.
const (
	part1Size = 5 << 20
	part2Size = 1 << 10
	smallSize = 1000
	// metadataBytes is the user metadata round-tripped: keys and values
	// add up to it, as S3 counts its 2 KB limit.
	metadataBytes = 2000
	// maxSkew is the clock difference the clock check accepts. s3seal
	// accepts client signatures within 15 minutes of its own clock, and the
	// store accepts s3seal's within 15 minutes of its own; a larger skew
	// than this eats into both windows and into presigned URLs' lifetimes.
	maxSkew = 5 * time.Minute
)

var bucketNeeded = []string{"bucket"}

func storeChecks() []Check {
	return []Check{
		{Name: "upstream", Title: "store answers and accepts s3seal's credential", Required: true, Start: true, Steady: true, Run: checkUpstream},
		{Name: "clock", Title: "this host's clock agrees with the store's", Required: true, Run: checkClock},
		{Name: "bucket", Title: "the bucket for probe objects answers", Required: true, Writes: true, Needs: []string{"upstream"}, Run: checkBucket},
		{Name: "multipart-etag", Title: "multipart ETags end in -N", Required: true, Writes: true, Needs: bucketNeeded, Run: checkMultipartETag},
		{Name: "part-number", Title: "HEAD ?partNumber=1 answers with the part's size and the part count", Required: true, Writes: true, Needs: bucketNeeded, Run: checkPartNumber},
		{Name: "range", Title: "Range is honoured (206 with the bytes asked for)", Required: true, Writes: true, Needs: bucketNeeded, Run: checkRange},
		{Name: "if-match", Title: "If-Match is honoured (412 for another ETag)", Writes: true, Needs: bucketNeeded, Run: checkIfMatch},
		{Name: "copy-replace", Title: "CopyObject with the REPLACE metadata directive replaces the metadata", Required: true, Writes: true, Needs: bucketNeeded, Run: checkCopyReplace},
		{Name: "upload-part-copy", Title: "UploadPartCopy copies the range asked for", Required: true, Writes: true, Needs: bucketNeeded, Run: checkUploadPartCopy},
		{Name: "user-metadata", Title: "2 KB of user metadata round-trips", Required: true, Writes: true, Needs: bucketNeeded, Run: checkUserMetadata},
		{Name: "subresources", Title: "object sub-resources (?tagging) are not taken for PutObject or DeleteObject", Required: true, Writes: true, Needs: bucketNeeded, Run: checkSubresources},
	}
}

// clockSample is when the store's answer was sent and received, and the
// time its Date header gave.
type clockSample struct {
	date, sent, received time.Time
}

// probeObject is an object the session wrote.
type probeObject struct {
	key  string
	etag string
	data []byte
}

// transport is the store's transport: configured, or a clone of
// http.DefaultTransport (as the proxy's) without transparent compression.
func (s *Session) transport() http.RoundTripper {
	if s.cfg.Store.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DisableCompression = true
		s.cfg.Store.Transport = t
	}
	return s.cfg.Store.Transport
}

func (s *Session) storeName() string {
	if s.cfg.Store.Embedded {
		return "the embedded store at " + s.cfg.Store.URL.Redacted()
	}
	return "the store at " + s.cfg.Store.URL.Redacted()
}

// credentialErrors are the S3 error codes that mean s3seal's own upstream
// credential or region is wrong: every proxied request would fail the same way.
var credentialErrors = map[string]bool{
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
	"AuthorizationHeaderMalformed": true, "InvalidToken": true, "ExpiredToken": true,
}

// checkUpstream sends a signed ListBuckets. A 2xx, or any 4xx but a
// refused credential (AccessDenied above all: s3seal does not need
// s3:ListAllMyBuckets), shows a store that answers and takes the
// credential.
func checkUpstream(ctx context.Context, s *Session) Outcome {
	st := s.cfg.Store
	c, err := store.New(store.Config{Endpoint: st.URL, AccessKey: st.AccessKey, SecretKey: st.SecretKey, Region: st.Region, Transport: s.transport()})
	if err != nil {
		return failed(fmt.Sprintf("S3SEAL_UPSTREAM_*: %v", err), "set S3SEAL_UPSTREAM_URL to the store's http or https URL, and its access and secret key")
	}
	sent := s.cfg.Now()
	resp, err := c.Do(ctx, store.Request{Method: http.MethodGet}) // ListBuckets
	received := s.cfg.Now()
	if err != nil {
		return s.unreachable(err)
	}
	defer resp.Body.Close()
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		s.clock = clockSample{date: d, sent: sent, received: received}
	}
	return s.judgeListBuckets(resp)
}

// unreachable is the outcome of a request that got no answer.
func (s *Session) unreachable(err error) Outcome {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // the URL is said separately
	}
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return failed(fmt.Sprintf("%s presents a certificate this host does not trust (%v) — s3seal cannot reach it", s.storeName(), err),
			"give the store a certificate from a CA this host trusts, or add its CA to the system's trust store (or SSL_CERT_FILE)")
	}
	fix := "check S3SEAL_UPSTREAM_URL, and that the store runs and is reachable from this host"
	if s.cfg.Store.Embedded {
		fix = "restart s3seal (it runs the embedded store)"
	}
	return unavailable(fmt.Sprintf("%s does not answer (%v) — every request through s3seal fails with 503 until it does", s.storeName(), err), fix)
}

// judgeListBuckets decides from a ListBuckets answer.
func (s *Session) judgeListBuckets(resp *http.Response) Outcome {
	if resp.StatusCode < 300 {
		return passed(fmt.Sprintf("store answers and accepts s3seal's credential (%s)", s.cfg.Store.URL.Redacted()))
	}
	// Best effort: a missing code is judged by the status.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	s3err := struct{ Code string }{store.ErrorCode(body)}
	said := strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, s3err.Code))
	switch {
	case resp.StatusCode >= 500:
		return unavailable(fmt.Sprintf("%s answered %s to a signed ListBuckets — requests through s3seal fail with 503 while it does", s.storeName(), said),
			"check the store's health and logs; s3seal becomes ready when it answers")
	case s3err.Code == "RequestTimeTooSkewed":
		return failed(fmt.Sprintf("%s refused s3seal's signature as too far from its clock (%s) — every request through s3seal fails", s.storeName(), said),
			"synchronise the clocks of this host and the store (NTP)")
	case credentialErrors[s3err.Code]:
		fix := "set S3SEAL_UPSTREAM_ACCESS_KEY and S3SEAL_UPSTREAM_SECRET_KEY to a credential the store accepts, and S3SEAL_UPSTREAM_REGION to the region it signs for"
		if s.cfg.Store.Embedded {
			fix = "restart s3seal: the embedded store makes its credential at each start"
		}
		return failed(fmt.Sprintf("%s refused s3seal's credential (%s) — every request s3seal forwards fails the same way", s.storeName(), said), fix)
	}
	return passed(fmt.Sprintf("store answers and accepts s3seal's credential (%s; ListBuckets answered %s, which s3seal does not need)", s.cfg.Store.URL.Redacted(), said))
}

// checkClock compares the store's Date with this host's clock, from the
// answer checkUpstream got.
func checkClock(_ context.Context, s *Session) Outcome {
	c := s.clock
	if c.date.IsZero() {
		return skipped("needs an answer from the store with a Date header (see upstream)")
	}
	// Date is truncated to the second: the store's clock read date+0.5s
	// on average, half-way through the round trip.
	mid := c.sent.Add(c.received.Sub(c.sent) / 2)
	skew := c.date.Add(500 * time.Millisecond).Sub(mid)
	slack := c.received.Sub(c.sent)/2 + time.Second
	abs := skew.Abs()
	if abs <= slack {
		return passed("this host's clock agrees with the store's (within " + slack.Round(time.Second).String() + ")")
	}
	dir := "ahead of"
	if skew > 0 {
		dir = "behind"
	}
	desc := fmt.Sprintf("this host's clock is %s %s the store's", abs.Round(time.Second), dir)
	if abs <= maxSkew {
		return passed(desc + " (under " + maxSkew.String() + ")")
	}
	return failed(desc+" — s3seal checks clients' signatures and presigned URLs against its own clock (±15 min) and the store checks s3seal's against its: short-lived presigned URLs fail now, and past 15 min every request does",
		"synchronise the clocks of this host and the store (NTP)")
}

// minio returns the client the probes use, or the outcome when there is none.
func (s *Session) minio() (*minio.Client, *Outcome) {
	if s.client == nil && s.clientErr == nil {
		u := s.cfg.Store.URL
		if strings.Trim(u.Path, "/") != "" {
			s.clientErr = fmt.Errorf("the store URL has a path (%s), which the probes cannot address", u.Path)
		} else {
			st := s.cfg.Store
			s.client, s.clientErr = minio.New(u.Host, &minio.Options{
				Creds:        credentials.NewStaticV4(st.AccessKey, st.SecretKey, ""),
				Secure:       u.Scheme == "https",
				Region:       st.Region,
				BucketLookup: minio.BucketLookupPath, // as s3seal addresses the store
				Transport:    s.transport(),
				MaxRetries:   1,
			})
		}
	}
	if s.clientErr != nil {
		o := failed("cannot run the probes: "+s.clientErr.Error(), "run s3seal doctor against the store's address without a path")
		return nil, &o
	}
	return s.client, nil
}

// probeKey is the key of the session's probe object called name.
func (s *Session) probeKey(name string) string {
	if s.prefix == "" {
		b := make([]byte, 4)
		rand.Read(b)
		s.prefix = Probe + s.cfg.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b) + "/"
	}
	return s.prefix + name
}

// put writes a probe object called name, its body signed (SHA-256 and
// Content-MD5) and sent as it is.
func (s *Session) put(ctx context.Context, name string, data []byte, opts minio.PutObjectOptions) (*probeObject, error) {
	c, _ := s.minio()
	key := s.probeKey(name)
	s.wroteAny = true
	md5sum := md5.Sum(data)
	shasum := sha256.Sum256(data)
	opts.DisableContentSha256 = true // no aws-chunked framing: the hash below is signed instead
	info, err := minio.Core{Client: c}.PutObject(ctx, s.cfg.Bucket, key, bytes.NewReader(data), int64(len(data)),
		base64.StdEncoding.EncodeToString(md5sum[:]), hex.EncodeToString(shasum[:]), opts)
	if err != nil {
		return nil, err
	}
	return &probeObject{key: key, etag: info.ETag, data: data}, nil
}

// smallObject is a 1000-byte probe object, written on first use.
func (s *Session) smallObject(ctx context.Context) (*probeObject, error) {
	if s.small != nil {
		return s.small, nil
	}
	o, err := s.put(ctx, "small", pattern(smallSize, 's'), minio.PutObjectOptions{})
	if err != nil {
		return nil, err
	}
	s.small = o
	return o, nil
}

// pattern is n bytes that differ at every offset (mod 251), so a shifted
// or wrong range does not compare equal.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) ^ seed
	}
	return b
}

// storeFailure is the outcome of a store request that failed: what was
// asked, what the store said, what breaks and how to fix it.
func (s *Session) storeFailure(what string, err error, breaks, fix string) Outcome {
	msg := fmt.Sprintf("%s failed: %s", what, describeStoreError(err))
	if breaks != "" {
		msg += " — " + breaks
	}
	if storeUnavailable(err) {
		return unavailable(msg, "check that the store runs and answers, then run s3seal doctor again")
	}
	if fix == "" {
		fix = fmt.Sprintf("check that s3seal's store credential may read and write objects in bucket %s", s.cfg.Bucket)
	}
	return failed(msg, fix)
}

func describeStoreError(err error) string {
	if er := minio.ToErrorResponse(err); er.StatusCode != 0 || er.Code != "" {
		d := strings.TrimSpace(fmt.Sprintf("%d %s", er.StatusCode, er.Code))
		if er.Message != "" {
			d += " (" + oneLine(er.Message, 160) + ")"
		}
		return d
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return oneLine(err.Error(), 200)
}

// storeUnavailable: the store did not answer, or answered 5xx.
func storeUnavailable(err error) bool {
	if minio.ToErrorResponse(err).StatusCode >= 500 {
		return true
	}
	var nerr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr)
}

func checkBucket(ctx context.Context, s *Session) Outcome {
	c, o := s.minio()
	if o != nil {
		return *o
	}
	ok, err := c.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return s.storeFailure("HEAD of bucket "+s.cfg.Bucket, err, "", "")
	}
	if !ok {
		return failed(fmt.Sprintf("bucket %s does not exist in the store", s.cfg.Bucket), "create it, or name an existing bucket with --bucket")
	}
	return passed(fmt.Sprintf("bucket %s answers; probe objects go under %s in it and are deleted afterwards", s.cfg.Bucket, s.probeKey("")))
}

// checkMultipartETag completes a two-part upload and reads the part count
// off its ETag. The object is kept for checkPartNumber.
func checkMultipartETag(ctx context.Context, s *Session) Outcome {
	c, o := s.minio()
	if o != nil {
		return *o
	}
	core := minio.Core{Client: c}
	key := s.probeKey("multipart")
	s.wroteAny = true
	uploadID, err := core.NewMultipartUpload(ctx, s.cfg.Bucket, key, minio.PutObjectOptions{})
	if err != nil {
		return s.storeFailure("CreateMultipartUpload", err, "multipart uploads through s3seal fail", "")
	}
	s.uploads = append(s.uploads, key+"\x00"+uploadID)
	data := [][]byte{pattern(part1Size, 1), pattern(part2Size, 2)}
	var parts []minio.CompletePart
	for i, d := range data {
		md5sum := md5.Sum(d)
		shasum := sha256.Sum256(d)
		p, err := core.PutObjectPart(ctx, s.cfg.Bucket, key, uploadID, i+1, bytes.NewReader(d), int64(len(d)), minio.PutObjectPartOptions{
			Md5Base64: base64.StdEncoding.EncodeToString(md5sum[:]), Sha256Hex: hex.EncodeToString(shasum[:]), DisableContentSha256: true})
		if err != nil {
			return s.storeFailure(fmt.Sprintf("UploadPart %d", i+1), err, "multipart uploads through s3seal fail", "")
		}
		parts = append(parts, minio.CompletePart{PartNumber: i + 1, ETag: p.ETag})
	}
	info, err := core.CompleteMultipartUpload(ctx, s.cfg.Bucket, key, uploadID, parts, minio.PutObjectOptions{})
	if err != nil {
		return s.storeFailure("CompleteMultipartUpload", err, "multipart uploads through s3seal fail", "")
	}
	s.completed[key+"\x00"+uploadID] = true
	s.multipart = &probeObject{key: key, etag: info.ETag, data: bytes.Join(data, nil)}
	etag := strings.Trim(info.ETag, `"`)
	_, count, marked := strings.Cut(etag, "-")
	switch {
	case marked && count == "2":
		return passed(fmt.Sprintf("multipart ETags end in -N (%q for a 2-part upload)", etag))
	case marked:
		return failed(fmt.Sprintf("the store answered %q for a 2-part upload — s3seal takes the -N for an object's part count, so it would refuse every multipart object as corrupt (its size does not fit)", etag),
			"use a store whose multipart ETags end in the part count, as AWS S3, MinIO and versitygw do")
	}
	return failed(fmt.Sprintf("the store answered %q for a 2-part upload — s3seal then asks the store for each object's part count (HEAD ?partNumber=1): one more request for every object read and for every object in a listing, so listings get slow", etag),
		"use a store whose multipart ETags end in -N (the part count), as AWS S3, MinIO and versitygw do")
}

// checkPartNumber asks for the size of each part of the two-part object
// and for its part count, as s3seal does to learn a multipart object's
// layout.
func checkPartNumber(ctx context.Context, s *Session) Outcome {
	if s.multipart == nil {
		return skipped("needs the 2-part object, whose upload failed (see multipart-etag)")
	}
	c, o := s.minio()
	if o != nil {
		return *o
	}
	const breaks = "s3seal learns a multipart object's layout from its part sizes and checks every part read against the part count: ranged reads, part reads and copies of multipart objects fail (502), and where ETags lack -N every multipart object does"
	const fix = "use a store that answers ?partNumber=N reads with the part and x-amz-mp-parts-count, as AWS S3, MinIO and versitygw do"
	for k, want := range []int64{part1Size, part2Size} {
		info, err := c.StatObject(ctx, s.cfg.Bucket, s.multipart.key, minio.StatObjectOptions{PartNumber: k + 1})
		if err != nil {
			return s.storeFailure(fmt.Sprintf("HEAD ?partNumber=%d of a 2-part object", k+1), err, breaks, fix)
		}
		count := info.Headers.Get("X-Amz-Mp-Parts-Count")
		if info.Size != want || count != "2" {
			said := "no part count"
			if count != "" {
				said = "part count " + count
			}
			return failed(fmt.Sprintf("HEAD ?partNumber=%d of a 2-part object (parts of %d and %d bytes) answered %d bytes and %s — %s",
				k+1, part1Size, part2Size, info.Size, said, breaks), fix)
		}
	}
	return passed(fmt.Sprintf("HEAD ?partNumber=1 answers with the part's size and the part count (%d bytes, 2 parts)", part1Size))
}

func checkRange(ctx context.Context, s *Session) Outcome {
	obj, err := s.smallObject(ctx)
	if err != nil {
		return s.storeFailure("PutObject", err, "", "")
	}
	c, _ := s.minio()
	var opts minio.GetObjectOptions
	opts.SetRange(100, 199)
	body, h, err := getAll(ctx, c, s.cfg.Bucket, obj.key, opts)
	if err != nil {
		return s.storeFailure("GET with Range: bytes=100-199", err, "ranged GETs through s3seal fail", "")
	}
	want := fmt.Sprintf("bytes 100-199/%d", smallSize)
	if got := h.Get("Content-Range"); got != want || !bytes.Equal(body, obj.data[100:200]) {
		said := "without Content-Range"
		if got != "" {
			said = fmt.Sprintf("with Content-Range %q", got)
		}
		return failed(fmt.Sprintf("a GET with Range: bytes=100-199 of a %d-byte object answered %d bytes %s — s3seal reads only the chunks a ranged GET needs and refuses an answer that is not that range: ranged GETs, part reads and multipart copies through s3seal fail (502)",
			smallSize, len(body), said), "use a store that honours Range (206 Partial Content)")
	}
	return passed("Range is honoured (206 with bytes 100-199 of a 1000-byte object)")
}

// getAll reads an object whole, with its answer's header.
func getAll(ctx context.Context, c *minio.Client, bucket, key string, opts minio.GetObjectOptions) ([]byte, http.Header, error) {
	rc, _, h, err := minio.Core{Client: c}.GetObject(ctx, bucket, key, opts)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	return b, h, err
}

func checkIfMatch(ctx context.Context, s *Session) Outcome {
	obj, err := s.smallObject(ctx)
	if err != nil {
		return s.storeFailure("PutObject", err, "", "")
	}
	c, _ := s.minio()
	var other minio.GetObjectOptions
	other.SetMatchETag(strings.Repeat("0", 32))
	_, _, err = getAll(ctx, c, s.cfg.Bucket, obj.key, other)
	const breaks = "s3seal pins the reads that follow an object's first answer to its ETag, and passes clients' conditions on: an object overwritten during a read then fails authentication (502) instead of 412, and clients' If-Match and If-None-Match do nothing"
	const fix = "use a store that honours If-Match"
	switch er := minio.ToErrorResponse(err); {
	case err == nil:
		return failed("a GET with If-Match of another ETag answered 200 — "+breaks, fix)
	case er.StatusCode != http.StatusPreconditionFailed:
		return s.storeFailure("a GET with If-Match of another ETag", err, breaks, fix)
	}
	var same minio.GetObjectOptions
	same.SetMatchETag(obj.etag)
	if _, _, err := getAll(ctx, c, s.cfg.Bucket, obj.key, same); err != nil {
		return s.storeFailure("a GET with If-Match of the object's own ETag", err, breaks, fix)
	}
	return passed("If-Match is honoured (412 for another ETag, 200 for the object's)")
}

// metaHas reports whether stored user metadata has key=value (keys are
// case-insensitive) and no key of drop.
func metaHas(meta map[string]string, want map[string]string, drop ...string) bool {
	lower := map[string]string{}
	for k, v := range meta {
		lower[strings.ToLower(k)] = v
	}
	for k, v := range want {
		if lower[strings.ToLower(k)] != v {
			return false
		}
	}
	for _, k := range drop {
		if _, ok := lower[strings.ToLower(k)]; ok {
			return false
		}
	}
	return true
}

// checkCopyReplace copies an object to another key and onto itself with
// REPLACE, as s3seal does for every copy (the copy's metadata carries a
// re-wrapped data key) and for moving objects between CMKs.
func checkCopyReplace(ctx context.Context, s *Session) Outcome {
	src, err := s.put(ctx, "copy-source", pattern(smallSize, 'c'), minio.PutObjectOptions{UserMetadata: map[string]string{"doctor-source": "1"}})
	if err != nil {
		return s.storeFailure("PutObject", err, "", "")
	}
	c, _ := s.minio()
	const breaks = "every copy through s3seal stores a re-wrapped data key in the copy's metadata with REPLACE: copies would fail to decrypt, or fail outright"
	const fix = "use a store that applies x-amz-metadata-directive: REPLACE on CopyObject, also onto the same key"
	dst := s.probeKey("copy-destination")
	s.wroteAny = true
	steps := []struct {
		what     string
		from, to string
		meta     string
		etag     string
	}{
		{"CopyObject with REPLACE to another key", src.key, dst, "doctor-copy", src.etag},
		{"CopyObject with REPLACE onto the same key (how objects move to another CMK)", dst, dst, "doctor-self", ""},
	}
	prev := "doctor-source"
	for _, st := range steps {
		_, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: st.to, ReplaceMetadata: true, UserMetadata: map[string]string{st.meta: "2"}},
			minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: st.from, MatchETag: st.etag})
		if err != nil {
			return s.storeFailure(st.what, err, breaks, fix)
		}
		info, err := c.StatObject(ctx, s.cfg.Bucket, st.to, minio.StatObjectOptions{})
		if err != nil {
			return s.storeFailure("HEAD of the copy", err, breaks, fix)
		}
		if !metaHas(info.UserMetadata, map[string]string{st.meta: "2"}, prev) || info.Size != smallSize {
			return failed(fmt.Sprintf("%s left the copy with metadata %v and %d bytes — %s", st.what, keys(info.UserMetadata), info.Size, breaks), fix)
		}
		prev = st.meta
	}
	return passed("CopyObject with the REPLACE metadata directive replaces the metadata (to another key and onto the same key)")
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, strings.ToLower(k))
	}
	return out
}

// checkUploadPartCopy copies bytes 100-299 of an object into a new
// upload, as s3seal copies a multipart object part by part.
func checkUploadPartCopy(ctx context.Context, s *Session) Outcome {
	src, err := s.smallObject(ctx)
	if err != nil {
		return s.storeFailure("PutObject", err, "", "")
	}
	c, _ := s.minio()
	core := minio.Core{Client: c}
	const breaks = "s3seal copies a multipart object part by part with ranged UploadPartCopy: such copies through s3seal fail"
	const fix = "use a store that honours x-amz-copy-source-range"
	key := s.probeKey("part-copy")
	s.wroteAny = true
	uploadID, err := core.NewMultipartUpload(ctx, s.cfg.Bucket, key, minio.PutObjectOptions{})
	if err != nil {
		return s.storeFailure("CreateMultipartUpload", err, breaks, "")
	}
	s.uploads = append(s.uploads, key+"\x00"+uploadID)
	part, err := core.CopyObjectPart(ctx, s.cfg.Bucket, src.key, s.cfg.Bucket, key, uploadID, 1, 100, 200, nil)
	if err != nil {
		return s.storeFailure("UploadPartCopy with x-amz-copy-source-range: bytes=100-299", err, breaks, fix)
	}
	if _, err := core.CompleteMultipartUpload(ctx, s.cfg.Bucket, key, uploadID, []minio.CompletePart{{PartNumber: 1, ETag: part.ETag}}, minio.PutObjectOptions{}); err != nil {
		return s.storeFailure("CompleteMultipartUpload after UploadPartCopy", err, breaks, "")
	}
	s.completed[key+"\x00"+uploadID] = true
	got, _, err := getAll(ctx, c, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return s.storeFailure("GET of the copy", err, breaks, "")
	}
	if !bytes.Equal(got, src.data[100:300]) {
		return failed(fmt.Sprintf("UploadPartCopy with x-amz-copy-source-range: bytes=100-299 of a %d-byte object made a %d-byte part, not those 200 bytes — %s", smallSize, len(got), breaks), fix)
	}
	return passed("UploadPartCopy copies the range asked for (bytes 100-299)")
}

// userMetadata is metadataBytes of user metadata: four entries whose keys
// and values add up to it.
func userMetadata() map[string]string {
	m := map[string]string{}
	per := metadataBytes / 4
	for i := range 4 {
		k := fmt.Sprintf("doctor-meta-%d", i)
		v := make([]byte, per-len(k))
		for j := range v {
			v[j] = "abcdefghijklmnopqrstuvwxyz0123456789"[(i*7+j)%36]
		}
		m[k] = string(v)
	}
	return m
}

func checkUserMetadata(ctx context.Context, s *Session) Outcome {
	meta := userMetadata()
	const breaks = "s3seal keeps about 350 bytes of its own metadata (the wrapped data key; up to 1 KiB more with a client's encryption context) beside the client's, within S3's 2 KB: PUTs with metadata near the limit fail or lose entries, and objects may lose the key that decrypts them"
	const fix = "use a store that keeps 2 KB of user metadata per object, as S3 does"
	obj, err := s.put(ctx, "metadata", []byte("metadata probe"), minio.PutObjectOptions{UserMetadata: meta})
	if err != nil {
		return s.storeFailure(fmt.Sprintf("PutObject with %d bytes of user metadata", metadataBytes), err, breaks, fix)
	}
	c, _ := s.minio()
	info, err := c.StatObject(ctx, s.cfg.Bucket, obj.key, minio.StatObjectOptions{})
	if err != nil {
		return s.storeFailure("HEAD of the object", err, breaks, "")
	}
	if !metaHas(info.UserMetadata, meta) {
		kept := 0
		for k, v := range meta {
			if metaHas(info.UserMetadata, map[string]string{k: v}) {
				kept++
			}
		}
		return failed(fmt.Sprintf("the store kept %d of %d user metadata entries (%d bytes) intact — %s", kept, len(meta), metadataBytes, breaks), fix)
	}
	return passed(fmt.Sprintf("%d bytes of user metadata round-trip", metadataBytes))
}

// checkSubresources tags an object and removes its tags, then checks the
// object itself is as it was: a store that routes PUT ?tagging as a
// PutObject replaces the object with the tagging document.
func checkSubresources(ctx context.Context, s *Session) Outcome {
	obj, err := s.put(ctx, "subresources", []byte("sub-resource probe"), minio.PutObjectOptions{})
	if err != nil {
		return s.storeFailure("PutObject", err, "", "")
	}
	c, _ := s.minio()
	const breaks = "a store that does not route object sub-resources replaces (PUT ?tagging, ?acl, ?retention) or deletes (DELETE ?tagging) the object a configuration call names; s3seal answers 502 where it can tell but cannot undo what the store did"
	const fix = "use a store that routes object sub-resources (?tagging, ?acl, ?retention, ?legal-hold), as AWS S3, MinIO and versitygw do"
	unchanged := func(step string) *Outcome {
		info, err := c.StatObject(ctx, s.cfg.Bucket, obj.key, minio.StatObjectOptions{})
		if err != nil {
			o := s.storeFailure("HEAD of the object after "+step, err, breaks, fix)
			if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
				o = failed(step+" deleted the object itself — "+breaks, fix)
			}
			return &o
		}
		if info.ETag != obj.etag || info.Size != int64(len(obj.data)) {
			o := failed(fmt.Sprintf("%s changed the object itself (ETag %q, %d bytes; it was %q, %d bytes): the store took it for an object write — %s",
				step, info.ETag, info.Size, obj.etag, len(obj.data), breaks), fix)
			return &o
		}
		return nil
	}
	t, err := tags.NewTags(map[string]string{"s3seal-doctor": "probe"}, true)
	if err != nil {
		return failed(err.Error(), "")
	}
	if err := c.PutObjectTagging(ctx, s.cfg.Bucket, obj.key, t, minio.PutObjectTaggingOptions{}); err != nil {
		if o := unchanged("PUT ?tagging"); o != nil {
			return *o
		}
		return s.storeFailure("PUT ?tagging", err, breaks, fix)
	}
	if o := unchanged("PUT ?tagging"); o != nil {
		return *o
	}
	got, err := c.GetObjectTagging(ctx, s.cfg.Bucket, obj.key, minio.GetObjectTaggingOptions{})
	if err != nil {
		return s.storeFailure("GET ?tagging", err, breaks, fix)
	}
	if got.ToMap()["s3seal-doctor"] != "probe" {
		return failed(fmt.Sprintf("GET ?tagging answered tags %v, not the tag just set — %s", got.ToMap(), breaks), fix)
	}
	if err := c.RemoveObjectTagging(ctx, s.cfg.Bucket, obj.key, minio.RemoveObjectTaggingOptions{}); err != nil {
		if o := unchanged("DELETE ?tagging"); o != nil {
			return *o
		}
		return s.storeFailure("DELETE ?tagging", err, breaks, fix)
	}
	if o := unchanged("DELETE ?tagging"); o != nil {
		return *o
	}
	return passed("object sub-resources are routed (PUT, GET and DELETE ?tagging left the object as it was)")
}

// Cleanup deletes every probe object the session wrote (every version,
// in a versioned bucket) and aborts its uncompleted uploads. It is safe to
// call more than once.
func (s *Session) Cleanup(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.wroteAny || s.client == nil {
		return nil
	}
	c, bucket := s.client, s.cfg.Bucket
	var errs []error
	for _, u := range s.uploads {
		key, id, _ := strings.Cut(u, "\x00")
		if s.completed[u] {
			continue
		}
		if err := (minio.Core{Client: c}).AbortMultipartUpload(ctx, bucket, key, id); err != nil && minio.ToErrorResponse(err).Code != "NoSuchUpload" {
			errs = append(errs, fmt.Errorf("aborting the upload of %s: %s", key, describeStoreError(err)))
		}
	}
	s.uploads = nil
	// Every version under the prefix; a store without versions lists
	// each object once (version "null" or none).
	deleteAll := func(versions bool) error {
		var failed []error
		for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true, WithVersions: versions}) {
			if obj.Err != nil {
				return obj.Err
			}
			opts := minio.RemoveObjectOptions{}
			if versions && obj.VersionID != "" && obj.VersionID != "null" {
				opts.VersionID = obj.VersionID
			}
			if err := c.RemoveObject(ctx, bucket, obj.Key, opts); err != nil {
				failed = append(failed, fmt.Errorf("deleting %s: %s", obj.Key, describeStoreError(err)))
			}
		}
		return errors.Join(failed...)
	}
	err := deleteAll(true)
	if err != nil {
		err = deleteAll(false)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("probe objects under %s/%s may be left: %w", bucket, s.prefix, errors.Join(errs...))
	}
	return nil
}
