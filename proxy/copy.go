package proxy

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/s3seal/s3seal/envelope"
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

// copySource is a parsed x-amz-copy-source.
type copySource struct {
	bucket, key, versionID string
}

func parseCopySource(v string) (copySource, error) {
	bad := func(err error) (copySource, error) {
		return copySource{}, newS3Error("InvalidArgument", http.StatusBadRequest,
			"Copy Source must mention the source bucket and key: sourcebucket/sourcekey.", err)
	}
	path, query, _ := strings.Cut(v, "?")
	path, err := url.PathUnescape(path)
	if err != nil {
		return bad(err)
	}
	path = strings.TrimPrefix(path, "/")
	var cs copySource
	var ok bool
	cs.bucket, cs.key, ok = strings.Cut(path, "/")
	if !ok || cs.bucket == "" || cs.key == "" || strings.HasPrefix(cs.bucket, "arn:") {
		return bad(nil)
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return bad(err)
		}
		cs.versionID = q.Get("versionId")
	}
	return cs, nil
}

// header is the x-amz-copy-source value for the store.
func (cs copySource) header() string {
	v := s3utils.EncodePath("/" + cs.bucket + "/" + cs.key)
	if cs.versionID != "" {
		v += "?versionId=" + url.QueryEscape(cs.versionID)
	}
	return v
}

func (cs copySource) query() url.Values {
	q := url.Values{}
	if cs.versionID != "" {
		q.Set("versionId", cs.versionID)
	}
	return q
}

// sourceReadHeader turns a copy's source conditions and source headers into
// those of a read of the source.
func sourceReadHeader(client http.Header) http.Header {
	h := http.Header{}
	for k, vs := range client {
		lk := strings.ToLower(k)
		switch {
		case lk == "x-amz-copy-source-if-match":
			h["If-Match"] = vs
		case lk == "x-amz-copy-source-if-none-match":
			h["If-None-Match"] = vs
		case lk == "x-amz-copy-source-if-modified-since":
			h["If-Modified-Since"] = vs
		case lk == "x-amz-copy-source-if-unmodified-since":
			h["If-Unmodified-Since"] = vs
		case lk == "x-amz-source-expected-bucket-owner":
			h["X-Amz-Expected-Bucket-Owner"] = vs
		case lk == "x-amz-request-payer":
			h["X-Amz-Request-Payer"] = vs
		}
	}
	return h
}

func errPreconditionFailed() *s3Error {
	return newS3Error("PreconditionFailed", http.StatusPreconditionFailed,
		"At least one of the pre-conditions you specified did not hold", nil)
}

// sourceFailure maps a failed read of a copy source: failed conditions are
// 412 for copies (a read would say 304 for If-None-Match).
func sourceFailure(err error) error {
	var sf *storeFailure
	if errors.As(err, &sf) && (sf.resp.StatusCode == http.StatusNotModified || sf.resp.StatusCode == http.StatusPreconditionFailed) {
		sf.resp.Body.Close()
		return errPreconditionFailed()
	}
	return err
}

func errSourceNotSealed() *s3Error {
	return newS3Error("AccessDenied", http.StatusForbidden,
		"The copy source was not written through s3seal.", nil)
}

// Headers describing an object that CopyObject with the COPY directive takes
// from the source, and with REPLACE from the request.
var objectDescriptionHeaders = []string{
	"content-type", "cache-control", "content-disposition", "content-language",
	"content-encoding", "expires", "x-amz-meta-", "x-amz-website-redirect-location",
}

// Headers of a CopyObject that go to the store whatever the directive.
var copyRequestHeaders = []string{
	"x-amz-tagging", "x-amz-tagging-directive", "x-amz-storage-class", "x-amz-acl",
	"x-amz-grant-", "x-amz-object-lock-", "x-amz-expected-bucket-owner",
	"x-amz-source-expected-bucket-owner", "x-amz-request-payer",
	"if-match", "if-none-match",
}

