package proxy

import (
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/adversary"
	"github.com/s3seal/s3seal/internal/store"
	"github.com/s3seal/s3seal/sigv4"
)

var allAttributes = []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesChecksum,
	types.ObjectAttributesObjectParts, types.ObjectAttributesStorageClass, types.ObjectAttributesObjectSize}

// attributes asks the proxy for key's attributes through c.
func attributes(c *s3.Client, key string, opts ...func(*s3.GetObjectAttributesInput)) (*s3.GetObjectAttributesOutput, error) {
	in := &s3.GetObjectAttributesInput{Bucket: aws.String(testBucket), Key: aws.String(key), ObjectAttributes: allAttributes}
	for _, o := range opts {
		o(in)
	}
	return c.GetObjectAttributes(bg(), in)
}

func maxParts(n int32) func(*s3.GetObjectAttributesInput) {
	return func(in *s3.GetObjectAttributesInput) { in.MaxParts = aws.Int32(n) }
}

func partMarker(m string) func(*s3.GetObjectAttributesInput) {
	return func(in *s3.GetObjectAttributesInput) { in.PartNumberMarker = aws.String(m) }
}

func only(attrs ...types.ObjectAttributes) func(*s3.GetObjectAttributesInput) {
	return func(in *s3.GetObjectAttributesInput) { in.ObjectAttributes = attrs }
}

// pageOf says what an ObjectParts page holds, "" for none.
func pageOf(p *types.GetObjectAttributesParts) string {
	if p == nil {
		return ""
	}
	s := fmt.Sprintf("total=%d marker=%s next=%s max=%d truncated=%t parts=", aws.ToInt32(p.TotalPartsCount),
		aws.ToString(p.PartNumberMarker), aws.ToString(p.NextPartNumberMarker), aws.ToInt32(p.MaxParts), aws.ToBool(p.IsTruncated))
	for _, pt := range p.Parts {
		s += fmt.Sprintf("%d:%d,", aws.ToInt32(pt.PartNumber), aws.ToInt64(pt.Size))
	}
	return s
}

// checksumOf says what a <Checksum> holds, "" for none.
func checksumOf(c *types.Checksum) string {
	if c == nil {
		return ""
	}
	s := ""
	for _, v := range []struct{ algo, v string }{
		{"CRC32", aws.ToString(c.ChecksumCRC32)}, {"CRC32C", aws.ToString(c.ChecksumCRC32C)},
		{"CRC64NVME", aws.ToString(c.ChecksumCRC64NVME)}, {"SHA1", aws.ToString(c.ChecksumSHA1)},
		{"SHA256", aws.ToString(c.ChecksumSHA256)},
	} {
		if v.v != "" {
			s += v.algo + "=" + v.v + " "
		}
	}
	return s + string(c.ChecksumType)
}

func crc32Base64(b []byte) string {
	return base64.StdEncoding.EncodeToString(crc32Bytes(crc32.ChecksumIEEE(b)))
}

// neverForwarded fails if the store was ever asked for ?attributes.
func neverForwarded(t *testing.T, s *fakeStore) {
	t.Helper()
	for _, r := range s.recorded() {
		if strings.Contains(r.Query, "attributes") {
			t.Errorf("the store was asked %s %s?%s", r.Method, r.Path, r.Query)
		}
	}
}

