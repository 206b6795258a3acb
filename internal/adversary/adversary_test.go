package adversary

import (
	"bufio"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	getA      = req{method: "GET", key: "a"}
	getARange = req{method: "GET", key: "a", header: map[string]string{"Range": "bytes=2-5"}}
	listing   = req{method: "GET", query: "list-type=2"}
	copyPart  = req{method: "PUT", key: "c", query: "partNumber=1&uploadId=u",
		header: map[string]string{"X-Amz-Copy-Source": "/bkt/a", "X-Amz-Copy-Source-Range": "bytes=0-3"}}
)

// lieCase is one lie on one request. want edits the honest answer into the
// expected one and wantSeen the request the real store honestly saw: the
// lie must change exactly that.
type lieCase struct {
	name     string
	lie      Lie
	req      req
	want     func(t *testing.T, g *rig, r *result)
	wantSeen func(s *seen)
}

// answerOf replaces the answer with the honest answer to q.
func answerOf(q req) func(*testing.T, *rig, *result) {
	return func(t *testing.T, g *rig, r *result) { *r = g.do(t, q) }
}

func setHeader(k, v string) func(*testing.T, *rig, *result) {
	return func(_ *testing.T, _ *rig, r *result) { r.header.Set(k, v) }
}

func delHeader(names ...string) func(*seen) {
	return func(s *seen) { deleteAll(s.Header, names) }
}

// replaceBody replaces old with new pairs in the body and fixes its length.
func replaceBody(pairs ...string) func(*testing.T, *rig, *result) {
	return func(_ *testing.T, _ *rig, r *result) {
		r.body = strings.NewReplacer(pairs...).Replace(r.body)
		r.length = int64(len(r.body))
	}
}

func junkOf(n int) string {
	b := make([]byte, n)
	(&junk{}).Read(b)
	return string(b)
}

