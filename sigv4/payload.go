package sigv4

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// PayloadMode is how the client protected the body, from x-amz-content-sha256.
type PayloadMode int

const (
	// PayloadUnsigned is UNSIGNED-PAYLOAD (and presigned URLs): the body is
	// not covered by the signature, only by Content-MD5 or checksums.
	PayloadUnsigned PayloadMode = iota + 1
	// PayloadSignedSHA256 is a hex SHA-256 of the body (an empty body is
	// e3b0c442…b855).
	PayloadSignedSHA256
	// PayloadStreaming is STREAMING-AWS4-HMAC-SHA256-PAYLOAD: aws-chunked
	// with a signature on every chunk.
	PayloadStreaming
	// PayloadStreamingUnsignedTrailer is STREAMING-UNSIGNED-PAYLOAD-TRAILER:
	// aws-chunked without signatures, optionally with a checksum trailer.
	PayloadStreamingUnsignedTrailer
	// PayloadStreamingSignedTrailer is
	// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: signed chunks plus a
	// signed trailer.
	PayloadStreamingSignedTrailer
)

const (
	unsignedPayload              = "UNSIGNED-PAYLOAD"
	streamingPayload             = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingUnsignedTrailer     = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingSignedTrailer       = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingECDSAPrefix         = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
	checksumHeaderPrefix         = "x-amz-checksum-"
	sdkChecksumAlgorithmHeader   = "X-Amz-Sdk-Checksum-Algorithm"
	decodedContentLengthHeader   = "X-Amz-Decoded-Content-Length"
	invalidContentSHA256Messsage = "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value."
)

func (m PayloadMode) String() string {
	switch m {
	case PayloadUnsigned:
		return unsignedPayload
	case PayloadSignedSHA256:
		return "SignedSHA256"
	case PayloadStreaming:
		return streamingPayload
	case PayloadStreamingUnsignedTrailer:
		return streamingUnsignedTrailer
	case PayloadStreamingSignedTrailer:
		return streamingSignedTrailer
	}
	return "PayloadMode(?)"
}

func (m PayloadMode) chunked() bool {
	return m == PayloadStreaming || m == PayloadStreamingUnsignedTrailer || m == PayloadStreamingSignedTrailer
}

func parsePayloadMode(v string) (PayloadMode, error) {
	switch v {
	case unsignedPayload:
		return PayloadUnsigned, nil
	case streamingPayload:
		return PayloadStreaming, nil
	case streamingUnsignedTrailer:
		return PayloadStreamingUnsignedTrailer, nil
	case streamingSignedTrailer:
		return PayloadStreamingSignedTrailer, nil
	}
	if strings.HasPrefix(v, streamingECDSAPrefix) {
		return 0, newError(CodeInvalidRequest, http.StatusBadRequest,
			"SigV4a (ECDSA) streaming payloads are not supported. Please use AWS4-HMAC-SHA256.")
	}
	if b, err := hex.DecodeString(v); err != nil || len(b) != sha256.Size {
		return 0, newError(CodeInvalidArgument, http.StatusBadRequest, invalidContentSHA256Messsage)
	}
	return PayloadSignedSHA256, nil
}

// decodeChecksum parses a base64 checksum value of algo.
func decodeChecksum(algo, v string) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	return b, err == nil && len(b) == envelope.ChecksumSize(algo)
}

// checksumPlan is what the body reader must verify beyond the signature.
type checksumPlan struct {
	algo      string // "" if no checksum requested
	want      []byte // checksum from the header; nil if from the trailer or not given
	trailer   string // lowercase trailer name carrying the checksum, if any
	md5       []byte // Content-MD5, if given
	trailered bool
}

func invalidRequest(msg string) *Error {
	return newError(CodeInvalidRequest, http.StatusBadRequest, msg)
}

// planChecksums reads Content-MD5, x-amz-checksum-*, x-amz-trailer and
// x-amz-sdk-checksum-algorithm and decides what to compute, and nothing more:
// hashing every byte is not free.
func planChecksums(h http.Header, mode PayloadMode) (checksumPlan, error) {
	var p checksumPlan
	if vals, ok := h["Content-Md5"]; ok {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.Join(vals, "")))
		if err != nil || len(b) != md5.Size || len(vals) != 1 {
			return p, wrapError(CodeInvalidDigest, http.StatusBadRequest, "The Content-MD5 you specified is not valid.", err)
		}
		p.md5 = b
	}
	for _, algo := range envelope.ChecksumAlgorithms {
		name := checksumHeaderPrefix + strings.ToLower(algo)
		v := h.Get(name)
		if v == "" {
			continue
		}
		if p.algo != "" {
			return p, invalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		b, ok := decodeChecksum(algo, v)
		if !ok {
			return p, invalidRequest("Value for " + name + " header is invalid.")
		}
		p.algo, p.want = algo, b
	}
	var trailers []string
	for _, v := range h.Values("X-Amz-Trailer") {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
				trailers = append(trailers, t)
			}
		}
	}
	if len(trailers) > 0 {
		if mode != PayloadStreamingUnsignedTrailer && mode != PayloadStreamingSignedTrailer {
			return p, invalidRequest("The x-amz-trailer header is only allowed with STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER payloads.")
		}
		if len(trailers) > 1 || p.algo != "" {
			return p, invalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		algo := strings.ToUpper(strings.TrimPrefix(trailers[0], checksumHeaderPrefix))
		if !strings.HasPrefix(trailers[0], checksumHeaderPrefix) || envelope.ChecksumSize(algo) == 0 {
			return p, invalidRequest("The value specified in the x-amz-trailer header is not supported")
		}
		p.algo, p.trailer, p.trailered = algo, trailers[0], true
	}
	if sdk := h.Get(sdkChecksumAlgorithmHeader); sdk != "" {
		sdk = strings.ToUpper(strings.TrimSpace(sdk))
		switch {
		case envelope.ChecksumSize(sdk) == 0:
			return p, invalidRequest("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
		case p.algo != "" && p.algo != sdk:
			return p, invalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")
		case p.algo == "":
			// The client asks for a checksum without giving one: compute
			// it so the proxy can report it, as S3 would.
			p.algo = sdk
		}
	}
	return p, nil
}
