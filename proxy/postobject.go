package proxy

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/s3seal/s3seal/sigv4"
)

// PostVerifier authenticates a POST Object form's policy signature;
// *sigv4.Verifier implements it. An Authenticator without it refuses
// browser form uploads.
type PostVerifier interface {
	VerifyPost(f sigv4.PostForm) (*sigv4.Request, error)
}

// postObject serves POST Object (browser form uploads). The form's fields
// are read, the policy's signature verified, its principal's grants
// checked as a PutObject's, every policy condition and the file's size
// checked, and only then does the file stream through encryption into a
// PutObject of the store: the store never sees a byte of a form that fails
// any check, and a file that turns out not to be the form's last field (or
// a body that ends short) never gets its final chunk sealed, so the store
// keeps nothing (postform.go).
func (p *Proxy) postObject(x *exchange) error {
	pv, ok := p.auth.(PostVerifier)
	if !ok {
		return errNotImplemented("POST Object (browser form upload) with this authenticator")
	}
	// Read before anyone is authenticated: the fields get ClientTimeout
	// in all (their size is bounded by maxFormFields), not per read.
	release := x.body.bound(time.Now().Add(p.clientTimeout))
	form, err := readPostForm(x.r.Body, x.r.Header.Get("Content-Type"), x.r.ContentLength)
	release()
	if err != nil {
		return err
	}
	req, err := pv.VerifyPost(sigv4.PostForm(form.fields))
	if err != nil {
		return err
	}
	req.Body, req.ContentLength = io.NopCloser(clientBody{form.file}), form.file.left
	x.verified = req
	if err := p.admit(x); err != nil {
		return err
	}
	if err := p.preparePost(x, form); err != nil {
		return err
	}
	return p.storePost(x, form)
}

// preparePost names the object, checks the principal's grants, the
// object's headers and the policy: everything but the file's bytes.
func (p *Proxy) preparePost(x *exchange, form *postForm) error {
	if err := x.namePostObject(form); err != nil {
		return err
	}
	if err := checkName(x.t.bucket, x.t.key); err != nil {
		return err
	}
	if err := p.authorize(x); err != nil {
		return err
	}
	h, err := formHeader(form.fields)
	if err != nil {
		return err
	}
	x.t.header = h
	// Checked as a PutObject's headers: the form's own Content-Type is the
	// object's, not the request's multipart/form-data.
	if err := checkHeaders(http.MethodPut, h); err != nil {
		return err
	}
	policy, err := parsePolicy(form.fields["policy"])
	if err != nil {
		return err
	}
	return policy.check(time.Now(), form.fields, form.file.left)
}

// namePostObject sets the key the form names, with ${filename} replaced by
// the file's name as S3 does, and checks the form's bucket field, if any,
// against the bucket the request names; the policy's bucket condition is
// checked against the latter.
func (x *exchange) namePostObject(form *postForm) error {
	if b, ok := form.fields["bucket"]; ok && b != x.t.bucket {
		return newS3Error("InvalidArgument", http.StatusBadRequest,
			"The bucket form field does not name the bucket the request is sent to.", nil)
	}
	key, ok := form.fields["key"]
	if !ok {
		return errMissingPostField("key")
	}
	key = strings.ReplaceAll(key, "${filename}", form.filename)
	if key == "" {
		return newS3Error("InvalidArgument", http.StatusBadRequest, "User key must have a length greater than 0.", nil)
	}
	form.fields["key"], form.fields["bucket"] = key, x.t.bucket
	x.t.key, x.t.level = key, levelObject
	return nil
}

func errMissingPostField(name string) *s3Error {
	return newS3Error("InvalidArgument", http.StatusBadRequest,
		"Bucket POST must contain a field named '"+name+"'.  If it is specified, please check the order of the fields.", nil)
}

// formHeaderFields are form fields that S3 applies as a PutObject's
// headers; x-amz-* fields are applied as the x-amz-* headers of the same
// name. The header rules of PutObject then decide what reaches the store.
var formHeaderFields = map[string]string{
	"content-type": "Content-Type", "cache-control": "Cache-Control", "content-disposition": "Content-Disposition",
	"content-encoding": "Content-Encoding", "content-language": "Content-Language", "expires": "Expires",
	"acl": "X-Amz-Acl",
}

