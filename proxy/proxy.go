// Package proxy is s3seal's S3 request handler: it authenticates clients,
// encrypts object bodies on PutObject and UploadPart, decrypts them on
// GetObject (whole, ranged, by part), rewrites listed sizes to plaintext
// sizes, copies objects by re-wrapping their data keys, refuses what it
// cannot do safely and passes every other request through to the store,
// re-signed with the store's own credential.
package proxy

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/s3seal/s3seal/internal/store"
	"github.com/s3seal/s3seal/sigv4"
)

// Authenticator verifies client requests; *sigv4.Verifier implements it.
type Authenticator interface {
	Verify(r *http.Request) (*sigv4.Request, error)
}

// Config configures a Proxy.
type Config struct {
	// Upstream is the store's endpoint, e.g. http://127.0.0.1:9000. Requests
	// are sent to it path-style.
	Upstream                                             *url.URL
	UpstreamAccessKey, UpstreamSecretKey, UpstreamRegion string // region "" means us-east-1
	// Transport sends upstream requests; nil means a clone of
	// http.DefaultTransport tuned for one busy store.
	Transport http.RoundTripper
	// UpstreamTimeout, when more than 0, is the longest an upstream
	// request may make no progress (store.Config.Timeout).
	UpstreamTimeout time.Duration
	Auth            Authenticator
	// Keys makes and opens data keys: its KeyService (normally a
	// *kms.Cache) and the CMK for new objects. Its BucketKeys, when set,
	// derive the data keys of new single-request objects (PutObject, POST)
	// that use bucket keys: those whose request says
	// x-amz-server-side-encryption-bucket-key-enabled: true, else whose
	// bucket's encryption setting says BucketKeyEnabled, else, with
	// BucketKeysByDefault, all others. Nil: none do.
	Keys                kms.ObjectKeys
	BucketKeysByDefault bool
	// Domain, when set, also accepts virtual-hosted-style requests for
	// <bucket>.<Domain>.
	Domain string
	// AllowPlaintextReads serves objects without s3seal metadata as they are
	// stored. By default they are refused: s3seal cannot vouch for them.
	AllowPlaintextReads bool
	// StoreMarksMultipartETags says the store ends every multipart object's
	// ETag with "-N" (the embedded store does), so an ETag without one is a
	// single part. Otherwise s3seal learns it from the uploads it completes
	// and, until then, asks the store for part counts (object.go).
	StoreMarksMultipartETags bool
	// MinPartSize is the smallest plaintext part but the last that
	// CompleteMultipartUpload accepts (EntityTooSmall otherwise, as S3
	// answers); 0 means S3's 5 MiB. Only tests with small objects lower it.
	MinPartSize int64
	// Principals tells who signed each request and what they may do:
	// bucket grants are checked before anything is asked of the store, CMK
	// grants wherever a data key is made or opened (Keys.Grants must be
	// set). Nil: every authenticated client may do everything.
	Principals Principals
	Logger     *slog.Logger // nil means slog.Default()
	// Observer is told about requests, upstream calls and cipher work, for
	// metrics; nil means nobody.
	Observer Observer
	// MaxInflight, when more than 0, is how many authenticated requests
	// are served at once; one more is answered 503 SlowDown at once, not
	// queued, so that memory and connections to the store stay bounded
	// under overload.
	MaxInflight int
	// ClientTimeout, when more than 0, is the longest a client's request
	// body may make no progress before s3seal gives up on it (400
	// RequestTimeout, nothing written), and the longest one write of the
	// answer may wait on a client that reads none of it (the connection is
	// then cut); a POST form's fields, read before the client is
	// authenticated, must all arrive within it. The server needs
	// ReadHeaderTimeout for the headers themselves.
	ClientTimeout time.Duration
}

