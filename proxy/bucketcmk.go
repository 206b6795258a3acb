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

// Bucket encryption settings: PutBucketEncryption with aws:kms and a key
// id sets the CMK for a bucket's new objects, and BucketKeyEnabled whether
// they use bucket keys, as on S3. The settings are kept in the store, as
// reserved bucket tags, so that every s3seal replica sees them, they
// survive restarts, and nothing is kept on local disk; s3seal hides its
// tags from GetBucketTagging and keeps them through PutBucketTagging and
// DeleteBucketTagging. The store could change them, but the CMK only to
// another in the allow-list (every use goes through AllowList.Choose), and
// objects record their own CMK and key derivation, so it can misdirect no
// read; and bucket keys only where S3SEAL_BUCKET_KEY allows them, which
// changes how new objects' keys are made (FORMAT.md §6.3), not that they
// are encrypted and bound to their names. Two replicas changing a bucket's
// tags at once can lose one change, as two clients can on S3.
const (
	bucketCMKTag = "s3seal:default-cmk"
	bucketKeyTag = "s3seal:bucket-key" // "true", "false"; none: Config.BucketKeysByDefault
)

// bucketSettingTTL bounds how long a replica uses a bucket setting another
// replica has since changed.
const bucketSettingTTL = 5 * time.Second

// bucketSettings remembers buckets' settings for bucketSettingTTL.
type bucketSettings struct {
	mu     sync.Mutex
	cache  *lru.Cache[string, bucketSetting]
	writes uint64 // settings this replica wrote: a read begun before one is stale
}

// bucketSetting is what a bucket's tags say about its new objects.
type bucketSetting struct {
	cmk       string // the default CMK, "" for s3seal's
	bucketKey string // bucketKeyTag's value, "" for none
	expires   time.Time
}

func newBucketSettings() *bucketSettings {
	c, _ := lru.New[string, bucketSetting](1024)
	return &bucketSettings{cache: c}
}

// get is bucket's remembered setting, or false and the mark to pass to
// learned once it is read.
func (b *bucketSettings) get(bucket string) (bucketSetting, uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.cache.Get(bucket)
	if !ok || time.Now().After(e.expires) {
		return bucketSetting{}, b.writes, false
	}
	return e, b.writes, true
}

// learned remembers a setting read from the store, unless this replica
// wrote one since the read began (mark, from get).
func (b *bucketSettings) learned(bucket string, s bucketSetting, mark uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.writes == mark {
		s.expires = time.Now().Add(bucketSettingTTL)
		b.cache.Add(bucket, s)
	}
}

// wrote remembers a setting this replica wrote.
func (b *bucketSettings) wrote(bucket string, s bucketSetting) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	s.expires = time.Now().Add(bucketSettingTTL)
	b.cache.Add(bucket, s)
}

// settingOf is what tags say.
func settingOf(tags tagSet) bucketSetting {
	return bucketSetting{cmk: tags.get(bucketCMKTag), bucketKey: tags.get(bucketKeyTag)}
}

// bucketSetting is the setting of a bucket's new objects; the zero setting
// (s3seal's defaults) for a bucket whose tags s3seal cannot read.
func (p *Proxy) bucketSetting(ctx context.Context, bucket string) (bucketSetting, error) {
	s, mark, ok := p.settings.get(bucket)
	if ok {
		return s, nil
	}
	tags, err := p.bucketTags(ctx, bucket)
	var nf *tagsUnavailable
	switch {
	case errors.As(err, &nf):
		// No such bucket (the write will say so), or bucket tags s3seal
		// cannot read: then it cannot have set anything either, since
		// PutBucketEncryption reads the tags first.
	case err != nil:
		return bucketSetting{}, err
	default:
		s = settingOf(tags)
	}
	p.settings.learned(bucket, s, mark)
	return s, nil
}

// usesBucketKeys says whether s's bucket's new objects use bucket keys.
func (p *Proxy) usesBucketKeys(s bucketSetting) bool {
	if p.keys.BucketKeys == nil {
		return false
	}
	switch s.bucketKey {
	case "true":
		return true
	case "false":
		return false
	}
	return p.bucketKeysByDefault
}

