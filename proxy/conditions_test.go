package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// A copy's destination conditions hold whether or not the store checks
// them on CopyObject (the fake store does not, as MinIO does not).
func TestCopyDestinationConditions(t *testing.T) {
	for _, multipart := range []bool{false, true} {
		t.Run(fmt.Sprint("multipart=", multipart), func(t *testing.T) { copyDestinationConditions(t, multipart) })
	}
}

func copyDestinationConditions(t *testing.T, multipart bool) {
	e := newEnv(t)
	if multipart {
		e.multipartPut(t, "src", splitParts(randomBytes(2*64*kib+5, 3), 64*kib, 64*kib, 5))
	} else {
		e.put(t, "src", []byte("source"), nil)
	}
	dst := e.put(t, "dst", []byte("destination"), nil)
	etag := aws.ToString(dst.ETag)
	tests := []struct {
		name            string
		ifMatch, ifNone string
		key             string
		status          int
	}{
		{"If-Match the current ETag", etag, "", "dst", 200},
		{"If-Match another ETag", `"0123"`, "", "dst", 412},
		{"If-Match on no object", etag, "", "absent", 412},
		{"If-None-Match * on an object", "", "*", "dst", 412},
		{"If-None-Match * on no object", "", "*", "absent2", 200},
		{"If-None-Match another ETag", "", `"0123"`, "dst", 200},
	}
	for _, tc := range tests {
		before := e.store.get(testBucket, tc.key)
		h := http.Header{"X-Amz-Copy-Source": {testBucket + "/src"}}
		if tc.ifMatch != "" {
			h.Set("If-Match", tc.ifMatch)
		}
		if tc.ifNone != "" {
			h.Set("If-None-Match", tc.ifNone)
		}
		status, body, _ := e.sendResp(t, e.signedRequest(t, http.MethodPut, "/"+testBucket+"/"+tc.key, nil, 0, h))
		if status != tc.status {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
		after := e.store.get(testBucket, tc.key)
		if status == 412 && ((before == nil) != (after == nil) || before != nil && !bytes.Equal(before.data, after.data)) {
			t.Errorf("%s: a refused copy changed the destination", tc.name)
		}
		if tc.key == "dst" && status == 200 {
			out, _ := e.client.HeadObject(bg(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("dst")})
			etag = aws.ToString(out.ETag)
		}
	}
}