// TestGetObjectAttributes: plaintext sizes, the ETag as GET gives it and,
// for multipart objects only, each part's plaintext size, paged as asked.
func TestGetObjectAttributes(t *testing.T) {
	e := newEnv(t)
	single := randomBytes(200000, 1)
	putETag := aws.ToString(e.put(t, "single", single, nil).ETag)
	sizes := []int{2 * chunk, chunk, chunk + 7}
	mp := randomBytes(4*chunk+7, 2)
	mpETag := e.multipartPut(t, "mp", splitParts(mp, sizes...))
	onePart := randomBytes(chunk+5, 3)
	e.multipartPut(t, "mp1", [][]byte{onePart})
	all3 := fmt.Sprintf("1:%d,2:%d,3:%d,", 2*chunk, chunk, chunk+7)
	tests := []struct {
		name, key  string
		opts       []func(*s3.GetObjectAttributesInput)
		coldLayout bool // as another s3seal process would find it
		size       int64
		etag       string
		page       string
	}{
		{"single part", "single", nil, false, 200000, putETag, ""},
		{"single part, parts only", "single", []func(*s3.GetObjectAttributesInput){only(types.ObjectAttributesObjectParts)}, false, -1, "", ""},
		{"multipart", "mp", nil, false, int64(len(mp)), mpETag, "total=3 marker=0 next=3 max=1000 truncated=false parts=" + all3},
		{"multipart, layout not known", "mp", nil, true, int64(len(mp)), mpETag, "total=3 marker=0 next=3 max=1000 truncated=false parts=" + all3},
		{"multipart of one part", "mp1", nil, true, int64(len(onePart)), "", fmt.Sprintf("total=1 marker=0 next=1 max=1000 truncated=false parts=1:%d,", len(onePart))},
		{"first page", "mp", []func(*s3.GetObjectAttributesInput){maxParts(2)}, true, int64(len(mp)), mpETag,
			fmt.Sprintf("total=3 marker=0 next=2 max=2 truncated=true parts=1:%d,2:%d,", 2*chunk, chunk)},
		{"next page", "mp", []func(*s3.GetObjectAttributesInput){maxParts(2), partMarker("2")}, true, int64(len(mp)), mpETag,
			fmt.Sprintf("total=3 marker=2 next=3 max=2 truncated=false parts=3:%d,", chunk+7)},
		{"middle page", "mp", []func(*s3.GetObjectAttributesInput){maxParts(1), partMarker("1")}, true, int64(len(mp)), mpETag,
			fmt.Sprintf("total=3 marker=1 next=2 max=1 truncated=true parts=2:%d,", chunk)},
		{"past the end", "mp", []func(*s3.GetObjectAttributesInput){partMarker("3")}, false, int64(len(mp)), mpETag,
			"total=3 marker=3 next=3 max=1000 truncated=false parts="},
		{"max parts capped", "mp", []func(*s3.GetObjectAttributesInput){maxParts(5000)}, false, int64(len(mp)), mpETag,
			"total=3 marker=0 next=3 max=1000 truncated=false parts=" + all3},
		{"size only", "mp", []func(*s3.GetObjectAttributesInput){only(types.ObjectAttributesObjectSize)}, false, int64(len(mp)), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.coldLayout {
				e.proxy.layouts = newLayoutCache()
			}
			out, err := attributes(e.client, tt.key, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToInt64(out.ObjectSize); (tt.size < 0) != (out.ObjectSize == nil) || (tt.size >= 0 && got != tt.size) {
				t.Errorf("ObjectSize %d, want %d", got, tt.size)
			}
			if tt.etag != "" && aws.ToString(out.ETag) != strings.Trim(tt.etag, `"`) {
				t.Errorf("ETag %q, want %s unquoted", aws.ToString(out.ETag), tt.etag)
			}
			if got := pageOf(out.ObjectParts); got != tt.page {
				t.Errorf("ObjectParts %q\nwant        %q", got, tt.page)
			}
			// Only the single-part object keeps a checksum: the SDK sent
			// one with its PUT, and s3seal keeps none for multipart uploads.
			wantSum := ""
			if tt.key == "single" && len(tt.opts) == 0 {
				wantSum = "CRC32=" + crc32Base64(single) + " FULL_OBJECT"
			}
			if got := checksumOf(out.Checksum); got != wantSum || out.LastModified == nil {
				t.Errorf("Checksum %q, want %q; LastModified %v", got, wantSum, out.LastModified)
			}
			if len(tt.opts) == 0 && out.StorageClass != types.StorageClassStandard {
				t.Errorf("StorageClass %q", out.StorageClass)
			}
		})
	}
	neverForwarded(t, e.store)
}