// maxBucketTags is S3's limit, which s3seal's own tags count against.
const maxBucketTags = 50

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
	if len(s.Tags) > maxBucketTags {
		return newS3Error("InvalidTag", http.StatusBadRequest, fmt.Sprintf(
			"A bucket has at most %d tags, and s3seal keeps %d of this bucket's for its encryption settings.", maxBucketTags, len(s.ours())), nil)
	}
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
		return p.relayStoreError(x, resp)
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

// sseConfiguration is the document GetBucketEncryption answers.
type sseConfiguration struct {
	XMLName xml.Name  `xml:"ServerSideEncryptionConfiguration"`
	Xmlns   string    `xml:"xmlns,attr,omitempty"`
	Rules   []sseRule `xml:"Rule"`
}

type sseRule struct {
	Default          sseDefault `xml:"ApplyServerSideEncryptionByDefault"`
	BucketKeyEnabled bool
}

type sseDefault struct {
	SSEAlgorithm   string
	KMSMasterKeyID string `xml:",omitempty"`
}

// sseConfigurationIn is the document PutBucketEncryption sends, read
// strictly: an element s3seal does not know, or one given twice, would be
// a setting silently dropped.
type sseConfigurationIn struct {
	Rules []struct {
		Default []struct {
			SSEAlgorithm   []string
			KMSMasterKeyID []string
			Unknown        []xml.Name `xml:",any"`
		} `xml:"ApplyServerSideEncryptionByDefault"`
		BucketKeyEnabled []string
		Unknown          []xml.Name `xml:",any"`
	} `xml:"Rule"`
	Unknown []xml.Name `xml:",any"`
}

// parseSSEConfiguration reads a PutBucketEncryption document: its
// algorithm, key id ("" for none) and BucketKeyEnabled ("true", "false",
// "" when left out).
func parseSSEConfiguration(doc []byte) (alg, keyID, bucketKey string, err error) {
	malformed := func(why string, err error) error {
		return newS3Error("MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema: "+why+".", err)
	}
	var c sseConfigurationIn
	if err := checkXML(doc, "ServerSideEncryptionConfiguration"); err != nil {
		return "", "", "", malformed("not one ServerSideEncryptionConfiguration", err)
	}
	if err := xml.Unmarshal(doc, &c); err != nil {
		return "", "", "", malformed("not XML", err)
	}
	if len(c.Rules) != 1 || len(c.Rules[0].Default) != 1 {
		return "", "", "", malformed("the configuration must have exactly one Rule with ApplyServerSideEncryptionByDefault", nil)
	}
	r, d := c.Rules[0], c.Rules[0].Default[0]
	switch {
	case len(c.Unknown)+len(r.Unknown)+len(d.Unknown) > 0:
		return "", "", "", malformed("unknown elements", nil)
	case len(d.SSEAlgorithm) != 1 || len(d.KMSMasterKeyID) > 1 || len(r.BucketKeyEnabled) > 1:
		return "", "", "", malformed("SSEAlgorithm must be given once, KMSMasterKeyID and BucketKeyEnabled at most once", nil)
	}
	if len(d.KMSMasterKeyID) == 1 {
		keyID = strings.TrimSpace(d.KMSMasterKeyID[0])
	}
	if len(r.BucketKeyEnabled) == 1 {
		if bucketKey = strings.TrimSpace(r.BucketKeyEnabled[0]); bucketKey != "true" && bucketKey != "false" {
			return "", "", "", malformed("BucketKeyEnabled must be true or false", nil)
		}
	}
	return d.SSEAlgorithm[0], keyID, bucketKey, nil
}

// getBucketEncryption answers what s3seal does to the bucket's new
// objects: SSE-KMS under its default CMK, or s3seal's, with bucket keys or
// without.
func (p *Proxy) getBucketEncryption(x *exchange) error {
	tags, err := p.bucketTags(x.r.Context(), x.t.bucket)
	var nf *tagsUnavailable
	switch {
	case errors.As(err, &nf) && nf.status == http.StatusNotFound:
		return nf.s3Error()
	case errors.As(err, &nf):
		// Tags s3seal cannot keep hold no setting: s3seal's defaults apply.
	case err != nil:
		return err
	}
	// The tags are the store's to change: answer what writes would do.
	s := settingOf(tags)
	id, err := p.keys.Allowed.Choose(x.r.Context(), cmp.Or(s.cmk, p.keys.KeyID))
	if err != nil {
		return chooseError(err)
	}
	rule := sseRule{Default: sseDefault{SSEAlgorithm: "aws:kms", KMSMasterKeyID: id}, BucketKeyEnabled: p.usesBucketKeys(s)}
	return writeXML(x, http.StatusOK, sseConfiguration{Xmlns: s3Namespace, Rules: []sseRule{rule}})
}

