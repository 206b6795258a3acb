package store

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Object names an object as s3seal asks the store about it.
type Object struct {
	Bucket, Key string
	VersionID   string      // "": the current version
	Header      http.Header // headers every request about it carries (owner, payer)
}

// query is the object's version query plus extra parameters.
func (o Object) query(extra ...string) url.Values {
	q := url.Values{}
	if o.VersionID != "" {
		q.Set("versionId", o.VersionID)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// header is the object's headers plus h.
func (o Object) header(h http.Header) http.Header {
	out := o.Header.Clone()
	if out == nil {
		out = http.Header{}
	}
	for k, vs := range h {
		out[k] = vs
	}
	return out
}

// Request is a request about o: its version, its headers plus h, and the
// query parameters q besides the version (response-header overrides,
// partNumber, ...).
func (o Object) Request(method string, q url.Values, h http.Header) Request {
	query := o.query()
	for k, vs := range q {
		if k != "versionId" {
			query[k] = vs
		}
	}
	return Request{Method: method, Bucket: o.Bucket, Key: o.Key, Query: query, Header: o.header(h)}
}

// copySource is the x-amz-copy-source value naming o.
func (o Object) copySource() string {
	v := s3utils.EncodePath("/" + o.Bucket + "/" + o.Key)
	if o.VersionID != "" {
		v += "?versionId=" + url.QueryEscape(o.VersionID)
	}
	return v
}

// ErrChanged means an object read pinned to an ETag found another: the
// object was replaced between two requests of one read.
var ErrChanged = errors.New("the object changed while it was read")

// ErrRangeNotSatisfiable is a 416 for stored bytes s3seal asked for.
var ErrRangeNotSatisfiable = errors.New("stored range not satisfiable")

// pinned sends a read of o pinned to etag (If-Match) and maps the answers
// every pinned read shares: 412 is ErrChanged, 416 ErrRangeNotSatisfiable,
// other failures a *Failure. want are the successful statuses.
func (c *Client) pinned(ctx context.Context, method string, o Object, etag string, q url.Values, h http.Header, want ...int) (*http.Response, error) {
	h = o.header(h)
	h.Set("If-Match", etag)
	resp, err := c.Do(ctx, Request{Method: method, Bucket: o.Bucket, Key: o.Key, Query: q, Header: h})
	if err != nil {
		return nil, err
	}
	for _, s := range want {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	switch resp.StatusCode {
	case http.StatusPreconditionFailed:
		resp.Body.Close()
		return nil, ErrChanged
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return nil, ErrRangeNotSatisfiable
	}
	return nil, &Failure{Resp: resp}
}

// HeadPart asks for part k of o (HEAD ?partNumber=k), pinned to etag. Its
// Content-Length is the part's stored size, if the store serves part reads.
// The body of an answer is closed, a *Failure's too: a HEAD has none.
func (c *Client) HeadPart(ctx context.Context, o Object, etag string, k int) (*http.Response, error) {
	resp, err := c.pinned(ctx, http.MethodHead, o, etag, o.query("partNumber", strconv.Itoa(k)), nil,
		http.StatusOK, http.StatusPartialContent)
	var f *Failure
	if errors.As(err, &f) {
		f.Resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.ContentLength < 0 {
		return nil, fmt.Errorf("HEAD ?partNumber=%d without Content-Length: %w", k, errNoLength)
	}
	return resp, nil
}

var errNoLength = errors.New("no Content-Length")

// GetRange reads n stored bytes of o at off, pinned to etag. The answer
// must be for exactly that range (or the whole object, from which the
// range is cut); the reader yields at most n bytes.
func (c *Client) GetRange(ctx context.Context, o Object, etag string, off, n int64) (io.ReadCloser, error) {
	h := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, off+n-1)}}
	resp, err := c.pinned(ctx, http.MethodGet, o, etag, o.query(), h, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		// The store ignored Range: skip to it in the whole object.
		if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("skipping to stored byte %d: %w", off, io.ErrUnexpectedEOF)
		}
	} else if got := resp.Header.Get("Content-Range"); !strings.HasPrefix(got, fmt.Sprintf("bytes %d-%d/", off, off+n-1)) {
		resp.Body.Close()
		return nil, fmt.Errorf("store answered range %q, asked for %d+%d: %w", got, off, n, ErrUnexpectedAnswer)
	}
	return readCloser{io.LimitReader(resp.Body, n), resp.Body}, nil
}

// ErrUnexpectedAnswer means an answer that is not the one asked for.
var ErrUnexpectedAnswer = errors.New("unexpected answer")

