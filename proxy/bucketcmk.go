package proxy

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/internal/store"
)

// Bucket default CMKs: PutBucketEncryption with aws:kms and a key id sets
// the CMK for a bucket's new objects, as on S3. The setting is kept in the
// store, as a reserved bucket tag, so that every s3seal replica sees it,
// it survives restarts, and nothing is kept on local disk; s3seal hides
// the tag from GetBucketTagging and keeps it through PutBucketTagging and
// DeleteBucketTagging. The store could change it, but only to another CMK
// in the allow-list (every use goes through AllowList.Choose), and objects
// record their own CMK, so it can misdirect no read.
const bucketCMKTag = "s3seal:default-cmk"

// bucketCMKTTL bounds how long a replica uses a bucket default another
// replica has since changed.
const bucketCMKTTL = 5 * time.Second

// bucketCMKs remembers bucket defaults for bucketCMKTTL.
type bucketCMKs struct {
	mu    sync.Mutex
	cache *lru.Cache[string, bucketCMK]
}

type bucketCMK struct {
	id      string // "" for none
	expires time.Time
}

func newBucketCMKs() *bucketCMKs {
	c, _ := lru.New[string, bucketCMK](1024)
	return &bucketCMKs{cache: c}
}

func (b *bucketCMKs) get(bucket string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.cache.Get(bucket)
	if !ok || time.Now().After(e.expires) {
		return "", false
	}
	return e.id, true
}

func (b *bucketCMKs) set(bucket, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cache.Add(bucket, bucketCMK{id: id, expires: time.Now().Add(bucketCMKTTL)})
}

// bucketDefault is the CMK a bucket's new objects get when the client
// names none, "" for s3seal's own default.
func (p *Proxy) bucketDefault(ctx context.Context, bucket string) (string, error) {
	if id, ok := p.bucketCMKs.get(bucket); ok {
		return id, nil
	}
	tags, err := p.bucketTags(ctx, bucket)
	var nf *tagsUnavailable
	switch {
	case errors.As(err, &nf):
		// No such bucket (the write will say so), or bucket tags s3seal
		// cannot read: then it cannot have set a default either, since
		// PutBucketEncryption reads the tags first.
		return "", nil
	case err != nil:
		return "", err
	}
	id := tags.get(bucketCMKTag)
	p.bucketCMKs.set(bucket, id)
	return id, nil
}

// tagSet is a bucket's tags, in order.
type tagSet struct {
	XMLName xml.Name `xml:"Tagging"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"` // set on what s3seal writes
	Tags    []tag    `xml:"TagSet>Tag"`
}

// s3Namespace is S3's XML namespace, on the documents s3seal writes. (Read
// documents may have it or not: a struct naming it would refuse those
// without.)
const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

type tag struct{ Key, Value string }

