package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// The operations of the soak mix, each on one of the client's keys. Reads
// check what they get against the key's acceptable states: the content
// identity in the object's metadata must be one of them, and the bytes
// and size must be that identity's.

// soakIDMeta is the user metadata that names an object's content.
const soakIDMeta = "Soak-Id"

func (c *soakClient) put(ctx context.Context, key string, size int64) (int64, error) {
	st := objState{present: true, id: c.nextID(key), size: size}
	_, err := c.mc.PutObject(ctx, c.w.Bucket, key, newBody(st.id, 0, size), size, minio.PutObjectOptions{
		DisableMultipart: true, UserMetadata: map[string]string{soakIDMeta: st.id},
	})
	c.wrote(key, st, err)
	if err != nil {
		return 0, fmt.Errorf("PUT %s (%d bytes): %w", key, size, err)
	}
	return size, nil
}

// soakPartSize is the multipart part size: MinIO's smallest.
const soakPartSize = 5 << 20

// multipart uploads 1 to 3 parts of 5 MiB and a shorter last one.
func (c *soakClient) multipart(ctx context.Context, key string) (int64, error) {
	size := int64(1+c.rng.IntN(3))*soakPartSize + c.rng.Int64N(soakPartSize)
	st := objState{present: true, id: c.nextID(key), size: size}
	core := minio.Core{Client: c.mc}
	uploadID, err := core.NewMultipartUpload(ctx, c.w.Bucket, key, minio.PutObjectOptions{UserMetadata: map[string]string{soakIDMeta: st.id}})
	if err != nil {
		return 0, fmt.Errorf("CreateMultipartUpload %s: %w", key, err)
	}
	var parts []minio.CompletePart
	for off := int64(0); off < size; off += soakPartSize {
		n := min(soakPartSize, size-off)
		p, err := core.PutObjectPart(ctx, c.w.Bucket, key, uploadID, len(parts)+1, newBody(st.id, off, n), n, minio.PutObjectPartOptions{})
		if err != nil {
			c.abort(key, uploadID)
			return off, fmt.Errorf("UploadPart %d of %s: %w", len(parts)+1, key, err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
	}
	_, err = core.CompleteMultipartUpload(ctx, c.w.Bucket, key, uploadID, parts, minio.PutObjectOptions{})
	c.wrote(key, st, err)
	if err != nil {
		return size, fmt.Errorf("CompleteMultipartUpload %s: %w", key, err)
	}
	return size, nil
}

// abort gives up an upload, also when the run's end cut it short; a
// failure leaves only an incomplete upload, which the run does not count.
func (c *soakClient) abort(key, uploadID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	minio.Core{Client: c.mc}.AbortMultipartUpload(ctx, c.w.Bucket, key, uploadID)
}

func (c *soakClient) get(ctx context.Context, key string) (int64, error) {
	obj, err := c.mc.GetObject(ctx, c.w.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", key, err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		return 0, c.missing(key, "GET", err)
	}
	st, err := c.match(key, info)
	if err != nil {
		return 0, err
	}
	n, err := checkReader(obj, st.id, 0, st.size)
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", key, err)
	}
	return n, nil
}

// getRange reads a range of up to 4 MiB of a key whose content is known,
// and the whole key otherwise.
func (c *soakClient) getRange(ctx context.Context, key string) (int64, error) {
	st, ok := c.known(key)
	if !ok || !st.present || st.size == 0 {
		return c.get(ctx, key)
	}
	off := c.rng.Int64N(st.size)
	n := 1 + c.rng.Int64N(min(st.size-off, 4<<20))
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+n-1); err != nil {
		return 0, fmt.Errorf("range: %w", err)
	}
	obj, err := c.mc.GetObject(ctx, c.w.Bucket, key, opts)
	if err != nil {
		return 0, fmt.Errorf("GET %s range %d-%d: %w", key, off, off+n-1, err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		return 0, c.missing(key, "GET range", err)
	}
	if id := metaID(info); id != st.id {
		return 0, fmt.Errorf("%w: GET %s range: content %q, want %q%s", errWrong, key, id, st.id, c.history(key))
	}
	got, err := checkReader(obj, st.id, off, n)
	if err != nil {
		return got, fmt.Errorf("GET %s range %d-%d: %w", key, off, off+n-1, err)
	}
	return got, nil
}

func (c *soakClient) head(ctx context.Context, key string) error {
	info, err := c.mc.StatObject(ctx, c.w.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return c.missing(key, "HEAD", err)
	}
	_, err = c.match(key, info)
	return err
}

// list lists the client's prefix: every key listed must be present in
// one of its states at that size, every key not listed absent in one.
func (c *soakClient) list(ctx context.Context) error {
	seen := map[string]int64{}
	for o := range c.mc.ListObjects(ctx, c.w.Bucket, minio.ListObjectsOptions{Prefix: c.prefix, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("LIST %s: %w", c.prefix, o.Err)
		}
		seen[o.Key] = o.Size
	}
	for _, key := range c.keys {
		size, listed := seen[key]
		ok := false
		for _, st := range c.states[key] {
			ok = ok || (st.present == listed && (!listed || st.size == size))
		}
		if !ok {
			return fmt.Errorf("%w: LIST %s: %s listed %v (size %d), states %+v%s", errWrong, c.prefix, key, listed, size, c.states[key], c.history(key))
		}
		delete(seen, key)
	}
	if len(seen) > 0 {
		return fmt.Errorf("%w: LIST %s: keys never written: %v", errWrong, c.prefix, seen)
	}
	return nil
}

// copy copies another key of the client whose content is known onto key,
// server-side through s3seal, metadata (the content identity) included;
// with no such key it PUTs instead.
func (c *soakClient) copy(ctx context.Context, key string) (int64, error) {
	var src string
	for _, i := range c.rng.Perm(len(c.keys)) {
		if st, ok := c.known(c.keys[i]); ok && st.present && c.keys[i] != key {
			src = c.keys[i]
			break
		}
	}
	if src == "" {
		return c.put(ctx, key, c.putSize())
	}
	st, _ := c.known(src)
	_, err := c.mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: c.w.Bucket, Object: key}, minio.CopySrcOptions{Bucket: c.w.Bucket, Object: src})
	c.wrote(key, st, err)
	if err != nil {
		return 0, fmt.Errorf("COPY %s to %s: %w", src, key, err)
	}
	return st.size, nil
}

