package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
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

// PutObject and CompleteMultipartUpload with If-None-Match: * or If-Match
// behave as on S3: 412 when the condition fails, and nothing written, even
// on a store that ignores the conditions (the fake store does).
func TestConditionalWrites(t *testing.T) {
	e := newEnv(t)
	ctx := bg()
	put := func(key, body string, ifNone, ifMatch *string) error {
		_, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key),
			Body: strings.NewReader(body), IfNoneMatch: ifNone, IfMatch: ifMatch})
		return err
	}
	if err := put("once", "first", aws.String("*"), nil); err != nil {
		t.Fatalf("first If-None-Match: * PUT: %v", err)
	}
	first := e.store.get(testBucket, "once")
	if code, status := apiError(t, put("once", "second", aws.String("*"), nil)); code != "PreconditionFailed" || status != 412 {
		t.Errorf("second If-None-Match: * PUT: %s %d", code, status)
	}
	if got, _, err := e.get(t, "once"); err != nil || string(got) != "first" || e.store.get(testBucket, "once") != first {
		t.Errorf("the first object after a refused PUT: %q %v", got, err)
	}
	head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("once")})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := apiError(t, put("once", "third", nil, aws.String(`"0123456789abcdef0123456789abcdef"`))); code != "PreconditionFailed" {
		t.Errorf("If-Match with another ETag: %s", code)
	}
	if code, _ := apiError(t, put("absent", "x", nil, head.ETag)); code != "PreconditionFailed" {
		t.Errorf("If-Match on a key without an object: %s", code)
	}
	if err := put("once", "third", nil, head.ETag); err != nil {
		t.Errorf("If-Match with the current ETag: %v", err)
	}

	// CompleteMultipartUpload: refused with the upload left for a retry.
	id := create(t, e.client, "once", nil)
	etag, err := uploadPart(e.client, "once", id, 1, []byte("multipart"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("once"),
		UploadId: aws.String(id), IfNoneMatch: aws.String("*"),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(etag)}}}})
	if code, status := apiError(t, err); code != "PreconditionFailed" || status != 412 || e.store.uploadCount() != 1 {
		t.Errorf("If-None-Match: * Complete over an object: %s %d, %d uploads", code, status, e.store.uploadCount())
	}
	if got, _, _ := e.get(t, "once"); string(got) != "third" {
		t.Errorf("the object after a refused Complete: %q", got)
	}
}
