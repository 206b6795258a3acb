package kmsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/s3seal/s3seal/envelope/keyring"
)

// targetPrefix is the X-Amz-Target prefix of every KMS operation.
const targetPrefix = "TrentService."

// unknownOp is the operation name requests for no operation are counted under.
const unknownOp = "Unknown"

// handler serves the KMS API; see New.
type handler struct {
	cfg  Config
	ring *keyring.Keyring
	log  *slog.Logger
	now  func() time.Time
	ops  map[string]operation
}

func newHandler(cfg Config) *handler {
	h := &handler{cfg: cfg, ring: cfg.Keyring, log: cfg.Logger, now: cfg.Now}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.ops = operations()
	return h
}

// call is one request in flight: who made it, and what it acted on, for
// the authorization hook and the log.
type call struct {
	h         *handler
	ctx       context.Context
	op        string
	accessKey string
	principal string
	keys      []string // canonical ids of the keys it named, in order
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	c := &call{h: h, ctx: r.Context(), op: unknownOp}
	name, prefixed := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	op, known := h.ops[name]
	known = known && prefixed
	if known {
		c.op = name // only known names: the log and metrics labels stay bounded
	}
	out, err := h.serve(c, r, op, known)
	id := requestID()
	if err != nil {
		writeError(w, id, asAPIError(err))
	} else {
		writeOutput(w, id, out)
	}
	h.finish(c, id, err, h.now().Sub(start))
}

// serve authenticates the request and runs op.
func (h *handler) serve(c *call, r *http.Request, op operation, known bool) (any, error) {
	if err := checkRoute(r); err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	defer clear(body) // it may hold plaintext, in base64
	if c.accessKey, err = h.authenticate(r, body); err != nil {
		return nil, err
	}
	if !known {
		return nil, newError(errUnknownOperation, "the X-Amz-Target header names no operation of this service")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != contentType {
		return nil, newError(errSerialization, "Content-Type must be application/x-amz-json-1.1")
	}
	out, err := op.run(c, body)
	if err == nil && op.writes && h.cfg.Changed != nil {
		h.cfg.Changed()
	}
	return out, err
}

// checkRoute accepts only what the KMS JSON protocol sends: POST /.
func checkRoute(r *http.Request) error {
	if r.URL.Path != "/" {
		return &apiError{Type: errUnknownOperation, Status: http.StatusNotFound, Message: "the KMS API is served at /"}
	}
	if r.Method != http.MethodPost {
		return &apiError{Type: errUnknownOperation, Status: http.StatusMethodNotAllowed, Message: "the KMS API takes POST requests only"}
	}
	return nil
}

// finish logs the request and tells the observer. It logs names and
// results, never a request's or a response's body.
func (h *handler) finish(c *call, id string, err error, d time.Duration) {
	result, level := "ok", slog.LevelInfo
	attrs := []slog.Attr{
		slog.String("request_id", id), slog.String("op", c.op),
		slog.String("access_key", c.accessKey), slog.String("principal", c.principal),
		slog.Any("keys", c.keys),
	}
	if err != nil {
		ae := asAPIError(err)
		result = ae.Type
		if ae.Status >= 500 {
			level = slog.LevelError
		}
		if ae.cause != nil {
			attrs = append(attrs, slog.String("cause", ae.cause.Error()))
		}
	}
	attrs = append(attrs, slog.String("result", result), slog.Duration("duration", d))
	h.log.LogAttrs(c.ctx, level, "kms request", attrs...)
	if h.cfg.Observer != nil {
		h.cfg.Observer(c.op, result, d)
	}
}

// requestID returns a fresh id for x-amzn-RequestId.
func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
