package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/adversary"
	"github.com/s3seal/s3seal/internal/store"
)

const chunk = envelope.ChunkSize

// lyingEnv is an env holding objects written honestly through the proxy,
// ready for a store that lies about them.
type lyingEnv struct {
	*env
	small, other []byte // single-part objects "small" and "other"
	mp           []byte // "mp": parts of 2C, C and C+7 bytes
	mpParts      []int64
}

func newLyingEnv(t testing.TB) *lyingEnv {
	e := &lyingEnv{env: newEnv(t), small: randomBytes(200000, 21), other: randomBytes(200000, 22)}
	e.put(t, "small", e.small, nil)
	e.put(t, "other", e.other, nil)
	e.mpParts = []int64{2 * chunk, chunk, chunk + 7}
	e.mp = randomBytes(int(2*chunk+chunk+chunk+7), 23)
	var parts [][]byte
	off := int64(0)
	for _, n := range e.mpParts {
		parts = append(parts, e.mp[off:off+n])
		off += n
	}
	e.multipartPut(t, "mp", parts)
	return e
}

// plain is what key holds.
func (e *lyingEnv) plain(key string) []byte {
	return map[string][]byte{"small": e.small, "other": e.other, "mp": e.mp}[key]
}

// answer is one response as a client sees it.
type answer struct {
	status   int
	header   http.Header
	body     []byte
	complete bool // the body arrived in full: the client would take it as the answer
}

func (e *lyingEnv) read(t testing.TB, method, path string, header http.Header) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(e.wireRequest(t, method, path, nil, modeSigned, false, header))
	if err != nil {
		// Cut off before the answer's headers: nothing a client could take
		// for an answer.
		e.drain(t, 1)
		return answer{}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.drain(t, 1)
	return answer{status: resp.StatusCode, header: resp.Header, body: body,
		complete: err == nil && (resp.ContentLength < 0 || int64(len(body)) == resp.ContentLength)}
}

// checkHonest is the property every lie must leave intact: an answer that
// completes with 200 or 206 carries exactly the plaintext that was asked
// for (want: plaintext offset and length) at the place it says.
func checkHonest(t testing.TB, a answer, plain []byte, wantOff, wantN int64) {
	t.Helper()
	checkBytes(t, a, plain, wantOff, wantN, true)
}

// checkPart is checkHonest for a part read, whose Content-Range total is
// the store's claim (the object's size from its part count) unless the part
// is the last: a store that hides trailing parts can make it smaller, as it
// can cut the object to a prefix of whole parts (docs/SECURITY.md).
func checkPart(t testing.TB, a answer, plain []byte, wantOff, wantN int64) {
	t.Helper()
	checkBytes(t, a, plain, wantOff, wantN, false)
}

func checkBytes(t testing.TB, a answer, plain []byte, wantOff, wantN int64, total bool) {
	t.Helper()
	if !a.complete || (a.status != http.StatusOK && a.status != http.StatusPartialContent) {
		return
	}
	if a.status == http.StatusOK {
		if !bytes.Equal(a.body, plain) {
			t.Fatalf("200 with %d bytes that are not the object's %d", len(a.body), len(plain))
		}
		return
	}
	var first, last, size int64
	if _, err := fmt.Sscanf(a.header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &size); err != nil {
		t.Fatalf("206 with Content-Range %q", a.header.Get("Content-Range"))
	}
	switch {
	case size != int64(len(plain)) && (total || last+1 > size):
		t.Fatalf("206 says the object has %d bytes, it has %d", size, len(plain))
	case first != wantOff || last != wantOff+wantN-1:
		t.Fatalf("206 for bytes %d-%d, asked for %d-%d", first, last, wantOff, wantOff+wantN-1)
	case !bytes.Equal(a.body, plain[first:last+1]):
		t.Fatalf("206 with bytes other than the object's %d-%d", first, last)
	}
}

