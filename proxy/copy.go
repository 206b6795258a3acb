package proxy

import (
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/store"
)

// Copies (docs/FORMAT.md, "Copies").
//
// CopyObject never moves data through s3seal: the stored bytes are copied
// by the store, unchanged, and only the metadata is rewritten — the data key
// re-wrapped by the key service (ReEncrypt) from the source's binding to the
// destination's, under s3seal's current CMK. A multipart source is copied
// part by part (server-side UploadPartCopy of each stored segment into a new
// upload) so that the copy keeps its segments and its "-N" ETag, which its
// sizes and reads depend on; a plain CopyObject would let the store turn it
// into a single-part object.
//
// UploadPartCopy cannot work that way: its source range is in plaintext
// terms and becomes part k of another object, under another data key. The
// range is decrypted through s3seal and encrypted again as segment k.

// parseCopySource parses x-amz-copy-source: the object a copy reads.
func parseCopySource(v string) (store.Object, error) {
	bad := func(err error) (store.Object, error) {
		return store.Object{}, newS3Error("InvalidArgument", http.StatusBadRequest,
			"Copy Source must mention the source bucket and key: sourcebucket/sourcekey.", err)
	}
	path, query, _ := strings.Cut(v, "?")
	path, err := url.PathUnescape(path)
	if err != nil {
		return bad(err)
	}
	path = strings.TrimPrefix(path, "/")
	var o store.Object
	var ok bool
	o.Bucket, o.Key, ok = strings.Cut(path, "/")
	if !ok || o.Bucket == "" || o.Key == "" || strings.HasPrefix(o.Bucket, "arn:") {
		return bad(nil)
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return bad(err)
		}
		o.VersionID = q.Get("versionId")
	}
	return o, nil
}

// copySourceParam is the copy source x names, asked about with the
// client's source owner and payer headers, once x's principal may read it.
func copySourceParam(x *exchange) (store.Object, error) {
	o, err := parseCopySource(x.t.header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return o, err
	}
	if err := checkName(o.Bucket, o.Key); err != nil {
		return store.Object{}, err
	}
	if err := x.may(o.Bucket, AccessRead); err != nil {
		return store.Object{}, err
	}
	return objectAt(o.Bucket, o.Key, o.VersionID, sourceReadHeader(x.t.header)), nil
}

func errPreconditionFailed() *s3Error {
	return newS3Error("PreconditionFailed", http.StatusPreconditionFailed,
		"At least one of the pre-conditions you specified did not hold", nil)
}

// sourceFailure maps a failed read of a copy source: failed conditions are
// 412 for copies (a read would say 304 for If-None-Match).
func sourceFailure(err error) error {
	var f *store.Failure
	if errors.As(err, &f) && (f.Resp.StatusCode == http.StatusNotModified || f.Resp.StatusCode == http.StatusPreconditionFailed) {
		f.Resp.Body.Close()
		return errPreconditionFailed()
	}
	return err
}

func errSourceNotSealed() *s3Error {
	return newS3Error("AccessDenied", http.StatusForbidden,
		"The copy source was not written through s3seal.", nil)
}

// checkNotOntoItself refuses, as S3 does, a copy of the current version of
// an object onto itself that changes nothing: its metadata (REPLACE), its
// storage class, its website redirect or its encryption (SSE headers, as
// rewrap sends). A source version id may restore an older version.
func checkNotOntoItself(t target, directive string) error {
	src, err := parseCopySource(t.header.Get("X-Amz-Copy-Source"))
	if err != nil || src.Bucket != t.bucket || src.Key != t.key || src.VersionID != "" || directive == "REPLACE" {
		return nil // a bad source is refused where it is read
	}
	for _, h := range []string{"X-Amz-Storage-Class", "X-Amz-Website-Redirect-Location", sseHeader} {
		if t.header.Get(h) != "" {
			return nil
		}
	}
	return newS3Error("InvalidRequest", http.StatusBadRequest,
		"This copy request is illegal because it is trying to copy an object to itself without changing the object's "+
			"metadata, storage class, website redirect location or encryption attributes.", nil)
}

