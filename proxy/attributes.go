package proxy

// GetObjectAttributes, answered by s3seal itself. The store's own answer
// would describe the ciphertext (its size, its parts' sizes, checksums of
// encrypted bytes), so the request is never forwarded: s3seal HEADs the
// object as a HeadObject would, and sizes its parts with the layout
// machinery that ranged and part reads use (layout.go), every value a
// plaintext one. An answer reads no object bytes, so what a read would
// authenticate is checked otherwise: the part count against the last
// part's own answer, each listed part's place against its segment header.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/store"
)

// Attribute names of x-amz-object-attributes.
const (
	attrETag         = "ETag"
	attrChecksum     = "Checksum"
	attrObjectParts  = "ObjectParts"
	attrStorageClass = "StorageClass"
	attrObjectSize   = "ObjectSize"
)

// maxAttributeParts is the most parts one answer lists, as S3's ListParts:
// it also bounds the stored reads an answer costs.
const maxAttributeParts = 1000

// attributesQuery is what a GetObjectAttributes asks for.
type attributesQuery struct {
	want     map[string]bool
	maxParts int // parts to list after marker
	marker   int // x-amz-part-number-marker
}

// parseAttributesQuery reads and checks the request's headers, as S3 does
// before it looks at the object.
func parseAttributesQuery(h http.Header) (attributesQuery, error) {
	q := attributesQuery{want: map[string]bool{}, maxParts: maxAttributeParts}
	for _, v := range h.Values("X-Amz-Object-Attributes") {
		for name := range strings.SplitSeq(v, ",") {
			switch name = strings.TrimSpace(name); name {
			case "":
			case attrETag, attrChecksum, attrObjectParts, attrStorageClass, attrObjectSize:
				q.want[name] = true
			default:
				return q, errInvalidAttribute(fmt.Errorf("attribute %q", name))
			}
		}
	}
	if len(q.want) == 0 {
		return q, errInvalidAttribute(errors.New("no x-amz-object-attributes"))
	}
	var err error
	if q.maxParts, err = intHeader(h, "X-Amz-Max-Parts", maxAttributeParts); err != nil {
		return q, err
	}
	if q.maxParts == 0 || q.maxParts > maxAttributeParts {
		q.maxParts = maxAttributeParts // 0 is "not set" to SDKs and MinIO
	}
	q.marker, err = intHeader(h, "X-Amz-Part-Number-Marker", 0)
	return q, err
}

func errInvalidAttribute(cause error) *s3Error {
	return newS3Error("InvalidArgument", http.StatusBadRequest, "Invalid attribute name specified.", cause)
}

