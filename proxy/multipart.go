package proxy

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/store"
)

// Multipart uploads (docs/FORMAT.md, "Multipart uploads"). Each part is one
// segment of the object, numbered by its part number, all under the one data
// key made at CreateMultipartUpload; the completed object is therefore in
// the same format as any other. s3seal keeps no state of its own: the
// UploadId it hands out is an upload token (envelope.UploadToken).

const maxPartNumber = 10000

// createUpload serves CreateMultipartUpload: a fresh data key for the object,
// its wrapped form in the upload's metadata (which the completed object
// keeps), and an UploadId token that carries it to the parts.
func (p *Proxy) createUpload(x *exchange) error {
	t := x.t
	ctx := x.r.Context()
	algorithm, typ, err := declaredChecksum(t.header)
	if err != nil {
		return err
	}
	keys, err := p.writeKeys(x)
	if err != nil {
		return err
	}
	// One data key serves all of an upload's parts: bucket keys would save
	// nothing (FORMAT.md §6.3).
	dk, meta, err := keys.WithoutBucketKeys().New(ctx, t.bucket, t.key)
	if err != nil {
		return err
	}
	defer clear(dk)
	declare(&meta, algorithm, typ)

	header := objectWriteHeader(t.header, meta)
	header.Del("If-Match") // conditions belong to CompleteMultipartUpload
	header.Del("If-None-Match")
	// No x-amz-checksum-algorithm: the store would then demand checksums of
	// the ciphertext parts, which the client cannot compute. s3seal checks
	// the client's checksums of the plaintext itself (sigv4) and records
	// them (FramingV2).
	uploadID, resp, err := p.store.CreateUpload(ctx, x.written(), header)
	if err != nil {
		return err
	}
	token, err := envelope.NewUploadToken(uploadID, meta, dk, t.bucket, t.key)
	if err != nil {
		// Leave nothing behind.
		p.abortUpstream(x, uploadID)
		return errInternal(err)
	}
	h := x.w.Header()
	copyHeaders(h, resp.Header, "x-amz-abort-date", "x-amz-abort-rule-id", "x-amz-request-charged")
	setEncryptionHeaders(h, meta)
	setContextHeader(h, meta)
	if algorithm != "" {
		h.Set("X-Amz-Checksum-Algorithm", algorithm)
		h.Set("X-Amz-Checksum-Type", typ)
	}
	return writeXML(x, http.StatusOK, struct {
		XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
		Bucket   string
		Key      string
		UploadID string `xml:"UploadId"`
	}{Bucket: t.bucket, Key: t.key, UploadID: token})
}

// partNumberParam reads and checks partNumber.
func partNumberParam(q url.Values) (int, error) {
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > maxPartNumber {
		return 0, newS3Error("InvalidArgument", http.StatusBadRequest,
			"Part number must be an integer between 1 and 10000, inclusive.", err)
	}
	return n, nil
}

// uploadKey decodes the client's UploadId and unwraps its data key, for the
// requests that encrypt (UploadPart, UploadPartCopy). Any s3seal process
// with access to the CMK can do this: the token is all the state there is.
func (p *Proxy) uploadKey(x *exchange) (envelope.UploadToken, []byte, error) {
	tok, _, err := uploadTokenParam(x.t)
	if err != nil {
		return tok, nil, err
	}
	if !tok.HasKey {
		return tok, nil, newS3Error("InvalidArgument", http.StatusBadRequest,
			"This UploadId comes from ListMultipartUploads and cannot be used to upload parts or complete the upload through s3seal: "+
				"the store does not list the upload's encryption key. Use the UploadId that CreateMultipartUpload returned.", nil)
	}
	// Cached (kms.Cache): one key-service call per upload, not per part.
	dk, err := p.keys.Open(x.r.Context(), tok.Meta, x.t.bucket, x.t.key)
	if errors.Is(err, kms.ErrInvalidCiphertext) {
		// A token of another object: its key is bound elsewhere.
		return tok, nil, errNoSuchUpload(err)
	}
	if err != nil {
		return tok, nil, err
	}
	if !tok.Verify(dk, x.t.bucket, x.t.key) {
		clear(dk)
		return tok, nil, errNoSuchUpload(errors.New("upload token tag mismatch"))
	}
	return tok, dk, nil
}