// TestGetObjectAttributesDocument: the answer is S3's document, element for
// element, with nothing of the stored ciphertext in it or its headers.
func TestGetObjectAttributesDocument(t *testing.T) {
	e := newEnv(t)
	etag := strings.Trim(e.multipartPut(t, "mp", [][]byte{randomBytes(chunk, 1), randomBytes(10, 2)}), `"`)
	h := http.Header{"X-Amz-Object-Attributes": {"ETag,Checksum,ObjectParts,StorageClass,ObjectSize"}}
	status, body, header := e.sendResp(t, e.signedRequest(t, "GET", "/"+testBucket+"/mp?attributes", nil, 0, h))
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<GetObjectAttributesResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ETag>` + etag + `</ETag>` +
		`<ObjectParts><IsTruncated>false</IsTruncated><MaxParts>1000</MaxParts><NextPartNumberMarker>2</NextPartNumberMarker>` +
		`<PartNumberMarker>0</PartNumberMarker><Part><PartNumber>1</PartNumber><Size>65536</Size></Part>` +
		`<Part><PartNumber>2</PartNumber><Size>10</Size></Part><PartsCount>2</PartsCount></ObjectParts>` +
		`<StorageClass>STANDARD</StorageClass><ObjectSize>65546</ObjectSize></GetObjectAttributesResponse>`
	if status != http.StatusOK || body != want {
		t.Errorf("%d\n%s\nwant\n%s", status, body, want)
	}
	for k := range header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-checksum") || strings.HasPrefix(lk, "x-amz-meta") || lk == "etag" {
			t.Errorf("answer header %s: %s", k, header.Get(k))
		}
	}
	if header.Get("Content-Type") != "application/xml" || header.Get("Last-Modified") == "" {
		t.Errorf("Content-Type %q, Last-Modified %q", header.Get("Content-Type"), header.Get("Last-Modified"))
	}
}

// TestGetObjectAttributesErrors: S3's errors, each before anything the
// store says reaches the client.
func TestGetObjectAttributesErrors(t *testing.T) {
	e := newEnv(t)
	etag := aws.ToString(e.put(t, "obj", []byte("an object"), nil).ETag)
	e.store.put(testBucket, "foreign", []byte("stored as it is"), nil)
	attrs := func(v string, more ...string) http.Header {
		h := http.Header{"X-Amz-Object-Attributes": {v}}
		for i := 0; i+1 < len(more); i += 2 {
			h.Set(more[i], more[i+1])
		}
		return h
	}
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name, path string
		header     http.Header
		status     int
		code       string
	}{
		{"no such key", "/bkt/nope?attributes", attrs("ObjectSize"), 404, "NoSuchKey"},
		{"no such version", "/bkt/nope?attributes&versionId=v1", attrs("ObjectSize"), 404, "NoSuchVersion"},
		{"no such bucket", "/nobucket/k?attributes", attrs("ObjectSize"), 404, "NoSuchBucket"},
		{"no attributes", "/bkt/obj?attributes", nil, 400, "InvalidArgument"},
		{"empty attributes", "/bkt/obj?attributes", attrs(" , "), 400, "InvalidArgument"},
		{"unknown attribute", "/bkt/obj?attributes", attrs("ETag,Size"), 400, "InvalidArgument"},
		{"attribute in another case", "/bkt/obj?attributes", attrs("etag"), 400, "InvalidArgument"},
		{"max parts not a number", "/bkt/obj?attributes", attrs("ObjectParts", "X-Amz-Max-Parts", "ten"), 400, "InvalidArgument"},
		{"negative marker", "/bkt/obj?attributes", attrs("ObjectParts", "X-Amz-Part-Number-Marker", "-1"), 400, "InvalidArgument"},
		{"SSE-C", "/bkt/obj?attributes", attrs("ObjectSize", "X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256",
			"X-Amz-Server-Side-Encryption-Customer-Key", key, "X-Amz-Server-Side-Encryption-Customer-Key-Md5", md5Sum(make([]byte, 32))), 400, "InvalidRequest"},
		{"SSE-KMS", "/bkt/obj?attributes", attrs("ObjectSize", "X-Amz-Server-Side-Encryption", "aws:kms"), 400, "InvalidArgument"},
		{"a parameter it does not take", "/bkt/obj?attributes&partNumber=1", attrs("ObjectSize"), 501, "NotImplemented"},
		{"If-Match fails", "/bkt/obj?attributes", attrs("ObjectSize", "If-Match", `"0123"`), 412, "PreconditionFailed"},
		{"If-None-Match holds", "/bkt/obj?attributes", attrs("ObjectSize", "If-None-Match", etag), 304, ""},
		{"not written through s3seal", "/bkt/foreign?attributes", attrs("ObjectSize"), 403, "AccessDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := e.sendResp(t, e.signedRequest(t, "GET", tt.path, nil, 0, tt.header))
			if status != tt.status || store.ErrorCode([]byte(body)) != tt.code {
				t.Errorf("%d %s, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
	neverForwarded(t, e.store)
}

// TestGetObjectAttributesPlaintextObjects: with AllowPlaintextReads an
// object not written through s3seal is described as stored.
func TestGetObjectAttributesPlaintextObjects(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowPlaintextReads = true })
	e.store.put(testBucket, "plain", []byte("stored as it is"), nil)
	e.store.putParts(testBucket, "plain-mp", [][]byte{randomBytes(1000, 1), randomBytes(7, 2)}, nil)
	for key, want := range map[string]string{
		"plain":    "size=15 parts=",
		"plain-mp": "size=1007 parts=total=2 marker=0 next=2 max=1000 truncated=false parts=1:1000,2:7,",
	} {
		out, err := attributes(e.client, key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if got := fmt.Sprintf("size=%d parts=%s", aws.ToInt64(out.ObjectSize), pageOf(out.ObjectParts)); got != want {
			t.Errorf("%s: %s, want %s", key, got, want)
		}
		if aws.ToString(out.ETag) != strings.Trim(e.store.get(testBucket, key).etag, `"`) {
			t.Errorf("%s: ETag %s", key, aws.ToString(out.ETag))
		}
	}
}