// Proxy is an http.Handler serving the S3 API.
type Proxy struct {
	store               *store.Client
	auth                Authenticator
	keys                kms.ObjectKeys
	domain              string
	allowPlaintext      bool
	log                 *slog.Logger
	layouts             *layoutCache    // multipart layouts for ranged reads
	counts              *partCounts     // what the store says of part counts
	settings            *bucketSettings // bucket encryption settings, briefly remembered
	bucketKeysByDefault bool
	obs                 Observer
	principals          Principals
	minPartSize         int64
	slots               chan struct{} // MaxInflight; nil: no limit
	clientTimeout       time.Duration
}

// New checks cfg and returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	switch {
	case cfg.Auth == nil:
		return nil, errors.New("proxy: an authenticator is required")
	case cfg.Keys.Keys == nil || cfg.Keys.KeyID == "":
		return nil, errors.New("proxy: a key service and a CMK id are required")
	case cfg.BucketKeysByDefault && cfg.Keys.BucketKeys == nil:
		return nil, errors.New("proxy: BucketKeysByDefault requires Keys.BucketKeys")
	case cfg.Principals != nil && !cfg.Keys.Grants:
		// Without it, a principal's CMK grants would never be consulted.
		return nil, errors.New("proxy: Principals requires Keys.Grants")
	}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	st, err := store.New(store.Config{
		Endpoint: cfg.Upstream, AccessKey: cfg.UpstreamAccessKey, SecretKey: cfg.UpstreamSecretKey,
		Region: cfg.UpstreamRegion, Transport: cfg.Transport, Timeout: cfg.UpstreamTimeout,
		Observe: func(ctx context.Context, d time.Duration) { obs.ObserveUpstream(opFrom(ctx), d) },
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: upstream: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Proxy{
		store:               st,
		auth:                cfg.Auth,
		keys:                cfg.Keys,
		domain:              strings.TrimSpace(cfg.Domain),
		allowPlaintext:      cfg.AllowPlaintextReads,
		log:                 log,
		layouts:             newLayoutCache(),
		counts:              newPartCounts(cfg.StoreMarksMultipartETags),
		settings:            newBucketSettings(),
		bucketKeysByDefault: cfg.BucketKeysByDefault,
		obs:                 obs,
		principals:          cfg.Principals,
		minPartSize:         cmp.Or(cfg.MinPartSize, defaultMinPartSize),
		slots:               newSlots(cfg.MaxInflight),
		clientTimeout:       cfg.ClientTimeout,
	}, nil
}

func newSlots(n int) chan struct{} {
	if n <= 0 {
		return nil
	}
	return make(chan struct{}, n)
}

// admit takes a slot (MaxInflight) for x, once it is authenticated:
// connections that never sign cannot crowd out those that do.
func (p *Proxy) admit(x *exchange) error {
	if p.slots == nil {
		return nil
	}
	select {
	case p.slots <- struct{}{}:
		x.admitted = true
		return nil
	default:
		return newS3Error("SlowDown", http.StatusServiceUnavailable,
			"Please reduce your request rate: s3seal is serving S3SEAL_MAX_INFLIGHT requests.", nil)
	}
}

func (p *Proxy) release() {
	if p.slots != nil {
		<-p.slots
	}
}

// ServeHTTP answers one S3 request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p.obs.InflightAdd(1)
	sw := newStatusWriter(w, p.clientTimeout)
	defer sw.finish()
	if r.ContentLength == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		// net/http sends 100 Continue only when a body is read, so an empty
		// one gets the final answer straight away. That is allowed, but
		// botocore (aws-cli 2.9) then misreads the next response on the
		// connection and waits out its read timeout: say Continue anyway.
		w.WriteHeader(http.StatusContinue)
	}
	ids := newRequestIDs()
	id := ids.request
	ids.set(sw.Header())
	t := classify(r, p.domain)
	// The operation and the cipher clocks ride in the context, so that
	// upstream.do and the cipher sites deep in the handlers can report.
	clocks := &cipherClocks{}
	r = r.WithContext(withObservation(r.Context(), t.op(), clocks))
	body := watchBody(w, r, p.clientTimeout)
	defer body.finish()
	x := &exchange{w: sw, r: r, t: t, id: id, ids: ids, clocks: clocks, body: body}

	defer func() {
		// x.t.key: a POST Object names its key in its form.
		attrs := []any{
			slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("op", t.op()), slog.String("bucket", t.bucket),
			slog.String("key", x.t.key), slog.Duration("duration", time.Since(start)),
		}
		if v := recover(); v != nil {
			// The response was aborted mid-body (http.ErrAbortHandler) or
			// something panicked: log it, then let net/http cut the
			// connection so the client never sees a complete-looking body.
			reason := any(x.abortErr)
			if x.abortErr == nil {
				reason = v
			}
			p.log.Warn("response aborted", append(attrs, slog.Int("status", sw.status), slog.Any("error", reason))...)
			p.observe(x, 0, start)
			panic(v)
		}
		p.log.Info("request", append(attrs, slog.Int("status", sw.status))...)
		status := sw.status
		if status == 0 {
			status = http.StatusOK // nothing written: net/http sends 200
		}
		p.observe(x, status, start)
	}()

	if err := body.explain(p.serve(x)); err != nil {
		if denied(err) {
			p.logDenied(x, err)
		}
		se := asS3Error(err)
		// Not SlowDown: under overload, a line per refusal would flood the log.
		if se.Status >= 500 && se.Status != http.StatusNotImplemented && se.Code != "SlowDown" {
			p.log.Error("request failed", slog.String("request_id", id), slog.String("code", se.Code), slog.Any("error", err))
		} else {
			p.log.Debug("request refused", slog.String("request_id", id), slog.String("code", se.Code), slog.Any("error", err))
		}
		if sw.status != 0 {
			// The answer is already under way: it can only be cut off.
			x.abort(err)
		}
		writeError(sw, r, se, ids)
	}
}

