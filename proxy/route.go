package proxy

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// level is what a request names: the service, a bucket or an object.
type level int

const (
	levelService level = iota
	levelBucket
	levelObject
)

// bodyKind is what a route does with the request body. Whatever the kind, no
// byte of a body reaches the store before the body has passed every check it
// carries, or — for encrypted bodies — the final chunk that completes the
// upstream request is sealed only after it has (put.go).
type bodyKind int

const (
	bodyNone     bodyKind = iota // must be empty; read and verified before the store is asked anything
	bodyDocument                 // a small document, read whole and verified, then checked (x.doc)
	bodyEncrypt                  // encrypted as it streams (PutObject, UploadPart)
)

// document is the shape of a configuration document in a request or answer.
type document struct {
	root     string   // local name of the XML root element; "" for JSON
	max      int64    // largest accepted, in bytes
	optional bool     // an empty body is accepted too (a canned ACL in a header)
	refuse   []string // elements it may not have: what s3seal does not serve
}

func (d *document) json() bool { return d.root == "" }

// Document size limits: S3's own where it has one (20 KB policies, 64 KB
// CORS, 1,000 keys per DeleteObjects), a bound that the largest real
// configurations stay far below otherwise.
const (
	docSmall  = 64 << 10
	docLarge  = 1 << 20
	docPolicy = 20 << 10
	docDelete = 2 << 20
	docParts  = 4 << 20 // CompleteMultipartUpload: 10,000 parts with checksums
)

// route is one S3 operation s3seal knows: how to recognise it and how it is
// served. A request that matches no route is refused with 501, so the store
// never gets a request s3seal has not thought about (an unknown sub-resource
// could make it store a body as plaintext, or answer with ciphertext).
type route struct {
	name   string // the S3 operation, for logs and metrics
	method string
	level  level
	sub    string   // the query parameter that names the operation, or ""
	needs  []string // further parameters it requires
	params []string // further parameters it accepts; any other is refused
	copy   bool     // requires x-amz-copy-source, which every other route refuses
	sse    bool     // honours SSE-KMS request headers, which every other route refuses (sse.go)
	body   bodyKind
	in     *document // the request document, for bodyDocument
	// out is the document a passthrough route's 2xx answer must be; nil: an
	// answer without a body (PUT and DELETE of configurations, HEAD).
	out   *document
	serve func(*Proxy, *exchange) error // nil: passthrough
}

// Query parameters that are not part of the operation: the SDK's operation
// hint and a presigned URL's own signature, which must never reach the store.
// A SigV2 URL's are AWSAccessKeyId, Signature and Expires, and botocore's
// SigV2 presigner copies the Content-Type and Content-MD5 it signed there
// too: the client sends them as headers, which is where they are checked.
var (
	ignoredParams = map[string]bool{"x-id": true}
	presignParams = map[string]bool{
		"x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true,
		"x-amz-expires": true, "x-amz-signedheaders": true, "x-amz-signature": true,
		"x-amz-security-token": true, "x-amz-content-sha256": true,
		"awsaccesskeyid": true, "signature": true, "expires": true, "content-type": true, "content-md5": true,
	}
)

var (
	readParams = []string{"versionId", "partNumber", "response-cache-control", "response-content-disposition",
		"response-content-encoding", "response-content-language", "response-content-type", "response-expires"}
	listParams = []string{"list-type", "prefix", "delimiter", "marker", "max-keys", "encoding-type",
		"continuation-token", "fetch-owner", "start-after", "metadata"}
	versionListParams = []string{"prefix", "delimiter", "key-marker", "version-id-marker", "max-keys", "encoding-type"}
	uploadListParams  = []string{"prefix", "delimiter", "key-marker", "upload-id-marker", "max-uploads", "encoding-type"}
	version           = []string{"versionId"}
)

