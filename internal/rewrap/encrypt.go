package rewrap

import (
	"context"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// encrypt has s3seal encrypt a plaintext object in place: read through
// s3seal (which serves it as stored) and written back through it
// (encrypted as it streams, in parts for large objects, never held whole),
// both conditional on the ETag st was read with, so that a write meanwhile
// wins: the read is pinned to st's ETag and the write requires the key's
// current version to be what cond says. Metadata, content headers, tags and
// storage class are kept. It returns the new object's ETag.
func (r *run) encrypt(ctx context.Context, key, versionID string, st stored, cond copyCondition) (string, error) {
	bucket, etag := r.cfg.Bucket, trimETag(st.etag)
	tags, err := r.cfg.S3.GetObjectTagging(ctx, bucket, key, minio.GetObjectTaggingOptions{VersionID: versionID})
	if err != nil {
		return "", err
	}
	get := minio.GetObjectOptions{VersionID: versionID}
	if err := get.SetMatchETag(etag); err != nil {
		return "", err
	}
	body, err := r.cfg.S3.GetObject(ctx, bucket, key, get)
	if err != nil {
		return "", err
	}
	defer body.Close()
	put := putOptions(st)
	put.UserTags = tags.ToMap()
	if r.cfg.ToKey != "" {
		if put.ServerSideEncryption, err = encrypt.NewSSEKMS(r.cfg.ToKey, nil); err != nil {
			return "", err
		}
	}
	switch {
	case cond.absent:
		put.SetMatchETagExcept("*")
	case cond.etag != "":
		put.SetMatchETag(trimETag(cond.etag))
	}
	info, err := r.cfg.S3.PutObject(ctx, bucket, key, body, st.size, put)
	return info.ETag, err
}

// trimETag is an ETag without its quotes.
func trimETag(etag string) string { return strings.Trim(etag, `"`) }

// putOptions writes an object back with what describes it now.
func putOptions(st stored) minio.PutObjectOptions {
	h := st.header
	o := minio.PutObjectOptions{
		ContentType:             h.Get("Content-Type"),
		ContentEncoding:         h.Get("Content-Encoding"),
		ContentDisposition:      h.Get("Content-Disposition"),
		ContentLanguage:         h.Get("Content-Language"),
		CacheControl:            h.Get("Cache-Control"),
		WebsiteRedirectLocation: h.Get("X-Amz-Website-Redirect-Location"),
		StorageClass:            st.storageClass,
		UserMetadata:            map[string]string{},
	}
	if t, err := http.ParseTime(h.Get("Expires")); err == nil {
		o.Expires = t
	}
	for k, vs := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") && len(vs) > 0 {
			o.UserMetadata[k] = strings.Join(vs, ",")
		}
	}
	return o
}
