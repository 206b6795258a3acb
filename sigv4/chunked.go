package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
)

const (
	// maxChunkSize bounds one aws-chunked chunk. SDKs send 64 KiB (minio-go,
	// aws-sdk-go-v2) up to a few MiB; MinIO refuses more than 16 MiB too.
	// Chunks are streamed, not buffered, so this bounds how much unverified
	// data flows before a chunk signature is checked, not memory.
	maxChunkSize = 16 << 20
	// maxChunkLine bounds a chunk header line: hex size plus
	// ";chunk-signature=" and 64 hex digits need about 90 bytes.
	maxChunkLine = 4 << 10
	// maxTrailerSize bounds the trailer section after the final chunk.
	maxTrailerSize = 4 << 10
	// readBufferSize is the bufio size; large enough that chunk data is
	// mostly read straight into the caller's buffer.
	readBufferSize = 64 << 10

	trailerSignaturePrefix = "x-amz-trailer-signature:"
)

// chainSigner computes the chained chunk and trailer signatures: each one
// signs the previous, starting from the request (seed) signature. It runs
// once per chunk (64 KiB from most SDKs), so it keeps its buffers: a
// streamed body costs no allocation per chunk.
type chainSigner struct {
	key   []byte
	date  string // ISO 8601 basic request time
	scope string
	prev  []byte // hex signature of the previous chunk

	mac  hash.Hash // HMAC with key, reused
	msg  []byte    // the string to sign
	sum  [sha256.Size]byte
	want [2 * sha256.Size]byte // hex of sum
}

// next is the signature (hex) of the next link of the chain, valid until
// the next call.
func (c *chainSigner) next(alg string, hashes ...[]byte) []byte {
	if c.mac == nil {
		c.mac = hmac.New(sha256.New, c.key)
	}
	m := append(c.msg[:0], alg...)
	m = append(append(m, '\n'), c.date...)
	m = append(append(m, '\n'), c.scope...)
	m = append(append(m, '\n'), c.prev...)
	for _, h := range hashes {
		m = append(append(m, '\n'), h...)
	}
	c.msg = m
	c.mac.Reset()
	c.mac.Write(m)
	hex.Encode(c.want[:], c.mac.Sum(c.sum[:0]))
	return c.want[:]
}

// verify checks sig (hex, as sent; lower-cased in place) for the next link
// of the chain and advances the chain.
func (c *chainSigner) verify(sig []byte, alg string, hashes ...[]byte) bool {
	want := c.next(alg, hashes...)
	for i, b := range sig {
		if 'A' <= b && b <= 'Z' {
			sig[i] = b + ('a' - 'A')
		}
	}
	if !hmac.Equal(want, sig) {
		return false
	}
	c.prev = append(c.prev[:0], want...)
	return true
}

// chunkedReader decodes an aws-chunked body:
//
//	hex-size[;chunk-signature=sig]\r\n data \r\n ... 0[;chunk-signature=sig]\r\n
//	[trailer-name:value\r\n ...] [x-amz-trailer-signature:sig\r\n] \r\n
//
// Chunk data is streamed through, not buffered, so memory is constant
// whatever the chunk size; a chunk's signature is checked as its last byte
// is returned, together with that byte.
type chunkedReader struct {
	br            *bufio.Reader
	signer        *chainSigner // nil: chunks are unsigned
	signedTrailer bool
	trailerNames  []string // lowercase trailer names announced in x-amz-trailer

	trailers map[string]string

	remaining int64     // bytes left in the current chunk
	inChunk   bool      // between a chunk header and the end of its data
	chunkSig  []byte    // signature announced for the current chunk
	chunkHash hash.Hash // sha256 of the current chunk, if signed
	chunkSum  [sha256.Size]byte
	chunkHex  [2 * sha256.Size]byte
	err       error
}

func newChunkedReader(r io.Reader, signer *chainSigner, signedTrailer bool, trailerNames []string) *chunkedReader {
	c := &chunkedReader{
		br:            bufio.NewReaderSize(r, readBufferSize),
		signer:        signer,
		signedTrailer: signedTrailer,
		trailerNames:  trailerNames,
		trailers:      map[string]string{},
	}
	if signer != nil {
		c.chunkHash = sha256.New()
	}
	return c
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !c.inChunk {
		if c.err = c.readChunkHeader(); c.err != nil {
			return 0, c.err
		}
		if !c.inChunk { // final chunk and trailers done
			return 0, c.err
		}
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.br.Read(p)
	c.remaining -= int64(n)
	if c.chunkHash != nil {
		c.chunkHash.Write(p[:n])
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		c.err = errIncompleteBody(err)
		return n, c.err
	}
	if c.remaining == 0 {
		c.inChunk = false
		if c.err = c.endChunk(false); c.err != nil {
			return n, c.err
		}
	}
	return n, nil
}

// readChunkHeader parses "hex-size[;chunk-signature=sig]\r\n". On the final
// 0-size chunk it also reads and checks the trailer section and sets c.err
// to io.EOF.
func (c *chunkedReader) readChunkHeader() error {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		switch {
		case err == io.EOF:
			return errIncompleteBody(io.ErrUnexpectedEOF)
		case errors.Is(err, bufio.ErrBufferFull):
			return errMalformedEncoding(errors.New("chunk header line too long"))
		}
		return errIncompleteBody(err)
	}
	if len(line) > maxChunkLine {
		return errMalformedEncoding(errors.New("chunk header line too long"))
	}
	line, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return errMalformedEncoding(errors.New("chunk header line does not end with CRLF"))
	}
	sizeHex, ext, hasExt := bytes.Cut(line, []byte(";"))
	if c.signer != nil {
		sig, ok := bytes.CutPrefix(ext, []byte("chunk-signature="))
		if !hasExt || !ok || len(sig) != 2*sha256.Size {
			return errMalformedEncoding(errors.New("chunk header without a valid chunk-signature"))
		}
		c.chunkSig = append(c.chunkSig[:0], sig...)
	} else if hasExt {
		return errMalformedEncoding(errors.New("unexpected chunk extension in an unsigned chunk"))
	}
	size, err := parseChunkSize(sizeHex)
	if err != nil {
		return err
	}
	if size > 0 {
		c.remaining, c.inChunk = size, true
		return nil
	}
	if err := c.endChunk(true); err != nil {
		return err
	}
	if err := c.readTrailers(); err != nil {
		return err
	}
	return io.EOF
}