var lieCases = []lieCase{
	{name: "IgnoreSubresources/GET acl is a GetObject", lie: Lie{Kind: IgnoreSubresources},
		req: req{method: "GET", key: "a", query: "acl"}, want: answerOf(getA),
		wantSeen: func(s *seen) { s.RawQuery = "" }},
	{name: "IgnoreSubresources/PUT tagging is a PutObject", lie: Lie{Kind: IgnoreSubresources},
		req:  req{method: "PUT", key: "a", query: "tagging&versionId=v1&x-id=PutObjectTagging", body: "<Tagging/>"},
		want: answerOf(req{method: "PUT", key: "scratch", body: "x"}), wantSeen: func(s *seen) { s.RawQuery = "versionId=v1" }},
	{name: "IgnoreSubresources/keeps list parameters", lie: Lie{Kind: IgnoreSubresources},
		req:      req{method: "GET", query: "acl&list-type=2&prefix=a&continuation-token=t"},
		wantSeen: func(s *seen) { s.RawQuery = "continuation-token=t&list-type=2&prefix=a" }},
	{name: "IgnoreIfMatch/read not pinned", lie: Lie{Kind: IgnoreIfMatch},
		req:  req{method: "GET", key: "a", header: map[string]string{"If-Match": `"etag-b"`}},
		want: answerOf(getA), wantSeen: delHeader("If-Match")},
	{name: "IgnoreIfMatch/copy conditions", lie: Lie{Kind: IgnoreIfMatch},
		req: req{method: "PUT", key: "c", header: map[string]string{"X-Amz-Copy-Source": "/bkt/a",
			"X-Amz-Copy-Source-If-Match": "x", "X-Amz-Copy-Source-If-None-Match": "y", "If-None-Match": "*",
			"X-Amz-Copy-Source-If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT", "X-Amz-Copy-Source-If-Unmodified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}},
		wantSeen: delHeader("X-Amz-Copy-Source-If-Match", "X-Amz-Copy-Source-If-None-Match", "If-None-Match",
			"X-Amz-Copy-Source-If-Modified-Since", "X-Amz-Copy-Source-If-Unmodified-Since")},
	{name: "IgnoreRange/GET", lie: Lie{Kind: IgnoreRange}, req: getARange, want: answerOf(getA), wantSeen: delHeader("Range")},
	{name: "IgnoreRange/UploadPartCopy", lie: Lie{Kind: IgnoreRange}, req: copyPart, wantSeen: delHeader("X-Amz-Copy-Source-Range")},
	{name: "IgnorePartNumber/HEAD", lie: Lie{Kind: IgnorePartNumber},
		req: req{method: "HEAD", key: "mp", query: "partNumber=2"}, want: answerOf(req{method: "HEAD", key: "mp"}),
		wantSeen: func(s *seen) { s.RawQuery = "" }},
	{name: "IgnorePartNumber/keeps UploadPart's", lie: Lie{Kind: IgnorePartNumber},
		req: req{method: "PUT", key: "c", query: "partNumber=1&uploadId=u", body: "part"}},
	{name: "OtherObject", lie: Lie{Kind: OtherObject, Key: "b"}, req: getA, want: answerOf(req{method: "GET", key: "b"}),
		wantSeen: func(s *seen) { s.Path = "/bkt/b" }},
	{name: "StatusOK", lie: Lie{Kind: StatusOK}, req: getARange,
		want: func(_ *testing.T, _ *rig, r *result) { r.status = 200; r.header.Del("Content-Range") }},
	{name: "Status/error as success", lie: Lie{Kind: Status, N: 200},
		req:  req{method: "GET", key: "a", header: map[string]string{"If-Match": "x"}},
		want: func(_ *testing.T, _ *rig, r *result) { r.status = 200 }},
	{name: "Status/invalid is 500", lie: Lie{Kind: Status, N: 7}, req: getA,
		want: func(_ *testing.T, _ *rig, r *result) { r.status = 500 }},
	{name: "OtherMetadata", lie: Lie{Kind: OtherMetadata, Key: "b"}, req: getA,
		want: func(_ *testing.T, _ *rig, r *result) {
			r.header.Del("X-Amz-Meta-A-Only")
			r.header.Set("X-Amz-Meta-Owner", "b")
		}},
	{name: "DropHeader", lie: Lie{Kind: DropHeader, Key: "etag"}, req: getA,
		want: func(_ *testing.T, _ *rig, r *result) { r.header.Del("ETag") }},
	{name: "SetHeader", lie: Lie{Kind: SetHeader, Key: "Location: http://elsewhere/x"}, req: getA, want: setHeader("Location", "http://elsewhere/x")},
	{name: "ContentType/0", lie: Lie{Kind: ContentType}, req: getA, want: setHeader("Content-Type", "application/octet-stream")},
	{name: "ContentType/-3", lie: Lie{Kind: ContentType, N: -3}, req: getA, want: setHeader("Content-Type", "text/html; charset=utf-8")},
	{name: "ContentRangeShift", lie: Lie{Kind: ContentRangeShift, N: 3}, req: getARange, want: setHeader("Content-Range", "bytes 5-8/26")},
	{name: "ContentRangeTotal", lie: Lie{Kind: ContentRangeTotal, N: -4}, req: getARange, want: setHeader("Content-Range", "bytes 2-5/22")},
	{name: "ETagParts/strip", lie: Lie{Kind: ETagParts, N: -1}, req: req{method: "GET", key: "mp"}, want: setHeader("ETag", `"etag-mp"`)},
	{name: "ETagParts/huge", lie: Lie{Kind: ETagParts, N: 1 << 40}, req: req{method: "HEAD", key: "a"}, want: setHeader("ETag", `"etag-a-1099511627776"`)},
	{name: "ETagParts/listing", lie: Lie{Kind: ETagParts, N: 2}, req: listing,
		want: replaceBody("&quot;etag-a&quot;", "&quot;etag-a-2&quot;", "&quot;etag-b&quot;", "&quot;etag-b-2&quot;",
			"&quot;etag-mp-3&quot;", "&quot;etag-mp-2&quot;", "&quot;etag-odd&quot;", "&quot;etag-odd-2&quot;")},
	{name: "ETagParts/copy result", lie: Lie{Kind: ETagParts, N: -1}, req: copyPart, want: replaceBody("etag-c-2", "etag-c")},
	{name: "ListingSize", lie: Lie{Kind: ListingSize, N: 1000}, req: listing,
		want: replaceBody("<Size>26</Size>", "<Size>1026</Size>", "<Size>13</Size>", "<Size>1013</Size>", "<Size>7</Size>", "<Size>1007</Size>")},
	{name: "ListingSize/not an object's body", lie: Lie{Kind: ListingSize, N: 1},
		req: req{method: "PUT", key: "x.xml", body: "<Size>1</Size>"}},
	{name: "ShortBody/GET", lie: Lie{Kind: ShortBody, N: 4}, req: getA,
		want: func(_ *testing.T, _ *rig, r *result) { r.body, r.length = "obje", 4 }},
	{name: "ShortBody/HEAD", lie: Lie{Kind: ShortBody, N: 4}, req: req{method: "HEAD", key: "a"},
		want: func(_ *testing.T, _ *rig, r *result) { r.length = 4 }},
	{name: "ExtendBody", lie: Lie{Kind: ExtendBody, N: 5}, req: getA,
		want: func(_ *testing.T, _ *rig, r *result) { r.body += junkOf(5); r.length += 5 }},
	{name: "ContentLength/HEAD part", lie: Lie{Kind: ContentLength, N: 7}, req: req{method: "HEAD", key: "mp", query: "partNumber=1"},
		want: func(_ *testing.T, _ *rig, r *result) { r.length = 12 }},
	{name: "ContentLength/GET untouched", lie: Lie{Kind: ContentLength, N: 7}, req: getA},
	{name: "TruncateBody", lie: Lie{Kind: TruncateBody, N: 4}, req: getA,
		want: func(_ *testing.T, _ *rig, r *result) { r.body, r.cut = "obje", true }},
	{name: "TruncateBody/longer than the body", lie: Lie{Kind: TruncateBody, N: 100}, req: getA},
}

func TestLies(t *testing.T) {
	for _, c := range lieCases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t)
			honest := g.do(t, c.req)
			honestSeen := g.real.last()
			want, wantSeen := honest.clone(), honestSeen.clone()
			if c.want != nil {
				c.want(t, g, &want)
			}
			if c.wantSeen != nil {
				c.wantSeen(&wantSeen)
			}
			g.adv.Set(c.lie)
			n := g.real.count()
			got := g.do(t, c.req)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answer:\n got %+v\nwant %+v", got, want)
			}
			checkSeen(t, g.real.nth(n), wantSeen) // OtherMetadata's HEAD comes after
			recs := g.adv.Requests()
			if l := recs[len(recs)-1].Lies; !slices.Equal(l, []Kind{c.lie.Kind}) {
				t.Errorf("record lies %v, want [%v]", l, c.lie.Kind)
			}
		})
	}
}

