package adversary

import "strconv"

// Kind is what a Lie falsifies. Request-side kinds change what the real
// store is asked; answer-side kinds change what it said. Answer-side lies
// apply in the order of these constants (status, then headers, then the
// body and its length); lies of one kind apply in the order given to Set.
// A lie that does not fit a request or answer (ContentLength on a GET,
// ContentRangeShift without Content-Range, ...) changes nothing.
type Kind int

const (
	// IgnoreSubresources drops every query parameter but versionId,
	// uploadId, partNumber, uploads and listing parameters, as a store that
	// does not route sub-resources would: a PUT ?tagging reaches the real
	// store as a PutObject, a GET ?acl as a GetObject (or a listing).
	IgnoreSubresources Kind = iota + 1
	// IgnoreIfMatch drops If-Match, If-None-Match and x-amz-copy-source-if-*,
	// as a store that ignores conditions would: reads are no longer pinned.
	IgnoreIfMatch
	// IgnoreRange drops Range and x-amz-copy-source-range: reads answer 200
	// with the whole object, copies copy all of the source.
	IgnoreRange
	// IgnorePartNumber drops ?partNumber on GET and HEAD: the store answers
	// with the whole object.
	IgnorePartNumber
	// OtherObject serves a GET or HEAD of an object from object Key of the
	// same bucket instead (its bytes and metadata). The query and
	// conditions go along unchanged.
	OtherObject

	// StatusOK answers 200 where the store said 206, without Content-Range;
	// headers and body are otherwise the same.
	StatusOK
	// Status replaces the status code with N (200..999; anything else is
	// 500), the body unchanged. A status without a body (204, 304) drops it.
	Status
	// OtherMetadata replaces the answer's x-amz-meta-* headers with those of
	// object Key in the same bucket, read with a HEAD. If that HEAD does not
	// answer 2xx, the Store answers 502.
	OtherMetadata
	// DropHeader removes the answer header named by Key.
	DropHeader
	// SetHeader sets an answer header: Key is "Name: value" (a redirect's
	// Location, a cookie, ...).
	SetHeader
	// ContentType sets Content-Type to a wrong value: N modulo 4 picks
	// application/octet-stream, text/html; charset=utf-8, application/xml or
	// application/json.
	ContentType
	// ContentRangeShift adds N to both byte positions of Content-Range
	// ("bytes a-b/total"), keeping the total.
	ContentRangeShift
	// ContentRangeTotal adds N to the total of Content-Range (also in
	// "bytes */total").
	ContentRangeTotal
	// ETagParts changes the part count of the ETag header and of every
	// <ETag> of an XML answer: N<0 strips a "-count" suffix, N>=0 sets the
	// suffix to "-N" (adding one to a single-part ETag). XML answers to
	// object GETs are not rewritten: those bodies are the object's. The
	// Store stays consistent: a condition (If-Match, ...) naming an ETag
	// it showed reaches the real store as the real ETag.
	ETagParts
	// ListingSize adds N to every <Size> of an XML answer (listings,
	// ListParts); as for ETagParts, object GETs are left alone.
	ListingSize
	// ShortBody sends the first N bytes of the body and declares that
	// length: a well-formed answer, too short.
	ShortBody
	// ExtendBody appends N bytes of deterministic junk to the body and
	// declares the longer length; on a HEAD only the declared length grows.
	ExtendBody
	// ContentLength adds N to the Content-Length of HEAD answers only (a
	// lying object or part size); a negative result drops the header.
	ContentLength
	// TruncateBody sends the first N bytes of the body and then cuts the
	// connection, keeping the declared Content-Length: the client sees an
	// unexpected EOF. A body of at most N bytes is sent whole.
	TruncateBody

	kindEnd
)

var kindNames = [...]string{
	IgnoreSubresources: "IgnoreSubresources", IgnoreIfMatch: "IgnoreIfMatch",
	IgnoreRange: "IgnoreRange", IgnorePartNumber: "IgnorePartNumber",
	OtherObject: "OtherObject", StatusOK: "StatusOK", Status: "Status",
	OtherMetadata: "OtherMetadata", DropHeader: "DropHeader", SetHeader: "SetHeader",
	ContentType: "ContentType", ContentRangeShift: "ContentRangeShift",
	ContentRangeTotal: "ContentRangeTotal", ETagParts: "ETagParts",
	ListingSize: "ListingSize", ShortBody: "ShortBody", ExtendBody: "ExtendBody",
	ContentLength: "ContentLength", TruncateBody: "TruncateBody",
}

// Kinds returns every Kind, in application order (for fuzz targets and
// exhaustive tests).
func Kinds() []Kind {
	out := make([]Kind, 0, kindEnd-1)
	for k := IgnoreSubresources; k < kindEnd; k++ {
		out = append(out, k)
	}
	return out
}

func (k Kind) String() string {
	if k > 0 && k < kindEnd {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}