// copyObject serves CopyObject.
func (p *Proxy) copyObject(x *exchange) error {
	t := x.t
	cs, err := parseCopySource(t.header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	directive := strings.ToUpper(strings.TrimSpace(t.header.Get("X-Amz-Metadata-Directive")))
	switch directive {
	case "":
		directive = "COPY"
	case "COPY", "REPLACE":
	default:
		return newS3Error("InvalidArgument", http.StatusBadRequest, "Unknown metadata directive.", nil)
	}
	ctx := x.r.Context()

	// The source's metadata, under the client's source conditions.
	srcHeader := sourceReadHeader(t.header)
	req, err := p.up.newRequest(ctx, http.MethodHead, cs.bucket, cs.key, cs.query(), srcHeader, nil, 0)
	if err != nil {
		return errInternal(err)
	}
	head, err := p.up.do(req)
	if err != nil {
		return errUpstream(err)
	}
	head.Body.Close()
	switch head.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified, http.StatusPreconditionFailed:
		return errPreconditionFailed()
	case http.StatusNotFound:
		return newS3Error("NoSuchKey", http.StatusNotFound, "The specified key does not exist.", nil)
	case http.StatusForbidden:
		return newS3Error("AccessDenied", http.StatusForbidden, "Access Denied", nil)
	default:
		return errUpstream(fmt.Errorf("HEAD of the copy source answered %d", head.StatusCode))
	}
	src := newObjRef(cs.bucket, cs.key, cs.query(), sourceReadHeader(t.header))
	if err := p.inspect(ctx, &src, head.Header, head.ContentLength); err != nil {
		return err
	}
	if src.info.plaintext {
		return errSourceNotSealed()
	}
	meta, err := p.keys.Rebind(ctx, src.info.meta, cs.bucket, cs.key, t.bucket, t.key)
	if err != nil {
		return err
	}

	header := http.Header{}
	if directive == "COPY" {
		copyHeaders(header, head.Header, objectDescriptionHeaders...)
	} else {
		copyHeaders(header, t.header, objectDescriptionHeaders...)
		setContentEncoding(header, t.header)
	}
	copyHeaders(header, t.header, copyRequestHeaders...)
	dropReserved(header)
	meta.SetHeader(header)

	if src.info.segments > 1 {
		return p.copyMultipart(x, cs, src, head.Header.Get("X-Amz-Version-Id"), header, meta)
	}

	header.Set("X-Amz-Copy-Source", cs.header())
	// Pinned to the source read above: its metadata is what was rebound.
	header.Set("X-Amz-Copy-Source-If-Match", src.etag)
	header.Set("X-Amz-Metadata-Directive", "REPLACE")
	resp, err := p.expect(x, http.StatusOK, http.MethodPut, t.bucket, t.key, nil, header)
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return errUpstream(err)
	}
	if checkXML(body, "CopyObjectResult") != nil && checkXML(body, "Error") != nil {
		return errBadAnswer(x, errors.New("CopyObject answer is neither a CopyObjectResult nor an Error"))
	}
	h := x.w.Header()
	copyResponseHeader(h, resp)
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
			delete(h, k)
		}
	}
	setEncryptionHeaders(h, meta.KeyID)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(http.StatusOK)
	x.w.Write(body) // CopyObjectResult, or the store's late error
	return nil
}