// TestStoreLies: for each way a store can lie about an object, reads
// through s3seal either fail or return the true plaintext, never other
// bytes; and the lies s3seal can detect are answered with an error.
func TestStoreLies(t *testing.T) {
	e := newLyingEnv(t)
	head := func(part int) adversary.Match { return adversary.Match{Method: "HEAD", Key: "mp", PartNumber: part} }
	get := adversary.Match{Method: "GET"}
	// Part sizes that break the multipart rule but keep the stored total.
	ruleBreak := []adversary.Lie{{Match: head(1), Kind: adversary.ContentLength, N: -17}, {Match: head(2), Kind: adversary.ContentLength, N: 17}}
	// Sizes that keep the rule and the total, in another order.
	swapped := []adversary.Lie{{Match: head(1), Kind: adversary.ContentLength, N: -(chunk + 16)}, {Match: head(2), Kind: adversary.ContentLength, N: chunk + 16}}
	rng := func(a, b int64) http.Header { return http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", a, b)}} }
	tests := []struct {
		name      string
		lies      []adversary.Lie
		key       string
		query     string
		header    http.Header
		off, n    int64 // the plaintext asked for; n -1: the whole object
		mustFail  bool
		wantCode  string
		cacheCold bool // forget layouts learnt at upload
	}{
		{"part sizes break the rule", ruleBreak, "mp", "", rng(2*chunk-10, 2*chunk+10), 2*chunk - 10, 21, true, "StoredObjectCorrupt", true},
		{"part sizes break the rule, range in part 2", ruleBreak, "mp", "", rng(2*chunk+5, 2*chunk+100), 2*chunk + 5, 96, true, "StoredObjectCorrupt", true},
		{"part sizes swapped", swapped, "mp", "", rng(chunk-10, chunk+10), chunk - 10, 21, false, "", true},
		{"part sizes swapped, part 2", swapped, "mp", "", rng(2*chunk+1, 3*chunk-1), 2*chunk + 1, chunk - 1, false, "", true},
		{"part moved by a chunk", []adversary.Lie{{Match: adversary.Match{Method: "GET", PartNumber: 2}, Kind: adversary.ContentRangeShift, N: chunk + 16}},
			"mp", "?partNumber=2", nil, 2 * chunk, chunk, true, "StoredObjectCorrupt", true},
		{"part moved by a byte", []adversary.Lie{{Match: adversary.Match{Method: "GET", PartNumber: 2}, Kind: adversary.ContentRangeShift, N: 1}},
			"mp", "?partNumber=2", nil, 2 * chunk, chunk, true, "StoredObjectCorrupt", true},
		{"part 2 as part 1's size", []adversary.Lie{{Match: head(1), Kind: adversary.ContentLength, N: -(chunk + 16)}},
			"mp", "?partNumber=3", nil, 3 * chunk, chunk + 7, false, "", true},
		{"huge part count", []adversary.Lie{{Kind: adversary.ETagParts, N: 1 << 40}}, "mp", "", nil, 0, -1, true, "StoredObjectCorrupt", false},
		{"huge part count, range", []adversary.Lie{{Kind: adversary.ETagParts, N: 1 << 40}}, "mp", "", rng(5, 70000), 5, 69996, true, "StoredObjectCorrupt", true},
		{"huge part count, part", []adversary.Lie{{Kind: adversary.ETagParts, N: 1 << 40}}, "mp", "?partNumber=2", nil, 2 * chunk, chunk, true, "StoredObjectCorrupt", true},
		// The count is asked instead (partcount_test.go).
		{"part count dropped", []adversary.Lie{{Kind: adversary.ETagParts, N: -1}}, "mp", "", nil, 0, -1, false, "", true},
		{"part count dropped, range", []adversary.Lie{{Kind: adversary.ETagParts, N: -1}}, "mp", "", rng(2*chunk-10, 2*chunk+10), 2*chunk - 10, 21, false, "", true},
		{"part count too low", []adversary.Lie{{Kind: adversary.ETagParts, N: 2}}, "mp", "", nil, 0, -1, true, "", true},
		{"part count too high", []adversary.Lie{{Kind: adversary.ETagParts, N: 4}}, "mp", "", rng(10, 20), 10, 11, true, "", true},
		{"another object", []adversary.Lie{{Match: adversary.Match{Key: "small"}, Kind: adversary.OtherObject, Key: "other"}}, "small", "", nil, 0, -1, true, "StoredObjectCorrupt", false},
		{"another object, range", []adversary.Lie{{Match: adversary.Match{Key: "small"}, Kind: adversary.OtherObject, Key: "other"}}, "small", "", rng(70000, 140000), 70000, 70001, true, "StoredObjectCorrupt", false},
		{"another object's metadata", []adversary.Lie{{Match: adversary.Match{Key: "small"}, Kind: adversary.OtherMetadata, Key: "other"}}, "small", "", nil, 0, -1, true, "StoredObjectCorrupt", false},
		// Cut answers are asked for again from where they broke (resume.go):
		// read whole from two resumes, cut after more than maxResumes.
		{"body cut", []adversary.Lie{{Match: get, Kind: adversary.TruncateBody, N: 100000}}, "small", "", nil, 0, -1, false, "", false},
		{"body cut often", []adversary.Lie{{Match: get, Kind: adversary.TruncateBody, N: 1000}}, "small", "", nil, 0, -1, true, "", false},
		{"body short", []adversary.Lie{{Match: get, Kind: adversary.ShortBody, N: 100000}}, "small", "", nil, 0, -1, true, "", false},
		{"body extended", []adversary.Lie{{Match: get, Kind: adversary.ExtendBody, N: 16}}, "small", "", nil, 0, -1, true, "", false},
		// Bytes past the range asked for are never read.
		{"body extended, range", []adversary.Lie{{Match: get, Kind: adversary.ExtendBody, N: 16}}, "mp", "", rng(10, 100000), 10, 99991, false, "", true},
		{"200 for 206", []adversary.Lie{{Match: get, Kind: adversary.StatusOK}}, "mp", "", rng(2*chunk-10, 2*chunk+10), 2*chunk - 10, 21, false, "", true},
		{"range ignored", []adversary.Lie{{Kind: adversary.IgnoreRange}}, "mp", "", rng(2*chunk-10, 2*chunk+10), 2*chunk - 10, 21, false, "", true},
		{"partNumber ignored", []adversary.Lie{{Kind: adversary.IgnorePartNumber}}, "mp", "", rng(2*chunk-10, 2*chunk+10), 2*chunk - 10, 21, false, "", true},
		{"partNumber ignored, part", []adversary.Lie{{Kind: adversary.IgnorePartNumber}}, "mp", "?partNumber=2", nil, 2 * chunk, chunk, true, "", true},
		{"If-Match ignored", []adversary.Lie{{Kind: adversary.IgnoreIfMatch}}, "mp", "", rng(3, 200000), 3, 199998, false, "", true},
		{"Content-Range moved", []adversary.Lie{{Match: get, Kind: adversary.ContentRangeShift, N: 48}}, "mp", "", rng(2*chunk-10, 2*chunk+10), 2*chunk - 10, 21, true, "", true},
		{"Content-Range total", []adversary.Lie{{Match: get, Kind: adversary.ContentRangeTotal, N: chunk + 16}}, "mp", "", rng(2*chunk-10, 2*chunk+10), 2*chunk - 10, 21, true, "", true},
		{"error status with an object body", []adversary.Lie{{Match: get, Kind: adversary.Status, N: 404}}, "small", "", nil, 0, -1, true, "BadStoreAnswer", false},
		{"redirect elsewhere", []adversary.Lie{{Match: get, Kind: adversary.Status, N: 307}, {Match: get, Kind: adversary.SetHeader, Key: "Location: http://127.0.0.1:1/x"}},
			"small", "", nil, 0, -1, true, "BadStoreAnswer", false},
		{"sub-resources ignored", []adversary.Lie{{Kind: adversary.IgnoreSubresources}}, "small", "?tagging", nil, 0, 0, true, "BadStoreAnswer", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cacheCold {
				e.proxy.layouts = newLayoutCache()
			}
			e.proxy.counts = newPartCounts(false) // a replica that learnt nothing yet
			e.liar.Set(tt.lies...)
			defer e.liar.Set()
			plain := e.plain(tt.key)
			a := e.read(t, "GET", "/"+testBucket+"/"+tt.key+tt.query, tt.header)
			want := tt.n
			if want < 0 {
				want = int64(len(plain))
			}
			checkHonest(t, a, plain, tt.off, want)
			ok := a.complete && (a.status == http.StatusOK || a.status == http.StatusPartialContent)
			if tt.mustFail && ok {
				t.Errorf("the lie went unnoticed: %d", a.status)
			}
			if !tt.mustFail && !ok {
				t.Logf("refused: %d %s", a.status, store.ErrorCode(a.body))
			}
			if tt.wantCode != "" && store.ErrorCode(a.body) != tt.wantCode {
				t.Errorf("%d %s, want %s", a.status, a.body, tt.wantCode)
			}
			if a.status == http.StatusOK && tt.query == "?tagging" && bytes.Contains(a.body, e.stored(t, tt.key)[:32]) {
				t.Error("ciphertext reached the client")
			}
		})
	}
}

