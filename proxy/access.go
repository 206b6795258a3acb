package proxy

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/internal/store"
)

// Access is the kind of an S3 operation, which a principal's bucket grants
// allow or not.
type Access string

const (
	AccessRead   Access = "read"   // GetObject, HeadObject, object tag and ACL reads, ListParts, a copy's source
	AccessWrite  Access = "write"  // PutObject, multipart uploads, a copy's destination, object tag and ACL writes
	AccessList   Access = "list"   // ListObjects(V2), ListObjectVersions, ListMultipartUploads, HeadBucket, bucket configuration reads
	AccessDelete Access = "delete" // DeleteObject, DeleteObjects
	AccessAdmin  Access = "admin"  // CreateBucket, DeleteBucket, bucket configuration changes
	AccessAny    Access = ""       // any of the above: the buckets ListBuckets shows
)

// Principals tells who signed a request and what they may do.
type Principals interface {
	// Principal returns the principal whose access key signed a request;
	// false if there is none (any more).
	Principal(accessKey string) (Principal, bool)
}

// Principal is a client and its grants.
type Principal interface {
	Name() string
	// MayBucket reports whether the principal may perform operations of
	// kind access on bucket ("" for the service: ListBuckets).
	MayBucket(bucket string, access Access) bool
	// MayUse (kms.KeyGrant) decides whether the principal may use a CMK:
	// reading or writing an object sealed under it.
	kms.KeyGrant
}

// errDenied is a request its principal may not make.
var errDenied = errors.New("access denied")

// access is the kind of operation rt is.
func (rt *route) access() Access {
	switch {
	case rt.level == levelService:
		return AccessList
	case rt.level == levelBucket && (rt.method == http.MethodGet || rt.method == http.MethodHead):
		return AccessList
	case rt.name == "PostObject":
		return AccessWrite // an object write, named by its form
	case rt.level == levelBucket && rt.name == "DeleteObjects":
		return AccessDelete
	case rt.level == levelBucket:
		return AccessAdmin
	case rt.method == http.MethodGet || rt.method == http.MethodHead:
		return AccessRead
	case rt.method == http.MethodDelete && rt.sub == "":
		return AccessDelete
	}
	return AccessWrite
}

// authorize finds who signed x and checks their bucket grant for the
// operation; the CMK checks come later, where the key is known, through
// the grant x's context carries (kms.WithGrant). Without Principals every
// authenticated client may do everything.
func (p *Proxy) authorize(x *exchange) error {
	if p.principals == nil {
		return nil
	}
	pr, ok := p.principals.Principal(x.verified.AccessKey)
	if !ok {
		return fmt.Errorf("%w: no principal has access key %s any more", errDenied, x.verified.AccessKey)
	}
	x.principal = pr
	x.r = x.r.WithContext(kms.WithGrant(x.r.Context(), pr))
	return x.may(x.t.bucket, x.t.route.access())
}

// may checks that x's principal may perform access on bucket.
func (x *exchange) may(bucket string, access Access) error {
	if x.principal == nil || x.principal.MayBucket(bucket, access) {
		return nil
	}
	return fmt.Errorf("%w: no %s grant on bucket %q", errDenied, access, bucket)
}

// denied reports whether err is a principal's lack of a grant, for the
// log and the metric.
func denied(err error) bool {
	return errors.Is(err, errDenied) || errors.Is(err, kms.ErrNotGranted)
}

// logDenied says who was refused what.
func (p *Proxy) logDenied(x *exchange, err error) {
	name := ""
	if x.principal != nil {
		name = x.principal.Name()
	}
	p.log.Warn("access denied", slog.String("request_id", x.id), slog.String("principal", name),
		slog.String("op", x.t.op()), slog.String("bucket", x.t.bucket), slog.String("key", x.t.key),
		slog.Any("reason", err))
	p.obs.ObserveDenied(x.t.op())
}

// listBuckets serves ListBuckets with only the buckets the principal has
// some grant on (all of them for an admin, and without Principals).
func (p *Proxy) listBuckets(x *exchange) error {
	resp, err := p.request(x, http.StatusOK, store.Request{Method: http.MethodGet, Query: x.t.query, Header: passthroughHeader(x.t.header)})
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, docLarge+1))
	if err != nil {
		return errUpstream(err)
	}
	var list bucketList
	if len(body) > docLarge || xml.Unmarshal(body, &list) != nil || list.XMLName.Local != "ListAllMyBucketsResult" {
		return errBadAnswer(x, fmt.Errorf("ListBuckets answer is not a ListAllMyBucketsResult of at most %d bytes", docLarge))
	}
	kept := list.Buckets[:0]
	for _, b := range list.Buckets {
		if x.principal == nil || x.principal.MayBucket(b.Name, AccessAny) {
			kept = append(kept, b)
		}
	}
	list.Buckets = kept
	out, err := xml.Marshal(list)
	if err != nil {
		return errInternal(err)
	}
	out = append([]byte(xml.Header), out...)
	h := x.w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	x.w.WriteHeader(http.StatusOK)
	x.w.Write(out)
	return nil
}

// bucketList is a ListBuckets answer, as much of it as is passed on.
type bucketList struct {
	XMLName           xml.Name                          `xml:"ListAllMyBucketsResult"`
	Xmlns             string                            `xml:"xmlns,attr,omitempty"`
	Owner             *struct{ ID, DisplayName string } `xml:"Owner,omitempty"`
	Buckets           []listedBucket                    `xml:"Buckets>Bucket"`
	ContinuationToken string                            `xml:"ContinuationToken,omitempty"`
	Prefix            string                            `xml:"Prefix,omitempty"`
}

type listedBucket struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
	BucketRegion string `xml:"BucketRegion,omitempty"`
}