// exchange is one request being answered.
type exchange struct {
	w        *statusWriter
	r        *http.Request
	t        target
	id       string // the request id (ids.request), for logs
	ids      requestIDs
	verified *sigv4.Request // the authenticated request, set once verified
	// principal is who signed it, once authorized; nil without Principals.
	principal Principal
	doc       []byte // the verified request document (bodyDocument routes)
	// abortErr is why a response already under way was cut off, for the log.
	abortErr error
	clocks   *cipherClocks
	admitted bool      // holds one of MaxInflight's slots
	body     *idleBody // the client's body under ClientTimeout; nil: none
}

// observe reports a finished request (status 0: aborted).
func (p *Proxy) observe(x *exchange, status int, start time.Time) {
	x.clocks.report(p.obs)
	p.obs.ObserveRequest(x.t.op(), status, time.Since(start))
	p.obs.InflightAdd(-1)
}

// abort cuts off a response whose headers are out: net/http closes the
// connection, so the client sees a truncated body, never a complete-looking
// wrong one.
func (x *exchange) abort(err error) {
	x.abortErr = err
	panic(http.ErrAbortHandler)
}

func (p *Proxy) serve(x *exchange) error {
	defer func() {
		if x.admitted {
			p.release()
		}
	}()
	err := p.serveOp(x)
	var f *store.Failure
	if errors.As(err, &f) {
		// A store's answer to relay: 304, 412, 404, the store's errors.
		defer f.Resp.Body.Close()
		if x.w.status == 0 {
			return p.relayStoreError(x, f.Resp)
		}
	}
	return err
}

