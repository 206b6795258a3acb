// Package store is s3seal's client for the S3 store it fronts. Every request
// s3seal sends is built here from what s3seal decided to send — nothing of a
// client's authentication, framing or checksums can leak through by
// accident — signed with the store's credential (minio-go's SigV4 signer, the
// one signer s3seal uses), and sent with a client that follows no redirect
// and decompresses nothing: bodies must arrive exactly as stored, under
// s3seal's size arithmetic.
//
// The typed calls say what s3seal asks of a store; Do sends anything else.
// An answer other than the success a call expects comes back as a *Failure
// holding the response, for the caller to relay or map.
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
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// Config configures a Client.
type Config struct {
	Endpoint             *url.URL // e.g. http://127.0.0.1:9000; requests are path-style
	AccessKey, SecretKey string
	Region               string // "" means us-east-1
	// Transport sends the requests; nil means a clone of
	// http.DefaultTransport tuned for one busy store.
	Transport http.RoundTripper
	// Observe, if set, is told how long each request took until its
	// answer's headers, with the request's context.
	Observe func(ctx context.Context, d time.Duration)
	// Timeout, when more than 0, cancels a request that makes no progress
	// for that long: no answer yet, or no body bytes sent or received
	// (stall.go). A transfer that keeps moving is never cut.
	Timeout time.Duration
}

// Client sends requests to one store. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	ak, sk  string
	region  string
	http    *http.Client
	observe func(context.Context, time.Duration)
	timeout time.Duration
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	u := cfg.Endpoint
	switch {
	case u == nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return nil, errors.New("store: the endpoint must be an http or https URL with a host")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("store: the endpoint URL must not have a query or fragment")
	case cfg.AccessKey == "" || cfg.SecretKey == "":
		return nil, errors.New("store: an access key and a secret key are required")
	}
	c := &Client{base: new(url.URL), ak: cfg.AccessKey, sk: cfg.SecretKey, region: cfg.Region, observe: cfg.Observe, timeout: cfg.Timeout}
	*c.base = *u
	if c.region == "" {
		c.region = "us-east-1"
	}
	rt := cfg.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 512, 256 // one store gets all the traffic
		t.DisableCompression = true
		rt = t
	}
	// No redirects: one would be followed with a signature for another URL,
	// and with a body already consumed.
	c.http = &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return c, nil
}

// Endpoint is the store's URL.
func (c *Client) Endpoint() *url.URL {
	u := *c.base
	return &u
}

// Request is one request to the store.
type Request struct {
	Method      string
	Bucket, Key string // either may be empty
	Query       url.Values
	Header      http.Header // owned by the request from now on
	Body        []byte      // a small document sent whole; nil: none
	// SlowAnswer says the store works before it answers (it copies data:
	// CompleteMultipartUpload, CopyObject, UploadPartCopy), so the wait for
	// its answer is bounded by 15 minutes, not Config.Timeout.
	SlowAnswer bool
}

// ErrUnreachable wraps a failure to get any answer from the store.
var ErrUnreachable = errors.New("store unreachable")

// Failure is an answer other than the success a call expected (404, 412,
// the store's errors, ...): the caller relays or maps it, and closes it.
type Failure struct{ Resp *http.Response }

func (f *Failure) Error() string { return fmt.Sprintf("store answered %d", f.Resp.StatusCode) }

// Do sends r and returns the store's answer, whatever its status.
func (c *Client) Do(ctx context.Context, r Request) (*http.Response, error) {
	r.Header.Del("X-Amz-Content-Sha256") // a document is sent as it is, never framed
	return c.Stream(ctx, r, bytes.NewReader(r.Body), int64(len(r.Body)))
}

// Stream sends r with body, exactly size bytes, streamed as it comes (r.Body
// is not sent), and returns the store's answer, whatever its status. The
// payload is sent unsigned; a body framed by the caller says so in r.Header
// (x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER).
func (c *Client) Stream(ctx context.Context, r Request, body io.Reader, size int64) (*http.Response, error) {
	if c.timeout <= 0 {
		req, err := c.newRequest(ctx, r, body, size)
		if err != nil {
			return nil, err
		}
		return c.send(req)
	}
	answer := c.timeout
	if r.SlowAnswer {
		answer = max(answer, slowAnswer)
	}
	// A document stays a *bytes.Reader, which the transport can resend on
	// a keep-alive connection the store had closed; sent at once, like no
	// body, it leaves the answer to wait for from the start.
	_, doc := body.(*bytes.Reader)
	streamed := size > 0 && !doc
	d := answer
	if streamed {
		d = c.timeout
	}
	ctx, w := watch(ctx, d, answer)
	if streamed {
		body = progress{body, w}
	}
	req, err := c.newRequest(ctx, r, body, size)
	if err != nil {
		w.stop()
		return nil, err
	}
	return c.sendWatched(ctx, req, w)
}

// unsignedPayload is sent as x-amz-content-sha256: hashing every byte of
// every body a second time would cost more than the encryption. minio-go's
// SignV4 signs whatever that header says (and, without it, signs
// UNSIGNED-PAYLOAD but sends no header, which MinIO then reads as the hash
// of an empty body), so it is always set explicitly.
const unsignedPayload = "UNSIGNED-PAYLOAD"

// newRequest builds r with body, exactly size bytes.
func (c *Client) newRequest(ctx context.Context, r Request, body io.Reader, size int64) (*http.Request, error) {
	path := strings.TrimSuffix(c.base.Path, "/") + "/"
	if r.Bucket != "" {
		path += r.Bucket
		if r.Key != "" {
			path += "/" + r.Key
		}
	}
	target := &url.URL{
		Scheme: c.base.Scheme,
		Host:   c.base.Host,
		Path:   path,
		// The signer canonicalizes the path with s3utils.EncodePath; sending
		// exactly that encoding keeps what is signed and what is sent equal
		// for keys with spaces, '+', '%', non-ASCII and the like.
		RawPath:  s3utils.EncodePath(path),
		RawQuery: strings.ReplaceAll(r.Query.Encode(), "+", "%20"),
	}
	if size == 0 {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, target.String(), body)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	req.URL = target // NewRequest re-parses the URL; keep the exact encoding
	req.ContentLength = size
	if r.Header != nil {
		req.Header = r.Header
	}
	if req.Header.Get("X-Amz-Content-Sha256") != streamingTrail {
		req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	}
	return req, nil
}

// send signs and sends req. Accept-Encoding is set after signing (the
// signer ignores it): identity keeps the transport from decompressing
// bodies, which would change their length.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	signed := signer.SignV4(*req, c.ak, c.sk, "", c.region)
	signed.Header.Set("Accept-Encoding", "identity")
	start := time.Now()
	resp, err := c.http.Do(signed)
	if c.observe != nil {
		c.observe(req.Context(), time.Since(start))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return resp, nil
}

// ErrorCode is the <Code> of an S3 error document, or "" for anything else.
func ErrorCode(doc []byte) string {
	var e struct {
		XMLName xml.Name `xml:"Error"`
		Code    string
	}
	if xml.Unmarshal(doc, &e) != nil {
		return ""
	}
	return e.Code
}
