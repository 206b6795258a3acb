package proxy

// Checksums of multipart objects (FORMAT.md §3.4): an upload that declares a
// CRC algorithm is written in FramingV2, each part's checksum of its
// plaintext recorded in the part's own bytes, since the upload's metadata is
// fixed before any part exists. Reads that ask for checksums open the
// records under the data key and combine them as S3 does.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/sigv4"
)

// declaredChecksum reads CreateMultipartUpload's x-amz-checksum-algorithm
// and x-amz-checksum-type, checked as S3 checks them; "" for none.
func declaredChecksum(h http.Header) (algorithm, typ string, err error) {
	algorithm = strings.ToUpper(strings.TrimSpace(h.Get("X-Amz-Checksum-Algorithm")))
	typ = strings.ToUpper(strings.TrimSpace(h.Get("X-Amz-Checksum-Type")))
	switch {
	case algorithm == "" && typ != "":
		return "", "", invalidChecksumRequest("The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.")
	case algorithm == "":
		return "", "", nil
	case envelope.NewChecksumHash(algorithm) == nil:
		return "", "", invalidChecksumRequest("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
	case typ == "":
		typ = envelope.DefaultChecksumType(algorithm)
	case typ != envelope.ChecksumFullObject && typ != envelope.ChecksumComposite:
		return "", "", invalidChecksumRequest("Value for x-amz-checksum-type header is invalid.")
	case !envelope.ChecksumTypeAllowed(algorithm, typ):
		return "", "", invalidChecksumRequest(fmt.Sprintf("The %s checksum type cannot be used with the %s checksum algorithm.", typ, strings.ToLower(algorithm)))
	}
	return algorithm, typ, nil
}

func invalidChecksumRequest(msg string) *s3Error {
	return newS3Error("InvalidRequest", http.StatusBadRequest, msg, nil)
}

// declare makes meta that of an upload declaring algorithm and typ: a CRC
// is recorded per part (FramingV2); SHA1 and SHA256, which no record holds,
// are checked per part but not kept (FramingV1).
func declare(meta *envelope.Metadata, algorithm, typ string) {
	if envelope.RecordAlgorithm(algorithm) {
		meta.Framing, meta.PartAlgorithm, meta.PartType = envelope.FramingV2, algorithm, typ
	}
}

// partRecorder computes a FramingV2 part's checksum over its plaintext as
// it flows: the client's, verified by sigv4, when it sent one of the
// upload's algorithm, else s3seal's own.
type partRecorder struct {
	meta   envelope.Metadata
	client *sigv4.Request // nil: hash computes it
	hash   hash.Hash
	value  []byte // once the part has been read
}

// newPartRecorder is the recorder of a part of an upload of meta, whose
// client request is req (nil for UploadPartCopy); nil for FramingV1. A part
// whose client checksum is of another algorithm is refused, as on S3.
func newPartRecorder(meta envelope.Metadata, req *sigv4.Request) (*partRecorder, error) {
	if meta.Framing != envelope.FramingV2 {
		return nil, nil
	}
	r := &partRecorder{meta: meta}
	switch {
	case req != nil && req.Checksum == meta.PartAlgorithm:
		r.client = req
	case req != nil && req.Checksum != "":
		return nil, invalidChecksumRequest(fmt.Sprintf("Checksum Type mismatch occurred, expected checksum Type: %s, actual checksum Type: %s",
			strings.ToLower(meta.PartAlgorithm), strings.ToLower(req.Checksum)))
	default:
		r.hash = envelope.NewChecksumHash(meta.PartAlgorithm)
	}
	return r, nil
}

// wrap hashes src as it is read, when s3seal computes the checksum.
func (r *partRecorder) wrap(src io.Reader) io.Reader {
	if r == nil || r.hash == nil {
		return src
	}
	return io.TeeReader(src, r.hash)
}

// record is the part's record (envelope.RecordFunc): called once the
// plaintext has ended, when the client's checksum, if any, has verified.
func (r *partRecorder) record() (envelope.Checksum, error) {
	if r.client != nil {
		v, err := base64.StdEncoding.DecodeString(r.client.ChecksumValue())
		if err != nil || len(v) == 0 {
			return envelope.Checksum{}, errors.New("the client's checksum was not verified")
		}
		r.value = v
	} else {
		r.value = r.hash.Sum(nil)
	}
	return envelope.Checksum{Algorithm: r.meta.PartAlgorithm, Type: r.meta.PartType, Value: r.value}, nil
}

// setHeader answers the part's checksum, as S3 does on UploadPart.
func (r *partRecorder) setHeader(h http.Header) {
	if r != nil && r.value != nil {
		h.Set("X-Amz-Checksum-"+r.meta.PartAlgorithm, base64.StdEncoding.EncodeToString(r.value))
	}
}

// partRecords are the checksums the parts of a FramingV2 object hold in
// their records, and each part's stored header and record they were read
// from.
type partRecords struct {
	sums   []envelope.Checksum
	sealed [][]byte // part k's header ‖ record at k-1
}

// check is a DecryptReader's OnSegment: the header and record a part's
// chunks authenticate must be those its checksum was answered from, not an
// earlier upload of the part that a store kept (FORMAT.md §3.4).
func (r partRecords) check(part uint32, sealed []byte) error {
	if int(part) > len(r.sealed) || !bytes.Equal(sealed, r.sealed[part-1]) {
		return fmt.Errorf("part %d's record is not the one its checksum was answered from: %w", part, envelope.ErrAuthentication)
	}
	return nil
}

// recordsFingerprint names what the records of o open under: its wrapped
// data key and declared checksum. Cached records are used only for the
// same, so an ETag a store replays for another object reads that object's.
func recordsFingerprint(m envelope.Metadata) string {
	h := sha256.New()
	h.Write(m.WrappedKey)
	h.Write([]byte("\x00" + m.PartAlgorithm + "/" + m.PartType))
	return string(h.Sum(nil))
}

// partChecksums are the records of o, a FramingV2 object, opened under its
// data key dk. The records are found by o's layout; a guessed layout that
// places one wrongly, or sizes it wrongly, only fails its MAC, and the
// exact layout is fetched then. Each record is bound to its segment's
// header and size, the object's data key and the algorithm its metadata
// declares: a store can make this fail, never answer other values.
func (p *Proxy) partChecksums(ctx context.Context, o objRef, dk []byte) (partRecords, envelope.Layout, error) {
	k, fp := layoutKey(o.Bucket, o.Key, o.etag), recordsFingerprint(o.info.meta)
	l, exact, err := p.layout(ctx, o)
	if err != nil {
		return partRecords{}, l, err
	}
	if recs, ok := p.layouts.records(k, l, fp); ok {
		return recs, l, nil
	}
	recs, err := p.readRecords(ctx, o, l, dk)
	if errors.Is(err, envelope.ErrAuthentication) && !exact {
		if l, _, err = p.exactLayout(ctx, o); err == nil {
			recs, err = p.readRecords(ctx, o, l, dk)
		}
	}
	if err != nil {
		return partRecords{}, l, errCorrupt(fmt.Errorf("part records: %w", err))
	}
	p.layouts.putRecords(k, l, fp, recs)
	return recs, l, nil
}

// readRecords reads the record of every part of o under layout l. Part k's
// record ends where part k+1's header starts, so each stored read but the
// first gets a record and the next header: n+1 reads of 32 bytes at most.
func (p *Proxy) readRecords(ctx context.Context, o objRef, l envelope.Layout, dk []byte) (partRecords, error) {
	n := len(l.Parts)
	offs := l.StoredOffsets()
	hlen := int64(l.Framing.HeaderLen())
	windows := make([][]byte, n+1) // window i: record i (i ≥ 1) ‖ header i+1 (i < n)
	err := eachPart(ctx, n+1, func(ctx context.Context, i int) error {
		from, to := max(offs[i]-envelope.RecordSize, 0), min(offs[i]+hlen, offs[n])
		body, err := p.fetchStored(ctx, o, from, to-from)
		if err != nil {
			return err
		}
		defer body.Close()
		windows[i] = make([]byte, to-from)
		if _, err := io.ReadFull(body, windows[i]); err != nil {
			return fmt.Errorf("stored bytes %d+%d: %w: %w", from, to-from, envelope.ErrTruncated, err)
		}
		return nil
	})
	if err != nil {
		return partRecords{}, err
	}
	recs := partRecords{sums: make([]envelope.Checksum, n), sealed: make([][]byte, n)}
	for i := range n {
		header := windows[i][len(windows[i])-int(hlen):]
		record := windows[i+1][:envelope.RecordSize]
		recs.sealed[i] = append(bytes.Clone(header), record...)
		if recs.sums[i], err = envelope.OpenRecord(dk, header, record, uint32(i+1), l.Parts[i], o.info.meta.PartAlgorithm, o.info.meta.PartType); err != nil {
			return partRecords{}, err
		}
	}
	return recs, nil
}

// recordedChecksum is the checksum of o, a FramingV2 object, as S3 reports
// a multipart object's: its parts' combined (envelope.ObjectChecksum), and
// the records it came from. None when the store cannot say where the parts
// are (no partNumber reads).
func (p *Proxy) recordedChecksum(ctx context.Context, o objRef, dk []byte) (*envelope.Checksum, partRecords, error) {
	recs, l, err := p.partChecksums(ctx, o, dk)
	if errors.Is(err, errNoPartReads) {
		return nil, partRecords{}, nil
	}
	if err != nil {
		return nil, partRecords{}, err
	}
	c, err := envelope.ObjectChecksum(o.info.meta.PartType, recs.sums, l.Parts)
	if err != nil {
		return nil, partRecords{}, errCorrupt(err)
	}
	return &c, recs, nil
}

// checkObjectChecksumHeader refuses a CompleteMultipartUpload carrying a
// whole-object checksum (x-amz-checksum-<algorithm>), before its body is
// read (which would check the value against the XML): s3seal could check
// it only once the object exists, from the parts' records, and a Complete
// that fails must write nothing. The object's checksum is answered instead.
func checkObjectChecksumHeader(rt *route, h http.Header) error {
	if rt.name != "CompleteMultipartUpload" {
		return nil
	}
	trailer := strings.ToLower(strings.Join(h.Values("X-Amz-Trailer"), ","))
	for _, algorithm := range envelope.ChecksumAlgorithms {
		if h.Get("X-Amz-Checksum-"+algorithm) != "" || strings.Contains(trailer, "x-amz-checksum-") {
			return newS3Error("NotImplemented", http.StatusNotImplemented,
				"s3seal does not check a whole-object checksum sent with CompleteMultipartUpload; "+
					"it answers the object's checksum, computed from the parts' checksums that UploadPart verified.", nil)
		}
	}
	return nil
}

// checkCompleteChecksum checks that a CompleteMultipartUpload's checksum
// type, if it names one, is the upload's.
func checkCompleteChecksum(h http.Header, meta envelope.Metadata) error {
	switch typ := strings.ToUpper(strings.TrimSpace(h.Get("X-Amz-Checksum-Type"))); {
	case typ == "":
	case typ != envelope.ChecksumFullObject && typ != envelope.ChecksumComposite:
		return invalidChecksumRequest("Value for x-amz-checksum-type header is invalid.")
	case meta.Framing == envelope.FramingV2 && typ != meta.PartType:
		return invalidChecksumRequest(fmt.Sprintf("The upload was created using the %s checksum mode. The complete request must use the same checksum mode.", meta.PartType))
	}
	return nil
}

// completedChecksum is the checksum of the object a Complete of a FramingV2
// upload made, from its parts' records (which also fills the cache reads
// use); nil for another upload, or when the records cannot be read: the
// object is complete either way, and reads check them again.
func (p *Proxy) completedChecksum(x *exchange, done *completion, meta envelope.Metadata, l envelope.Layout, dk []byte) *envelope.Checksum {
	if meta.Framing != envelope.FramingV2 {
		return nil
	}
	o := objRef{Object: objectAt(x.t.bucket, x.t.key, done.header.Get("X-Amz-Version-Id"), x.t.header), etag: done.etag,
		info: objectInfo{meta: meta, stored: l.CiphertextSize(), size: l.PlaintextSize(), segments: len(l.Parts)}}
	c, _, err := p.recordedChecksum(x.r.Context(), o, dk)
	if err != nil {
		p.log.Warn("completed an upload whose part records s3seal cannot read back", slog.String("bucket", x.t.bucket),
			slog.String("key", x.t.key), slog.String("error", err.Error()))
	}
	return c
}