// intHeader is the non-negative integer in header name, def when absent.
func intHeader(h http.Header, name string, def int) (int, error) {
	v := strings.TrimSpace(h.Get(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return 0, newS3Error("InvalidArgument", http.StatusBadRequest,
			"The "+strings.ToLower(name)+" header must be an integer between 0 and 2147483647.", err)
	}
	return int(n), nil
}

// attributesAnswer is S3's GetObjectAttributes document, in S3's element
// order; unasked attributes are left out.
type attributesAnswer struct {
	XMLName      xml.Name        `xml:"http://s3.amazonaws.com/doc/2006-03-01/ GetObjectAttributesResponse"`
	ETag         string          `xml:",omitempty"`
	Checksum     *objectChecksum `xml:",omitempty"`
	ObjectParts  *attributeParts `xml:",omitempty"`
	StorageClass string          `xml:",omitempty"`
	ObjectSize   *int64          `xml:",omitempty"`
}

// checksumValues are the checksums S3 gives an object or a part.
type checksumValues struct {
	ChecksumCRC32     string `xml:",omitempty"`
	ChecksumCRC32C    string `xml:",omitempty"`
	ChecksumCRC64NVME string `xml:",omitempty"`
	ChecksumSHA1      string `xml:",omitempty"`
	ChecksumSHA256    string `xml:",omitempty"`
}

// objectChecksum is the <Checksum> of an object.
type objectChecksum struct {
	checksumValues
	ChecksumType string `xml:",omitempty"` // FULL_OBJECT or COMPOSITE
}

// attributeParts is <ObjectParts>: one page of the parts. PartsCount is what
// the SDKs call TotalPartsCount.
type attributeParts struct {
	IsTruncated          bool
	MaxParts             int
	NextPartNumberMarker int
	PartNumberMarker     int
	Parts                []attributePart `xml:"Part"`
	PartsCount           int
}

type attributePart struct {
	checksumValues
	PartNumber int
	Size       int64 // plaintext bytes
}

// getObjectAttributes serves GetObjectAttributes.
func (p *Proxy) getObjectAttributes(x *exchange) error {
	q, err := parseAttributesQuery(x.t.header)
	if err != nil {
		return err
	}
	o, head, err := p.headForAttributes(x)
	if head == nil {
		return err
	}
	a, err := p.attributes(x.r.Context(), o, head, q)
	if err != nil {
		return err
	}
	copyHeaders(x.w.Header(), head, "last-modified", "x-amz-version-id", "x-amz-delete-marker", "x-amz-request-charged")
	return writeXML(x, http.StatusOK, a)
}

// headForAttributes HEADs the object x names with the conditions and owner
// headers a HeadObject passes on, and reads what the answer says of it. A
// nil header means there is nothing to answer with: err says why, or the
// client has its answer (304) already.
func (p *Proxy) headForAttributes(x *exchange) (objRef, http.Header, error) {
	header := http.Header{}
	copyHeaders(header, x.t.header, getObjectHeaders...)
	o := objRef{Object: x.object()}
	resp, err := p.store.Do(x.r.Context(), o.Request(http.MethodHead, nil, header))
	if err != nil {
		return o, nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return o, nil, p.headFailure(x, resp)
	}
	if err := p.inspect(x.r.Context(), &o, resp.Header, resp.ContentLength); err != nil {
		return o, nil, err
	}
	return o, resp.Header, nil
}

// headFailure answers a HEAD of the object that did not succeed. A HEAD
// answer has no error document to relay, so the error is said as S3 says it
// for GetObjectAttributes, from the status; the headers that describe a
// delete marker go along.
func (p *Proxy) headFailure(x *exchange, resp *http.Response) error {
	versioned := x.t.query.Get("versionId") != ""
	var e *s3Error
	switch resp.StatusCode {
	case http.StatusNotModified:
		h := x.w.Header()
		copyHeaders(h, resp.Header, "etag", "last-modified", "x-amz-version-id")
		x.w.WriteHeader(http.StatusNotModified)
		return nil
	case http.StatusNotFound:
		e = p.notFound(x, versioned)
	case http.StatusBadRequest:
		e = newS3Error("InvalidArgument", http.StatusBadRequest, "The store refused the request as invalid.", nil)
		if versioned {
			e.Message = "Invalid version id specified"
		}
	case http.StatusForbidden:
		e = newS3Error("AccessDenied", http.StatusForbidden, "Access Denied", nil)
	case http.StatusMethodNotAllowed: // a version that is a delete marker
		e = newS3Error("MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource.", nil)
	case http.StatusPreconditionFailed:
		e = errPreconditionFailed()
	default:
		if resp.StatusCode >= 500 {
			return errUpstream(fmt.Errorf("HEAD of the object answered %d", resp.StatusCode))
		}
		return errBadAnswer(x, fmt.Errorf("HEAD of the object answered %d", resp.StatusCode))
	}
	e.Header = http.Header{}
	copyHeaders(e.Header, resp.Header, "x-amz-delete-marker", "x-amz-version-id", "last-modified")
	return e
}

// notFound is S3's 404 for x: a missing bucket, version or key, which a
// HEAD's 404 does not tell apart; the bucket is asked about.
func (p *Proxy) notFound(x *exchange, versioned bool) *s3Error {
	header := http.Header{}
	copyHeaders(header, x.t.header, ownerHeaders...)
	resp, err := p.store.Do(x.r.Context(), store.Request{Method: http.MethodHead, Bucket: x.t.bucket, Header: header})
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return newS3Error("NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist", nil)
		}
	}
	if versioned {
		return newS3Error("NoSuchVersion", http.StatusNotFound, "The specified version does not exist.", nil)
	}
	return newS3Error("NoSuchKey", http.StatusNotFound, "The specified key does not exist.", nil)
}