func (c *soakClient) delete(ctx context.Context, key string) error {
	err := c.mc.RemoveObject(ctx, c.w.Bucket, key, minio.RemoveObjectOptions{})
	c.wrote(key, objState{}, err)
	if err != nil {
		return fmt.Errorf("DELETE %s: %w", key, err)
	}
	return nil
}

// match is the state of key that info shows (its content identity and
// size), or errWrong when it is none of key's acceptable states.
func (c *soakClient) match(key string, info minio.ObjectInfo) (objState, error) {
	id := metaID(info)
	for _, st := range c.states[key] {
		if st.present && st.id == id && st.size == info.Size {
			return st, nil
		}
	}
	return objState{}, fmt.Errorf("%w: %s holds %q of %d bytes, want one of %+v%s", errWrong, key, id, info.Size, c.states[key], c.history(key))
}

// missing is the outcome of a read that failed with err: fine when it says
// the key does not exist and the key may be absent, errWrong (a lost
// write) when the key must exist, and err otherwise.
func (c *soakClient) missing(key, op string, err error) error {
	if minio.ToErrorResponse(err).Code != "NoSuchKey" {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	for _, st := range c.states[key] {
		if !st.present {
			return nil
		}
	}
	return fmt.Errorf("%w: %s %s: NoSuchKey, want one of %+v%s", errWrong, op, key, c.states[key], c.history(key))
}

// metaID is the content identity in info's user metadata.
func metaID(info minio.ObjectInfo) string {
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, soakIDMeta) {
			return v
		}
	}
	return ""
}
