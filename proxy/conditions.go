package proxy

import (
	"fmt"
	"net/http"
	"strings"
)

// checkDestination evaluates a write's If-Match and If-None-Match (a
// PutObject, a CompleteMultipartUpload, a copy) against the object it
// would replace, and answers 412 when they fail, before anything is
// written or a data key is made. Some stores ignore them (MinIO checks only
// the source's conditions on CopyObject, older stores ignore them on every
// write): a condition forwarded to such a store would hold in name only.
// The store still gets them; the window between this check and the write
// is what a store that honours them closes.
func (p *Proxy) checkDestination(x *exchange) error {
	ifMatch, ifNone := x.t.header.Get("If-Match"), x.t.header.Get("If-None-Match")
	if ifMatch == "" && ifNone == "" {
		return nil
	}
	resp, err := p.store.Do(x.r.Context(), x.written().Request(http.MethodHead, nil, http.Header{}))
	if err != nil {
		return err
	}
	resp.Body.Close()
	var etag string
	switch resp.StatusCode {
	case http.StatusOK:
		etag = resp.Header.Get("ETag")
	case http.StatusNotFound:
	default:
		return errUpstream(fmt.Errorf("HEAD of the write's destination answered %d", resp.StatusCode))
	}
	exists := resp.StatusCode == http.StatusOK
	if (ifMatch != "" && !(exists && etagListed(ifMatch, etag))) || (ifNone != "" && exists && etagListed(ifNone, etag)) {
		return errPreconditionFailed()
	}
	return nil
}

// etagListed reports whether etag is in list, an If-Match or If-None-Match
// value: "*" or comma-separated ETags, quoted or not, weak or not.
func etagListed(list, etag string) bool {
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == "*" || normETag(v) == normETag(etag) {
			return true
		}
	}
	return false
}
