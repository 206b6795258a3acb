package adversary

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/internal/store"
)

// maxXML caps the XML answers buffered for rewriting; a bigger one passes
// through unchanged.
const maxXML = 16 << 20

// answer is what the Store will say: the real store's answer as the lies
// change it. Bodies stream; only XML answers being rewritten are buffered.
type answer struct {
	status int
	header http.Header
	body   io.Reader
	length int64 // declared body length; -1 unknown (sent chunked)
	cut    int64 // TruncateBody: cut the connection after this many bytes; -1 never
	head   bool
	xml    bool   // an XML answer that ETagParts and ListingSize may rewrite
	buf    []byte // the XML body, once buffered
}

var wrongTypes = []string{"application/octet-stream", "text/html; charset=utf-8", "application/xml", "application/json"}

var (
	etagElem    = regexp.MustCompile(`<ETag>[^<]*</ETag>`)
	sizeElem    = regexp.MustCompile(`<Size>[^<]*</Size>`)
	partsSuffix = regexp.MustCompile(`-[0-9]+$`)
)

// lieAbout applies the answer-side lies (already in Kind order) to resp.
func (s *Store) lieAbout(r *http.Request, bucket string, resp *http.Response, lies []Lie) (*answer, error) {
	a := &answer{status: resp.StatusCode, header: resp.Header.Clone(), body: resp.Body,
		length: resp.ContentLength, cut: -1, head: r.Method == http.MethodHead}
	deleteAll(a.header, hopByHop)
	a.xml = isXMLAnswer(r, a.header)
	for _, l := range lies {
		if err := s.apply(r.Context(), bucket, a, l); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// isXMLAnswer: an S3 API answer in XML (or without a type), not an
// object's body, which may be XML too.
func isXMLAnswer(r *http.Request, h http.Header) bool {
	_, key := splitPath(r.URL.Path)
	objectRead := r.Method == http.MethodGet && key != "" && !r.URL.Query().Has("uploadId")
	ct := strings.ToLower(h.Get("Content-Type"))
	return r.Method != http.MethodHead && !objectRead && (ct == "" || strings.Contains(ct, "xml"))
}

func (s *Store) apply(ctx context.Context, bucket string, a *answer, l Lie) error {
	switch l.Kind {
	case StatusOK:
		if a.status == http.StatusPartialContent {
			a.status = http.StatusOK
			a.header.Del("Content-Range")
		}
	case Status:
		a.status = int(l.N)
		if l.N < 200 || l.N > 999 {
			a.status = http.StatusInternalServerError
		}
	case OtherMetadata:
		return s.otherMetadata(ctx, bucket, l.Key, a.header)
	case DropHeader:
		a.header.Del(l.Key)
	case SetHeader:
		if name, value, ok := strings.Cut(l.Key, ":"); ok {
			a.header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
		}
	case ContentType:
		n := int64(len(wrongTypes))
		a.header.Set("Content-Type", wrongTypes[(l.N%n+n)%n])
	case ContentRangeShift:
		editContentRange(a.header, l.N, 0)
	case ContentRangeTotal:
		editContentRange(a.header, 0, l.N)
	case ETagParts:
		if v := a.header.Get("ETag"); v != "" {
			a.header.Set("ETag", withParts(v, l.N))
			s.rememberETag(a.header.Get("ETag"), v)
		}
		a.rewriteXML(etagElem, func(v string) string { return withParts(v, l.N) })
	case ListingSize:
		a.rewriteXML(sizeElem, func(v string) string {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return v
			}
			return strconv.FormatInt(n+l.N, 10)
		})
	default:
		a.applyLength(l)
	}
	return nil
}

// applyLength applies the lies about the body and its declared length.
func (a *answer) applyLength(l Lie) {
	n := max(l.N, 0)
	switch l.Kind {
	case ShortBody:
		a.body = io.LimitReader(a.body, n)
		if a.length >= 0 {
			a.length = min(a.length, n)
		}
	case ExtendBody:
		a.body = io.MultiReader(a.body, io.LimitReader(&junk{}, n))
		if a.length >= 0 {
			a.length += n
		}
	case ContentLength:
		if a.head && a.length >= 0 {
			a.length = max(a.length+l.N, -1)
		}
	case TruncateBody:
		if a.cut < 0 || n < a.cut {
			a.cut = n
		}
	}
}

// otherMetadata replaces h's x-amz-meta-* with those of bucket/key.
func (s *Store) otherMetadata(ctx context.Context, bucket, key string, h http.Header) error {
	resp, err := s.up.Do(ctx, store.Request{Method: http.MethodHead, Bucket: bucket, Key: key})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("OtherMetadata: HEAD %s/%s answered %s", bucket, key, resp.Status)
	}
	for k := range h {
		if isMeta(k) {
			delete(h, k)
		}
	}
	for k, vs := range resp.Header {
		if isMeta(k) {
			h[k] = vs
		}
	}
	return nil
}