// formHeader is the object's headers from the form's fields. Checksums and
// Content-MD5 of the file are refused rather than dropped: s3seal cannot
// check them before the upload, and the store would see them against
// ciphertext.
func formHeader(fields map[string]string) (http.Header, error) {
	h := http.Header{}
	for name, v := range fields {
		switch {
		case name == "content-md5" || strings.HasPrefix(name, "x-amz-checksum-"):
			return nil, newS3Error("InvalidArgument", http.StatusBadRequest,
				"The "+name+" form field is not supported on POST Object through s3seal.", nil)
		case name == "tagging":
			tags, err := formTagging(v)
			if err != nil {
				return nil, err
			}
			h.Set("X-Amz-Tagging", tags)
		case formHeaderFields[name] != "":
			h.Set(formHeaderFields[name], v)
		case strings.HasPrefix(name, "x-amz-") && !notCovered[name]:
			h.Set(name, v)
		}
	}
	return h, nil
}

// formTagging turns the tagging field's XML document into x-amz-tagging.
func formTagging(doc string) (string, error) {
	var t struct {
		XMLName xml.Name `xml:"Tagging"`
		Tags    []struct {
			Key   string `xml:"Key"`
			Value string `xml:"Value"`
		} `xml:"TagSet>Tag"`
	}
	if err := xml.Unmarshal([]byte(doc), &t); err != nil {
		return "", newS3Error("MalformedXML", http.StatusBadRequest,
			"The XML you provided was not well-formed or did not validate against our published schema (the tagging field).", err)
	}
	q := url.Values{}
	for _, tag := range t.Tags {
		q.Add(tag.Key, tag.Value)
	}
	return q.Encode(), nil
}

// storePost streams the file into the store and answers as S3 does.
func (p *Proxy) storePost(x *exchange, form *postForm) error {
	keys, err := p.writeKeys(x)
	if err != nil {
		return err
	}
	dk, meta, err := keys.New(x.r.Context(), x.t.bucket, x.t.key)
	if err != nil {
		return err
	}
	defer clear(dk)
	put := x.written().Request(http.MethodPut, nil, objectWriteHeader(x.t.header, meta))
	resp, err := p.putEncrypted(x, put, x.verified.Body, x.verified.ContentLength, dk, 1, nil)
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	h := x.w.Header()
	copyHeaders(h, resp.Header, "etag", "x-amz-version-id", "x-amz-expiration")
	setEncryptionHeaders(h, meta)
	setContextHeader(h, meta)
	answerPost(x, form.fields, resp.Header.Get("ETag"))
	return nil
}

// answerPost answers a stored upload as S3 does: a 303 to
// success_action_redirect (or redirect) with bucket, key and etag added
// to its query; else success_action_status 200 (empty) or 201 (a
// PostResponse document); else 204.
func answerPost(x *exchange, fields map[string]string, etag string) {
	h := x.w.Header()
	loc := objectURL(x)
	h.Set("Location", loc)
	redirect := fields["success_action_redirect"]
	if redirect == "" {
		redirect = fields["redirect"]
	}
	if u, err := url.Parse(redirect); redirect != "" && err == nil && u.Scheme != "" {
		q := u.Query()
		q.Set("bucket", x.t.bucket)
		q.Set("key", x.t.key)
		q.Set("etag", etag)
		u.RawQuery = q.Encode()
		h.Set("Location", u.String())
		h.Set("Content-Length", "0")
		x.w.WriteHeader(http.StatusSeeOther)
		return
	}
	switch fields["success_action_status"] {
	case "200":
		h.Set("Content-Length", "0")
		x.w.WriteHeader(http.StatusOK)
	case "201":
		b := postResponse(loc, x.t.bucket, x.t.key, etag)
		h.Set("Content-Type", "application/xml")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		x.w.WriteHeader(http.StatusCreated)
		x.w.Write(b)
	default:
		x.w.WriteHeader(http.StatusNoContent)
	}
}

// postResponse is the document of a 201 answer.
func postResponse(loc, bucket, key, etag string) []byte {
	b, _ := xml.Marshal(struct {
		XMLName  xml.Name `xml:"PostResponse"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{Location: loc, Bucket: bucket, Key: key, ETag: etag})
	return append([]byte(xml.Header), b...)
}