// putBucketEncryption sets the bucket's default CMK (aws:kms with a key
// id), or returns it to s3seal's (aws:kms alone, or AES256), and turns
// bucket keys on or off (BucketKeyEnabled; left out: s3seal's default).
func (p *Proxy) putBucketEncryption(x *exchange) error {
	alg, keyID, bucketKey, err := parseSSEConfiguration(x.doc)
	if err != nil {
		return err
	}
	if err := checkSSEChoice(alg, keyID != "", http.Header{}); err != nil {
		return err
	}
	if keyID != "" {
		if keyID, err = p.keys.Allowed.Choose(x.r.Context(), keyID); err != nil {
			return chooseError(err)
		}
	}
	if bucketKey == "true" && p.keys.BucketKeys == nil {
		return newS3Error("NotImplemented", http.StatusNotImplemented,
			"Bucket keys are off in this s3seal (S3SEAL_BUCKET_KEY=false): BucketKeyEnabled cannot be true.", nil)
	}
	return p.setBucketSetting(x, bucketSetting{cmk: keyID, bucketKey: bucketKey}, http.StatusOK)
}

// deleteBucketEncryption returns the bucket to s3seal's defaults.
func (p *Proxy) deleteBucketEncryption(x *exchange) error {
	return p.setBucketSetting(x, bucketSetting{}, http.StatusNoContent)
}

// setBucketSetting writes s into the bucket's tags, beside the client's.
func (p *Proxy) setBucketSetting(x *exchange, s bucketSetting, status int) error {
	tags, err := p.clientTags(x)
	if err != nil {
		return err
	}
	tags = tags.with(bucketCMKTag, s.cmk).with(bucketKeyTag, s.bucketKey)
	if err := p.putBucketTags(x, tags, status); err != nil {
		return err
	}
	p.settings.wrote(x.t.bucket, s)
	return nil
}

// getBucketTagging answers the bucket's tags without s3seal's own.
func (p *Proxy) getBucketTagging(x *exchange) error {
	tags, err := p.clientTags(x)
	if err != nil {
		return err
	}
	tags = tags.theirs()
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
	if len(client.theirs().Tags) != len(client.Tags) {
		return newS3Error("InvalidTag", http.StatusBadRequest, "Tag keys starting with s3seal: are reserved for s3seal.", nil)
	}
	tags, err := p.clientTags(x)
	if err != nil {
		return err
	}
	return p.putBucketTags(x, client.theirs().plus(tags.ours()), http.StatusNoContent)
}

// deleteBucketTagging removes the client's tags and keeps s3seal's.
func (p *Proxy) deleteBucketTagging(x *exchange) error {
	tags, err := p.clientTags(x)
	if err != nil {
		return err
	}
	return p.putBucketTags(x, tagSet{}.theirs().plus(tags.ours()), http.StatusNoContent)
}

// isOurs says whether a tag key is in s3seal's namespace, which clients
// may neither see nor set.
func isOurs(key string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(key)), "s3seal:")
}

// theirs is s without s3seal's tags, ready to write.
func (s tagSet) theirs() tagSet {
	out := tagSet{Xmlns: s3Namespace, Tags: []tag{}}
	for _, t := range s.Tags {
		if !isOurs(t.Key) {
			out.Tags = append(out.Tags, t)
		}
	}
	return out
}

// ours is s3seal's tags in s.
func (s tagSet) ours() []tag {
	var out []tag
	for _, t := range s.Tags {
		if isOurs(t.Key) {
			out = append(out, t)
		}
	}
	return out
}

// plus is s with tags appended.
func (s tagSet) plus(tags []tag) tagSet {
	s.Tags = append(s.Tags, tags...)
	return s
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
