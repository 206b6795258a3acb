package proxy

// Completing a store's error answer into the document S3 answers with: a
// Code, a Message, a Resource, and s3seal's RequestId and HostId. Stores
// leave out parts (versitygw has no Resource; some answer errors with no
// body at all), and clients print what is there: botocore shows a missing
// Message as "Unknown".

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/s3seal/s3seal/internal/store"
)

// errorMessages are S3's messages for the codes s3seal derives for a
// store's error, or fills a missing Message in for.
var errorMessages = map[string]string{
	"AccessDenied":       "Access Denied",
	"InternalError":      "We encountered an internal error. Please try again.",
	"InvalidPartNumber":  "The requested partnumber is not satisfiable",
	"InvalidRange":       "The requested range is not satisfiable",
	"MethodNotAllowed":   "The specified method is not allowed against this resource.",
	"NoSuchBucket":       "The specified bucket does not exist",
	"NoSuchKey":          "The specified key does not exist.",
	"NoSuchUpload":       "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
	"NoSuchVersion":      "The specified version does not exist.",
	"NotImplemented":     "A header you provided implies functionality that is not implemented.",
	"PreconditionFailed": "At least one of the pre-conditions you specified did not hold",
	"ServiceUnavailable": "Please reduce your request rate.",
	"SlowDown":           "Please reduce your request rate.",

	"NoSuchBucketPolicy":                    "The bucket policy does not exist",
	"NoSuchCORSConfiguration":               "The CORS configuration does not exist",
	"NoSuchLifecycleConfiguration":          "The lifecycle configuration does not exist",
	"NoSuchWebsiteConfiguration":            "The specified bucket does not have a website configuration",
	"NoSuchPublicAccessBlockConfiguration":  "The public access block configuration was not found",
	"ObjectLockConfigurationNotFoundError":  "Object Lock configuration does not exist for this bucket",
	"OwnershipControlsNotFoundError":        "The bucket ownership controls were not found",
	"ReplicationConfigurationNotFoundError": "The replication configuration was not found",
}

// statusCodes are the codes S3 answers a status with whatever the operation.
var statusCodes = map[int]string{
	http.StatusForbidden:          "AccessDenied",
	http.StatusMethodNotAllowed:   "MethodNotAllowed",
	http.StatusPreconditionFailed: "PreconditionFailed",
	// S3's throttling code, which the SDKs back off on; "TooManyRequests"
	// (the status's name) is retried by none of them.
	http.StatusTooManyRequests:     "SlowDown",
	http.StatusInternalServerError: "InternalError",
	http.StatusNotImplemented:      "NotImplemented",
	http.StatusServiceUnavailable:  "ServiceUnavailable",
}

// missingConfigCodes are S3's 404 codes of a configuration read on a bucket
// that exists: that configuration is not set.
var missingConfigCodes = map[string]string{
	"GetBucketPolicy":                 "NoSuchBucketPolicy",
	"GetBucketCors":                   "NoSuchCORSConfiguration",
	"GetBucketLifecycleConfiguration": "NoSuchLifecycleConfiguration",
	"GetBucketWebsite":                "NoSuchWebsiteConfiguration",
	"GetPublicAccessBlock":            "NoSuchPublicAccessBlockConfiguration",
	"GetObjectLockConfiguration":      "ObjectLockConfigurationNotFoundError",
	"GetBucketOwnershipControls":      "OwnershipControlsNotFoundError",
	"GetBucketReplication":            "ReplicationConfigurationNotFoundError",
}

// keyNotFoundOps are the object operations whose 404, in a bucket that
// exists and without a version or upload named, can only mean the key is
// missing (a retention read's 404 may mean no retention is set instead).
var keyNotFoundOps = map[string]bool{
	"GetObject": true, "HeadObject": true, "GetObjectAttributes": true, "RestoreObject": true,
	"GetObjectTagging": true, "PutObjectTagging": true, "DeleteObjectTagging": true,
	"GetObjectAcl": true, "PutObjectAcl": true,
}