// TestGetObjectAttributesVersion: the version asked for is the one every
// request to the store is about, and the one the answer names.
func TestGetObjectAttributesVersion(t *testing.T) {
	e := newEnv(t)
	e.multipartPut(t, "mp", [][]byte{randomBytes(chunk, 1), randomBytes(10, 2)})
	e.proxy.layouts = newLayoutCache() // so that parts are asked about too
	e.liar.Set(adversary.Lie{Kind: adversary.SetHeader, Key: "X-Amz-Version-Id: v42"})
	before := len(e.store.recorded())
	out, err := attributes(e.client, "mp", func(in *s3.GetObjectAttributesInput) { in.VersionId = aws.String("v42") })
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.VersionId) != "v42" || len(out.ObjectParts.Parts) != 2 {
		t.Errorf("VersionId %q, %d parts", aws.ToString(out.VersionId), len(out.ObjectParts.Parts))
	}
	asked := e.store.recorded()[before:]
	if len(asked) < 3 {
		t.Fatalf("%d store requests: a HEAD, part HEADs and header reads expected", len(asked))
	}
	for _, r := range asked {
		if !strings.Contains(r.Query, "versionId=v42") {
			t.Errorf("%s %s?%s is not about version v42", r.Method, r.Path, r.Query)
		}
	}
}