// partPut is the store's PUT of part k of an upload.
func partPut(x *exchange, upstreamID string, k int) store.Request {
	q := url.Values{"uploadId": {upstreamID}, "partNumber": {strconv.Itoa(k)}}
	return x.written().Request(http.MethodPut, q, nil)
}

// uploadPart serves UploadPart: the body encrypted as segment k, streamed.
// Parts may come in any order, in parallel, and again with other bytes:
// every segment gets a fresh random salt and so its own key.
func (p *Proxy) uploadPart(x *exchange) error {
	k, err := partNumberParam(x.t.query)
	if err != nil {
		return err
	}
	size := x.verified.ContentLength
	if err := checkBodySize(size, maxPartSize, "part"); err != nil {
		return err
	}
	tok, dk, err := p.uploadKey(x)
	if err != nil {
		return err
	}
	defer clear(dk)
	rec, err := newPartRecorder(tok.Meta, x.verified)
	if err != nil {
		return err
	}
	resp, err := p.putEncrypted(x, partPut(x, tok.UploadID, k), clientBody{x.verified.Body}, size, dk, uint32(k), rec)
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	h := x.w.Header()
	copyHeaders(h, resp.Header, "etag", "x-amz-request-charged")
	setEncryptionHeaders(h, tok.Meta)
	if x.verified.Checksum != "" {
		h.Set("X-Amz-Checksum-"+x.verified.Checksum, x.verified.ChecksumValue())
	}
	rec.setHeader(h)
	h.Set("Content-Length", "0")
	x.w.WriteHeader(resp.StatusCode)
	return nil
}

type completePart struct {
	PartNumber int
	ETag       string
}

// completeUpload serves CompleteMultipartUpload. The format puts segment k
// at position k, so the parts must be exactly 1..N in order; and the sizes
// of multipart objects follow from their listing rows only under the
// multipart rule (every part but the last a non-zero multiple of 64 KiB), so
// an upload that breaks it is aborted upstream and refused, leaving nothing
// behind, rather than completed into an object whose size s3seal could not
// report.
func (p *Proxy) completeUpload(x *exchange) error {
	// As on AWS, completing an upload takes the right to use its CMK: the
	// token is opened (grant checked) and its tag verified, so that its
	// KeyID is the upload's and not the client's word.
	tok, dk, err := p.uploadKey(x)
	if err != nil {
		return err
	}
	defer clear(dk)
	if err := p.checkCompleteSSE(x, tok.Meta); err != nil {
		return err
	}
	if err := checkCompleteChecksum(x.t.header, tok.Meta); err != nil {
		return err
	}
	if err := p.checkDestination(x); err != nil {
		return err
	}
	parts, err := completeParts(x.doc)
	if err != nil {
		return err
	}
	sizes, err := p.checkParts(x, tok.UploadID, parts, tok.Meta.Framing)
	if err != nil {
		return err
	}
	if err := checkObjectSize(x.t.header, sizes.PlaintextSize()); err != nil {
		return err
	}
	done, err := p.complete(x, tok.UploadID, parts, sizes)
	var late *lateError
	if errors.As(err, &late) {
		return p.relayLateError(x, late.resp, late.body)
	}
	if done == nil {
		return err
	}
	h := x.w.Header()
	copyHeaders(h, done.header, "x-amz-version-id", "x-amz-expiration", "x-amz-request-charged")
	setEncryptionHeaders(h, envelope.Metadata{})
	result := completeResult{Location: objectURL(x), Bucket: x.t.bucket, Key: x.t.key, ETag: done.etag}
	if c := p.completedChecksum(x, done, tok.Meta, sizes, dk); c != nil {
		result.checksumValues, result.ChecksumType = valuesOf(*c), c.Type
	}
	return writeXML(x, http.StatusOK, result)
}

type completeResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
	Location string
	Bucket   string
	Key      string
	ETag     string
	checksumValues
	ChecksumType string `xml:",omitempty"`
}