// routes is every operation s3seal serves. Order matters only among routes
// of one method and level: the first whose sub-resource, required
// parameters and copy source fit wins.
var routes = append([]route{
	{name: "ListBuckets", method: http.MethodGet, level: levelService,
		params: []string{"max-buckets", "continuation-token", "prefix", "bucket-region"}, serve: (*Proxy).listBuckets},

	{name: "ListObjects", method: http.MethodGet, level: levelBucket, params: listParams, serve: (*Proxy).listObjects},
	{name: "ListObjectVersions", method: http.MethodGet, level: levelBucket, sub: "versions", params: versionListParams, serve: (*Proxy).listObjects},
	{name: "ListMultipartUploads", method: http.MethodGet, level: levelBucket, sub: "uploads", params: uploadListParams, serve: (*Proxy).listUploads},
	{name: "GetBucketLocation", method: http.MethodGet, level: levelBucket, sub: "location", out: &document{root: "LocationConstraint", max: docSmall}},
	{name: "HeadBucket", method: http.MethodHead, level: levelBucket},
	{name: "CreateBucket", method: http.MethodPut, level: levelBucket, body: bodyDocument,
		in: &document{root: "CreateBucketConfiguration", max: docSmall, optional: true}},
	{name: "DeleteBucket", method: http.MethodDelete, level: levelBucket},
	// Browser form uploads: authenticated by the form's policy, not by the
	// request's signature (postobject.go); classify takes only a
	// multipart/form-data body here.
	{name: "PostObject", method: http.MethodPost, level: levelBucket, body: bodyEncrypt, sse: true, serve: (*Proxy).postObject},
	{name: "DeleteObjects", method: http.MethodPost, level: levelBucket, sub: "delete", body: bodyDocument,
		in: &document{root: "Delete", max: docDelete}, out: &document{root: "DeleteResult", max: docLarge}},

	{name: "GetObject", method: http.MethodGet, level: levelObject, params: readParams, serve: (*Proxy).getObject},
	{name: "HeadObject", method: http.MethodHead, level: levelObject, params: readParams, serve: (*Proxy).getObject},
	// Answered from s3seal's own HEADs, never forwarded: the store's answer
	// would give ciphertext sizes and checksums (attributes.go).
	{name: "GetObjectAttributes", method: http.MethodGet, level: levelObject, sub: "attributes", params: version, serve: (*Proxy).getObjectAttributes},
	{name: "UploadPartCopy", method: http.MethodPut, level: levelObject, sub: "uploadId", needs: []string{"partNumber"}, copy: true, serve: (*Proxy).uploadPartCopy},
	{name: "UploadPart", method: http.MethodPut, level: levelObject, sub: "uploadId", needs: []string{"partNumber"}, body: bodyEncrypt, serve: (*Proxy).uploadPart},
	{name: "CopyObject", method: http.MethodPut, level: levelObject, copy: true, sse: true, serve: (*Proxy).copyObject},
	{name: "PutObject", method: http.MethodPut, level: levelObject, body: bodyEncrypt, sse: true, serve: (*Proxy).putObject},
	{name: "DeleteObject", method: http.MethodDelete, level: levelObject, params: version},
	{name: "CreateMultipartUpload", method: http.MethodPost, level: levelObject, sub: "uploads", sse: true, serve: (*Proxy).createUpload},
	{name: "CompleteMultipartUpload", method: http.MethodPost, level: levelObject, sub: "uploadId", body: bodyDocument,
		in: &document{root: "CompleteMultipartUpload", max: docParts}, sse: true, serve: (*Proxy).completeUpload},
	{name: "AbortMultipartUpload", method: http.MethodDelete, level: levelObject, sub: "uploadId", serve: (*Proxy).abortUpload},
	{name: "ListParts", method: http.MethodGet, level: levelObject, sub: "uploadId", params: []string{"max-parts", "part-number-marker"}, serve: (*Proxy).listParts},
	// A SELECT restore writes query results (plaintext of the client's
	// choosing, with metadata of its choosing) as new objects: refused.
	{name: "RestoreObject", method: http.MethodPost, level: levelObject, sub: "restore", params: version, body: bodyDocument,
		in: &document{root: "RestoreRequest", max: docSmall, refuse: []string{"Type", "SelectParameters", "OutputLocation"}}},
}, configRoutes()...)

// configResource is a configuration sub-resource: a document that is read, replaced
// and (where S3 allows) deleted, and passed through once checked.
type configResource struct {
	level         level
	sub, root     string // root "": JSON (bucket policies)
	max           int64
	optional      bool   // PUT may carry no body (a canned ACL header instead)
	get, put, del string // operation names; "" where S3 has none
}