// TestGetObjectAttributesUnderLies: for each lie about the object's sizes
// and parts, the answer is refused or true, never other sizes: with its
// parts, and its size alone.
func TestGetObjectAttributesUnderLies(t *testing.T) {
	e := newLyingEnv(t)
	head := func(part int) adversary.Match { return adversary.Match{Method: "HEAD", Key: "mp", PartNumber: part} }
	get := adversary.Match{Method: "GET", Key: "mp"}
	ruleBreak := []adversary.Lie{{Match: head(1), Kind: adversary.ContentLength, N: -17}, {Match: head(2), Kind: adversary.ContentLength, N: 17}}
	swapped := []adversary.Lie{{Match: head(1), Kind: adversary.ContentLength, N: -(chunk + 16)}, {Match: head(2), Kind: adversary.ContentLength, N: chunk + 16}}
	truth := fmt.Sprintf("size=%d parts=total=3 marker=0 next=3 max=1000 truncated=false parts=1:%d,2:%d,3:%d,",
		len(e.mp), e.mpParts[0], e.mpParts[1], e.mpParts[2])
	tests := []struct {
		name     string
		lies     []adversary.Lie
		mustFail bool
		code     string
	}{
		{"honest", nil, false, ""},
		{"part sizes break the rule", ruleBreak, true, "StoredObjectCorrupt"},
		{"part sizes swapped", swapped, true, "StoredObjectCorrupt"},
		{"last part longer", []adversary.Lie{{Match: head(3), Kind: adversary.ContentLength, N: chunk + 16}}, true, ""},
		{"part count too low", []adversary.Lie{{Kind: adversary.ETagParts, N: 2}}, true, ""},
		{"part count too high", []adversary.Lie{{Kind: adversary.ETagParts, N: 4}}, true, ""},
		{"huge part count", []adversary.Lie{{Kind: adversary.ETagParts, N: 1 << 40}}, true, "StoredObjectCorrupt"},
		{"part count dropped", []adversary.Lie{{Kind: adversary.ETagParts, N: -1}}, false, ""},
		{"partNumber ignored", []adversary.Lie{{Kind: adversary.IgnorePartNumber}}, true, "NotImplemented"},
		{"If-Match ignored", []adversary.Lie{{Kind: adversary.IgnoreIfMatch}}, false, ""},
		{"range ignored", []adversary.Lie{{Kind: adversary.IgnoreRange}}, false, ""},
		{"Content-Range moved", []adversary.Lie{{Match: get, Kind: adversary.ContentRangeShift, N: 48}}, true, ""},
		{"header cut short", []adversary.Lie{{Match: get, Kind: adversary.ShortBody, N: 10}}, true, "StoredObjectCorrupt"},
		{"object gone", []adversary.Lie{{Match: adversary.Match{Method: "HEAD", Key: "mp", PartNumber: 0, Nth: 1}, Kind: adversary.Status, N: 404}}, true, "NoSuchKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.liar.Set(tt.lies...)
			defer e.liar.Set()
			for _, sizeOnly := range []bool{false, true} {
				e.proxy.layouts, e.proxy.counts = newLayoutCache(), newPartCounts(false)
				var opts []func(*s3.GetObjectAttributesInput)
				want := truth
				if sizeOnly {
					opts, want = append(opts, only(types.ObjectAttributesObjectSize)), truth[:strings.Index(truth, "parts=")+6]
				}
				out, err := attributes(e.client, "mp", opts...)
				if err != nil {
					code, _ := apiError(t, err)
					t.Logf("size only %t: refused: %s", sizeOnly, code)
					if !sizeOnly && (!tt.mustFail || (tt.code != "" && code != tt.code)) {
						t.Errorf("refused: %v (want %v, %q)", err, tt.mustFail, tt.code)
					}
					continue
				}
				if got := fmt.Sprintf("size=%d parts=%s", aws.ToInt64(out.ObjectSize), pageOf(out.ObjectParts)); got != want {
					t.Fatalf("answered %s\n   truth %s", got, want)
				}
				if tt.mustFail && !sizeOnly {
					t.Error("the lie went unnoticed")
				}
			}
		})
	}
}