// completeParts reads the parts of a CompleteMultipartUpload document:
// numbered 1..N in order, and only number and ETag (the client's checksums
// describe plaintext).
func completeParts(doc []byte) ([]store.Part, error) {
	var req struct {
		Parts []completePart `xml:"Part"`
	}
	if err := xml.Unmarshal(doc, &req); err != nil {
		return nil, newS3Error("MalformedXML", http.StatusBadRequest,
			"The XML you provided was not well-formed or did not validate against our published schema.", err)
	}
	if len(req.Parts) == 0 {
		return nil, newS3Error("MalformedXML", http.StatusBadRequest, "You must specify at least one part.", nil)
	}
	parts := make([]store.Part, len(req.Parts))
	for i, pt := range req.Parts {
		if i > 0 && pt.PartNumber <= parts[i-1].PartNumber {
			return nil, newS3Error("InvalidPartOrder", http.StatusBadRequest,
				"The list of parts was not in ascending order. Parts must be ordered by part number.", nil)
		}
		parts[i] = store.Part(pt)
	}
	for i, pt := range parts {
		if pt.PartNumber != i+1 {
			return nil, newS3Error("InvalidPart", http.StatusBadRequest, fmt.Sprintf(
				"s3seal completes only uploads whose parts are numbered 1, 2, ..., N without gaps; part %d is missing from the list.", i+1), nil)
		}
	}
	return parts, nil
}

// checkParts checks the parts to complete against what the store lists of
// the upload, and returns their plaintext sizes, in the upload's framing. An
// upload that breaks the multipart rule is aborted (see completeUpload).
func (p *Proxy) checkParts(x *exchange, upstreamID string, parts []store.Part, f envelope.Framing) (envelope.Layout, error) {
	listed, err := p.listAllParts(x, upstreamID, len(parts))
	if err != nil {
		return envelope.Layout{}, err
	}
	sizes := envelope.Layout{Framing: f, Parts: make([]int64, len(parts))}
	for i, pt := range parts {
		lp, ok := listed[pt.PartNumber]
		if !ok || normETag(lp.ETag) != normETag(pt.ETag) {
			return envelope.Layout{}, newS3Error("InvalidPart", http.StatusBadRequest, fmt.Sprintf(
				"One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag (part %d).", pt.PartNumber), nil)
		}
		plain, err := envelope.SegmentPlaintextSize(lp.Size)
		if err != nil {
			return envelope.Layout{}, errCorrupt(fmt.Errorf("part %d: %w", pt.PartNumber, err))
		}
		sizes.Parts[i] = plain
		if i < len(parts)-1 && plain < p.minPartSize {
			// S3's own rule, said as S3 says it, before s3seal's: the
			// client can upload the part again and complete.
			return envelope.Layout{}, errEntityTooSmall(pt, plain, p.minPartSize)
		}
		if i < len(parts)-1 && !envelope.NotLast(plain) {
			p.abortUpstream(x, upstreamID)
			return envelope.Layout{}, newS3Error("InvalidPart", http.StatusBadRequest, fmt.Sprintf(
				"s3seal requires every part but the last to be a non-zero multiple of 64 KiB (65536 bytes); part %d has %d bytes. "+
					"The upload has been aborted: upload again with a part size such as 8 MiB.", pt.PartNumber, plain), nil)
		}
	}
	return sizes, nil
}