// attributes is the answer about o, whose HEAD answer is head.
func (p *Proxy) attributes(ctx context.Context, o objRef, head http.Header, q attributesQuery) (attributesAnswer, error) {
	var a attributesAnswer
	n, err := p.multipartCount(ctx, o, head, q)
	if err != nil {
		return a, err
	}
	l, err := p.answerLayout(ctx, o, n, q)
	if err != nil {
		return a, err
	}
	if q.want[attrETag] {
		a.ETag = normETag(o.etag) // unquoted, as S3 gives it here
	}
	if q.want[attrChecksum] {
		if a.Checksum, err = p.sealedChecksum(ctx, o); err != nil {
			return a, err
		}
	}
	if q.want[attrObjectParts] && n > 0 {
		if a.ObjectParts, err = p.objectParts(ctx, o, l, n, q); err != nil {
			return a, err
		}
	}
	if q.want[attrStorageClass] {
		a.StorageClass = head.Get("X-Amz-Storage-Class")
		if a.StorageClass == "" {
			a.StorageClass = "STANDARD" // HEAD says nothing for it
		}
	}
	if q.want[attrObjectSize] {
		a.ObjectSize = &o.info.size
	}
	return a, nil
}

// answerLayout is the layout of o, of n parts (0: not multipart), that the
// sizes q asks for are checked against: nil for an object stored as it is,
// and where no size needs it.
func (p *Proxy) answerLayout(ctx context.Context, o objRef, n int, q attributesQuery) (envelope.Layout, error) {
	if n == 0 || o.info.plaintext || !(q.want[attrObjectSize] || q.want[attrObjectParts]) {
		return envelope.Layout{}, nil
	}
	l, err := p.checkedLayout(ctx, o, q.want[attrObjectParts])
	switch {
	case errors.Is(err, errNoPartReads) && q.want[attrObjectParts]:
		return envelope.Layout{}, errNoPartSizes(err)
	case errors.Is(err, errNoPartReads):
		// Nothing to check the part count against: the size is said as
		// HeadObject says it.
		return envelope.Layout{}, nil
	}
	return l, err
}

// sealedChecksum is the object's checksum: one of its plaintext that s3seal
// keeps sealed with it (FORMAT.md §6.2), verified. Never the store's, which
// is of the ciphertext. nil leaves <Checksum> out, as S3 does for an object
// uploaded without a checksum.
func (p *Proxy) sealedChecksum(ctx context.Context, o objRef) (*objectChecksum, error) {
	c, err := p.readChecksum(ctx, o)
	return attributesChecksum(c), err
}

// multipartCount is o's part count if it is a multipart object (of several
// parts, or whose ETag says "-1"), else 0. The part count of an object
// stored as it is is asked for only when its parts are.
func (p *Proxy) multipartCount(ctx context.Context, o objRef, head http.Header, q attributesQuery) (int, error) {
	n := o.info.segments
	if o.info.plaintext {
		if !q.want[attrObjectParts] {
			return 0, nil
		}
		var err error
		if n, err = p.partCount(ctx, o, head); err != nil {
			return 0, err
		}
	}
	if _, marked := envelope.ETagPartCount(o.etag); n > 1 || marked {
		return n, nil
	}
	return 0, nil
}

func errNoPartSizes(cause error) *s3Error {
	return newS3Error("NotImplemented", http.StatusNotImplemented,
		"The store does not answer partNumber reads, so s3seal cannot tell this object's part sizes. "+
			"Ask without ObjectParts, or run s3seal doctor against this store.", cause)
}

// checkedLayout is the layout of o, a multipart s3seal object, exact if
// asked, with its last part confirmed by the store's answer about that
// part (confirmLastPart): the part count, which sizes the object, comes
// from the ETag, and a store whose ETag counts fewer parts than it holds
// makes the last part hold the rest. A guessed layout (layout.go) that
// differs there is replaced by the exact one.
func (p *Proxy) checkedLayout(ctx context.Context, o objRef, exact bool) (envelope.Layout, error) {
	l, isExact, err := p.layout(ctx, o)
	if err == nil && exact && !isExact {
		l, isExact, err = p.exactLayout(ctx, o)
	}
	if err != nil {
		return envelope.Layout{}, err
	}
	err = p.confirmLastPart(ctx, o, l)
	if errors.Is(err, errLastPartDiffers) && !isExact {
		if l, _, err = p.exactLayout(ctx, o); err == nil {
			err = p.confirmLastPart(ctx, o, l)
		}
	}
	if errors.Is(err, errLastPartDiffers) {
		p.forgetLayout(o)
	}
	return l, err
}