// TestGetObjectAttributesForgetsWrongLayout: a layout the store's answers
// disagree with is forgotten, so the next request is answered from the
// store's true sizes: one fetched from a store that lied once, or one in
// the cache that is not the object's.
func TestGetObjectAttributesForgetsWrongLayout(t *testing.T) {
	e := newLyingEnv(t)
	head := func(part int) adversary.Match { return adversary.Match{Method: "HEAD", Key: "mp", PartNumber: part} }
	key := layoutKey(testBucket, "mp", e.store.get(testBucket, "mp").etag)
	for _, tt := range []struct {
		name    string
		lies    []adversary.Lie
		planted envelope.Layout // cached as exact before the first request
	}{
		{"store lied about two parts", []adversary.Lie{{Match: head(1), Kind: adversary.ContentLength, N: -(chunk + 16)},
			{Match: head(2), Kind: adversary.ContentLength, N: chunk + 16}}, envelope.Layout{}},
		{"cached parts swapped", nil, v1Layout(chunk, 2*chunk, chunk+7)},
		{"cached last part wrong", nil, v1Layout(2*chunk, 2*chunk, 7)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.proxy.layouts = newLayoutCache()
			if tt.planted.Parts != nil {
				e.proxy.layouts.put(key, tt.planted, true)
			}
			e.liar.Set(tt.lies...)
			_, err := attributes(e.client, "mp")
			e.liar.Set()
			if code, _ := apiError(t, err); code != codeStoredObjectCorrupt {
				t.Fatalf("the wrong layout was answered with: %s", code)
			}
			out, err := attributes(e.client, "mp")
			if err != nil {
				t.Fatal(err)
			}
			for i, pt := range out.ObjectParts.Parts {
				if aws.ToInt64(pt.Size) != e.mpParts[i] {
					t.Errorf("part %d: %d bytes, want %d", i+1, aws.ToInt64(pt.Size), e.mpParts[i])
				}
			}
		})
	}
}

// TestGetObjectAttributesNeedsRead: the operation is a read, granted as
// GetObject is.
func TestGetObjectAttributesNeedsRead(t *testing.T) {
	var keyID string
	ps := testPrincipals{clientAK: {name: "root", admin: true}}
	e := newEnv(t, func(c *Config) {
		c.Auth = &sigv4.Verifier{Credentials: staticCreds{clientAK: clientSecret, "LISTER": "l-secret", "READER": "r-secret"}, Region: "us-east-1"}
		c.Principals, c.Keys.Grants, keyID = ps, true, c.Keys.KeyID
	})
	ps["LISTER"] = &testPrincipal{name: "lister", buckets: map[string][]Access{testBucket: {AccessList}}, keys: []string{keyID}}
	ps["READER"] = &testPrincipal{name: "reader", buckets: map[string][]Access{testBucket: {AccessRead}}, keys: []string{keyID}}
	e.put(t, "obj", []byte("an object"), nil)
	if _, err := attributes(newClientFor(t, e.srv.URL, "READER", "r-secret"), "obj"); err != nil {
		t.Errorf("reader: %v", err)
	}
	_, err := attributes(newClientFor(t, e.srv.URL, "LISTER", "l-secret"), "obj")
	if code, status := apiError(t, err); code != "AccessDenied" || status != http.StatusForbidden {
		t.Errorf("lister: %s %d", code, status)
	}
}

// TestAttributesRoute: ?attributes is GetObjectAttributes, a read, with
// versionId its only parameter.
func TestAttributesRoute(t *testing.T) {
	for target, want := range map[string]string{
		"/b/k?attributes":                     "GetObjectAttributes",
		"/b/k?attributes&versionId=v":         "GetObjectAttributes",
		"/b/k?attributes&x-amz-max-parts=5":   "GetObjectAttributes", // a presigned header
		"/b/k?attributes&partNumber=2":        "Unsupported",
		"/b/k?attributes&response-expires=ab": "Unsupported",
	} {
		tg := classify(httptest.NewRequest("GET", target, nil), "")
		if tg.op() != want {
			t.Errorf("GET %s: %s, want %s (%s)", target, tg.op(), want, tg.refusal)
		}
		if tg.route != nil && tg.route.access() != AccessRead {
			t.Errorf("GET %s needs %s access", target, tg.route.access())
		}
	}
	if tg := classify(httptest.NewRequest("HEAD", "/b/k?attributes", nil), ""); tg.route != nil {
		t.Errorf("HEAD ?attributes is %s", tg.op())
	}
}