// checkObjectSize checks a Complete's x-amz-mp-object-size, which SDKs
// send, against the plaintext size of the parts, as S3 checks it.
func checkObjectSize(h http.Header, size int64) error {
	v := strings.TrimSpace(h.Get("X-Amz-Mp-Object-Size"))
	if v == "" {
		return nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err != nil || n != size {
		return newS3Error("InvalidRequest", http.StatusBadRequest, fmt.Sprintf(
			"The provided 'x-amz-mp-object-size' header value %s does not match what was computed: %d", v, size), err)
	}
	return nil
}

// defaultMinPartSize is S3's smallest part but the last.
const defaultMinPartSize = 5 << 20

// errEntityTooSmall is S3's answer to a part under min that is not the
// last, with the details S3 gives.
func errEntityTooSmall(pt store.Part, size, min int64) *s3Error {
	e := newS3Error("EntityTooSmall", http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size.", nil)
	e.Details = []xmlField{
		field("ProposedSize", strconv.FormatInt(size, 10)), field("MinSizeAllowed", strconv.FormatInt(min, 10)),
		field("PartNumber", strconv.Itoa(pt.PartNumber)), field("ETag", normETag(pt.ETag)),
	}
	return e
}

// completion is what a store says of a completed upload.
type completion struct {
	etag   string
	header http.Header
}

// complete completes upload id of the object x writes with parts, whose
// plaintext sizes are layout, under the client's conditions. A nil
// completion means the client has the store's refusal (and err what to
// return). A 200 answer that is an S3 error document (S3 reports some
// failures so, after the status is out) comes back as a *lateError.
func (p *Proxy) complete(x *exchange, id string, parts []store.Part, layout envelope.Layout) (*completion, error) {
	header := http.Header{}
	copyHeaders(header, x.t.header, writeConditions...)
	resp, err := p.store.Complete(x.r.Context(), x.written(), id, parts, header)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, p.relayStoreError(x, resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return nil, errUpstream(err)
	}
	if checkXML(b, "CompleteMultipartUploadResult") != nil {
		return nil, &lateError{resp: resp, body: b}
	}
	var res struct{ ETag string }
	if err := xml.Unmarshal(b, &res); err != nil {
		return nil, errBadAnswer(x, err)
	}
	p.completed(x.t.bucket, x.t.key, res.ETag, layout)
	return &completion{etag: res.ETag, header: resp.Header}, nil
}

// lateError is a store's 200 answer that is not the result asked for (an
// S3 error document, or neither: relayLateError tells).
type lateError struct {
	resp *http.Response // its body read: body
	body []byte
}

func (e *lateError) Error() string { return "the store answered 200 without a result" }

// completed remembers what a completed upload says: the new object's layout
// (its part sizes, checked), and whether the store ends multipart ETags with
// their part count, which is said once when it does not.
func (p *Proxy) completed(bucket, key, etag string, layout envelope.Layout) {
	if etag != "" {
		p.layouts.put(layoutKey(bucket, key, etag), layout, true)
	}
	if p.counts.learn(etag, len(layout.Parts)) {
		p.log.Warn("the store does not end multipart ETags with their part count (-N): s3seal asks it for each "+
			"object's part count instead, a request per object read; run s3seal doctor against it", slog.String("etag", etag))
	}
}

// objectURL is the URL of the object x writes, as the client reached
// s3seal (path-style, or under the bucket's own host name), for Location.
func objectURL(x *exchange) string {
	scheme := "http"
	if x.r.TLS != nil {
		scheme = "https"
	}
	path := "/" + x.t.bucket + "/" + x.t.key
	if x.t.virtual {
		path = "/" + x.t.key
	}
	return (&url.URL{Scheme: scheme, Host: x.r.Host, Path: path}).String()
}

func normETag(s string) string { return strings.Trim(strings.TrimSpace(s), `"`) }

type listedPart struct {
	ETag string
	Size int64
}

// listAllParts lists an upload's parts 1..upto upstream, page by page. Each
// page must move the part-number marker forward, so a store cannot keep one
// Complete listing forever.
func (p *Proxy) listAllParts(x *exchange, upstreamID string, upto int) (map[int]listedPart, error) {
	parts := map[int]listedPart{}
	for marker := 0; marker < upto; {
		page, err := p.store.ListParts(x.r.Context(), x.written(), upstreamID, marker)
		if err != nil {
			return nil, err // a *store.Failure is relayed by serve
		}
		for _, pt := range page.Parts {
			if pt.PartNumber > marker && pt.PartNumber <= upto {
				parts[pt.PartNumber] = listedPart{ETag: pt.ETag, Size: pt.Size}
			}
		}
		next, err := strconv.Atoi(page.NextPartNumberMarker)
		if !page.IsTruncated {
			break
		}
		if err != nil || next <= marker {
			return nil, errBadAnswer(x, fmt.Errorf("ListParts page after part %d says to go on from %q", marker, page.NextPartNumberMarker))
		}
		marker = next
	}
	return parts, nil
}

// abortUpstream aborts an upload after s3seal refused to complete it.
func (p *Proxy) abortUpstream(x *exchange, upstreamID string) {
	resp, err := p.store.Abort(x.r.Context(), x.written(), upstreamID, nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
			err = fmt.Errorf("store answered %d", resp.StatusCode)
		}
	}
	if err != nil {
		p.log.Warn("aborting a refused upload failed", slog.String("request_id", x.id),
			slog.String("bucket", x.t.bucket), slog.String("key", x.t.key), slog.Any("error", err))
	}
}

// abortUpload serves AbortMultipartUpload with any token, full or listed.
func (p *Proxy) abortUpload(x *exchange) error {
	tok, _, err := uploadTokenParam(x.t)
	if err != nil {
		return err
	}
	header := http.Header{}
	copyHeaders(header, x.t.header, append([]string{"x-amz-if-match-initiated-time"}, ownerHeaders...)...)
	return p.forward(x, store.Request{Method: http.MethodDelete, Bucket: x.t.bucket, Key: x.t.key,
		Query: url.Values{"uploadId": {tok.UploadID}}, Header: header})
}

// listParts serves ListParts: each <Size> becomes the part's plaintext size
// and <UploadId> the client's token.
func (p *Proxy) listParts(x *exchange) error {
	tok, clientID, err := uploadTokenParam(x.t)
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, vs := range x.t.query {
		q[k] = vs
	}
	q.Set("uploadId", tok.UploadID)
	header := http.Header{}
	copyHeaders(header, x.t.header, ownerHeaders...)
	resp, err := p.request(x, http.StatusOK, store.Request{Method: http.MethodGet, Bucket: x.t.bucket, Key: x.t.key, Query: q, Header: header})
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	return p.relayRewritten(x, resp, "ListPartsResult", &xmlRewrite{leaf: func(path []string, text string, _ map[string]string) (string, bool) {
		switch {
		case len(path) == 3 && path[1] == "Part" && path[2] == "Size":
			stored, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
			if err != nil {
				return text, false
			}
			plain, err := envelope.SegmentPlaintextSize(stored)
			if err != nil {
				return text, false
			}
			return strconv.FormatInt(plain, 10), true
		case len(path) == 2 && path[1] == "UploadId":
			return clientID, true
		}
		return text, true
	}, drop: func(path []string) bool {
		// The store's checksums are of the ciphertext; the parts'
		// plaintext checksums are in their records, unreadable until the
		// upload completes.
		last := path[len(path)-1]
		return (len(path) == 2 || len(path) == 3 && path[1] == "Part") && strings.HasPrefix(last, "Checksum")
	}})
}

// listUploads serves ListMultipartUploads. Its rows carry the store's upload
// ids, which become listed tokens: the store does not list an upload's
// metadata, so s3seal cannot put the wrapped key in them (envelope.UploadToken).
func (p *Proxy) listUploads(x *exchange) error {
	q := url.Values{}
	for k, vs := range x.t.query {
		q[k] = vs
	}
	if m := q.Get("upload-id-marker"); m != "" {
		tok, err := envelope.ParseUploadToken(m)
		if err != nil {
			return newS3Error("InvalidArgument", http.StatusBadRequest, "Invalid upload-id-marker.", err)
		}
		q.Set("upload-id-marker", tok.UploadID)
	}
	header := http.Header{}
	copyHeaders(header, x.t.header, ownerHeaders...)
	resp, err := p.request(x, http.StatusOK, store.Request{Method: http.MethodGet, Bucket: x.t.bucket, Query: q, Header: header})
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	return p.relayRewritten(x, resp, "ListMultipartUploadsResult", &xmlRewrite{leaf: func(path []string, text string, _ map[string]string) (string, bool) {
		last := path[len(path)-1]
		if (len(path) == 3 && path[1] == "Upload" && last == "UploadId") ||
			(len(path) == 2 && (last == "UploadIdMarker" || last == "NextUploadIdMarker")) {
			if strings.TrimSpace(text) == "" {
				return text, true
			}
			return envelope.ListedUploadToken(strings.TrimSpace(text)), true
		}
		return text, true
	}})
}

// writeXML answers status with v as XML.
func writeXML(x *exchange, status int, v any) error {
	b, err := xml.Marshal(v)
	if err != nil {
		return errInternal(err)
	}
	h := x.w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(xml.Header)+len(b)))
	x.w.WriteHeader(status)
	x.w.Write([]byte(xml.Header))
	x.w.Write(b)
	return nil
}