// errorCode is the code of a store's error answer of status that came
// without one. A code that names what is missing is given only when it is
// certain: a 404 is NoSuchKey only in a bucket the store says exists. Else
// it is the status's name, as SDKs name a bodiless error ("NotFound").
func (p *Proxy) errorCode(x *exchange, status int) string {
	if status < 400 {
		// An error document in a success (CompleteMultipartUpload,
		// CopyObject answer 200 and fail in the body): S3 says InternalError.
		return "InternalError"
	}
	switch status {
	case http.StatusNotFound:
		if code := p.notFoundCode(x); code != "" {
			return code
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if x.t.query.Has("partNumber") {
			return "InvalidPartNumber"
		}
		return "InvalidRange"
	}
	if code, ok := statusCodes[status]; ok {
		return code
	}
	if name := strings.ReplaceAll(http.StatusText(status), " ", ""); name != "" {
		return name
	}
	return map[bool]string{true: "InternalError", false: "InvalidRequest"}[status >= 500]
}

// notFoundCode names what a store's bare 404 says is missing, or "" when
// that is not certain.
func (p *Proxy) notFoundCode(x *exchange) string {
	if x.t.bucket == "" {
		return ""
	}
	exists, known := p.bucketExists(x.r.Context(), x.t.bucket)
	op := x.t.op()
	switch {
	case !known:
		return ""
	case !exists:
		return "NoSuchBucket"
	case x.t.level == levelBucket:
		return missingConfigCodes[op]
	case x.t.query.Has("uploadId"):
		return "NoSuchUpload"
	case !keyNotFoundOps[op]:
		return ""
	case x.t.query.Has("versionId"):
		return "NoSuchVersion"
	}
	return "NoSuchKey"
}

// bucketExists asks the store whether bucket exists; known is false when
// its answer does not say (denied, unreachable, ...).
func (p *Proxy) bucketExists(ctx context.Context, bucket string) (exists, known bool) {
	resp, err := p.store.Do(ctx, store.Request{Method: http.MethodHead, Bucket: bucket})
	if err != nil {
		return false, false
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, true
	case http.StatusNotFound:
		return false, true
	}
	return false, false
}

// errorFields are the elements of a store's S3 error document, in order;
// none for an empty body.
func errorFields(body []byte) ([]xmlField, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, nil
	}
	var doc struct {
		XMLName xml.Name
		Fields  []xmlField `xml:",any"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("store's error document: %w", err)
	}
	for i := range doc.Fields {
		doc.Fields[i].XMLName.Space = "" // one document, no namespace games
	}
	return doc.Fields, nil
}

// completeError returns a store's error answer of status (body: its S3
// error document, or empty) as a complete one: the store's elements kept
// in order, a Code derived from the status and the operation where it has
// none, S3's Message for the code where it has none, the request's path as
// Resource where it has none, and s3seal's RequestId and HostId in place of
// the store's — the ids the answer's headers carry, which are the ones
// s3seal's log knows.
func (p *Proxy) completeError(x *exchange, status int, body []byte) ([]byte, error) {
	fields, err := errorFields(body)
	if err != nil {
		return nil, err
	}
	fields = slices.DeleteFunc(fields, func(f xmlField) bool {
		return f.XMLName.Local == "RequestId" || f.XMLName.Local == "HostId"
	})
	bodiless := len(fields) == 0
	at := fieldIndex(fields, "Code")
	if at < 0 {
		at = 0
		fields = slices.Insert(fields, 0, field("Code", p.errorCode(x, status)))
	}
	if fieldIndex(fields, "Message") < 0 {
		fields = slices.Insert(fields, at+1, field("Message", errorMessage(fields[at].Value, status, bodiless)))
	}
	if fieldIndex(fields, "Resource") < 0 {
		fields = append(fields, field("Resource", x.r.URL.Path))
	}
	out, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"Error"`
		Fields  []xmlField
	}{Fields: append(fields, field("RequestId", x.ids.request), field("HostId", x.ids.host))})
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), out...), nil
}

// fieldIndex is the index of the first element named name, or -1.
func fieldIndex(fields []xmlField, name string) int {
	return slices.IndexFunc(fields, func(f xmlField) bool { return f.XMLName.Local == name })
}

// errorMessage is S3's message for code, or else one that says what the
// store left out.
func errorMessage(code string, status int, bodiless bool) string {
	if m, ok := errorMessages[code]; ok {
		return m
	}
	if bodiless {
		return fmt.Sprintf("The store answered %d %s without saying more.", status, http.StatusText(status))
	}
	return fmt.Sprintf("The store answered %d %s with no message.", status, code)
}
