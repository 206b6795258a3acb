package proxy

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/store"
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
	copyHeaders(header, x.t.header, append([]string{"x-amz-optional-object-attributes"}, ownerHeaders...)...)
	resp, err := p.request(x, http.StatusOK, store.Request{Method: http.MethodGet, Bucket: x.t.bucket, Query: x.t.query, Header: header})
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	row := "Contents"
	if x.t.route.sub == "versions" {
		row = "Version"
	}
	root := map[string]string{"Contents": "ListBucketResult", "Version": "ListVersionsResult"}[row]
	return p.relayRewritten(x, resp, root, listingRewrite(row, func(r listedRow) (int64, error) {
		return p.rowSize(x, r)
	}))
}

// listedRow is what a listing row says of an object.
type listedRow struct {
	key, versionID, etag string
	stored               int64
}

// rowSize is a listed object's plaintext size (see listObjects).
func (p *Proxy) rowSize(x *exchange, r listedRow) (int64, error) {
	n, marked := envelope.ETagPartCount(r.etag)
	if !marked && p.counts.marked.Load() != etagsMarked {
		key := r.key
		if x.t.query.Get("encoding-type") == "url" {
			var err error
			if key, err = url.QueryUnescape(key); err != nil {
				return 0, err
			}
		}
		version := r.versionID
		if version == "null" {
			version = "" // the version of an unversioned object
		}
		o := objRef{Object: objectAt(x.t.bucket, key, version, x.t.header), etag: r.etag}
		o.info.stored = r.stored
		var err error
		if n, err = p.partCount(x.r.Context(), o, http.Header{}); err != nil {
			return 0, err
		}
	}
	return envelope.ObjectPlaintextSize(r.stored, n)
}

// listingRewrite rewrites an S3 listing whose rows are named row: the text
// of each row's <Size> becomes plainSize of the row (a size that does not
// translate is kept, and counted), and s3seal's own entries in a row's
// <UserMetadata> (MinIO's metadata=true extension) are dropped.
func listingRewrite(row string, plainSize func(listedRow) (int64, error)) *xmlRewrite {
	return &xmlRewrite{
		row: row,
		leaf: func(path []string, text string, fields map[string]string) (string, bool) {
			if len(path) != 3 || path[1] != row || path[2] != "Size" {
				return text, true
			}
			key, hasKey := fields["Key"]
			etag, hasETag := fields["ETag"]
			stored, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
			if err != nil || !hasKey || !hasETag {
				return text, false // not a row s3seal can size
			}
			plain, err := plainSize(listedRow{key: key, versionID: fields["VersionId"], etag: etag, stored: stored})
			if err != nil {
				return text, false
			}
			return strconv.FormatInt(plain, 10), true
		},
		drop: func(path []string) bool {
			n := len(path)
			// A row's checksum fields are the store's, of the ciphertext
			// s3seal sent it with CRC32C trailers.
			return n >= 4 && path[1] == row && path[n-2] == "UserMetadata" && envelope.IsReserved(path[n-1]) ||
				n == 3 && path[1] == row && strings.HasPrefix(path[2], "Checksum")
		},
	}
}