// forgetLayout drops o's cached layout after the store's answers disagreed
// with it, so the next request fetches it anew (a store that lied once, or
// a layout cached before the store changed).
func (p *Proxy) forgetLayout(o objRef) {
	p.layouts.put(layoutKey(o.Bucket, o.Key, o.etag), envelope.Layout{}, false)
}

// errLastPartDiffers means the store's last part is not the layout's.
var errLastPartDiffers = errors.New("the store's last part differs from the layout's")

// confirmLastPart checks the store's answer about o's last part (HEAD
// ?partNumber=N, N from the ETag) against layout l: the part's size, and the
// part count the answer gives.
func (p *Proxy) confirmLastPart(ctx context.Context, o objRef, l envelope.Layout) error {
	n := len(l.Parts)
	resp, err := p.store.HeadPart(ctx, o.Object, o.etag, n)
	if errors.Is(err, store.ErrRangeNotSatisfiable) {
		return errCorrupt(fmt.Errorf("the ETag counts %d parts, the store has no part %d: %w", n, n, envelope.ErrImpossibleSize))
	}
	if err != nil {
		return partReadFailure(err)
	}
	count := resp.Header.Get("X-Amz-Mp-Parts-Count")
	switch {
	case count == "" && n > 1 && resp.ContentLength == o.info.stored:
		return errNoPartReads // the whole object: partNumber ignored
	case count != "" && count != strconv.Itoa(n):
		return errCorrupt(fmt.Errorf("the ETag counts %d parts, the store's part %d says %s: %w", n, n, count, envelope.ErrImpossibleSize))
	case resp.ContentLength != envelope.SegmentSize(l.Parts[n-1]):
		return errCorrupt(fmt.Errorf("part %d stores %d bytes, its layout says %d: %w: %w", n, resp.ContentLength,
			envelope.SegmentSize(l.Parts[n-1]), envelope.ErrImpossibleSize, errLastPartDiffers))
	}
	return nil
}

// objectParts is the page of the parts of o, a multipart object of n parts
// whose checked layout is l (nil for an object stored as it is), that q
// asks for, with their plaintext sizes.
func (p *Proxy) objectParts(ctx context.Context, o objRef, l envelope.Layout, n int, q attributesQuery) (*attributeParts, error) {
	first, last := q.marker+1, min(q.marker+q.maxParts, n)
	page := &attributeParts{PartsCount: n, MaxParts: q.maxParts, PartNumberMarker: q.marker,
		NextPartNumberMarker: q.marker, IsTruncated: last < n}
	if first > last {
		return page, nil
	}
	var sizes []int64
	var err error
	if o.info.plaintext {
		sizes, err = p.storedPartSizes(ctx, o, first, last)
	} else {
		sizes, err = p.sealedPartSizes(ctx, o, l, first, last)
	}
	if errors.Is(err, errNoPartReads) {
		return nil, errNoPartSizes(err)
	}
	if err != nil {
		return nil, err
	}
	sums, err := p.attributePartChecksums(ctx, o)
	if err != nil {
		return nil, err
	}
	for i, size := range sizes {
		part := attributePart{PartNumber: first + i, Size: size}
		if sums != nil {
			part.checksumValues = valuesOf(sums[first-1+i])
		}
		page.Parts = append(page.Parts, part)
	}
	page.NextPartNumberMarker = last
	return page, nil
}

// attributePartChecksums are the parts' checksums of o, recorded in a
// FramingV2 object's parts; nil for other objects, and where the store
// cannot say where the parts are.
func (p *Proxy) attributePartChecksums(ctx context.Context, o objRef) ([]envelope.Checksum, error) {
	if o.info.plaintext || o.info.framing() != envelope.FramingV2 {
		return nil, nil
	}
	dk, err := p.keys.Open(ctx, o.info.meta, o.Bucket, o.Key)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	recs, _, err := p.partChecksums(ctx, o, dk)
	if errors.Is(err, errNoPartReads) {
		return nil, nil
	}
	return recs.sums, err
}