func (s tagSet) get(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// with is s with key set to value ("" removes it).
func (s tagSet) with(key, value string) tagSet {
	out := tagSet{Xmlns: s3Namespace, Tags: []tag{}}
	for _, t := range s.Tags {
		if t.Key != key {
			out.Tags = append(out.Tags, t)
		}
	}
	if value != "" {
		out.Tags = append(out.Tags, tag{key, value})
	}
	return out
}

// tagsUnavailable is a store's answer that the bucket has no tags s3seal
// can read: 404 (no bucket), 403 (its credential may not read them) or
// 501 (no bucket tagging at all).
type tagsUnavailable struct {
	status int
	code   string
}

func (e *tagsUnavailable) Error() string {
	return fmt.Sprintf("bucket tags unavailable: %d %s", e.status, e.code)
}

// bucketTags reads a bucket's tags; a bucket without any has an empty set.
func (p *Proxy) bucketTags(ctx context.Context, bucket string) (tagSet, error) {
	return p.readTags(ctx, store.Request{Method: http.MethodGet, Bucket: bucket, Query: url.Values{"tagging": {""}}, Header: http.Header{}})
}

// readTags sends r, a GET ?tagging of a bucket or an object, and reads the
// tag set it answers: a whole <Tagging> document, or none (NoSuchTagSet);
// an answer that says the tags cannot be read is a *tagsUnavailable.
func (p *Proxy) readTags(ctx context.Context, r store.Request) (tagSet, error) {
	resp, err := p.store.Do(ctx, r)
	if err != nil {
		return tagSet{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, docSmall+1))
	if err != nil || len(body) > docSmall {
		return tagSet{}, errUpstream(fmt.Errorf("reading tags: %v", err))
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound && store.ErrorCode(body) == "NoSuchTagSet":
		return tagSet{}, nil
	case resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusForbidden, resp.StatusCode == http.StatusNotImplemented:
		return tagSet{}, &tagsUnavailable{status: resp.StatusCode, code: store.ErrorCode(body)}
	default:
		return tagSet{}, errUpstream(fmt.Errorf("reading tags: the store answered %d", resp.StatusCode))
	}
	var s tagSet
	if err := checkXML(body, "Tagging"); err != nil {
		return tagSet{}, errUpstream(fmt.Errorf("reading tags: %w", err))
	}
	if err := xml.Unmarshal(body, &s); err != nil {
		return tagSet{}, errUpstream(fmt.Errorf("reading tags: %w", err))
	}
	return s, nil
}

// putBucketTags replaces a bucket's tags with s (none: deletes them).
func (p *Proxy) putBucketTags(x *exchange, s tagSet, status int) error {
	r := store.Request{Method: http.MethodDelete, Bucket: x.t.bucket, Query: url.Values{"tagging": {""}}, Header: http.Header{}}
	if len(s.Tags) > 0 {
		doc, err := xml.Marshal(s)
		if err != nil {
			return errInternal(err)
		}
		r.Method, r.Body = http.MethodPut, doc
		r.Header.Set("Content-Type", "application/xml")
		sum := md5.Sum(doc) // S3 requires it on PutBucketTagging
		r.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	copyHeaders(r.Header, x.t.header, ownerHeaders...)
	resp, err := p.store.Do(x.r.Context(), r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return relayStoreError(x, resp)
	}
	// A success has no body: anything else is not S3's answer.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if len(bytes.TrimSpace(body)) > 0 {
		return errBadAnswer(x, fmt.Errorf("%s ?tagging answered %d with a body", r.Method, resp.StatusCode))
	}
	x.w.WriteHeader(status)
	return nil
}

// clientTags reads x's bucket tags for a bucket operation; what keeps
// s3seal from them is the client's answer.
func (p *Proxy) clientTags(x *exchange) (tagSet, error) {
	tags, err := p.bucketTags(x.r.Context(), x.t.bucket)
	var nf *tagsUnavailable
	if errors.As(err, &nf) {
		return tagSet{}, nf.s3Error()
	}
	return tags, err
}

func (e *tagsUnavailable) s3Error() *s3Error {
	switch e.status {
	case http.StatusNotFound:
		return newS3Error("NoSuchBucket", e.status, "The specified bucket does not exist", nil)
	case http.StatusForbidden:
		return newS3Error("AccessDenied", e.status,
			"s3seal's store credential may not read this bucket's tags (s3:GetBucketTagging), where s3seal keeps its default CMK.", nil)
	}
	return newS3Error("NotImplemented", e.status, "The store does not keep bucket tags, where s3seal keeps a bucket's default CMK.", nil)
}

type sseConfiguration struct {
	XMLName xml.Name  `xml:"ServerSideEncryptionConfiguration"`
	Xmlns   string    `xml:"xmlns,attr,omitempty"`
	Rules   []sseRule `xml:"Rule"`
}

type sseRule struct {
	Default *struct {
		SSEAlgorithm   string
		KMSMasterKeyID string `xml:",omitempty"`
	} `xml:"ApplyServerSideEncryptionByDefault"`
	BucketKeyEnabled bool
}

// getBucketEncryption answers what s3seal does to the bucket's new
// objects: SSE-KMS under its default CMK, or s3seal's.
func (p *Proxy) getBucketEncryption(x *exchange) error {
	tags, err := p.bucketTags(x.r.Context(), x.t.bucket)
	var nf *tagsUnavailable
	switch {
	case errors.As(err, &nf) && nf.status == http.StatusNotFound:
		return nf.s3Error()
	case errors.As(err, &nf):
		// Tags s3seal cannot keep hold no default: s3seal's applies.
	case err != nil:
		return err
	}
	// The tag is the store's to change: answer what writes would use.
	id, err := p.keys.Allowed.Choose(x.r.Context(), cmp.Or(tags.get(bucketCMKTag), p.keys.KeyID))
	if err != nil {
		return chooseError(err)
	}
	rule := sseRule{BucketKeyEnabled: p.keys.BucketKeys != nil} // S3SEAL_BUCKET_KEY: every bucket's
	rule.Default = &struct {
		SSEAlgorithm   string
		KMSMasterKeyID string `xml:",omitempty"`
	}{SSEAlgorithm: "aws:kms", KMSMasterKeyID: id}
	return writeXML(x, http.StatusOK, sseConfiguration{Xmlns: s3Namespace, Rules: []sseRule{rule}})
}

// putBucketEncryption sets the bucket's default CMK (aws:kms with a key
// id), or returns it to s3seal's (aws:kms alone, or AES256).
func (p *Proxy) putBucketEncryption(x *exchange) error {
	var conf sseConfiguration
	if err := xml.Unmarshal(x.doc, &conf); err != nil || len(conf.Rules) != 1 || conf.Rules[0].Default == nil {
		return newS3Error("MalformedXML", http.StatusBadRequest, "The configuration must have exactly one Rule with ApplyServerSideEncryptionByDefault.", err)
	}
	d := conf.Rules[0].Default
	keyID := strings.TrimSpace(d.KMSMasterKeyID)
	if err := checkSSEChoice(d.SSEAlgorithm, keyID != "", http.Header{}); err != nil {
		return err
	}
	if keyID != "" {
		id, err := p.keys.Allowed.Choose(x.r.Context(), keyID)
		if err != nil {
			return chooseError(err)
		}
		keyID = id
	}
	tags, err := p.clientTags(x)
	if err != nil {
		return err
	}
	if err := p.putBucketTags(x, tags.with(bucketCMKTag, keyID), http.StatusOK); err != nil {
		return err
	}
	p.bucketCMKs.set(x.t.bucket, keyID)
	return nil
}

// deleteBucketEncryption returns the bucket to s3seal's default CMK.
func (p *Proxy) deleteBucketEncryption(x *exchange) error {
	tags, err := p.clientTags(x)
	if err != nil {
		return err
	}
	if err := p.putBucketTags(x, tags.with(bucketCMKTag, ""), http.StatusNoContent); err != nil {
		return err
	}
	p.bucketCMKs.set(x.t.bucket, "")
	return nil
}

// getBucketTagging answers the bucket's tags without s3seal's own.
func (p *Proxy) getBucketTagging(x *exchange) error {
	tags, err := p.clientTags(x)
	if err != nil {
		return err
	}
	tags = tags.with(bucketCMKTag, "")
	if len(tags.Tags) == 0 {
		return newS3Error("NoSuchTagSet", http.StatusNotFound, "The TagSet does not exist", nil)
	}
	return writeXML(x, http.StatusOK, tags)
}

// putBucketTagging replaces the client's tags and keeps s3seal's.
func (p *Proxy) putBucketTagging(x *exchange) error {
	var client tagSet
	if err := xml.Unmarshal(x.doc, &client); err != nil {
		return newS3Error("MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed.", err)
	}
	if client.reserved() {
		return newS3Error("InvalidTag", http.StatusBadRequest, "Tag keys starting with s3seal: are reserved for s3seal.", nil)
	}
	tags, err := p.clientTags(x)
	if err != nil {
		return err
	}
	return p.putBucketTags(x, client.with(bucketCMKTag, tags.get(bucketCMKTag)), http.StatusNoContent)
}

// reserved reports whether s has a tag key in s3seal's namespace.
func (s tagSet) reserved() bool {
	for _, t := range s.Tags {
		if strings.HasPrefix(strings.ToLower(t.Key), "s3seal:") {
			return true
		}
	}
	return false
}

// deleteBucketTagging removes the client's tags and keeps s3seal's.
func (p *Proxy) deleteBucketTagging(x *exchange) error {
	tags, err := p.clientTags(x)
	if err != nil {
		return err
	}
	return p.putBucketTags(x, tagSet{}.with(bucketCMKTag, tags.get(bucketCMKTag)), http.StatusNoContent)
}

// chooseError is what a client hears of a CMK it may not choose.
func chooseError(err error) error {
	var na *kms.KeyNotAllowedError
	if errors.As(err, &na) {
		return newS3Error("AccessDenied", http.StatusForbidden,
			"s3seal is not configured to encrypt with KMS key "+na.KeyID+
				": choose one of S3SEAL_KMS_KEY_ID and S3SEAL_KMS_DECRYPT_KEY_IDS.", err)
	}
	return err
}
