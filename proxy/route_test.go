package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClassify(t *testing.T) {
	form := http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}
	copySrc := http.Header{"X-Amz-Copy-Source": {"b/src"}}
	tests := []struct {
		method, target, host string
		header               http.Header
		bucket, key          string
		op                   string // "" refused
	}{
		{"GET", "/", "", nil, "", "", "ListBuckets"},
		{"GET", "/?x-id=ListBuckets&max-buckets=5", "", nil, "", "", "ListBuckets"},
		{"PUT", "/", "", nil, "", "", ""},
		{"GET", "/b", "", nil, "b", "", "ListObjects"},
		{"GET", "/b/?list-type=2&prefix=a&x-id=ListObjectsV2", "", nil, "b", "", "ListObjects"},
		{"GET", "/b?versions&prefix=a", "", nil, "b", "", "ListObjectVersions"},
		{"GET", "/b?uploads", "", nil, "b", "", "ListMultipartUploads"},
		{"GET", "/b?uploads&upload-id-marker=x&key-marker=k", "", nil, "b", "", "ListMultipartUploads"},
		{"GET", "/b?acl", "", nil, "b", "", "GetBucketAcl"},
		{"GET", "/b?policy", "", nil, "b", "", "GetBucketPolicy"},
		{"GET", "/b?location", "", nil, "b", "", "GetBucketLocation"},
		// Parameters s3seal does not know are refused, never passed on.
		{"GET", "/b?list-type=2&some-new-param=1", "", nil, "b", "", ""},
		{"GET", "/b?versions&some-new-param=1", "", nil, "b", "", ""},
		{"GET", "/b?analytics&id=x", "", nil, "b", "", ""},
		{"PUT", "/b", "", nil, "b", "", "CreateBucket"},
		{"PUT", "/b?policy", "", nil, "b", "", "PutBucketPolicy"},
		{"DELETE", "/b?tagging", "", nil, "b", "", "DeleteBucketTagging"},
		{"DELETE", "/b?versioning", "", nil, "b", "", ""},
		{"POST", "/b?delete", "", nil, "b", "", "DeleteObjects"},
		{"POST", "/b", "", form, "b", "", "PostObject"},
		{"POST", "/b", "", nil, "b", "", ""},
		{"POST", "/b?foo", "", form, "b", "", ""},
		{"HEAD", "/b", "", nil, "b", "", "HeadBucket"},
		{"PUT", "/b/k?x-id=PutObject", "", nil, "b", "k", "PutObject"},
		{"PUT", "/b/a//b/", "", nil, "b", "a//b/", "PutObject"},
		{"PUT", "/b/k?tagging", "", nil, "b", "k", "PutObjectTagging"},
		{"PUT", "/b/k?tagging&versionId=v", "", nil, "b", "k", "PutObjectTagging"},
		{"PUT", "/b/k?restore", "", nil, "b", "k", ""},
		{"PUT", "/b/k?foo", "", nil, "b", "k", ""},
		{"PUT", "/b/k", "", copySrc, "b", "k", "CopyObject"},
		{"PUT", "/b/k?partNumber=1&uploadId=u", "", copySrc, "b", "k", "UploadPartCopy"},
		{"PUT", "/b/k?tagging", "", copySrc, "b", "k", ""},
		{"PUT", "/b?policy", "", copySrc, "b", "", ""},
		{"PUT", "/b/k?partNumber=1", "", nil, "b", "k", ""},
		{"PUT", "/b/k?uploadId=u", "", nil, "b", "k", ""},
		{"PUT", "/b/k?partNumber=1&uploadId=u", "", nil, "b", "k", "UploadPart"},
		{"POST", "/b/k?uploads", "", nil, "b", "k", "CreateMultipartUpload"},
		{"POST", "/b/k?uploadId=u", "", nil, "b", "k", "CompleteMultipartUpload"},
		{"POST", "/b/k?select&select-type=2", "", nil, "b", "k", ""},
		{"POST", "/b/k?restore", "", nil, "b", "k", "RestoreObject"},
		{"POST", "/b/k?append", "", nil, "b", "k", ""},
		{"POST", "/b/k", "", nil, "b", "k", ""},
		{"GET", "/b/k?versionId=v&response-content-type=a", "", nil, "b", "k", "GetObject"},
		{"GET", "/b/k?uploadId=u", "", nil, "b", "k", "ListParts"},
		{"GET", "/b/k?partNumber=2", "", nil, "b", "k", "GetObject"},
		{"GET", "/b/k?tagging", "", nil, "b", "k", "GetObjectTagging"},
		{"GET", "/b/k?restore", "", nil, "b", "k", ""},
		{"GET", "/b/k?acl&tagging", "", nil, "b", "k", ""},
		{"GET", "/b/k?foo=bar", "", nil, "b", "k", ""},
		{"HEAD", "/b/k?partNumber=2&versionId=v", "", nil, "b", "k", "HeadObject"},
		{"HEAD", "/b/k?tagging", "", nil, "b", "k", ""},
		{"GET", "/b/k?attributes", "", nil, "b", "k", "GetObjectAttributes"},
		{"GET", "/b/k?X-Amz-Signature=abc&X-Amz-Credential=c", "", nil, "b", "k", "GetObject"},
		{"HEAD", "/b/k", "", nil, "b", "k", "HeadObject"},
		{"DELETE", "/b/k?uploadId=u", "", nil, "b", "k", "AbortMultipartUpload"},
		{"DELETE", "/b/k?versionId=v", "", nil, "b", "k", "DeleteObject"},
		{"DELETE", "/b/k?tagging", "", nil, "b", "k", "DeleteObjectTagging"},
		{"PATCH", "/b/k", "", nil, "b", "k", ""},
		{"GET", "/k/x", "bkt.s3.test:9000", nil, "bkt", "k/x", "GetObject"},
		{"GET", "/", "bkt.S3.test", nil, "bkt", "", "ListObjects"},
		{"GET", "/b/k", "s3.test", nil, "b", "k", "GetObject"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		if tc.host != "" {
			r.Host = tc.host
		}
		for k, v := range tc.header {
			r.Header[k] = v
		}
		got := classify(r, "s3.test")
		op := ""
		if got.route != nil {
			op = got.route.name
		}
		if got.bucket != tc.bucket || got.key != tc.key || op != tc.op {
			t.Errorf("%s %s (host %q): bucket %q key %q op %q, want %q %q %q", tc.method, tc.target, tc.host, got.bucket, got.key, op, tc.bucket, tc.key, tc.op)
		}
		if (got.route == nil) != (got.refusal != "") {
			t.Errorf("%s %s: route %v with refusal %q", tc.method, tc.target, got.route, got.refusal)
		}
		for k := range got.query {
			if presignParams[lower(k)] || ignoredParams[k] {
				t.Errorf("%s: parameter %q kept", tc.target, k)
			}
		}
	}

	// x-amz-* query parameters hoisted by presigners become headers.
	r := httptest.NewRequest("PUT", "/b/k?X-Amz-Meta-S3seal-V=1", nil)
	if got := classify(r, ""); got.header.Get("X-Amz-Meta-S3seal-V") != "1" || len(got.query) != 0 {
		t.Errorf("hoisted parameter: header %v query %v", got.header, got.query)
	}
}

