package store

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
)

// Encrypted bodies go to the store framed as aws-chunked with a CRC32C
// trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER). A body s3seal cuts short —
// the client's failed verification, or went away — then ends without its
// final chunk, which a store cannot take for a complete body even if it
// keeps whatever arrived of an unframed one (versitygw does); and the
// trailer lets the store check the bytes it got. The final chunk and the
// trailer are sent only after the source has ended cleanly, which for an
// EncryptReader means after every check on the client's body passed.
const (
	frameChunk     = 64 << 10
	trailerName    = "x-amz-checksum-crc32c"
	streamingTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// framedLength is the length of n body bytes framed by a chunkedBody.
func framedLength(n int64) int64 {
	full, rest := n/frameChunk, n%frameChunk
	length := full * chunkFraming(frameChunk)
	if rest > 0 {
		length += chunkFraming(rest)
	}
	return length + int64(len(finalChunk(make([]byte, 4))))
}

// chunkFraming is the length of one framed chunk of n data bytes.
func chunkFraming(n int64) int64 {
	return int64(len(strconv.FormatInt(n, 16))) + 2 + n + 2
}

// finalChunk is the empty last chunk and the trailer carrying sum.
func finalChunk(sum []byte) string {
	return "0\r\n" + trailerName + ":" + base64.StdEncoding.EncodeToString(sum) + "\r\n\r\n"
}

// setFramingHeaders describes a chunkedBody of n body bytes to the store.
func setFramingHeaders(h http.Header, n int64) {
	enc := "aws-chunked"
	if v := h.Get("Content-Encoding"); v != "" {
		enc += "," + v
	}
	h.Set("Content-Encoding", enc)
	h.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(n, 10))
	h.Set("X-Amz-Trailer", trailerName)
	h.Set("X-Amz-Content-Sha256", streamingTrail)
}

// chunkedBody frames exactly n bytes of src. Data is read straight into the
// caller's buffer; only the framing is copied.
type chunkedBody struct {
	src     io.Reader
	left    int64  // body bytes not yet read from src
	inChunk int64  // data bytes left in the current chunk
	pending []byte // framing to send before more data
	// line holds the framing between two chunks: pending is sent whole
	// before it is set again, so one array serves every chunk without an
	// allocation per 64 KiB.
	line [24]byte
	crc  hash.Hash32
	done bool
}

func newChunkedBody(src io.Reader, n int64) *chunkedBody {
	return &chunkedBody{src: src, left: n, crc: crc32.New(castagnoli)}
}

// Read fills p with framing and data as far as the source yields them.
// The transport writes each Read to the store as it comes, so a Read that
// returned a chunk's framing alone (or a short tail of a sealed chunk) would
// cost a write and a TCP segment of a few bytes: about three per 64 KiB,
// more than the data's own.
func (c *chunkedBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := c.step(p[n:])
		n += m
		switch {
		case err == io.EOF && n > 0:
			return n, nil // EOF on the next Read
		case err != nil:
			return n, err
		case m == 0:
			return n, nil // a source that returned nothing: do not spin
		}
	}
	return n, nil
}

// step yields framing or data, whichever comes next.
func (c *chunkedBody) step(p []byte) (int, error) {
	for {
		switch {
		case len(c.pending) > 0:
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		case c.done:
			return 0, io.EOF
		case c.inChunk > 0:
			return c.readData(p)
		case c.left > 0:
			c.inChunk = min(frameChunk, c.left)
			c.pending = append(strconv.AppendInt(c.line[:0], c.inChunk, 16), '\r', '\n')
		default:
			if err := c.finish(); err != nil {
				return 0, err
			}
		}
	}
}

// readData reads data of the current chunk into p.
func (c *chunkedBody) readData(p []byte) (int, error) {
	n, err := c.src.Read(p[:min(int64(len(p)), c.inChunk)])
	c.crc.Write(p[:n])
	c.inChunk -= int64(n)
	c.left -= int64(n)
	if c.inChunk == 0 {
		c.pending = append(c.line[:0], '\r', '\n')
	}
	switch {
	case err == io.EOF && c.left > 0:
		return n, fmt.Errorf("body ended %d bytes short: %w", c.left, io.ErrUnexpectedEOF)
	case err != nil && err != io.EOF:
		return n, err
	}
	return n, nil
}

// finish sends the final chunk once the source has ended cleanly: for an
// EncryptReader, once every check on the client's body has passed.
func (c *chunkedBody) finish() error {
	var one [1]byte
	n, err := c.src.Read(one[:])
	for tries := 0; n == 0 && err == nil && tries < 100; tries++ {
		n, err = c.src.Read(one[:]) // a Reader may return 0, nil now and then
	}
	switch {
	case n > 0:
		return fmt.Errorf("body longer than declared: %w", errBodyFraming)
	case err == nil:
		return fmt.Errorf("body source does not end: %w", errBodyFraming)
	case err != io.EOF:
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], c.crc.Sum32())
	c.pending, c.done = []byte(finalChunk(sum[:])), true
	return nil
}

var errBodyFraming = errors.New("encrypted body framing")