// checkSeen compares what the real store received, but for the signature
// and its time.
func checkSeen(t *testing.T, got, want seen) {
	t.Helper()
	got, want = got.clone(), want.clone()
	for _, s := range []seen{got, want} {
		deleteAll(s.Header, []string{"Authorization", "X-Amz-Date"})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("real store saw:\n got %+v\nwant %+v", got, want)
	}
}

func TestEveryKindHasACase(t *testing.T) {
	for _, k := range Kinds() {
		if !slices.ContainsFunc(lieCases, func(c lieCase) bool { return c.lie.Kind == k }) {
			t.Errorf("no case for %v", k)
		}
	}
	if got := Kind(99).String(); got != "Kind(99)" {
		t.Errorf("String of an unknown kind: %q", got)
	}
}

// TestLiesCombine: answer-side lies apply in Kind order, whatever the
// order given to Set.
func TestLiesCombine(t *testing.T) {
	g := newRig(t)
	g.adv.Set(Lie{Kind: TruncateBody, N: 6}, Lie{Kind: ExtendBody, N: 3}, Lie{Kind: ShortBody, N: 4},
		Lie{Kind: Status, N: 203}, Lie{Kind: StatusOK})
	got := g.do(t, getARange)
	want := result{status: 203, length: 7, body: "ject" + junkOf(2), cut: true}
	if got.status != want.status || got.length != want.length || got.body != want.body || got.cut != want.cut {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got.header.Get("Content-Range") != "" {
		t.Errorf("Content-Range %q after StatusOK", got.header.Get("Content-Range"))
	}
}

func TestOtherMetadataMissingObject(t *testing.T) {
	g := newRig(t)
	g.adv.Set(Lie{Kind: OtherMetadata, Key: "missing"})
	if got := g.do(t, getA); got.status != http.StatusBadGateway || !strings.Contains(got.body, "AdversaryError") {
		t.Errorf("got %d %s, want 502 AdversaryError", got.status, got.body)
	}
}

// TestMatch marks the selected requests with a 418.
func TestMatch(t *testing.T) {
	reqs := []req{
		getA, // 0
		{method: "HEAD", key: "a"},
		getARange,
		{method: "HEAD", key: "mp", query: "partNumber=1"},
		{method: "HEAD", key: "mp", query: "partNumber=2"}, // 4
		{method: "GET", key: "b"},
		listing,
		copyPart, // 7
	}
	cases := []struct {
		name  string
		match Match
		want  []int
	}{
		{"zero", Match{}, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"method", Match{Method: "HEAD"}, []int{1, 3, 4}},
		{"key", Match{Key: "a"}, []int{0, 1, 2}},
		{"bucket key", Match{Key: "mp", Method: "head"}, []int{3, 4}},
		{"part 2", Match{PartNumber: 2}, []int{4}},
		{"any part", Match{PartNumber: -1}, []int{3, 4, 7}},
		{"ranged", Match{Ranged: true}, []int{2, 7}},
		{"nth", Match{Key: "a", Nth: 2}, []int{1}},
		{"nth GET", Match{Method: "GET", Nth: 3}, []int{5}},
		{"nth beyond", Match{Nth: 9}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t)
			g.adv.Set(Lie{Match: c.match, Kind: Status, N: http.StatusTeapot})
			var got []int
			for i, q := range reqs {
				if g.do(t, q).status == http.StatusTeapot {
					got = append(got, i)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("lied to %v, want %v", got, c.want)
			}
		})
	}
}

