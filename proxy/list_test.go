package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
)

func TestListSizes(t *testing.T) {
	e := newEnv(t)
	sizes := map[string]int{"a": 0, "b": 1, "c": 65536, "d": 300000}
	for k, n := range sizes {
		e.put(t, k, randomBytes(n, 1), nil)
	}
	// A foreign object keeps its stored size; 40 bytes is no s3seal size.
	e.store.put(testBucket, "foreign", make([]byte, 40), nil)
	sizes["foreign"] = 40

	ctx := context.Background()
	v2, err := e.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket)})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := e.client.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String(testBucket)})
	if err != nil {
		t.Fatal(err)
	}
	vers, err := e.client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(testBucket)})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name, key string, size *int64) {
		t.Helper()
		if want, ok := sizes[key]; !ok || aws.ToInt64(size) != int64(want) {
			t.Errorf("%s: %q has size %d, want %d", name, key, aws.ToInt64(size), want)
		}
	}
	for _, o := range v2.Contents {
		check("v2", aws.ToString(o.Key), o.Size)
	}
	for _, o := range v1.Contents {
		check("v1", aws.ToString(o.Key), o.Size)
	}
	for _, o := range vers.Versions {
		check("versions", aws.ToString(o.Key), o.Size)
	}
	if len(v2.Contents) != len(sizes) || len(v1.Contents) != len(sizes) || len(vers.Versions) != len(sizes) {
		t.Errorf("listed %d / %d / %d rows, want %d", len(v2.Contents), len(v1.Contents), len(vers.Versions), len(sizes))
	}
}

func TestRewriteListingKeepsEverythingElse(t *testing.T) {
	stored := envelope.SegmentSize(1000)
	in := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/" xmlns:x="urn:x">
  <Name>b</Name><x:Unknown a="1&amp;2">keep &lt;me&gt;</x:Unknown>
  <Contents><Key>k&amp;1</Key><Size>%d</Size><ETag>&#34;abc&#34;</ETag><ChecksumAlgorithm>CRC32C</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType><Extra><Size>7</Size></Extra>
    <UserMetadata><X-Amz-Meta-Color>blue</X-Amz-Meta-Color><X-Amz-Meta-S3seal-K>secretish</X-Amz-Meta-S3seal-K></UserMetadata></Contents>
  <Contents><Key>multi</Key><ETag>"abc-2"</ETag><Size>%d</Size></Contents>
  <Contents><Key>odd</Key><Size>40</Size></Contents>
  <CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>
</ListBucketResult>`, stored, v1Layout(envelope.ChunkSize, 5).CiphertextSize())
	want := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/" xmlns:x="urn:x">
  <Name>b</Name><x:Unknown a="1&amp;2">keep &lt;me&gt;</x:Unknown>
  <Contents><Key>k&amp;1</Key><Size>1000</Size><ETag>&#34;abc&#34;</ETag><Extra><Size>7</Size></Extra>
    <UserMetadata><X-Amz-Meta-Color>blue</X-Amz-Meta-Color></UserMetadata></Contents>
  <Contents><Key>multi</Key><ETag>"abc-2"</ETag><Size>%d</Size></Contents>
  <Contents><Key>odd</Key><Size>40</Size></Contents>
  <CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>
</ListBucketResult>`, envelope.ChunkSize+5)
	var out bytes.Buffer
	foreign, err := listingRewrite("Contents", func(r listedRow) (int64, error) {
		if r.key == "k&1" && r.etag != `"abc"` {
			t.Errorf("row read as %+v", r)
		}
		return envelope.ObjectPlaintextSize(r.stored, etagParts(r.etag))
	}).copy(&out, bufio.NewReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	if foreign != 1 {
		t.Errorf("foreign rows = %d, want 1", foreign)
	}

	_, err = listingRewrite("Contents", func(r listedRow) (int64, error) { return r.stored, nil }).
		copy(io.Discard, bufio.NewReader(strings.NewReader(in[:len(in)/2])))
	if err == nil {
		t.Error("a cut listing was rewritten without error")
	}
}