// stored is what the store holds for key.
func (e *lyingEnv) stored(t testing.TB, key string) []byte {
	o := e.store.get(testBucket, key)
	if o == nil {
		t.Fatalf("no stored %s", key)
	}
	return o.data
}

// TestHugePartCountBounded: a part count of 2^40 in an ETag is refused
// without allocating by it, on every read path and in listings.
func TestHugePartCountBounded(t *testing.T) {
	e := newLyingEnv(t)
	e.liar.Set(adversary.Lie{Kind: adversary.ETagParts, N: 1 << 40})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, path := range []string{"/bkt/mp", "/bkt/mp?partNumber=3", "/bkt/small"} {
		for _, method := range []string{"GET", "HEAD"} {
			var h http.Header
			if !strings.Contains(path, "partNumber") {
				h = http.Header{"Range": {"bytes=1-2"}}
			}
			a := e.read(t, method, path, h)
			if a.status != http.StatusBadGateway {
				t.Errorf("%s %s: %d %s", method, path, a.status, a.body)
			}
		}
	}
	a := e.read(t, "GET", "/bkt?list-type=2", nil)
	if a.status != http.StatusOK || !strings.Contains(string(a.body), fmt.Sprintf("<Size>%d</Size>", len(e.stored(t, "mp")))) {
		t.Errorf("listing: %d %s", a.status, a.body)
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<20 {
		t.Errorf("%d MiB allocated for a few refused requests", grown>>20)
	}
}

// TestCopiesUnderLies: copies made while the store lies either fail or, read
// back honestly, hold the true plaintext.
func TestCopiesUnderLies(t *testing.T) {
	e := newLyingEnv(t)
	head := func(part int) adversary.Match { return adversary.Match{Method: "HEAD", Key: "mp", PartNumber: part} }
	ruleBreak := []adversary.Lie{{Match: head(1), Kind: adversary.ContentLength, N: -17}, {Match: head(2), Kind: adversary.ContentLength, N: 17}}
	i := 0
	for _, tc := range []struct {
		name string
		lies []adversary.Lie
		src  string
		rng  *[2]int64 // UploadPartCopy range; nil: CopyObject
	}{
		{"UploadPartCopy, sizes break the rule", ruleBreak, "mp", &[2]int64{2*chunk - 10, 2*chunk + 10}},
		{"UploadPartCopy, part count dropped", []adversary.Lie{{Kind: adversary.ETagParts, N: -1}}, "mp", &[2]int64{10, 2*chunk + 10}},
		{"UploadPartCopy, another object", []adversary.Lie{{Match: adversary.Match{Key: "small"}, Kind: adversary.OtherObject, Key: "other"}}, "small", &[2]int64{5, 100}},
		{"CopyObject, sizes break the rule", ruleBreak, "mp", nil},
		{"CopyObject, another object's metadata", []adversary.Lie{{Match: adversary.Match{Key: "small"}, Kind: adversary.OtherMetadata, Key: "other"}}, "small", nil},
		{"CopyObject, part count too low", []adversary.Lie{{Kind: adversary.ETagParts, N: 2}}, "mp", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.layouts = newLayoutCache()
			e.proxy.counts = newPartCounts(false)
			i++
			dst := fmt.Sprintf("copy-%d", i)
			want := e.plain(tc.src)
			e.liar.Set(tc.lies...)
			ok := e.copyUnderLies(t, tc.src, dst, tc.rng)
			e.liar.Set()
			if tc.rng != nil {
				want = want[tc.rng[0] : tc.rng[1]+1]
			}
			a := e.read(t, "GET", "/"+testBucket+"/"+dst, nil)
			if !ok {
				if a.status != http.StatusNotFound {
					t.Errorf("a failed copy left an object behind: %d", a.status)
				}
				return
			}
			checkHonest(t, a, want, 0, int64(len(want)))
		})
	}
}