// copyObject serves CopyObject.
func (p *Proxy) copyObject(x *exchange) error {
	t := x.t
	directive, err := copyDirective(t.header, "X-Amz-Metadata-Directive")
	if err != nil {
		return err
	}
	if _, err := copyDirective(t.header, "X-Amz-Tagging-Directive"); err != nil {
		return err
	}
	if err := checkNotOntoItself(t, directive); err != nil {
		return err
	}
	ctx := x.r.Context()
	keys, err := p.writeKeys(x)
	if err != nil {
		return err
	}
	src, head, err := p.headCopySource(x)
	if err != nil {
		return err
	}
	meta, err := keys.Rebind(ctx, src.info.meta, src.Bucket, src.Key, t.bucket, t.key)
	if err != nil {
		return err
	}
	header := http.Header{}
	if directive == "COPY" {
		copyHeaders(header, head, append([]string{"content-encoding"}, describingHeaders...)...)
	} else {
		copyHeaders(header, t.header, describingHeaders...)
		setContentEncoding(header, t.header)
	}
	copyHeaders(header, t.header, copyRequestHeaders...)
	dropReserved(header)
	setMetadata(header, meta)
	if src.info.segments > 1 {
		return p.copyMultipart(x, src, head.Get("X-Amz-Version-Id"), header, meta)
	}
	// Checked last, just before the copy (the KMS call above may wait), for
	// stores that ignore the condition on CopyObject; the store gets it too.
	if err := p.checkDestination(x); err != nil {
		return err
	}
	// Pinned to the source read above: its metadata is what was rebound.
	header.Set("X-Amz-Metadata-Directive", "REPLACE")
	resp, err := p.store.CopyObject(ctx, x.written(), src.Object, src.etag, header)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return p.relayStoreError(x, resp)
	}
	return p.relayCopyResult(x, resp, meta)
}

// copyDirective reads a copy's metadata or tagging directive (name): COPY
// (the default) or REPLACE.
func copyDirective(h http.Header, name string) (string, error) {
	switch d := strings.ToUpper(strings.TrimSpace(h.Get(name))); d {
	case "":
		return "COPY", nil
	case "COPY", "REPLACE":
		return d, nil
	}
	return "", newS3Error("InvalidArgument", http.StatusBadRequest, "Unknown "+strings.ToLower(name)+" value.", nil)
}

// headCopySource reads the copy source's metadata under the client's source
// conditions, and its headers.
func (p *Proxy) headCopySource(x *exchange) (objRef, http.Header, error) {
	obj, err := copySourceParam(x)
	if err != nil {
		return objRef{}, nil, err
	}
	head, err := p.store.Do(x.r.Context(), obj.Request(http.MethodHead, nil, sourceReadHeader(x.t.header)))
	if err != nil {
		return objRef{}, nil, err
	}
	head.Body.Close()
	switch head.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified, http.StatusPreconditionFailed:
		return objRef{}, nil, errPreconditionFailed()
	case http.StatusNotFound:
		// A HEAD's 404 does not say what is missing: the bucket, if the
		// store says so, else the key.
		if exists, known := p.bucketExists(x.r.Context(), obj.Bucket); known && !exists {
			return objRef{}, nil, newS3Error("NoSuchBucket", http.StatusNotFound, errorMessages["NoSuchBucket"], nil)
		}
		return objRef{}, nil, newS3Error("NoSuchKey", http.StatusNotFound, errorMessages["NoSuchKey"], nil)
	case http.StatusForbidden:
		return objRef{}, nil, newS3Error("AccessDenied", http.StatusForbidden, "Access Denied", nil)
	default:
		return objRef{}, nil, errUpstream(fmt.Errorf("HEAD of the copy source answered %d", head.StatusCode))
	}
	src := objRef{Object: obj}
	if err := p.inspect(x.r.Context(), &src, head.Header, head.ContentLength); err != nil {
		return objRef{}, nil, err
	}
	if src.info.plaintext {
		return objRef{}, nil, errSourceNotSealed()
	}
	return src, head.Header, nil
}