func TestPassthrough(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("newbkt")}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	if _, err := e.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("newbkt")}); err != nil {
		t.Fatalf("HeadBucket: %v", err)
	}
	lb, err := e.client.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	if len(lb.Buckets) != 2 {
		t.Errorf("ListBuckets: %d buckets", len(lb.Buckets))
	}
	e.put(t, "one", []byte("1"), nil)
	e.put(t, "two", []byte("2"), nil)
	e.put(t, "three", []byte("3"), nil)
	if _, err := e.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(testBucket), Key: aws.String("one")}); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	del, err := e.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(testBucket), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("two")}, {Key: aws.String("three")}},
	}})
	if err != nil {
		t.Fatalf("DeleteObjects: %v", err)
	}
	if len(del.Deleted) != 2 || e.store.count() != 0 {
		t.Errorf("DeleteObjects: %d deleted, %d left", len(del.Deleted), e.store.count())
	}
	if _, err := e.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("newbkt")}); err != nil {
		t.Fatalf("DeleteBucket: %v", err)
	}
	// The store's own errors pass through unchanged.
	_, err = e.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("newbkt")})
	if _, status := apiError(t, err); status != 404 {
		t.Errorf("HeadBucket of a deleted bucket: %d", status)
	}
	_, _, err = e.get(t, "missing")
	if code, status := apiError(t, err); code != "NoSuchKey" || status != 404 {
		t.Errorf("GET missing: %s %d", code, status)
	}
	_, err = e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if code, status := apiError(t, err); code != "NoSuchBucket" || status != 404 {
		t.Errorf("PUT into a missing bucket: %s %d", code, status)
	}
}

func TestConditionalReads(t *testing.T) {
	e := newEnv(t)
	put := e.put(t, "c", []byte("conditional"), nil)
	for _, tc := range []struct {
		header http.Header
		status int
	}{
		{http.Header{"If-None-Match": {aws.ToString(put.ETag)}}, 304},
		{http.Header{"If-Match": {`"other"`}}, 412},
		{http.Header{"If-Match": {`"other"`}, "Range": {"bytes=0-1"}}, 412},
		{http.Header{"If-Match": {aws.ToString(put.ETag)}, "Range": {"bytes=0-1"}}, 206},
	} {
		resp, err := http.DefaultClient.Do(e.signedRequest(t, http.MethodGet, "/"+testBucket+"/c", nil, 0, tc.header))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%v: status %d, want %d", tc.header, resp.StatusCode, tc.status)
		}
	}
}