// TestNthPerLie: each lie counts its own matches, from the Set that
// installed it.
func TestNthPerLie(t *testing.T) {
	g := newRig(t)
	lies := []Lie{{Match: Match{Nth: 1}, Kind: DropHeader, Key: "ETag"}, {Match: Match{Key: "a", Nth: 2}, Kind: ContentType}}
	g.adv.Set(lies...)
	for range 3 {
		g.do(t, getA)
	}
	g.adv.Set(lies...)
	g.do(t, getA)
	var got [][]Kind
	for _, r := range g.adv.Requests() {
		got = append(got, r.Lies)
	}
	want := [][]Kind{{DropHeader}, {ContentType}, nil, {DropHeader}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lies per request %v, want %v", got, want)
	}
}

func TestHonest(t *testing.T) {
	g := newRig(t)
	for _, c := range []struct {
		req    req
		status int
		body   string
		header map[string]string
	}{
		{req{method: "GET", key: oddKey}, 200, "odd key", nil},
		{req{method: "GET", key: "a", query: "versionId=v+1%2F2"}, 200, "object a: 0123456789abcdef", map[string]string{"Content-Type": "text/plain", "X-Amz-Meta-Owner": "a"}},
		{getARange, 206, "ject", map[string]string{"Content-Range": "bytes 2-5/26"}},
		{req{method: "HEAD", key: "mp", query: "partNumber=2"}, 206, "", map[string]string{"Content-Range": "bytes 5-9/13", "X-Amz-Mp-Parts-Count": "3", "ETag": `"etag-mp-3"`}},
		{req{method: "GET", key: "nope"}, 404, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code></Error>`, nil},
	} {
		got := g.do(t, c.req)
		if got.status != c.status || got.body != c.body || got.cut {
			t.Errorf("%+v: got %d %q (cut %v), want %d %q", c.req, got.status, got.body, got.cut, c.status, c.body)
		}
		for k, v := range c.header {
			if got.header.Get(k) != v {
				t.Errorf("%+v: %s %q, want %q", c.req, k, got.header.Get(k), v)
			}
		}
		s := g.real.last()
		path := "/bkt/" + c.req.key
		if q, _ := url.ParseQuery(c.req.query); s.Path != path || !reflect.DeepEqual(mustQuery(t, s.RawQuery), q) {
			t.Errorf("real store saw %s?%s, want %s?%s", s.Path, s.RawQuery, path, c.req.query)
		}
	}
	if got := g.do(t, req{method: "HEAD", key: "mp"}); got.length != 13 {
		t.Errorf("HEAD Content-Length %d, want 13", got.length)
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestRecords(t *testing.T) {
	g := newRig(t)
	g.do(t, req{method: "PUT", key: oddKey, query: "x-id=PutObject", body: "hello",
		header: map[string]string{"X-Amz-Meta-K": "v"}})
	g.do(t, getA)
	recs := g.adv.Requests()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	put := recs[0]
	if put.Method != "PUT" || put.Path != "/bkt/"+oddKey || put.RawQuery != "x-id=PutObject" ||
		put.BodyBytes != 5 || !put.Complete || put.Header.Get("X-Amz-Meta-K") != "v" {
		t.Errorf("PUT record %+v", put)
	}
	if o := g.real.object(oddKey); o == nil || o.data != "hello" {
		t.Errorf("real store holds %+v, want hello", o)
	}
	if get := recs[1]; get.Method != "GET" || get.BodyBytes != 0 || !get.Complete {
		t.Errorf("GET record %+v", get)
	}
	recs[0].Header.Set("X-Amz-Meta-K", "changed")
	if g.adv.Requests()[0].Header.Get("X-Amz-Meta-K") != "v" {
		t.Error("Requests shares its headers")
	}
	g.adv.Reset()
	if n := len(g.adv.Requests()); n != 0 {
		t.Errorf("%d records after Reset", n)
	}
}

// TestAbortedBody: a client that sends half its body and hangs up is
// recorded as incomplete, and the real store gets no whole body.
func TestAbortedBody(t *testing.T) {
	g := newRig(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(conn)
	w.WriteString("PUT /bkt/half HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	w.WriteString(strings.Repeat("h", 50))
	w.Flush()
	time.Sleep(50 * time.Millisecond) // let the half body flow before hanging up
	conn.Close()
	select {
	case <-g.served:
	case <-time.After(10 * time.Second):
		t.Fatal("the adversary did not finish the request")
	}
	recs := g.adv.Requests()
	if len(recs) != 1 || recs[0].BodyBytes != 50 || recs[0].Complete {
		t.Errorf("records %+v, want one of 50 bytes, incomplete", recs)
	}
	if o := g.real.object("half"); o != nil {
		t.Errorf("real store holds %q", o.data)
	}
}

// TestNotInProduction: the lying store must never be linked into s3seal.
func TestNotInProduction(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	out, err := exec.Command(goTool, "list", "-e", "-deps", "github.com/s3seal/s3seal/cmd/...").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "github.com/s3seal/s3seal/internal/adversary" {
			t.Fatal("cmd/... imports internal/adversary")
		}
	}
}