// storedPartSizes are the sizes of parts first..last of an object stored
// as it is (AllowPlaintextReads), as the store gives them.
func (p *Proxy) storedPartSizes(ctx context.Context, o objRef, first, last int) ([]int64, error) {
	sizes := make([]int64, last-first+1)
	err := eachPart(ctx, len(sizes), func(ctx context.Context, i int) error {
		var err error
		sizes[i], err = p.partSize(ctx, o, first+i)
		return err
	})
	return sizes, err
}

// sealedPartSizes are the plaintext sizes of parts first..last of an s3seal
// object, from its exact layout l: part sizes the store reported, which
// follow the multipart rule and add up to the object. Sizes that keep both
// can still be wrong (two parts' sizes swapped); a read would fail
// authentication then, but an answer of sizes reads nothing. So each part
// listed is confirmed to start where l places it, and to end where the next
// one starts (confirmBoundaries). A layout that fails is forgotten.
func (p *Proxy) sealedPartSizes(ctx context.Context, o objRef, l envelope.Layout, first, last int) ([]int64, error) {
	err := p.confirmBoundaries(ctx, o, l, first, last)
	if errors.Is(err, errPartMisplaced) {
		p.forgetLayout(o)
	}
	if err != nil {
		return nil, err
	}
	return l.Parts[first-1 : last], nil
}

// errPartMisplaced means a part's segment header is not where the layout
// places it: the part sizes the store reports are not the object's.
var errPartMisplaced = errors.New("a part does not start where its layout places it")

// confirmBoundaries checks that the segment headers of parts first..last+1
// (the last part's end is the object's) are stored where layout l places
// them. A header carries its part number in the clear, so this needs no
// data key: it makes the sizes agree with the stored bytes, which is what a
// store reporting wrong sizes for true bytes cannot fake. (A store that
// forges the bytes too is caught only by a read; docs/SECURITY.md.)
func (p *Proxy) confirmBoundaries(ctx context.Context, o objRef, l envelope.Layout, first, last int) error {
	offs := l.StoredOffsets()
	upto := min(last+1, len(l.Parts))
	return eachPart(ctx, upto-first+1, func(ctx context.Context, i int) error {
		k := first + i
		return p.checkHeaderAt(ctx, o, offs[k-1], k, l.Framing)
	})
}

// checkHeaderAt checks that segment k's header, of the given framing, is stored at
// byte at of o.
func (p *Proxy) checkHeaderAt(ctx context.Context, o objRef, at int64, k int, framing envelope.Framing) error {
	misplaced := func(cause error) error {
		return errCorrupt(fmt.Errorf("part %d: no segment header at stored byte %d (%w): %w", k, at, cause, errPartMisplaced))
	}
	hlen := framing.HeaderLen()
	body, err := p.store.GetRange(ctx, o.Object, o.etag, at, int64(hlen))
	var f *store.Failure
	switch {
	case errors.As(err, &f):
		// The client asked for no bytes: the store's refusal is not its to see.
		f.Resp.Body.Close()
		return errUpstream(fmt.Errorf("reading part %d's header: the store answered %d", k, f.Resp.StatusCode))
	case errors.Is(err, store.ErrRangeNotSatisfiable):
		return misplaced(err)
	case err != nil:
		return err
	}
	defer body.Close()
	h := make([]byte, hlen)
	if _, err := io.ReadFull(body, h); err != nil {
		return misplaced(envelope.ErrTruncated)
	}
	if part, ok := framing.HeaderPart(h); !ok || part != uint32(k) {
		return misplaced(envelope.ErrImpossibleSize)
	}
	return nil
}

// checkAttributesHeader refuses x-amz-object-attributes on any operation
// but GetObjectAttributes. SigV2 does not sign the "attributes"
// sub-resource (no SigV2 signer does), so a SigV2 GetObjectAttributes
// signature, its query dropped, would verify as a GetObject of the whole
// object; the signed header it carries gives such a replay away.
func checkAttributesHeader(rt *route, h http.Header) error {
	if rt.name != "GetObjectAttributes" && h.Get("X-Amz-Object-Attributes") != "" {
		return newS3Error("InvalidArgument", http.StatusBadRequest,
			"x-amz-object-attributes is taken by GetObjectAttributes (?attributes) only.", nil)
	}
	return nil
}