// serveOp authenticates the request, refuses what s3seal does not serve,
// verifies the body as the route says, and only then acts.
func (p *Proxy) serveOp(x *exchange) error {
	if err := checkRequestSize(x.r); err != nil {
		return err
	}
	if rt := x.t.route; rt != nil && rt.name == "PostObject" {
		// Authenticated by its form's policy, which only its body holds.
		return rt.serve(p, x)
	}
	req, err := p.auth.Verify(x.r)
	if err != nil {
		return err
	}
	defer req.Body.Close()
	x.verified = req
	if err := p.admit(x); err != nil {
		return err
	}
	rt := x.t.route
	if rt == nil {
		return errNotImplemented(x.t.refusal)
	}
	if err := checkName(x.t.bucket, x.t.key); err != nil {
		return err
	}
	if err := p.authorize(x); err != nil {
		return err
	}
	if err := checkHeaders(x.r.Method, x.t.header); err != nil {
		return err
	}
	if err := checkSSEHeaders(rt, x.t.header); err != nil {
		return err
	}
	if err := checkAttributesHeader(rt, x.t.header); err != nil {
		return err
	}
	if err := checkObjectChecksumHeader(rt, x.t.header); err != nil {
		return err
	}
	if err := x.readBody(); err != nil {
		return err
	}
	if rt.serve == nil {
		return p.passthrough(x)
	}
	return rt.serve(p, x)
}

// requestIDs name one request as S3 names its answers: x-amz-request-id,
// and x-amz-id-2, which error documents call HostId.
type requestIDs struct {
	request, host string
}

// newRequestIDs returns ids of S3's shapes: 16 uppercase hex digits, and
// base64 of 48 random bytes.
func newRequestIDs() requestIDs {
	var b [8 + 48]byte
	rand.Read(b[:])
	return requestIDs{request: strings.ToUpper(hex.EncodeToString(b[:8])), host: base64.StdEncoding.EncodeToString(b[8:])}
}

// set puts the ids in an answer's headers.
func (id requestIDs) set(h http.Header) {
	h.Set("X-Amz-Request-Id", id.request)
	h.Set("X-Amz-Id-2", id.host)
}

// statusWriter remembers the status written, for the log and to know whether
// an error can still be answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	// idle, when more than 0, bounds each write (ClientTimeout): a client
	// that takes none of the answer for that long is cut off, and does not
	// hold its request, its slot and a store connection without end. rc
	// is nil where the writer has no deadlines (a test recorder).
	idle time.Duration
	rc   *http.ResponseController
}

// writePiece is the most one write to a client may hold under one deadline
// (statusWriter.idle).
const writePiece = 64 << 10

// newStatusWriter wraps w, its writes bounded by idle when more than 0.
func newStatusWriter(w http.ResponseWriter, idle time.Duration) *statusWriter {
	s := &statusWriter{ResponseWriter: w, idle: idle}
	if idle > 0 {
		// No deadline until the first write (the answer may come long
		// after, at the end of a long upload); this also finds out whether
		// w has deadlines at all.
		rc := http.NewResponseController(w)
		if rc.SetWriteDeadline(time.Time{}) == nil {
			s.rc = rc
		}
	}
	return s
}

// finish gives what net/http does after the handler a bound of its own:
// it discards the rest of an unread request body (for up to the read
// deadline, ClientTimeout), then sends what it buffered of the answer. The
// last write's deadline would cut that; net/http clears it afterwards.
func (s *statusWriter) finish() {
	if s.rc != nil {
		s.rc.SetWriteDeadline(time.Now().Add(2 * s.idle))
	}
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if s.rc == nil {
		return s.ResponseWriter.Write(b)
	}
	// The deadline is per piece, so that it measures progress: a large
	// write to a client that reads slowly but steadily is never cut.
	var n int
	for len(b) > 0 {
		piece := b[:min(len(b), writePiece)]
		s.rc.SetWriteDeadline(time.Now().Add(s.idle))
		k, err := s.ResponseWriter.Write(piece)
		n += k
		if err != nil {
			return n, err
		}
		// Lifted between writes: over HTTP/2 the deadline is a timer that
		// resets the stream when it fires, write or not, and the next
		// piece may legitimately be long in coming (a slow store, a
		// resumed read).
		s.rc.SetWriteDeadline(time.Time{})
		b = b[k:]
	}
	return n, nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