type readCloser struct {
	io.Reader
	io.Closer
}

// Put sends r as a PUT with body, exactly n bytes, streamed and framed
// (framing.go): an object or, with uploadId and partNumber in r.Query, a
// part. A success is returned only when the store has received every byte.
//
// body is read until Put returns and never after: net/http may go on
// reading a request body after RoundTrip has returned (a store that
// answers early), while callers free what body reads from (a copy's
// source, its data key) as soon as Put returns. So Put waits for a read in
// progress, which the source's own timeouts bound (a client's body:
// S3SEAL_CLIENT_TIMEOUT; a copy's source read from the store: its
// timeout and resumes, minutes at most), and fences later ones.
// A fenced read fails the upload, and the transport then closes the
// connection the answer came on: so an answer other than a success comes
// back read, its body (at most maxPutAnswer bytes) in memory.
func (c *Client) Put(ctx context.Context, r Request, body io.Reader, n int64) (*http.Response, error) {
	framed := framedLength(n)
	sent := &fencedCounter{r: newChunkedBody(body, n)}
	defer sent.fence()
	r.Method = http.MethodPut
	if r.Header == nil {
		r.Header = http.Header{}
	}
	setFramingHeaders(r.Header, n)
	resp, err := c.Stream(ctx, r, sent, framed)
	switch {
	case err != nil:
		return nil, err
	case resp.StatusCode/100 != 2:
		return readAnswer(resp)
	case sent.sent() != framed:
		// The final chunk exists only once the source has ended cleanly,
		// so a store that answered before it did not get a valid body.
		resp.Body.Close()
		return nil, fmt.Errorf("store answered %d after %d of %d bytes: %w", resp.StatusCode, sent.sent(), framed, ErrUnexpectedAnswer)
	}
	return resp, nil
}

// maxPutAnswer bounds the body of a store's answer Put reads into memory,
// once per request in flight: twice what the proxy relays of an error
// document (64 KiB), so that a longer one is still seen to be too long and
// refused rather than relayed cut short.
const maxPutAnswer = 128 << 10

// readAnswer reads resp's body into memory.
func readAnswer(resp *http.Response) (*http.Response, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPutAnswer))
	if err != nil {
		return nil, fmt.Errorf("%w: reading its %d answer to a PUT: %w", ErrUnreachable, resp.StatusCode, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// errFenced is what the transport reads from a body after Put returned.
var errFenced = errors.New("store: request body read after its answer")

// fencedCounter counts the bytes its source yielded and, once fenced,
// passes no read to it. The transport reads it on its own goroutine.
type fencedCounter struct {
	mu     sync.Mutex // held through each read of r
	r      io.Reader
	n      atomic.Int64
	fenced bool
}

func (c *fencedCounter) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fenced {
		return 0, errFenced
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// sent is how many bytes the source has yielded so far.
func (c *fencedCounter) sent() int64 { return c.n.Load() }

// fence waits for a read in progress and refuses every later one.
func (c *fencedCounter) fence() {
	c.mu.Lock()
	c.fenced = true
	c.mu.Unlock()
}

// CreateUpload starts a multipart upload of o with headers h and returns
// the store's upload id and its answer (for its headers; the body is read).
func (c *Client) CreateUpload(ctx context.Context, o Object, h http.Header) (string, *http.Response, error) {
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, Bucket: o.Bucket, Key: o.Key, Query: url.Values{"uploads": {""}}, Header: o.header(h)})
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, &Failure{Resp: resp}
	}
	defer resp.Body.Close()
	var res struct {
		UploadID string `xml:"UploadId"`
	}
	if err := readXML(resp.Body, &res); err != nil || res.UploadID == "" {
		return "", nil, fmt.Errorf("CreateMultipartUpload answer without an UploadId (%v): %w", err, ErrUnexpectedAnswer)
	}
	return res.UploadID, resp, nil
}

// Part is a part of a multipart upload, as CompleteMultipartUpload lists it.
type Part struct {
	PartNumber int
	ETag       string
}

// Complete completes upload id of o with parts (number and ETag only) and
// returns the store's answer, whatever its status, for the caller to read.
func (c *Client) Complete(ctx context.Context, o Object, id string, parts []Part, h http.Header) (*http.Response, error) {
	doc, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUpload"`
		Parts   []Part   `xml:"Part"`
	}{Parts: parts})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	h = o.header(h)
	h.Set("Content-Type", "application/xml")
	return c.Do(ctx, Request{Method: http.MethodPost, Bucket: o.Bucket, Key: o.Key, Query: url.Values{"uploadId": {id}}, Header: h, Body: doc, SlowAnswer: true})
}

