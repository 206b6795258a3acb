package proxy

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// operation is what a client request asks for, as far as s3seal cares: the
// few operations that touch object bodies or sizes get their own handling,
// everything else is passed through.
type operation int

const (
	opPassthrough operation = iota
	opPutObject
	opGetObject
	opHeadObject
	opListObjects        // v1 and v2
	opListObjectVersions // ListObjectVersions: <Version> rows carry sizes
	opCopyObject
	opCreateUpload   // CreateMultipartUpload
	opUploadPart     // UploadPart
	opUploadPartCopy // UploadPartCopy
	opCompleteUpload // CompleteMultipartUpload
	opAbortUpload    // AbortMultipartUpload
	opListParts      // ListParts: <Size> and <UploadId> rewritten
	opListUploads    // ListMultipartUploads: <UploadId> rewritten
	opUnsupported    // refused: s3seal cannot do it safely
)

func (o operation) String() string {
	switch o {
	case opPutObject:
		return "PutObject"
	case opGetObject:
		return "GetObject"
	case opHeadObject:
		return "HeadObject"
	case opListObjects:
		return "ListObjects"
	case opListObjectVersions:
		return "ListObjectVersions"
	case opCopyObject:
		return "CopyObject"
	case opCreateUpload:
		return "CreateMultipartUpload"
	case opUploadPart:
		return "UploadPart"
	case opUploadPartCopy:
		return "UploadPartCopy"
	case opCompleteUpload:
		return "CompleteMultipartUpload"
	case opAbortUpload:
		return "AbortMultipartUpload"
	case opListParts:
		return "ListParts"
	case opListUploads:
		return "ListMultipartUploads"
	case opUnsupported:
		return "Unsupported"
	}
	return "Passthrough"
}

// target is a classified client request.
type target struct {
	bucket, key string
	op          operation
	unsupported string // what is refused, for opUnsupported
	// query is the client's query without presigning parameters; x-amz-*
	// parameters that presigners hoist out of headers are moved to header.
	query  url.Values
	header http.Header
}

// presignParams are the query parameters of a presigned URL's own signature.
// They authenticate the client to s3seal and must never reach the store.
var presignParams = map[string]bool{
	"x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true,
	"x-amz-expires": true, "x-amz-signedheaders": true, "x-amz-signature": true,
	"x-amz-security-token": true, "x-amz-content-sha256": true,
}

// bucketSubresources are the query parameters that make a GET on a bucket
// something other than a listing (its configuration: ?acl, ?policy, ...).
// Any other GET on a bucket is treated as a listing and its sizes are
// rewritten, so a listing parameter s3seal does not know yet can never let
// ciphertext sizes through; the rewrite touches nothing but <Contents> sizes.
var bucketSubresources = []string{
	"accelerate", "acl", "analytics", "cors", "encryption", "intelligent-tiering",
	"inventory", "lifecycle", "location", "logging", "metadataConfiguration",
	"metadataTable", "metrics", "notification", "object-lock", "ownershipControls",
	"policy", "policyStatus", "publicAccessBlock", "replication", "requestPayment",
	"session", "tagging", "versioning", "website",
}

// Object sub-resources whose requests and answers carry no object body and
// no size: safe to pass through.
var objectPassthroughParams = []string{"acl", "tagging", "retention", "legal-hold", "restore"}

// classify parses the bucket and key (path-style, or virtual-hosted-style
// under domain) and decides the operation. Unknown object requests are
// classified as reads and writes of bodies rather than passed through:
// passing an unknown write through could store plaintext.
func classify(r *http.Request, domain string) target {
	t := target{header: r.Header.Clone(), query: url.Values{}}
	for k, vs := range r.URL.Query() {
		lk := strings.ToLower(k)
		switch {
		case presignParams[lk]:
		case strings.HasPrefix(lk, "x-amz-"):
			for _, v := range vs {
				t.header.Add(k, v)
			}
		default:
			t.query[k] = vs
		}
	}
	t.bucket, t.key = bucketKey(r, domain)

	q := t.query
	has := func(k string) bool { _, ok := q[k]; return ok }
	unsupported := func(what string) target { t.op, t.unsupported = opUnsupported, what; return t }

	switch {
	case t.bucket == "":
		return t // ListBuckets and other service-level requests
	case t.key == "":
		switch r.Method {
		case http.MethodGet:
			switch {
			case has("versions"):
				t.op = opListObjectVersions
			case has("uploads"):
				t.op = opListUploads
			case !slices.ContainsFunc(bucketSubresources, has):
				t.op = opListObjects
			}
		case http.MethodPost:
			if len(q) == 0 || (len(q) == 1 && has("x-id")) {
				if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
					return unsupported("POST object (browser form upload)")
				}
			}
		}
		return t
	}

	// Object requests.
	passthroughSub := false
	for _, k := range objectPassthroughParams {
		passthroughSub = passthroughSub || has(k)
	}
	copySource := t.header.Get("X-Amz-Copy-Source") != ""
	switch r.Method {
	case http.MethodPut:
		switch {
		case has("uploadId") && has("partNumber") && copySource:
			t.op = opUploadPartCopy
			return t
		case has("uploadId") && has("partNumber"):
			t.op = opUploadPart
			return t
		case has("uploadId") || has("partNumber"):
			// Half an UploadPart: never store its body as an object.
			return unsupported("PUT with only one of uploadId and partNumber")
		case copySource && passthroughSub:
			return unsupported("A copy of a sub-resource")
		case copySource:
			t.op = opCopyObject
			return t
		case passthroughSub:
			return t
		}
		t.op = opPutObject
	case http.MethodPost:
		switch {
		case has("uploads"):
			t.op = opCreateUpload
		case has("uploadId"):
			t.op = opCompleteUpload
		case has("select"):
			return unsupported("SelectObjectContent")
		case !passthroughSub:
			// An object POST s3seal does not know could carry a body the
			// store would keep as it is: refuse rather than pass plaintext.
			return unsupported("this POST on an object")
		}
		return t // RestoreObject
	case http.MethodGet, http.MethodHead:
		switch {
		case has("uploadId") && r.Method == http.MethodGet:
			t.op = opListParts
			return t
		case has("attributes"):
			return unsupported("GetObjectAttributes") // reports stored sizes and checksums
		case has("torrent"):
			return unsupported("GetObjectTorrent")
		case passthroughSub && r.Method == http.MethodGet:
			return t // GetObjectAcl, GetObjectTagging, ...
		}
		// partNumber reads are GetObject/HeadObject too (get.go).
		t.op = opGetObject
		if r.Method == http.MethodHead {
			t.op = opHeadObject
		}
	case http.MethodDelete:
		if has("uploadId") {
			t.op = opAbortUpload
		}
	}
	return t // DELETE (object, tagging) and the rest
}

// bucketKey splits a request into bucket and key. Keys keep every byte of
// the decoded path, including repeated and trailing slashes: S3 keys are
// opaque strings.
func bucketKey(r *http.Request, domain string) (string, string) {
	path := r.URL.Path
	if domain != "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		suffix := "." + strings.ToLower(strings.TrimSuffix(domain, "."))
		if lh := strings.ToLower(host); strings.HasSuffix(lh, suffix) && len(lh) > len(suffix) {
			return host[:len(host)-len(suffix)], strings.TrimPrefix(path, "/")
		}
	}
	path = strings.TrimPrefix(path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	return bucket, key
}