func isMeta(name string) bool { return strings.HasPrefix(strings.ToLower(name), "x-amz-meta-") }

// rewriteXML buffers an XML answer (once) and replaces the text of every
// element re matches with f of it.
func (a *answer) rewriteXML(re *regexp.Regexp, f func(string) string) {
	if !a.xml {
		return
	}
	if a.buf == nil {
		data, err := io.ReadAll(io.LimitReader(a.body, maxXML+1))
		if err != nil || len(data) > maxXML {
			// Broken or too big: pass it on as it came.
			rest := a.body
			if err != nil {
				rest = errReader{err}
			}
			a.body, a.xml = io.MultiReader(bytes.NewReader(data), rest), false
			return
		}
		a.buf = data
	}
	a.buf = re.ReplaceAllFunc(a.buf, func(m []byte) []byte {
		open, end := bytes.IndexByte(m, '>')+1, bytes.LastIndexByte(m, '<')
		return slices.Concat(m[:open], []byte(f(string(m[open:end]))), m[end:])
	})
	a.body, a.length = bytes.NewReader(a.buf), int64(len(a.buf))
}

// withParts sets or strips (n<0) the "-parts" suffix of an ETag, quoted
// as in a header or escaped as in XML.
func withParts(etag string, n int64) string {
	pre, core, post := "", etag, ""
	for _, q := range []string{`"`, "&quot;", "&#34;", "&#x22;"} {
		if len(etag) >= 2*len(q) && strings.HasPrefix(etag, q) && strings.HasSuffix(etag, q) {
			pre, core, post = q, etag[len(q):len(etag)-len(q)], q
			break
		}
	}
	core = partsSuffix.ReplaceAllString(core, "")
	if n >= 0 {
		core += "-" + strconv.FormatInt(n, 10)
	}
	return pre + core + post
}

// editContentRange adds shift to the positions and grow to the total of
// "bytes first-last/total" (or "bytes */total").
func editContentRange(h http.Header, shift, grow int64) {
	rest, ok := strings.CutPrefix(h.Get("Content-Range"), "bytes ")
	span, total, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return
	}
	if first, last, ok := strings.Cut(span, "-"); ok {
		a, err1 := strconv.ParseInt(first, 10, 64)
		b, err2 := strconv.ParseInt(last, 10, 64)
		if err1 == nil && err2 == nil {
			span = fmt.Sprintf("%d-%d", a+shift, b+shift)
		}
	}
	if t, err := strconv.ParseInt(total, 10, 64); err == nil {
		total = strconv.FormatInt(t+grow, 10)
	}
	h.Set("Content-Range", "bytes "+span+"/"+total)
}

// write sends the answer. A body that does not match its declared length
// (TruncateBody, or the real store's own failure) ends by cutting the
// connection, which is how HTTP/1.1 says a body was cut short.
func (a *answer) write(w http.ResponseWriter) {
	h := w.Header()
	for k, vs := range a.header {
		h[k] = vs
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // keep net/http from sniffing one
	}
	hasBody := a.status >= 200 && a.status != http.StatusNoContent && a.status != http.StatusNotModified
	h.Del("Content-Length")
	if hasBody && a.length >= 0 {
		h.Set("Content-Length", strconv.FormatInt(a.length, 10))
	}
	w.WriteHeader(a.status)
	if !hasBody || a.head {
		return
	}
	src := a.body
	if a.cut >= 0 {
		src = io.LimitReader(a.body, a.cut)
	}
	n, err := io.Copy(w, src)
	cutShort := a.cut >= 0 && n == a.cut && a.length < 0 && hasMore(a.body)
	if err != nil || (a.length >= 0 && n != a.length) || cutShort {
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
}

func hasMore(r io.Reader) bool {
	n, _ := io.ReadFull(r, make([]byte, 1))
	return n > 0
}

// junk is deterministic filler for ExtendBody.
type junk struct{ off int64 }

func (j *junk) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = junkByte(j.off)
		j.off++
	}
	return len(p), nil
}

func junkByte(off int64) byte { return byte(off*131 + 17) }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
