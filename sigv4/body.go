package sigv4

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"

	"github.com/s3seal/s3seal/envelope"
)

// body is the verifying reader handed out as Request.Body. It counts and
// hashes the decoded bytes and, at the end of the payload, checks them; a
// failure replaces io.EOF so that a consumer never sees a clean end of a bad
// body. Errors are sticky.
type body struct {
	src    io.Reader // decoded payload: the raw body or a chunkedReader
	closer io.Closer
	dec    *chunkedReader // nil unless aws-chunked

	n       int64
	wantLen int64 // -1 if unknown

	hashes   []hash.Hash // everything to feed, computed only when needed
	sha      hash.Hash   // payload SHA-256 to compare with wantSHA
	wantSHA  []byte
	md5      hash.Hash
	wantMD5  []byte
	checksum hash.Hash

	checksumAlgo  string
	wantChecksum  []byte
	trailerName   string
	checksumValue string // set once verified

	err error
}

// newBody prepares the verifying reader of r's body; h is r's header with
// the x-amz-* parameters a presigned URL signed in its query.
func newBody(r *http.Request, h http.Header, mode PayloadMode, payloadHash string, signer *chainSigner) (*body, error) {
	plan, err := planChecksums(h, mode)
	if err != nil {
		return nil, err
	}
	src := r.Body
	if src == nil {
		src = http.NoBody
	}
	b := &body{src: src, closer: src, wantLen: r.ContentLength}
	if r.ContentLength < 0 {
		b.wantLen = -1
	}
	if mode.chunked() {
		dl := h.Get(decodedContentLengthHeader)
		if dl == "" {
			return nil, newError(CodeMissingContentLength, http.StatusLengthRequired,
				"You must provide the x-amz-decoded-content-length header with aws-chunked payloads.")
		}
		n, err := strconv.ParseInt(dl, 10, 64)
		if err != nil || n < 0 {
			return nil, wrapError(CodeInvalidArgument, http.StatusBadRequest,
				"x-amz-decoded-content-length is not a valid length.", err)
		}
		b.wantLen = n
		if mode == PayloadStreamingUnsignedTrailer {
			signer = nil // chunks carry no signatures
		}
		var names []string
		if plan.trailer != "" {
			names = []string{plan.trailer}
		}
		b.dec = newChunkedReader(src, signer, mode == PayloadStreamingSignedTrailer, names)
		b.src = b.dec
	}
	if mode == PayloadSignedSHA256 {
		b.wantSHA, _ = hex.DecodeString(payloadHash)
		b.sha = sha256.New()
		b.hashes = append(b.hashes, b.sha)
	}
	if plan.md5 != nil {
		b.wantMD5 = plan.md5
		b.md5 = md5.New()
		b.hashes = append(b.hashes, b.md5)
	}
	if plan.algo != "" {
		b.checksumAlgo, b.wantChecksum, b.trailerName = plan.algo, plan.want, plan.trailer
		if plan.algo == "SHA256" && b.sha != nil {
			b.checksum = b.sha // same bytes, hash once
		} else {
			b.checksum = envelope.NewChecksumHash(plan.algo)
			b.hashes = append(b.hashes, b.checksum)
		}
	}
	return b, nil
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if n > 0 {
		b.n += int64(n)
		for _, h := range b.hashes {
			h.Write(p[:n])
		}
		if b.wantLen >= 0 && b.n > b.wantLen {
			b.err = errorf(CodeInvalidRequest, http.StatusBadRequest,
				"The body is longer than the %d bytes declared.", b.wantLen)
			return n, b.err
		}
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		b.err = b.finish()
	case errors.As(err, new(*Error)):
		b.err = err
	default:
		// The client went away or the HTTP framing ended early.
		b.err = errIncompleteBody(err)
	}
	return n, b.err
}

// finish runs the end-of-payload checks; it returns io.EOF if all pass.
func (b *body) finish() error {
	if b.wantLen >= 0 && b.n != b.wantLen {
		return errIncompleteBody(fmt.Errorf("got %d of %d bytes: %w", b.n, b.wantLen, io.ErrUnexpectedEOF))
	}
	if b.sha != nil && !bytes.Equal(b.sha.Sum(nil), b.wantSHA) {
		return newError(CodeXAmzContentSHA256Mismatch, http.StatusBadRequest,
			"The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	if b.md5 != nil && !bytes.Equal(b.md5.Sum(nil), b.wantMD5) {
		return newError(CodeBadDigest, http.StatusBadRequest,
			"The Content-MD5 you specified did not match what we received.")
	}
	if b.checksum == nil {
		return io.EOF
	}
	want := b.wantChecksum
	if b.trailerName != "" {
		var ok bool
		if want, ok = decodeChecksum(b.checksumAlgo, b.dec.trailers[b.trailerName]); !ok {
			return invalidRequest("Value for " + b.trailerName + " trailing header is invalid.")
		}
	}
	sum := b.checksum.Sum(nil)
	if want != nil && !bytes.Equal(sum, want) {
		return newError(CodeBadDigest, http.StatusBadRequest,
			"The "+b.checksumAlgo+" you specified did not match the calculated checksum.")
	}
	b.checksumValue = base64.StdEncoding.EncodeToString(sum)
	return io.EOF
}

func (b *body) Close() error { return b.closer.Close() }