// relayCopyResult relays a store's 200 answer to CopyObject: its
// CopyObjectResult, or an error S3 reports so after the status is out.
func (p *Proxy) relayCopyResult(x *exchange, resp *http.Response, meta envelope.Metadata) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return errUpstream(err)
	}
	if checkXML(body, "CopyObjectResult") != nil {
		return p.relayLateError(x, resp, body)
	}
	h := x.w.Header()
	copyResponseHeader(h, resp)
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
			delete(h, k) // checksums of stored bytes
		}
	}
	setEncryptionHeaders(h, meta)
	setContextHeader(h, meta)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(http.StatusOK)
	x.w.Write(body)
	return nil
}

// copyMultipart copies a multipart source as a new upload whose part k is
// the source's stored segment k, copied by the store (UploadPartCopy with a
// stored byte range). The result has the source's segments and the new
// metadata in header.
func (p *Proxy) copyMultipart(x *exchange, src objRef, srcVersion string, header http.Header, meta envelope.Metadata) error {
	ctx := x.r.Context()
	layout, err := p.knownLayout(ctx, src)
	if err != nil {
		return err
	}
	dst := x.written()
	create := createCopyHeader(header)
	if err := p.copyTags(ctx, create, src, srcVersion); err != nil {
		return err
	}
	uploadID, _, err := p.store.CreateUpload(ctx, dst, create)
	if err != nil {
		return err
	}
	completed := false
	defer func() {
		if !completed {
			p.abortUpstream(x, uploadID)
		}
	}()
	parts, err := p.copyParts(ctx, dst, uploadID, src, layout)
	if err != nil {
		return err
	}
	// After the part copies, as for a single copy; Complete carries the
	// conditions to the store as well.
	if err := p.checkDestination(x); err != nil {
		return err
	}
	done, err := p.complete(x, uploadID, parts, layout)
	var late *lateError
	if errors.As(err, &late) {
		return errUpstream(fmt.Errorf("completing the copy: %w", late))
	}
	if done == nil {
		return err
	}
	completed = true
	h := x.w.Header()
	copyHeaders(h, done.header, "x-amz-version-id", "x-amz-expiration")
	if v := srcVersion; v != "" {
		h.Set("X-Amz-Copy-Source-Version-Id", v)
	}
	setEncryptionHeaders(h, meta)
	setContextHeader(h, meta)
	return writeXML(x, http.StatusOK, copyResult{ETag: done.etag, LastModified: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")})
}

// copyTags sets the tags of a multipart copy under the tagging directive
// in h: the source's (COPY, the default), as a single CopyObject has the
// store do, or the request's own (REPLACE).
//
// The tags are read by version id where the store gave one (S3 has no
// conditional tag read); tags are not authenticated by the format anyway.
func (p *Proxy) copyTags(ctx context.Context, h http.Header, src objRef, srcVersion string) error {
	directive := strings.TrimSpace(h.Get("X-Amz-Tagging-Directive"))
	h.Del("X-Amz-Tagging-Directive")
	if strings.EqualFold(directive, "REPLACE") {
		return nil
	}
	h.Del("X-Amz-Tagging")
	q := url.Values{"tagging": {""}}
	if v := cmp.Or(srcVersion, src.VersionID); v != "" {
		q.Set("versionId", v)
	}
	tags, err := p.readTags(ctx, store.Request{Method: http.MethodGet, Bucket: src.Bucket, Key: src.Key, Query: q, Header: http.Header{}})
	var nf *tagsUnavailable
	switch {
	case errors.As(err, &nf) && nf.status == http.StatusNotImplemented:
		return nil // a store without object tags: there are none to copy
	case errors.As(err, &nf) && nf.status == http.StatusNotFound:
		return errObjectChanged() // it was there a moment ago, at the HEAD
	case errors.As(err, &nf):
		return newS3Error("AccessDenied", http.StatusForbidden, "s3seal's store credential may not read the copy source's tags.", nil)
	case err != nil:
		return err
	}
	v := url.Values{}
	for _, t := range tags.Tags {
		v.Add(t.Key, t.Value)
	}
	if len(v) > 0 {
		h.Set("X-Amz-Tagging", v.Encode())
	}
	return nil
}

// createCopyHeader is a multipart copy's CreateMultipartUpload headers: the
// copy's, without its conditions and source headers, which belong to the
// part copies and the completion.
func createCopyHeader(header http.Header) http.Header {
	h := header.Clone()
	for k := range h {
		switch lk := strings.ToLower(k); {
		case lk == "if-match", lk == "if-none-match",
			lk == "x-amz-source-expected-bucket-owner", strings.HasPrefix(lk, "x-amz-copy-source-"):
			delete(h, k)
		}
	}
	return h
}

// partCopyFailure maps a failed copy of part k: the client asked for no
// part copy, so the store's answer to one is not the client's to see.
func partCopyFailure(k int, err error) error {
	var f *store.Failure
	switch {
	case err == nil, errors.Is(err, store.ErrChanged):
		return err
	case errors.As(err, &f):
		f.Resp.Body.Close()
		return errUpstream(fmt.Errorf("UploadPartCopy of part %d answered %d", k, f.Resp.StatusCode))
	}
	return errUpstream(fmt.Errorf("UploadPartCopy of part %d: %w", k, err))
}

// copyParts has the store copy each stored segment of src (under layout)
// into the same part of upload id of dst, a few at a time.
func (p *Proxy) copyParts(ctx context.Context, dst store.Object, id string, src objRef, layout envelope.Layout) ([]store.Part, error) {
	starts := layout.StoredOffsets()
	parts := make([]store.Part, len(layout.Parts))
	err := eachPart(ctx, len(layout.Parts), func(ctx context.Context, i int) error {
		first, last := starts[i], starts[i+1]-1
		etag, err := p.store.UploadPartCopy(ctx, dst, id, i+1, src.Object, src.etag, first, last)
		parts[i] = store.Part{PartNumber: i + 1, ETag: etag}
		return partCopyFailure(i+1, err)
	})
	return parts, err
}

type copyResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
	LastModified string
	ETag         string
}

// uploadPartCopy serves UploadPartCopy: the source range decrypted through
// s3seal and encrypted as segment k of the upload's object.
func (p *Proxy) uploadPartCopy(x *exchange) error {
	t := x.t
	k, err := partNumberParam(t.query)
	if err != nil {
		return err
	}
	obj, err := copySourceParam(x)
	if err != nil {
		return err
	}
	rangeHdr := strings.TrimSpace(t.header.Get("X-Amz-Copy-Source-Range"))
	tok, dk, err := p.uploadKey(x)
	if err != nil {
		return err
	}
	defer clear(dk)
	ctx := x.r.Context()

	var rangeErr error
	src, err := p.openRange(ctx, obj, nil, sourceReadHeader(t.header), func(size int64) (byteRange, rangeResult) {
		if rangeHdr == "" {
			return byteRange{}, rangeNone
		}
		br, res := parseRange(rangeHdr, size)
		var a, b int64
		if _, err := fmt.Sscanf(rangeHdr, "bytes=%d-%d", &a, &b); err != nil || res == rangeNone || br.off != a || b >= size {
			rangeErr = newS3Error("InvalidArgument", http.StatusBadRequest,
				"The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy, within the source object.", nil)
			return byteRange{}, rangeUnsatisfiable
		}
		return br, res
	})
	if rangeErr != nil {
		return rangeErr
	}
	if err != nil {
		return sourceFailure(err)
	}
	defer src.close()
	if src.info.plaintext {
		return errSourceNotSealed()
	}
	if err := checkBodySize(src.br.n, maxPartSize, "part"); err != nil {
		return err
	}
	rec, err := newPartRecorder(tok.Meta, nil)
	if err != nil {
		return err
	}
	resp, err := p.putEncrypted(x, partPut(x, tok.UploadID, k), src.body, src.br.n, dk, uint32(k), rec)
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	h := x.w.Header()
	if v := src.header.Get("X-Amz-Version-Id"); v != "" {
		h.Set("X-Amz-Copy-Source-Version-Id", v)
	}
	setEncryptionHeaders(h, tok.Meta)
	result := struct {
		XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
		LastModified string
		ETag         string
		checksumValues
	}{LastModified: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), ETag: resp.Header.Get("ETag")}
	if rec != nil {
		result.checksumValues = valuesOf(envelope.Checksum{Algorithm: tok.Meta.PartAlgorithm, Value: rec.value})
	}
	return writeXML(x, http.StatusOK, result)
}