// Abort aborts upload id of o and returns the store's answer.
func (c *Client) Abort(ctx context.Context, o Object, id string, h http.Header) (*http.Response, error) {
	return c.Do(ctx, Request{Method: http.MethodDelete, Bucket: o.Bucket, Key: o.Key, Query: url.Values{"uploadId": {id}}, Header: o.header(h)})
}

// copyHeader is dst's headers plus h, and those that name src, pinned to
// srcETag, as a copy's source.
func copyHeader(dst, src Object, srcETag string, h http.Header) http.Header {
	h = dst.header(h)
	h.Set("X-Amz-Copy-Source", src.copySource())
	h.Set("X-Amz-Copy-Source-If-Match", srcETag)
	if v := src.Header.Get("X-Amz-Expected-Bucket-Owner"); v != "" {
		h.Set("X-Amz-Source-Expected-Bucket-Owner", v)
	}
	return h
}

// UploadPartCopy has the store copy stored bytes first..last of src,
// pinned to srcETag, into part k of upload id of dst, and returns the
// part's ETag. A store's error comes back as a *Failure.
func (c *Client) UploadPartCopy(ctx context.Context, dst Object, id string, k int, src Object, srcETag string, first, last int64) (string, error) {
	h := copyHeader(dst, src, srcETag, http.Header{"X-Amz-Copy-Source-Range": {fmt.Sprintf("bytes=%d-%d", first, last)}})
	q := url.Values{"uploadId": {id}, "partNumber": {strconv.Itoa(k)}}
	resp, err := c.Do(ctx, Request{Method: http.MethodPut, Bucket: dst.Bucket, Key: dst.Key, Query: q, Header: h, SlowAnswer: true})
	if err != nil {
		return "", err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusPreconditionFailed:
		resp.Body.Close()
		return "", ErrChanged
	default:
		return "", &Failure{Resp: resp}
	}
	defer resp.Body.Close()
	var res struct {
		XMLName xml.Name
		ETag    string
	}
	if err := readXML(resp.Body, &res); err != nil || res.XMLName.Local != "CopyPartResult" || res.ETag == "" {
		return "", fmt.Errorf("UploadPartCopy of part %d answered <%s> (%v): %w", k, res.XMLName.Local, err, ErrUnexpectedAnswer)
	}
	return res.ETag, nil
}

// CopyObject has the store copy src, pinned to srcETag, to dst with the
// headers h (the metadata directive among them), and returns its answer,
// whatever its status.
func (c *Client) CopyObject(ctx context.Context, dst, src Object, srcETag string, h http.Header) (*http.Response, error) {
	return c.Do(ctx, Request{Method: http.MethodPut, Bucket: dst.Bucket, Key: dst.Key, Header: copyHeader(dst, src, srcETag, h), SlowAnswer: true})
}

// PartsPage is one page of a store's ListParts answer.
type PartsPage struct {
	IsTruncated          bool
	NextPartNumberMarker string
	Parts                []struct {
		PartNumber int
		ETag       string
		Size       int64
	} `xml:"Part"`
}

// ListParts lists the parts of upload id of o after part marker.
func (c *Client) ListParts(ctx context.Context, o Object, id string, marker int) (PartsPage, error) {
	var page PartsPage
	q := url.Values{"uploadId": {id}}
	if marker > 0 {
		q.Set("part-number-marker", strconv.Itoa(marker))
	}
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Bucket: o.Bucket, Key: o.Key, Query: q, Header: o.header(nil)})
	if err != nil {
		return page, err
	}
	if resp.StatusCode != http.StatusOK {
		return page, &Failure{Resp: resp}
	}
	defer resp.Body.Close()
	if err := readXML(resp.Body, &page); err != nil {
		return page, fmt.Errorf("ListParts answer (%v): %w", err, ErrUnexpectedAnswer)
	}
	return page, nil
}

// maxXMLAnswer bounds the store's answers that are decoded whole: a
// ListParts page of 1,000 parts with checksums stays far below.
const maxXMLAnswer = 8 << 20

// readXML decodes a small XML answer.
func readXML(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxXMLAnswer+1))
	if err != nil {
		return err
	}
	if len(b) > maxXMLAnswer {
		return fmt.Errorf("answer longer than %d bytes", maxXMLAnswer)
	}
	return xml.Unmarshal(b, v)
}