var configs = []configResource{
	{level: levelBucket, sub: "acl", root: "AccessControlPolicy", optional: true, get: "GetBucketAcl", put: "PutBucketAcl"},
	{level: levelBucket, sub: "accelerate", root: "AccelerateConfiguration", get: "GetBucketAccelerateConfiguration", put: "PutBucketAccelerateConfiguration"},
	{level: levelBucket, sub: "cors", root: "CORSConfiguration", get: "GetBucketCors", put: "PutBucketCors", del: "DeleteBucketCors"},
	{level: levelBucket, sub: "encryption", root: "ServerSideEncryptionConfiguration", get: "GetBucketEncryption", put: "PutBucketEncryption", del: "DeleteBucketEncryption"},
	{level: levelBucket, sub: "lifecycle", root: "LifecycleConfiguration", max: docLarge, get: "GetBucketLifecycleConfiguration", put: "PutBucketLifecycleConfiguration", del: "DeleteBucketLifecycle"},
	{level: levelBucket, sub: "logging", root: "BucketLoggingStatus", get: "GetBucketLogging", put: "PutBucketLogging"},
	{level: levelBucket, sub: "notification", root: "NotificationConfiguration", max: docLarge, get: "GetBucketNotificationConfiguration", put: "PutBucketNotificationConfiguration"},
	{level: levelBucket, sub: "object-lock", root: "ObjectLockConfiguration", get: "GetObjectLockConfiguration", put: "PutObjectLockConfiguration"},
	{level: levelBucket, sub: "ownershipControls", root: "OwnershipControls", get: "GetBucketOwnershipControls", put: "PutBucketOwnershipControls", del: "DeleteBucketOwnershipControls"},
	{level: levelBucket, sub: "policy", max: docPolicy, get: "GetBucketPolicy", put: "PutBucketPolicy", del: "DeleteBucketPolicy"},
	{level: levelBucket, sub: "policyStatus", root: "PolicyStatus", get: "GetBucketPolicyStatus"},
	{level: levelBucket, sub: "publicAccessBlock", root: "PublicAccessBlockConfiguration", get: "GetPublicAccessBlock", put: "PutPublicAccessBlock", del: "DeletePublicAccessBlock"},
	{level: levelBucket, sub: "replication", root: "ReplicationConfiguration", max: docLarge, get: "GetBucketReplication", put: "PutBucketReplication", del: "DeleteBucketReplication"},
	{level: levelBucket, sub: "requestPayment", root: "RequestPaymentConfiguration", get: "GetBucketRequestPayment", put: "PutBucketRequestPayment"},
	{level: levelBucket, sub: "tagging", root: "Tagging", get: "GetBucketTagging", put: "PutBucketTagging", del: "DeleteBucketTagging"},
	{level: levelBucket, sub: "versioning", root: "VersioningConfiguration", get: "GetBucketVersioning", put: "PutBucketVersioning"},
	{level: levelBucket, sub: "website", root: "WebsiteConfiguration", get: "GetBucketWebsite", put: "PutBucketWebsite", del: "DeleteBucketWebsite"},
	{level: levelObject, sub: "acl", root: "AccessControlPolicy", optional: true, get: "GetObjectAcl", put: "PutObjectAcl"},
	{level: levelObject, sub: "tagging", root: "Tagging", get: "GetObjectTagging", put: "PutObjectTagging", del: "DeleteObjectTagging"},
	{level: levelObject, sub: "retention", root: "Retention", get: "GetObjectRetention", put: "PutObjectRetention"},
	{level: levelObject, sub: "legal-hold", root: "LegalHold", get: "GetObjectLegalHold", put: "PutObjectLegalHold"},
}

// configServers are the configuration operations s3seal answers itself
// (bucketcmk.go): the bucket's default CMK, and the bucket tags it is kept in.
var configServers = map[string]func(*Proxy, *exchange) error{
	"GetBucketEncryption":    (*Proxy).getBucketEncryption,
	"PutBucketEncryption":    (*Proxy).putBucketEncryption,
	"DeleteBucketEncryption": (*Proxy).deleteBucketEncryption,
	"GetBucketTagging":       (*Proxy).getBucketTagging,
	"PutBucketTagging":       (*Proxy).putBucketTagging,
	"DeleteBucketTagging":    (*Proxy).deleteBucketTagging,
}

// configRoutes expands configs into their GET, PUT and DELETE routes.
func configRoutes() []route {
	var out []route
	for _, c := range configs {
		max := c.max
		if max == 0 {
			max = docSmall
		}
		var params []string
		if c.level == levelObject {
			params = version
		}
		doc := &document{root: c.root, max: max, optional: c.optional}
		get := route{name: c.get, method: http.MethodGet, level: c.level, sub: c.sub, params: params, serve: configServers[c.get]}
		if get.serve == nil {
			get.out = &document{root: c.root, max: max}
		}
		out = append(out, get)
		if c.put != "" {
			out = append(out, route{name: c.put, method: http.MethodPut, level: c.level, sub: c.sub, params: params,
				body: bodyDocument, in: doc, serve: configServers[c.put]})
		}
		if c.del != "" {
			out = append(out, route{name: c.del, method: http.MethodDelete, level: c.level, sub: c.sub, params: params,
				serve: configServers[c.del]})
		}
	}
	return out
}

