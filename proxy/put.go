package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/s3seal/s3seal/envelope"
)

// maxPutObjectSize is S3's limit for a single PUT (5 GiB).
const maxPutObjectSize = 5 << 30

// putObject encrypts the client's body as it streams to the store.
//
// The body is never buffered and a PUT is never retried: the upstream request
// declares the exact ciphertext length, and the EncryptReader seals the final
// chunk only after the client's body has ended cleanly and passed every
// signature and checksum check. A body that fails (bad chunk signature,
// checksum mismatch, client gone) therefore aborts the upstream request short
// of its Content-Length, and the store writes nothing.
func (p *Proxy) putObject(x *exchange) error {
	w, r, t, req := x.w, x.r, x.t, x.req
	size := req.ContentLength
	switch {
	case size < 0:
		return newS3Error("MissingContentLength", http.StatusLengthRequired,
			"You must provide the Content-Length HTTP header.", nil)
	case size > maxPutObjectSize:
		return newS3Error("EntityTooLarge", http.StatusBadRequest,
			"Your proposed upload exceeds the maximum allowed object size.", nil)
	}

	dk, meta, err := p.keys.New(r.Context(), t.bucket, t.key)
	if err != nil {
		return err
	}
	defer clear(dk)

	header := http.Header{}
	copyHeaders(header, t.header, putObjectHeaders...)
	setContentEncoding(header, t.header)
	dropReserved(header)
	meta.SetHeader(header)

	resp, err := p.sendEncrypted(r.Context(), t.bucket, t.key, t.query, header, req.Body, true, size, dk, 1)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return relayFailure(x, resp) // NoSuchBucket, PreconditionFailed, ...
	}

	h := w.Header()
	copyHeaders(h, resp.Header, "etag", "x-amz-version-id", "x-amz-expiration")
	setEncryptionHeaders(h, meta.KeyID)
	if req.Checksum != "" {
		h.Set("X-Amz-Checksum-"+req.Checksum, req.ChecksumValue())
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(resp.StatusCode)
	return nil
}

// sendEncrypted PUTs src, exactly size plaintext bytes, encrypted as segment
// part under dk, to bucket/key?query, and returns the store's answer. A
// failing src (a client body that fails verification, or a copy source that
// fails authentication) cuts the upstream body short of its declared
// Content-Length, so the store keeps nothing; clientBody says whether src's
// errors are the client's (400s) or the store's (a copy source).
//
// A 2xx answer is returned only when the store received every byte.
func (p *Proxy) sendEncrypted(ctx context.Context, bucket, key string, query url.Values, header http.Header, src io.Reader, clientBody bool, size int64, dk []byte, part uint32) (*http.Response, error) {
	rec := &readRecorder{r: src}
	clock := clockFor(ctx, dirEncrypt)
	enc, err := envelope.NewEncryptReader(clock.source(rec), dk, part, size)
	if err != nil {
		return nil, errInternal(err)
	}
	stored := envelope.SegmentSize(size)
	framed := framedLength(stored)
	sent := &countingReader{r: newChunkedBody(clock.cipher(enc), stored)}
	setFramingHeaders(header, stored)
	upReq, err := p.up.newRequest(ctx, http.MethodPut, bucket, key, query, header, sent, framed)
	if err != nil {
		return nil, errInternal(err)
	}
	upReq.Header.Set("X-Amz-Content-Sha256", streamingTrail)
	resp, err := p.up.do(upReq)
	if err != nil {
		if rerr := rec.failed(); rerr != nil && !clientBody {
			return nil, rerr
		}
		return nil, rec.cause(err)
	}
	if resp.StatusCode/100 == 2 && (rec.failed() != nil || sent.n.Load() != framed) {
		// The final chunk exists only once the client's body was verified,
		// so a store that answered before receiving it all did not get a
		// valid object. Cannot happen with a store that honors the
		// framing; never confirm such a write.
		resp.Body.Close()
		return nil, errInternal(fmt.Errorf("store answered %d after %d of %d bytes", resp.StatusCode, sent.n.Load(), framed))
	}
	return resp, nil
}

// setEncryptionHeaders says what SSE-KMS says: the object is encrypted under
// a KMS key. SDKs that check a PUT's ETag against the body's MD5 skip that
// check for SSE-KMS objects, whose ETags are not MD5s of the plaintext.
func setEncryptionHeaders(h http.Header, keyID string) {
	h.Set("X-Amz-Server-Side-Encryption", "aws:kms")
	if keyID != "" {
		h.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", keyID)
	}
}

// countingReader counts the bytes its source yielded.
// The transport reads it on its own goroutine, which may still run when
// the response arrives, hence the atomic.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