func parseChunkSize(h []byte) (int64, error) {
	if len(h) == 0 || len(h) > 8 {
		return 0, errMalformedEncoding(fmt.Errorf("invalid chunk size %q", h))
	}
	var n int64
	for _, b := range h {
		var d byte
		switch {
		case '0' <= b && b <= '9':
			d = b - '0'
		case 'a' <= b && b <= 'f':
			d = b - 'a' + 10
		case 'A' <= b && b <= 'F':
			d = b - 'A' + 10
		default:
			return 0, errMalformedEncoding(fmt.Errorf("invalid chunk size %q", h))
		}
		n = n<<4 | int64(d)
	}
	if n > maxChunkSize {
		return 0, newError(CodeInvalidRequest, http.StatusBadRequest,
			fmt.Sprintf("aws-chunked chunk of %d bytes is too big: chunks must be at most %d bytes.", n, maxChunkSize))
	}
	return n, nil
}

// endChunk checks the chunk signature and, after non-empty chunk data, the
// CRLF that ends it. The final chunk has no CRLF of its own: the trailer
// section follows its header line directly.
func (c *chunkedReader) endChunk(final bool) error {
	if c.signer != nil {
		hex.Encode(c.chunkHex[:], c.chunkHash.Sum(c.chunkSum[:0]))
		c.chunkHash.Reset()
		if !c.signer.verify(c.chunkSig, chunkAlgorithm, []byte(emptySHA256Hex), c.chunkHex[:]) {
			return errSignatureMismatch()
		}
	}
	if final {
		return nil
	}
	return c.readCRLF()
}

// readCRLF reads the CRLF after a chunk's data (peeked, not copied out: an
// array handed to io.ReadFull would be allocated for every chunk).
func (c *chunkedReader) readCRLF() error {
	crlf, err := c.br.Peek(2)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return errIncompleteBody(err)
	}
	if crlf[0] != '\r' || crlf[1] != '\n' {
		return errMalformedEncoding(errors.New("chunk data not followed by CRLF"))
	}
	_, err = c.br.Discard(2)
	return err
}

// readTrailers reads everything after the final chunk (bounded) and checks
// it: the announced trailers, each once, the trailer signature if signed,
// and a terminating empty line. Lines may end in LF or CRLF, as minio-go
// ends trailer lines with a bare LF.
func (c *chunkedReader) readTrailers() error {
	rest, err := io.ReadAll(io.LimitReader(c.br, maxTrailerSize+1))
	if err != nil {
		return errIncompleteBody(err)
	}
	if len(rest) > maxTrailerSize {
		return errMalformedEncoding(errors.New("trailer section too long"))
	}
	if len(rest) == 0 || rest[len(rest)-1] != '\n' {
		return errIncompleteBody(errors.New("trailer section not terminated"))
	}
	lines := strings.Split(string(rest[:len(rest)-1]), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	if lines[len(lines)-1] != "" {
		return errIncompleteBody(errors.New("trailer section not terminated by an empty line"))
	}
	var signed strings.Builder // canonical trailer lines, "name:value\n"
	var sig string
	haveSig := false
	for _, line := range lines {
		if line == "" {
			continue
		}
		if haveSig {
			return errMalformedEncoding(errors.New("data after the trailer signature"))
		}
		if c.signedTrailer {
			if s, ok := strings.CutPrefix(line, trailerSignaturePrefix); ok {
				sig, haveSig = strings.TrimSpace(s), true
				continue
			}
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || !containsString(c.trailerNames, name) {
			return errMalformedEncoding(fmt.Errorf("unexpected trailer %q", name))
		}
		if _, dup := c.trailers[name]; dup {
			return errMalformedEncoding(fmt.Errorf("duplicate trailer %q", name))
		}
		c.trailers[name] = strings.TrimSpace(value)
		signed.WriteString(line)
		signed.WriteByte('\n')
	}
	for _, name := range c.trailerNames {
		if _, ok := c.trailers[name]; !ok {
			return errIncompleteBody(fmt.Errorf("missing trailer %q", name))
		}
	}
	if c.signedTrailer {
		if !haveSig {
			return errIncompleteBody(errors.New("missing x-amz-trailer-signature"))
		}
		if !c.signer.verify([]byte(sig), trailerAlgorithm, []byte(sha256Hex(signed.String()))) {
			return errSignatureMismatch()
		}
	}
	return nil
}
