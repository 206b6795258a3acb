package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/store"
	"github.com/s3seal/s3seal/sigv4"
)

// S3's limits for one body.
const (
	maxPutObjectSize = 5 << 30
	maxPartSize      = 5 << 30
)

// putObject encrypts the client's body as it streams to the store.
//
// The body is never buffered and a PUT is never retried: the upstream request
// declares the exact ciphertext length, and the EncryptReader seals the final
// chunk only after the client's body has ended cleanly and passed every
// signature and checksum check. A body that fails (bad chunk signature,
// checksum mismatch, client gone) therefore aborts the upstream request short
// of its Content-Length, and the store writes nothing.
func (p *Proxy) putObject(x *exchange) error {
	w, r, t, req := x.w, x.r, x.t, x.verified
	if err := checkBodySize(req.ContentLength, maxPutObjectSize, "object"); err != nil {
		return err
	}
	if err := p.checkDestination(x); err != nil {
		return err
	}
	keys, err := p.writeKeys(x)
	if err != nil {
		return err
	}
	dk, meta, err := keys.New(r.Context(), t.bucket, t.key)
	if err != nil {
		return err
	}
	defer clear(dk)
	if meta.Checksum, err = sealClientChecksum(x, dk); err != nil {
		return err
	}
	put := x.written().Request(http.MethodPut, nil, objectWriteHeader(t.header, meta))
	resp, err := p.putEncrypted(x, put, clientBody{req.Body}, req.ContentLength, dk, 1, nil)
	if resp == nil {
		return err // NoSuchBucket, PreconditionFailed, ... relayed
	}
	defer resp.Body.Close()
	h := w.Header()
	copyHeaders(h, resp.Header, "etag", "x-amz-version-id", "x-amz-expiration")
	setEncryptionHeaders(h, meta)
	setContextHeader(h, meta)
	if req.Checksum != "" {
		h.Set("X-Amz-Checksum-"+req.Checksum, req.ChecksumValue())
		h.Set("X-Amz-Checksum-Type", envelope.ChecksumFullObject) // as S3 answers a PutObject's
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(resp.StatusCode)
	return nil
}

// sealClientChecksum is the client's checksum of the body, sealed under
// the object's data key for its metadata (FORMAT.md §6.2), or nil. Only a
// checksum the client gives before the body can be kept: the store takes
// the metadata before the body, and a trailer's value comes after it. It
// is exactly the value the verifier checks the body against, stored before
// that check, which is sound because a body that fails it leaves nothing
// stored (putObject).
func sealClientChecksum(x *exchange, dk []byte) ([]byte, error) {
	algo, v := x.verified.Checksum, x.verified.ExpectedChecksum()
	if algo == "" || v == "" {
		return nil, nil
	}
	c, err := envelope.NewChecksum(algo, v)
	if err != nil {
		return nil, errInternal(err) // the verifier accepted it: cannot happen
	}
	sealed, err := envelope.SealChecksum(dk, c)
	if err != nil {
		return nil, errInternal(err)
	}
	return sealed, nil
}

// checkBodySize refuses a body of unknown size, or one over max (S3's limit
// for one what: object or part).
func checkBodySize(size, max int64, what string) error {
	switch {
	case size < 0:
		return newS3Error("MissingContentLength", http.StatusLengthRequired,
			"You must provide the Content-Length HTTP header.", nil)
	case size > max:
		return newS3Error("EntityTooLarge", http.StatusBadRequest,
			"Your proposed upload exceeds the maximum allowed "+what+" size.", nil)
	}
	return nil
}

// putEncrypted PUTs src, exactly size plaintext bytes, encrypted as segment
// part under dk (FramingV2 with rec's record, FramingV1 when rec is nil),
// as r (an object, or a part with its query), and returns the
// store's 2xx answer; any other answer is relayed to the client, and a nil
// answer returned. The EncryptReader seals the final chunk only once src has
// ended cleanly, so a failing src cuts the upstream body short and the store
// keeps nothing; src's error is then the one returned (wrap a client's body
// in clientBody so its failures are the client's).
func (p *Proxy) putEncrypted(x *exchange, r store.Request, src io.Reader, size int64, dk []byte, part uint32, pr *partRecorder) (*http.Response, error) {
	ctx := x.r.Context()
	rec := &readRecorder{r: pr.wrap(src)}
	clock := clockFor(ctx, dirEncrypt)
	var enc *envelope.EncryptReader
	var err error
	if pr != nil {
		enc, err = envelope.NewRecordEncryptReader(clock.source(rec), dk, part, size, pr.record)
	} else {
		enc, err = envelope.NewEncryptReader(clock.source(rec), dk, part, size)
	}
	if err != nil {
		return nil, errInternal(err)
	}
	resp, err := p.store.Put(ctx, r, clock.cipher(enc), envelope.SegmentSize(size))
	switch rerr := rec.failed(); {
	case rerr != nil:
		if err == nil {
			resp.Body.Close()
		}
		return nil, rerr
	case err != nil:
		return nil, err
	case resp.StatusCode/100 != 2:
		defer resp.Body.Close()
		return nil, p.relayStoreError(x, resp)
	}
	return resp, nil
}

// setEncryptionHeaders says what SSE-KMS says: the object is encrypted under
// a KMS key (m's, when known). SDKs that check a PUT's ETag against the
// body's MD5 skip that check for SSE-KMS objects, whose ETags are not MD5s
// of the plaintext.
func setEncryptionHeaders(h http.Header, m envelope.Metadata) {
	h.Set("X-Amz-Server-Side-Encryption", "aws:kms")
	if m.KeyID != "" {
		h.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", m.KeyID)
	}
	if len(m.BucketKeySalt) > 0 {
		h.Set("X-Amz-Server-Side-Encryption-Bucket-Key-Enabled", "true")
	}
}

// setContextHeader answers an object's encryption context, as S3 does on
// the writes that set it. Reads answer it only once the data key has been
// unwrapped under it: the store's metadata says it, and a HEAD checks
// nothing.
func setContextHeader(h http.Header, m envelope.Metadata) {
	if len(m.Context) > 0 {
		h.Set("X-Amz-Server-Side-Encryption-Context", envelope.EncodeContext(m.Context))
	}
}

// readRecorder remembers the first error its source returned: a failed
// upstream PUT is then told apart as a source that failed (a client body
// failing verification, a copy source failing authentication) or a store
// that failed. The transport reads bodies on its own goroutine, hence the
// lock.
type readRecorder struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF {
		rr.mu.Lock()
		if rr.err == nil {
			rr.err = err
		}
		rr.mu.Unlock()
	}
	return n, err
}

// failed is the first error the source returned, if any.
func (rr *readRecorder) failed() error {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.err
}

// clientBody reports a client body's failures as the client's.
type clientBody struct{ r io.Reader }

func (c clientBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = clientBodyError(err)
	}
	return n, err
}

// clientBodyError explains a failed read of a client's verified body: its
// own S3 error (a bad chunk signature or checksum), a client gone, or a
// body that ended early.
func clientBodyError(err error) error {
	var ve *sigv4.Error
	var se *s3Error // a form's file that is not its last field (postform.go)
	switch {
	case errors.As(err, &ve):
		return ve
	case errors.As(err, &se):
		return se
	case errors.Is(err, context.Canceled):
		return err
	}
	return newS3Error(sigv4.CodeIncompleteBody, http.StatusBadRequest,
		"The request body ended before its declared length.", err)
}