// target is a classified client request.
type target struct {
	bucket, key string
	virtual     bool // the bucket came from the Host
	level       level
	route       *route // nil: refused (refusal says why)
	refusal     string
	// query is the client's query reduced to what the route takes (presign
	// parameters and the SDK hint dropped); x-amz-* parameters that
	// presigners hoist out of headers are moved to header.
	query  url.Values
	header http.Header
}

// op names the operation for logs and metrics.
func (t target) op() string {
	if t.route == nil {
		return "Unsupported"
	}
	return t.route.name
}

// classify parses bucket and key (path-style, or virtual-hosted-style under
// domain) and finds the request's route.
func classify(r *http.Request, domain string) target {
	t := target{header: r.Header.Clone(), query: url.Values{}}
	for k, vs := range r.URL.Query() {
		lk := strings.ToLower(k)
		switch {
		case presignParams[lk], ignoredParams[k]:
		case strings.HasPrefix(lk, "x-amz-"):
			for _, v := range vs {
				t.header.Add(k, v)
			}
		default:
			t.query[k] = vs
		}
	}
	t.bucket, t.key, t.virtual = bucketKey(r, domain)
	switch {
	case t.bucket == "":
		t.level = levelService
	case t.key == "":
		t.level = levelBucket
	default:
		t.level = levelObject
	}
	t.route, t.refusal = findRoute(r.Method, t.level, t.query, t.header.Get("X-Amz-Copy-Source") != "")
	if t.route != nil && t.route.name == "PostObject" && !isFormData(r.Header.Get("Content-Type")) {
		t.route, t.refusal = nil, "POST on a bucket without a multipart/form-data body"
	}
	return t
}

// findRoute returns the route for a request, or why there is none.
func findRoute(method string, lvl level, q url.Values, copySource bool) (*route, string) {
	for k := range q {
		if name, ok := unsupported[k]; ok {
			return nil, name
		}
	}
	has := func(k string) bool { _, ok := q[k]; return ok }
	var fallback *route
	for i := range routes {
		rt := &routes[i]
		switch {
		case rt.method != method || rt.level != lvl || rt.copy != copySource:
		case rt.sub == "" && fallback == nil:
			fallback = rt
		case rt.sub != "" && has(rt.sub) && allOf(rt.needs, has):
			return checkParams(rt, q)
		}
	}
	if fallback != nil {
		return checkParams(fallback, q)
	}
	what := method + " " + [...]string{"on the service", "on a bucket", "on an object"}[lvl]
	if copySource {
		what += " with x-amz-copy-source"
	}
	if len(q) > 0 {
		what += " with the query parameters " + quoteKeys(q)
	}
	return nil, what
}

// unsupported are sub-resources s3seal knows and refuses: they would report
// stored sizes and checksums, need plaintext the store does not have, or are
// not implemented yet.
var unsupported = map[string]string{
	"torrent": "GetObjectTorrent", "select": "SelectObjectContent",
	"analytics": "Bucket analytics configurations", "inventory": "Bucket inventory configurations",
	"metrics": "Bucket metrics configurations", "intelligent-tiering": "Intelligent-Tiering configurations",
	"session": "CreateSession", "metadataConfiguration": "Bucket metadata configurations",
	"metadataTable": "Bucket metadata tables", "renameObject": "RenameObject",
}

// checkParams refuses a query parameter the route does not take: forwarding
// it could make the store do something other than what s3seal serves.
func checkParams(rt *route, q url.Values) (*route, string) {
	for k := range q {
		if k != rt.sub && !slices.Contains(rt.needs, k) && !slices.Contains(rt.params, k) {
			return nil, "The query parameter " + quote(k) + " on " + rt.name
		}
	}
	return rt, ""
}

func quoteKeys(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, quote(k))
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

// quote quotes a client's parameter name for a message, cut to a sane length.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

func allOf(ks []string, has func(string) bool) bool {
	for _, k := range ks {
		if !has(k) {
			return false
		}
	}
	return true
}

// bucketKey splits a request into bucket and key, and says whether the
// bucket came from the Host (virtual-hosted style). Keys keep every byte
// of the decoded path, including repeated and trailing slashes: S3 keys
// are opaque strings.
func bucketKey(r *http.Request, domain string) (bucket, key string, virtual bool) {
	path := r.URL.Path
	if domain != "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		suffix := "." + strings.ToLower(strings.TrimSuffix(domain, "."))
		if lh := strings.ToLower(host); strings.HasSuffix(lh, suffix) && len(lh) > len(suffix) {
			return host[:len(host)-len(suffix)], strings.TrimPrefix(path, "/"), true
		}
	}
	path = strings.TrimPrefix(path, "/")
	bucket, key, _ = strings.Cut(path, "/")
	return bucket, key, false
}