// copyMultipart copies a multipart source as a new upload whose part k is
// the source's stored segment k, copied by the store (UploadPartCopy with a
// stored byte range). The result has the source's segments and the new
// metadata.
func (p *Proxy) copyMultipart(x *exchange, cs copySource, o objRef, srcVersion string, header http.Header, meta envelope.Metadata) error {
	ctx, cancel := context.WithCancel(x.r.Context())
	defer cancel()
	t := x.t
	srcETag := o.etag
	layout, exact, err := p.layout(ctx, o)
	if err == nil && !exact {
		layout, _, err = p.exactLayout(ctx, o)
	}
	if err != nil {
		return err
	}

	createHeader := header.Clone()
	createHeader.Del("If-Match")
	createHeader.Del("If-None-Match")
	createHeader.Del("X-Amz-Tagging-Directive")
	createHeader.Del("X-Amz-Source-Expected-Bucket-Owner")
	for k := range createHeader {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-copy-source-") {
			delete(createHeader, k)
		}
	}
	req, err := p.up.newRequest(ctx, http.MethodPost, t.bucket, t.key, url.Values{"uploads": {""}}, createHeader, nil, 0)
	if err != nil {
		return errInternal(err)
	}
	resp, err := p.up.do(req)
	if err != nil {
		return errUpstream(err)
	}
	if resp.StatusCode != http.StatusOK {
		return &storeFailure{resp: resp}
	}
	var created struct {
		UploadID string `xml:"UploadId"`
	}
	err = readXML(resp.Body, &created)
	resp.Body.Close()
	if err != nil || created.UploadID == "" {
		return errUpstream(fmt.Errorf("CreateMultipartUpload answer without an UploadId: %v", err))
	}
	uploadID := created.UploadID
	completed := false
	defer func() {
		if !completed {
			p.abortUpstream(x, uploadID)
		}
	}()

	etags := make([]string, len(layout))
	errs := make([]error, len(layout))
	var wg sync.WaitGroup
	sem := make(chan struct{}, partHeadConcurrency)
	var off int64
	for i, plain := range layout {
		stored := envelope.SegmentSize(plain)
		start := off
		off += stored
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			h := http.Header{}
			copyHeaders(h, t.header, "x-amz-expected-bucket-owner", "x-amz-source-expected-bucket-owner", "x-amz-request-payer")
			h.Set("X-Amz-Copy-Source", cs.header())
			h.Set("X-Amz-Copy-Source-If-Match", srcETag)
			h.Set("X-Amz-Copy-Source-Range", fmt.Sprintf("bytes=%d-%d", start, start+stored-1))
			req, err := p.up.newRequest(ctx, http.MethodPut, t.bucket, t.key, partQuery(uploadID, i+1), h, nil, 0)
			if err != nil {
				errs[i] = errInternal(err)
				cancel()
				return
			}
			resp, err := p.up.do(req)
			if err != nil {
				errs[i] = errUpstream(err)
				cancel()
				return
			}
			defer resp.Body.Close()
			var res struct {
				XMLName xml.Name
				ETag    string
			}
			if resp.StatusCode == http.StatusOK {
				err = readXML(resp.Body, &res)
			}
			switch {
			case resp.StatusCode == http.StatusPreconditionFailed:
				errs[i] = errObjectChanged()
			case resp.StatusCode != http.StatusOK || err != nil || res.XMLName.Local != "CopyPartResult" || res.ETag == "":
				errs[i] = errUpstream(fmt.Errorf("UploadPartCopy of part %d answered %d", i+1, resp.StatusCode))
			default:
				etags[i] = res.ETag
				return
			}
			cancel()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	var body strings.Builder
	body.WriteString(`<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
	for i, e := range etags {
		fmt.Fprintf(&body, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, xmlEscape(e))
	}
	body.WriteString(`</CompleteMultipartUpload>`)
	ch := http.Header{}
	copyHeaders(ch, t.header, "if-match", "if-none-match", "x-amz-expected-bucket-owner", "x-amz-request-payer")
	ch.Set("Content-Type", "application/xml")
	req, err = p.up.newRequest(ctx, http.MethodPost, t.bucket, t.key, url.Values{"uploadId": {uploadID}}, ch, strings.NewReader(body.String()), int64(body.Len()))
	if err != nil {
		return errInternal(err)
	}
	resp, err = p.up.do(req)
	if err != nil {
		return errUpstream(err)
	}
	if resp.StatusCode != http.StatusOK {
		return &storeFailure{resp: resp}
	}
	defer resp.Body.Close()
	var res struct {
		XMLName xml.Name
		ETag    string
	}
	if err := readXML(resp.Body, &res); err != nil || res.XMLName.Local != "CompleteMultipartUploadResult" {
		return errUpstream(fmt.Errorf("completing the copy: %v (answer <%s>)", err, res.XMLName.Local))
	}
	completed = true
	p.layouts.put(layoutKey(t.bucket, t.key, res.ETag), layout, true)
	p.learnPartCounts(res.ETag, len(layout))
	h := x.w.Header()
	copyHeaders(h, resp.Header, "x-amz-version-id", "x-amz-expiration")
	if v := srcVersion; v != "" {
		h.Set("X-Amz-Copy-Source-Version-Id", v)
	}
	setEncryptionHeaders(h, meta.KeyID)
	return writeXML(x, http.StatusOK, copyResult{ETag: res.ETag, LastModified: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")})
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
	cs, err := parseCopySource(t.header.Get("X-Amz-Copy-Source"))
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
	src, err := p.openRange(ctx, cs.bucket, cs.key, cs.query(), sourceReadHeader(t.header), func(size int64) (byteRange, rangeResult) {
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
	if src.br.n > maxPartSize {
		return newS3Error("EntityTooLarge", http.StatusBadRequest,
			"Your proposed upload exceeds the maximum allowed part size.", nil)
	}
	header := http.Header{}
	copyHeaders(header, t.header, uploadRequestHeaders...)
	resp, err := p.sendEncrypted(ctx, t.bucket, t.key, partQuery(tok.upstreamID, k), header, src.body, false, src.br.n, dk, uint32(k))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return relayFailure(x, resp)
	}
	h := x.w.Header()
	if v := src.header.Get("X-Amz-Version-Id"); v != "" {
		h.Set("X-Amz-Copy-Source-Version-Id", v)
	}
	setEncryptionHeaders(h, tok.meta.KeyID)
	return writeXML(x, http.StatusOK, struct {
		XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
		LastModified string
		ETag         string
	}{LastModified: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), ETag: resp.Header.Get("ETag")})
}
