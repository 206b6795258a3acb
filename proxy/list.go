package proxy

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// listObjects serves ListObjects (v1, v2) and ListObjectVersions: the store's
// listing with every row's <Size> turned into the plaintext size.
//
// A row's plaintext size follows from its stored size and its part count:
// the "-N" of its ETag, or, for an ETag without one on a store not known to
// mark multipart ETags, the count the store gives when asked (object.go),
// so a row is exact or keeps its stored size — never a guessed size. A row
// whose stored size no s3seal object can have, or whose part count the
// store will not give, keeps its stored size. That is the honest answer: it
// is exactly what the store holds and what a plaintext read
// (AllowPlaintextReads) serves, and reads of it are refused otherwise.
// Failing the whole listing would make a bucket unlistable because of one
// foreign object; dropping the row would hide it; inventing a size would be
// a lie. (A foreign object whose stored size happens to be a valid s3seal
// size shows a smaller size: a listing row carries no metadata to tell the
// two apart.)
func (p *Proxy) listObjects(x *exchange) error {
	header := http.Header{}
	copyHeaders(header, x.t.header, "x-amz-expected-bucket-owner", "x-amz-request-payer", "x-amz-optional-object-attributes")
	resp, err := p.expect(x, http.StatusOK, http.MethodGet, x.t.bucket, "", x.t.query, header)
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	row := "Contents"
	if x.t.route.sub == "versions" {
		row = "Version"
	}
	root := map[string]string{"Contents": "ListBucketResult", "Version": "ListVersionsResult"}[row]
	src, err := startXMLAnswer(x, resp, root)
	if err != nil {
		return err
	}

	foreign, err := rewriteListing(x.w, src, row, func(r listedRow) (int64, error) {
		return p.rowSize(x, r)
	})
	if err != nil {
		x.abort(fmt.Errorf("rewriting listing: %w", err))
	}
	if foreign > 0 {
		p.log.Warn("listing rows with sizes no s3seal object can have; stored sizes reported",
			slog.String("request_id", x.id), slog.String("bucket", x.t.bucket), slog.Int("rows", foreign))
	}
	return nil
}

// listedRow is what a listing row says of an object.
type listedRow struct {
	key, versionID, etag string
	stored               int64
}

// rowSize is a listed object's plaintext size (see listObjects).
func (p *Proxy) rowSize(x *exchange, r listedRow) (int64, error) {
	n, marked := etagCount(r.etag)
	if !marked && p.counts.marked.Load() != etagsMarked {
		key := r.key
		if x.t.query.Get("encoding-type") == "url" {
			var err error
			if key, err = url.QueryUnescape(key); err != nil {
				return 0, err
			}
		}
		q := url.Values{}
		if r.versionID != "" && r.versionID != "null" {
			q.Set("versionId", r.versionID)
		}
		o := newObjRef(x.t.bucket, key, q, x.t.header)
		o.etag, o.info.stored = r.etag, r.stored
		var err error
		if n, err = p.partCount(x.r.Context(), o, http.Header{}); err != nil {
			return 0, err
		}
	}
	return envelope.ObjectPlaintextSize(r.stored, n)
}

// rewriteListing copies an S3 listing from src to dst byte for byte, except
// the text of <Size> in each row element (a child of the root named row),
// which becomes plainSize of the row, and s3seal's own entries in a row's
// <UserMetadata> (MinIO's metadata=true extension), which are dropped.
// Everything else — unknown elements, namespaces, whitespace, entities —
// passes unchanged, because only the bytes of recognized tokens are
// replaced. It returns the number of rows left with their stored size.
func rewriteListing(dst io.Writer, src *bufio.Reader, row string, plainSize func(listedRow) (int64, error)) (int, error) {
	toks := newRawTokens(src)
	out := bufio.NewWriter(dst)
	var (
		stack    []string        // local names of open elements
		inRow    bool            // inside a row: raw bytes go to rowBuf
		rowBuf   bytes.Buffer    // the current row's bytes, Size text left out
		sizeAt   = -1            // offset in rowBuf where the Size text belongs
		size     strings.Builder // the stored size text
		fields   = map[string]*strings.Builder{"ETag": {}, "Key": {}, "VersionId": {}}
		skipping int // >0: inside a dropped element, at this stack depth
		foreign  int
	)
	for {
		tok, raw, err := toks.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return foreign, err
		}

		parent := ""
		if len(stack) > 0 {
			parent = stack[len(stack)-1]
		}
		emit := true
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			switch {
			case skipping > 0:
			case len(stack) == 2 && t.Name.Local == row:
				inRow, sizeAt = true, -1
				rowBuf.Reset()
				size.Reset()
				for _, f := range fields {
					f.Reset()
				}
			case inRow && parent == "UserMetadata" && envelope.IsReserved(t.Name.Local):
				skipping = len(stack)
			}
		case xml.EndElement:
			if skipping == len(stack) {
				skipping = 0
				emit = false
			}
			stack = stack[:max(0, len(stack)-1)]
			if inRow && len(stack) == 1 && t.Name.Local == row {
				rowBuf.Write(raw)
				emit = false
				inRow = false
				r := listedRow{key: fields["Key"].String(), versionID: fields["VersionId"].String(), etag: fields["ETag"].String()}
				if err := writeRow(out, rowBuf.Bytes(), sizeAt, size.String(), r, plainSize); err != nil {
					foreign++
				}
			}
		case xml.CharData:
			if inRow && skipping == 0 && len(stack) == 3 {
				switch parent {
				case "Size":
					if sizeAt < 0 {
						sizeAt = rowBuf.Len()
					}
					if size.Write(t); size.Len() > 64 {
						return foreign, fmt.Errorf("a <Size> of more than 64 bytes: %w", errTokenTooLong)
					}
					emit = false
				default:
					if f, ok := fields[parent]; ok {
						f.Write(t)
					}
				}
			}
		}
		switch {
		case !emit || skipping > 0:
		case inRow:
			if rowBuf.Write(raw); rowBuf.Len() > maxToken {
				return foreign, fmt.Errorf("a <%s> row longer than %d bytes: %w", row, maxToken, errTokenTooLong)
			}
		default:
			if _, err := out.Write(raw); err != nil {
				return foreign, err
			}
		}
	}
	if _, err := out.Write(toks.rest()); err != nil {
		return foreign, err
	}
	return foreign, out.Flush()
}

// errForeignRow marks a row whose stored size is kept.
var errForeignRow = errors.New("row keeps its stored size")

// writeRow writes one row with its Size text replaced by the plaintext size.
// A row whose size does not invert is written with its stored size and
// reported.
func writeRow(out io.Writer, row []byte, sizeAt int, sizeText string, r listedRow, plainSize func(listedRow) (int64, error)) error {
	if sizeAt < 0 {
		_, err := out.Write(row) // no Size: a delete marker, for one
		return err
	}
	text := sizeText
	var rowErr error
	stored, err := strconv.ParseInt(strings.TrimSpace(sizeText), 10, 64)
	if err == nil {
		var plain int64
		r.stored = stored
		if plain, err = plainSize(r); err == nil {
			text = strconv.FormatInt(plain, 10)
		}
	}
	if err != nil {
		rowErr = errForeignRow
		text = xmlEscape(sizeText)
	}
	if _, err := out.Write(row[:sizeAt]); err != nil {
		return err
	}
	if _, err := io.WriteString(out, text); err != nil {
		return err
	}
	if _, err := out.Write(row[sizeAt:]); err != nil {
		return err
	}
	return rowErr
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