func TestVirtualHostedAndPresigned(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Domain = "s3.test" })
	e.put(t, "vh key", []byte("virtual"), nil)

	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/vh%20key", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = testBucket + ".s3.test"
	sign(t, req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "virtual" {
		t.Errorf("virtual-hosted GET: %d %q", resp.StatusCode, body)
	}

	ps, err := s3.NewPresignClient(e.client).PresignGetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("vh key")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(ps.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "virtual" {
		t.Errorf("presigned GET: %d %q", resp.StatusCode, body)
	}
	for _, r := range e.store.recorded() {
		if strings.Contains(strings.ToLower(r.Query), "x-amz-signature") || strings.Contains(r.Query, clientAK) {
			t.Errorf("presign parameters reached the store: %q", r.Query)
		}
	}
}

// TestStreamingTrailerChecksum uses the SDK over TLS, where it sends
// aws-chunked bodies with a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
func TestStreamingTrailerChecksum(t *testing.T) {
	e := newEnv(t)
	tlsSrv := httptest.NewTLSServer(e.srv.Config.Handler)
	defer tlsSrv.Close()
	t.Setenv("AWS_CA_BUNDLE", "") // the SDK would otherwise build its own client for that bundle
	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())
	client := newClient(t, tlsSrv.URL, clientSecret, func(o *s3.Options) {
		o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		})
	})
	data := randomBytes(200000, 5)
	out, err := client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String("trailer"),
		Body: io.MultiReader(bytes.NewReader(data)), ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		t.Fatalf("streaming PUT: %v", err)
	}
	if got, want := aws.ToString(out.ChecksumCRC32), base64.StdEncoding.EncodeToString(crc32Bytes(crc32.ChecksumIEEE(data))); got != want {
		t.Errorf("checksum in the answer %q, want %q", got, want)
	}
	got, _, err := e.get(t, "trailer")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET after streaming PUT: %v", err)
	}
	// The store gets s3seal's own framing of the ciphertext, never the
	// client's framing or its trailer about the plaintext.
	for _, r := range e.store.recorded() {
		if r.Method == http.MethodPut && (r.Header.Get("X-Amz-Trailer") != "x-amz-checksum-crc32c" || r.Header.Get("X-Amz-Checksum-Crc32") != "") {
			t.Errorf("the store got trailer %q, checksum %q", r.Header.Get("X-Amz-Trailer"), r.Header.Get("X-Amz-Checksum-Crc32"))
		}
	}
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t)
	good := Config{Upstream: e.proxy.store.Endpoint(), UpstreamAccessKey: "a", UpstreamSecretKey: "s", Auth: e.proxy.auth, Keys: e.proxy.keys}
	if _, err := New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no upstream":  func(c *Config) { c.Upstream = nil },
		"no keys":      func(c *Config) { c.Keys.Keys = nil },
		"no key id":    func(c *Config) { c.Keys.KeyID = "" },
		"no auth":      func(c *Config) { c.Auth = nil },
		"no secret":    func(c *Config) { c.UpstreamSecretKey = "" },
		"bad scheme":   func(c *Config) { u := *c.Upstream; u.Scheme = "ftp"; c.Upstream = &u },
		"upstream qry": func(c *Config) { u := *c.Upstream; u.RawQuery = "a=b"; c.Upstream = &u },
	} {
		c := good
		mutate(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestListingValuesSplit: a value interrupted by a comment is still read
// whole (what an XML parser reads), and a row missing what sizes it keeps
// its stored size, counted.
func TestListingValuesSplit(t *testing.T) {
	stored := v1Layout(envelope.ChunkSize, 5).CiphertextSize()
	plain := int64(envelope.ChunkSize + 5)
	tests := []struct {
		name, row string
		want      string // the Size element in the answer
		kept      int
	}{
		{"size split by a comment", fmt.Sprintf(`<Key>k</Key><ETag>"e-2"</ETag><Size>%d<!--x-->%d</Size>`, stored/1000, stored%1000),
			fmt.Sprintf("<Size>%d</Size>", plain), 0},
		{"etag split by a comment", fmt.Sprintf(`<Key>k</Key><ETag>"e<!--x-->-2"</ETag><Size>%d</Size>`, stored),
			fmt.Sprintf("<Size>%d</Size>", plain), 0},
		{"no etag", fmt.Sprintf(`<Key>k</Key><Size>%d</Size>`, stored), fmt.Sprintf("<Size>%d</Size>", stored), 1},
		{"no key", fmt.Sprintf(`<ETag>"e-2"</ETag><Size>%d</Size>`, stored), fmt.Sprintf("<Size>%d</Size>", stored), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := `<ListBucketResult><Contents>` + tt.row + `</Contents></ListBucketResult>`
			var out bytes.Buffer
			kept, err := listingRewrite("Contents", func(r listedRow) (int64, error) {
				if r.etag != `"e-2"` {
					t.Errorf("row read with ETag %q", r.etag)
				}
				return envelope.ObjectPlaintextSize(r.stored, etagParts(r.etag))
			}).copy(&out, bufio.NewReader(strings.NewReader(in)))
			if err != nil || kept != tt.kept || !strings.Contains(out.String(), tt.want) {
				t.Errorf("got %q, kept %d, %v; want %s, kept %d", out.String(), kept, err, tt.want, tt.kept)
			}
		})
	}
}