// copyUnderLies copies src to dst (a range of it, through UploadPartCopy
// and Complete, when rng is set) and reports whether the copy succeeded.
func (e *lyingEnv) copyUnderLies(t testing.TB, src, dst string, rng *[2]int64) bool {
	t.Helper()
	copySrc := http.Header{"X-Amz-Copy-Source": {testBucket + "/" + src}}
	if rng == nil {
		status, _, _ := e.send(t, e.wireRequest(t, "PUT", "/"+testBucket+"/"+dst, nil, modeSigned, false, copySrc))
		return status == http.StatusOK
	}
	// The lies apply to every request, this one's too.
	id, err := e.tryCreateUpload(t, dst)
	if err != nil {
		return false
	}
	copySrc.Set("X-Amz-Copy-Source-Range", fmt.Sprintf("bytes=%d-%d", rng[0], rng[1]))
	status, _, body := e.send(t, e.wireRequest(t, "PUT", "/"+testBucket+"/"+dst+"?partNumber=1&uploadId="+id, nil, modeSigned, false, copySrc))
	if status != http.StatusOK {
		return false
	}
	_, rest, _ := strings.Cut(string(body), "<ETag>")
	etag, _, _ := strings.Cut(rest, "</ETag>")
	doc := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>` + etag + `</ETag></Part></CompleteMultipartUpload>`
	status, _, _ = e.send(t, e.wireRequest(t, "POST", "/"+testBucket+"/"+dst+"?uploadId="+id, []byte(doc), modeSigned, false, nil))
	return status == http.StatusOK
}

// TestResumeFailures: a read whose store answer breaks before anything went
// to the client, and that cannot be resumed, is answered as what ended it:
// 503 for a connection that keeps breaking or an object that changed or a
// store that failed meanwhile (never "tampered" for a network failure), and
// StoredObjectCorrupt for a resumed answer that lies (never "unavailable").
func TestResumeFailures(t *testing.T) {
	e := newLyingEnv(t)
	get := adversary.Match{Method: "GET"}
	first := adversary.Match{Method: "GET", Key: "small", Nth: 1}
	resumed := adversary.Match{Method: "GET", Key: "small", Ranged: true}
	cut := adversary.Lie{Match: get, Kind: adversary.TruncateBody, N: 100}
	rng := http.Header{"Range": {"bytes=10-100000"}}
	for _, tc := range []struct {
		name   string
		lies   []adversary.Lie
		path   string
		header http.Header
		status int
		code   string
	}{
		{"cut every time", []adversary.Lie{cut}, "small", nil, http.StatusServiceUnavailable, "ServiceUnavailable"},
		{"cut every time, a range", []adversary.Lie{cut}, "mp", rng, http.StatusServiceUnavailable, "ServiceUnavailable"},
		{"cut every time, a part", []adversary.Lie{cut}, "mp?partNumber=2", nil, http.StatusServiceUnavailable, "ServiceUnavailable"},
		{"cut, then the object changed", []adversary.Lie{{Match: first, Kind: adversary.TruncateBody, N: 100}, {Match: resumed, Kind: adversary.Status, N: 412}},
			"small", nil, http.StatusServiceUnavailable, "ServiceUnavailable"},
		{"cut, then a store error", []adversary.Lie{{Match: first, Kind: adversary.TruncateBody, N: 100}, {Match: resumed, Kind: adversary.Status, N: 500}},
			"small", nil, http.StatusServiceUnavailable, "ServiceUnavailable"},
		{"cut, then a 416 for stored bytes", []adversary.Lie{{Match: first, Kind: adversary.TruncateBody, N: 100}, {Match: resumed, Kind: adversary.Status, N: 416}},
			"small", nil, http.StatusBadGateway, "StoredObjectCorrupt"},
		{"cut, then another object's bytes", []adversary.Lie{{Match: first, Kind: adversary.TruncateBody, N: 100},
			{Match: resumed, Kind: adversary.IgnoreIfMatch}, {Match: resumed, Kind: adversary.OtherObject, Key: "other"}},
			"small", nil, http.StatusBadGateway, "StoredObjectCorrupt"},
		{"cut, then a 200 of the range alone", []adversary.Lie{{Match: first, Kind: adversary.TruncateBody, N: 100}, {Match: resumed, Kind: adversary.StatusOK}},
			"small", nil, http.StatusBadGateway, "StoredObjectCorrupt"},
		{"cut, then answers that end early", []adversary.Lie{{Match: first, Kind: adversary.TruncateBody, N: 100}, {Match: resumed, Kind: adversary.ShortBody, N: 10}},
			"small", nil, http.StatusBadGateway, "StoredObjectCorrupt"},
		// Lies that change no byte read: the object, whole.
		{"cut, then the whole object", []adversary.Lie{{Match: first, Kind: adversary.TruncateBody, N: 100}, {Match: resumed, Kind: adversary.IgnoreRange}},
			"small", nil, http.StatusOK, ""},
		{"cut, then a longer answer", []adversary.Lie{{Match: first, Kind: adversary.TruncateBody, N: 100}, {Match: resumed, Kind: adversary.ExtendBody, N: 16}},
			"small", nil, http.StatusOK, ""},
		{"cut, then If-Match ignored", []adversary.Lie{{Match: first, Kind: adversary.TruncateBody, N: 100}, {Match: resumed, Kind: adversary.IgnoreIfMatch}},
			"small", nil, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.liar.Set(tc.lies...)
			defer e.liar.Set()
			a := e.read(t, "GET", "/"+testBucket+"/"+tc.path, tc.header)
			switch {
			case tc.status == http.StatusOK:
				if !a.complete || a.status != http.StatusOK || !bytes.Equal(a.body, e.small) {
					t.Errorf("answered %d, %d bytes, complete %v: want the object", a.status, len(a.body), a.complete)
				}
			case a.status != tc.status || store.ErrorCode(a.body) != tc.code:
				t.Errorf("answered %d %s, want %d %s", a.status, a.body, tc.status, tc.code)
			}
		})
	}
}
