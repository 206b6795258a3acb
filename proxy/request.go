package proxy

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// Client headers that name key material or s3seal's own metadata. A request
// carrying one is refused whatever the operation: s3seal encrypts with KMS
// keys, never forwards a client's key, and alone writes x-amz-meta-s3seal-*.
const (
	sseCustomerPrefix     = "x-amz-server-side-encryption-customer-"
	copySSECustomerPrefix = "x-amz-copy-source-server-side-encryption-customer-"
)

// checkName refuses an object key (or bucket name) with a "." or ".."
// path segment. S3 takes such keys literally, but stores resolve them
// (versitygw stores "a/../b" as "b"; others refuse them or may route
// "team-a/../other/x" to another bucket): the object would be stored under
// another name than the one its data key and its grants were checked for.
// A key longer than S3's 1024 bytes is refused too (KeyTooLongError).
func checkName(bucket, key string) error {
	if err := checkKeyLength(key); err != nil {
		return err
	}
	for _, name := range []string{bucket, key} {
		for seg := range strings.SplitSeq(name, "/") {
			if seg == "." || seg == ".." {
				return newS3Error("InvalidArgument", http.StatusBadRequest,
					`Object keys with a "." or ".." path segment are not supported: stores resolve them to other names.`, nil)
			}
		}
	}
	return nil
}

// checkHeaders refuses headers no operation may carry through s3seal.
func checkHeaders(method string, h http.Header) error {
	for k := range h {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, "x-amz-meta-") && envelope.IsReserved(lk):
			return newS3Error("InvalidArgument", http.StatusBadRequest,
				"User metadata named x-amz-meta-s3seal-* is reserved for s3seal.", nil)
		case lk == "content-type" && method == http.MethodPost && isFormData(h.Get(k)):
			// Stores route a POST carrying a form to browser uploads, whatever
			// its query (MinIO does): it would reach another operation.
			return errNotImplemented("POST with a multipart/form-data body (browser form upload)")
		case strings.HasPrefix(lk, sseCustomerPrefix), strings.HasPrefix(lk, copySSECustomerPrefix):
			return newS3Error("InvalidRequest", http.StatusBadRequest,
				"s3seal encrypts every object with a KMS key; customer-provided keys (SSE-C, "+lk+") are not supported. "+
					"Remove the x-amz-server-side-encryption-customer-* headers: the object is encrypted all the same.", nil)
		}
	}
	return nil
}

// readBody reads and verifies the request body as its route says, before
// the store is asked anything (encrypted bodies excepted: put.go).
func (x *exchange) readBody() error {
	switch x.t.route.body {
	case bodyNone:
		return x.readEmpty()
	case bodyDocument:
		return x.readDocument(x.t.route.in)
	}
	return nil
}

// readEmpty verifies a body that must be empty: its signature, payload hash
// or chunk signatures still have to hold before anything is done.
func (x *exchange) readEmpty() error {
	if x.verified.ContentLength > 0 {
		return errUnexpectedContent()
	}
	n, err := io.Copy(io.Discard, io.LimitReader(x.verified.Body, 1))
	switch {
	case err != nil:
		return clientBodyError(err)
	case n > 0:
		return errUnexpectedContent()
	}
	return nil
}

func isFormData(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return strings.EqualFold(mt, "multipart/form-data")
}

func errUnexpectedContent() *s3Error {
	return newS3Error("UnexpectedContent", http.StatusBadRequest, "This request does not support content.", nil)
}

// readDocument reads a document body whole, which verifies it, and checks
// that it is the document the operation takes; x.doc then holds it.
func (x *exchange) readDocument(d *document) error {
	tooLarge := newS3Error("EntityTooLarge", http.StatusBadRequest,
		fmt.Sprintf("The request body of %s is larger than the %d bytes s3seal accepts.", x.t.op(), d.max), nil)
	if x.verified.ContentLength > d.max {
		return tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(x.verified.Body, d.max+1))
	switch {
	case err != nil:
		return clientBodyError(err)
	case int64(len(b)) > d.max:
		return tooLarge
	}
	if err := checkDocument(d, b); err != nil {
		return err
	}
	x.doc = b
	return nil
}

// checkDocument checks that b is the document d describes.
func checkDocument(d *document, b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 && d.optional {
		return nil
	}
	if d.json() {
		if !isJSONObject(b) {
			return newS3Error("MalformedPolicy", http.StatusBadRequest, "Policies must be valid JSON objects.", nil)
		}
		return nil
	}
	if err := checkXML(b, d.root); err != nil {
		return newS3Error("MalformedXML", http.StatusBadRequest,
			"The XML you provided was not well-formed or did not validate against our published schema (want a <"+d.root+"> document).", err)
	}
	if name := firstElement(b, d.refuse); name != "" {
		return errNotImplemented("<" + name + "> in a <" + d.root + "> document")
	}
	return nil
}

// firstElement is the first element of the (well-formed) document b whose
// local name is one of names, or "".
func firstElement(b []byte, names []string) string {
	if len(names) == 0 {
		return ""
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok && slices.Contains(names, se.Name.Local) {
			return se.Name.Local
		}
	}
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// errWrongRoot means an XML document of another type than expected.
var errWrongRoot = errors.New("unexpected XML root element")

// checkXML checks that b is one well-formed XML document whose root element
// has the given local name ("" takes any).
func checkXML(b []byte, root string) error {
	dec := xml.NewDecoder(bytes.NewReader(b))
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if roots++; roots > 1 || (root != "" && t.Name.Local != root) {
					return fmt.Errorf("<%s>: %w", t.Name.Local, errWrongRoot)
				}
			}
			if depth++; depth > maxDepth {
				return fmt.Errorf("elements nested deeper than %d: %w", maxDepth, errNotOneDocument)
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("text outside the root element")
			}
		}
	}
	if roots != 1 {
		return fmt.Errorf("no root element: %w", errWrongRoot)
	}
	return nil
}