// TestRoutesWellFormed checks the table itself: names unique, every route
// with a body document has one, and no two routes of one method and level
// can match the same request.
func TestRoutesWellFormed(t *testing.T) {
	names := map[string]bool{}
	type slot struct {
		method string
		lvl    level
		sub    string
		copy   bool
		needs  int
	}
	slots := map[slot]string{}
	for _, rt := range routes {
		if names[rt.name] {
			t.Errorf("route name %s twice", rt.name)
		}
		names[rt.name] = true
		if (rt.body == bodyDocument) != (rt.in != nil) {
			t.Errorf("%s: body kind %d with document %v", rt.name, rt.body, rt.in)
		}
		if rt.out != nil && rt.serve != nil {
			t.Errorf("%s: an answer document is only checked on passthrough routes", rt.name)
		}
		s := slot{rt.method, rt.level, rt.sub, rt.copy, len(rt.needs)}
		if other, dup := slots[s]; dup {
			t.Errorf("%s and %s match the same requests", rt.name, other)
		}
		slots[s] = rt.name
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		h    string
		size int64
		want byteRange
		res  rangeResult
	}{
		{"", 10, byteRange{}, rangeNone},
		{"bytes=0-0", 10, byteRange{0, 1}, rangeOK},
		{"bytes=2-", 10, byteRange{2, 8}, rangeOK},
		{"bytes=-3", 10, byteRange{7, 3}, rangeOK},
		{"bytes=-30", 10, byteRange{0, 10}, rangeOK},
		{"bytes=5-100", 10, byteRange{5, 5}, rangeOK},
		{"bytes=10-", 10, byteRange{}, rangeUnsatisfiable},
		{"bytes=-0", 10, byteRange{}, rangeUnsatisfiable},
		{"bytes=0-0", 0, byteRange{}, rangeUnsatisfiable},
		{"bytes=-5", 0, byteRange{}, rangeUnsatisfiable},
		{"bytes=3-2", 10, byteRange{}, rangeNone},
		{"bytes=0-1,3-4", 10, byteRange{}, rangeNone},
		{"bytes=a-b", 10, byteRange{}, rangeNone},
		{"bytes=+1-2", 10, byteRange{}, rangeNone},
		{"items=0-1", 10, byteRange{}, rangeNone},
		{"bytes=-", 10, byteRange{}, rangeNone},
	}
	for _, tc := range tests {
		got, res := parseRange(tc.h, tc.size)
		if got != tc.want || res != tc.res {
			t.Errorf("parseRange(%q, %d) = %v %v, want %v %v", tc.h, tc.size, got, res, tc.want, tc.res)
		}
	}
}

func TestEtagParts(t *testing.T) {
	for etag, want := range map[string]int{
		`"d41d8cd98f00b204e9800998ecf8427e"`:   1,
		`"d41d8cd98f00b204e9800998ecf8427e-3"`: 3,
		`W/"abc-12"`:                           12,
		`"abc-0"`:                              1,
		`"abc-x"`:                              1,
		`"abc-10000"`:                          10000,
		`"abc-10001"`:                          10001,
		`"abc-1099511627776"`:                  10001,
		`"abc-99999999999999999999999"`:        10001,
		``:                                     1,
	} {
		if got := etagParts(etag); got != want {
			t.Errorf("etagParts(%q) = %d, want %d", etag, got, want)
		}
	}
}
