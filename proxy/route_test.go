package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		method, target, host string
		header               http.Header
		bucket, key          string
		op                   operation
	}{
		{"GET", "/", "", nil, "", "", opPassthrough},
		{"GET", "/b", "", nil, "b", "", opListObjects},
		{"GET", "/b/?list-type=2&prefix=a&x-id=ListObjectsV2", "", nil, "b", "", opListObjects},
		{"GET", "/b?versions&prefix=a", "", nil, "b", "", opListObjectVersions},
		{"GET", "/b?uploads", "", nil, "b", "", opListUploads},
		{"GET", "/b?uploads&upload-id-marker=x&key-marker=k", "", nil, "b", "", opListUploads},
		{"GET", "/b?acl", "", nil, "b", "", opPassthrough},
		{"GET", "/b?policy", "", nil, "b", "", opPassthrough},
		// A listing parameter s3seal does not know still gets its sizes
		// rewritten: it must never let ciphertext sizes through.
		{"GET", "/b?list-type=2&optional-object-attributes=RestoreStatus", "", nil, "b", "", opListObjects},
		{"GET", "/b?versions&some-new-param=1", "", nil, "b", "", opListObjectVersions},
		{"PUT", "/b", "", nil, "b", "", opPassthrough},
		{"POST", "/b?delete", "", nil, "b", "", opPassthrough},
		{"POST", "/b", "", http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}, "b", "", opUnsupported},
		{"PUT", "/b/k?x-id=PutObject", "", nil, "b", "k", opPutObject},
		{"PUT", "/b/a//b/", "", nil, "b", "a//b/", opPutObject},
		{"PUT", "/b/k?tagging", "", nil, "b", "k", opPassthrough},
		{"PUT", "/b/k", "", http.Header{"X-Amz-Copy-Source": {"b/src"}}, "b", "k", opCopyObject},
		{"PUT", "/b/k?partNumber=1&uploadId=u", "", http.Header{"X-Amz-Copy-Source": {"b/src"}}, "b", "k", opUploadPartCopy},
		{"PUT", "/b/k?tagging", "", http.Header{"X-Amz-Copy-Source": {"b/src"}}, "b", "k", opUnsupported},
		{"PUT", "/b/k?partNumber=1", "", nil, "b", "k", opUnsupported},
		{"PUT", "/b/k?uploadId=u", "", nil, "b", "k", opUnsupported},
		{"PUT", "/b/k?partNumber=1&uploadId=u", "", nil, "b", "k", opUploadPart},
		{"POST", "/b/k?uploads", "", nil, "b", "k", opCreateUpload},
		{"POST", "/b/k?uploadId=u", "", nil, "b", "k", opCompleteUpload},
		{"POST", "/b/k?select&select-type=2", "", nil, "b", "k", opUnsupported},
		{"POST", "/b/k?restore", "", nil, "b", "k", opPassthrough},
		{"POST", "/b/k?append", "", nil, "b", "k", opUnsupported},
		{"GET", "/b/k?versionId=v&response-content-type=a", "", nil, "b", "k", opGetObject},
		{"GET", "/b/k?uploadId=u", "", nil, "b", "k", opListParts},
		{"GET", "/b/k?partNumber=2", "", nil, "b", "k", opGetObject},
		{"HEAD", "/b/k?partNumber=2&versionId=v", "", nil, "b", "k", opHeadObject},
		{"GET", "/b/k?attributes", "", nil, "b", "k", opUnsupported},
		{"GET", "/b/k?X-Amz-Signature=abc&X-Amz-Credential=c", "", nil, "b", "k", opGetObject},
		{"HEAD", "/b/k", "", nil, "b", "k", opHeadObject},
		{"DELETE", "/b/k?uploadId=u", "", nil, "b", "k", opAbortUpload},
		{"DELETE", "/b/k?versionId=v", "", nil, "b", "k", opPassthrough},
		{"GET", "/k/x", "bkt.s3.test:9000", nil, "bkt", "k/x", opGetObject},
		{"GET", "/", "bkt.S3.test", nil, "bkt", "", opListObjects},
		{"GET", "/b/k", "s3.test", nil, "b", "k", opGetObject},
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
		if got.bucket != tc.bucket || got.key != tc.key || got.op != tc.op {
			t.Errorf("%s %s (host %q): bucket %q key %q op %v, want %q %q %v", tc.method, tc.target, tc.host, got.bucket, got.key, got.op, tc.bucket, tc.key, tc.op)
		}
		for k := range got.query {
			if presignParams[lower(k)] {
				t.Errorf("%s: presign parameter %q kept", tc.target, k)
			}
		}
	}

	// x-amz-* query parameters hoisted by presigners become headers.
	r := httptest.NewRequest("PUT", "/b/k?X-Amz-Meta-S3seal-V=1", nil)
	if got := classify(r, ""); got.header.Get("X-Amz-Meta-S3seal-V") != "1" || len(got.query) != 0 {
		t.Errorf("hoisted parameter: header %v query %v", got.header, got.query)
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
		``:                                     1,
	} {
		if got := etagParts(etag); got != want {
			t.Errorf("etagParts(%q) = %d, want %d", etag, got, want)
		}
	}
}
