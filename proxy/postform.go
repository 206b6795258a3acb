package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"strings"
)

// A POST Object body is multipart/form-data: fields, then the file, which
// S3 requires to be the last field. The fields are read here, bounded; the
// file is not read at all until the policy and its length checks have
// passed, and then streams into encryption. Its length, which the store
// needs up front, is what remains of the request's Content-Length after the
// fields and before the closing delimiter, which browsers, curl, Go's and
// Python's form encoders all write as "\r\n--BOUNDARY--\r\n". The file
// reader checks as it streams that no delimiter comes before that point and
// that exactly the closing one follows it, and fails otherwise: the final
// chunk of the upload is then never sealed, and the store keeps nothing.

// maxFormFields bounds what a form may carry besides its file: S3 allows
// 20 KB of fields with the policy; a little more covers the multipart
// headers that frame them.
const maxFormFields = 64 << 10

// postForm is a parsed POST Object body up to its file.
type postForm struct {
	fields   map[string]string // lowercase names; values as sent
	filename string            // the file part's filename, for ${filename}
	file     *formFile         // the file's contents, not yet read
}

// errMalformedPOST is S3's answer to a body that is not a usable form.
func errMalformedPOST(detail string, cause error) *s3Error {
	return newS3Error("MalformedPOSTRequest", http.StatusBadRequest,
		"The body of your POST request is not well-formed multipart/form-data. "+detail, cause)
}

// readPostForm reads body's fields up to the file part. size is the
// request's Content-Length.
func readPostForm(body io.Reader, contentType string, size int64) (*postForm, error) {
	_, params, err := mime.ParseMediaType(contentType)
	boundary := params["boundary"]
	if err != nil || boundary == "" || len(boundary) > 70 {
		return nil, errMalformedPOST("The boundary is missing or invalid.", err)
	}
	if size < 0 {
		return nil, newS3Error("MissingContentLength", http.StatusLengthRequired,
			"You must provide the Content-Length HTTP header.", nil)
	}
	cr := &countReader{r: io.LimitReader(body, size)}
	br := bufio.NewReaderSize(cr, 4096)
	f := &postForm{fields: map[string]string{}}
	delim := "\r\n--" + boundary
	if err := skipPreamble(br, "--"+boundary); err != nil {
		return nil, err
	}
	for {
		if cr.n-int64(br.Buffered()) > maxFormFields {
			return nil, newS3Error("MaxPostPreDataLengthExceededError", http.StatusBadRequest,
				"Your POST request fields preceding the upload file were too large.", nil)
		}
		hdr, err := readPartHeader(br)
		if err != nil {
			return nil, err
		}
		name, filename, err := partName(hdr)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(name, "file") {
			f.filename = filename
			f.file, err = fileAt(br, size-(cr.n-int64(br.Buffered())), delim)
			return f, err
		}
		value, more, err := readField(br, delim)
		if err != nil {
			return nil, err
		}
		lname := strings.ToLower(name)
		if _, dup := f.fields[lname]; dup {
			return nil, newS3Error("InvalidArgument", http.StatusBadRequest,
				"Bucket POST has the field "+quote(name)+" more than once.", nil)
		}
		f.fields[lname] = value
		if !more {
			return nil, newS3Error("InvalidArgument", http.StatusBadRequest,
				"POST requires exactly one file upload per request.", nil)
		}
	}
}

// fileAt is the file part whose contents start at br, with rest bytes of
// the body left: all of them but the closing delimiter.
func fileAt(br *bufio.Reader, rest int64, delim string) (*formFile, error) {
	closing := delim + "--\r\n"
	n := rest - int64(len(closing))
	if n < 0 {
		return nil, errMalformedPOST("The file part ends without the closing delimiter.", nil)
	}
	return &formFile{src: br, left: n, delim: []byte(delim), closing: closing}, nil
}

// skipPreamble reads up to and including the first delimiter line, within
// maxFormFields bytes.
func skipPreamble(br *bufio.Reader, first string) error {
	for read := 0; read < maxFormFields; {
		line, err := readLine(br)
		if err != nil {
			return errMalformedPOST("The first boundary is missing.", err)
		}
		read += len(line) + 1
		if strings.TrimRight(line, " \t\r") == first {
			return nil
		}
	}
	return errMalformedPOST("The first boundary is missing.", nil)
}

// errLongLine is a form line longer than the reader's buffer: no form a
// client writes has one before its file.
var errLongLine = errors.New("line too long")

// readLine reads one line, without its LF, of at most br's buffer size, so
// that a body without line breaks is never accumulated.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", errLongLine
	case err != nil:
		return "", err
	}
	return string(line[:len(line)-1]), nil
}

// readPartHeader reads a part's header lines up to the empty line that ends
// them, each bounded by readLine and their count by maxPartHeaders.
func readPartHeader(br *bufio.Reader) (textproto.MIMEHeader, error) {
	h := textproto.MIMEHeader{}
	for range maxPartHeaders {
		line, err := readLine(br)
		if err != nil {
			return nil, errMalformedPOST("A part's headers cannot be read.", err)
		}
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			return h, nil
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, errMalformedPOST("A part's header line has no colon.", nil)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return nil, errMalformedPOST("A part has too many headers.", nil)
}

// maxPartHeaders bounds a form part's header lines; a browser writes two.
const maxPartHeaders = 16

// partName is a part's form field name and filename.
func partName(h textproto.MIMEHeader) (string, string, error) {
	disp, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil || !strings.EqualFold(disp, "form-data") || params["name"] == "" {
		return "", "", errMalformedPOST("A part has no form-data Content-Disposition with a name.", err)
	}
	return params["name"], params["filename"], nil
}

// readField reads a field's value up to delim, then what follows the
// delimiter: CRLF (more parts, more true) or "--" (the end).
func readField(br *bufio.Reader, delim string) (string, bool, error) {
	var b []byte
	for !bytes.HasSuffix(b, []byte(delim)) {
		c, err := br.ReadByte()
		if err != nil {
			return "", false, errMalformedPOST("A field is not followed by a boundary.", err)
		}
		if b = append(b, c); len(b) > maxFormFields {
			return "", false, newS3Error("MaxPostPreDataLengthExceededError", http.StatusBadRequest,
				"Your POST request fields preceding the upload file were too large.", nil)
		}
	}
	var next [2]byte
	if _, err := io.ReadFull(br, next[:]); err != nil {
		return "", false, errMalformedPOST("A boundary is cut short.", err)
	}
	value := string(b[:len(b)-len(delim)])
	switch string(next[:]) {
	case "\r\n":
		return value, true, nil
	case "--":
		return value, false, nil
	}
	return "", false, errMalformedPOST("A boundary is followed by neither CRLF nor \"--\".", nil)
}

// countReader counts the bytes read from r.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// errFileNotLast says the file part is followed by something other than the
// closing delimiter: another field, or a body that does not end as its
// Content-Length says.
var errFileNotLast = errors.New("the file is not the last field of the form, or the form does not end with its closing boundary")

// formFile yields exactly left bytes of the file part, then checks that the
// body ends with the closing delimiter, and only then returns io.EOF. Any
// delimiter within the file's bytes means the file was not the last field:
// an error, before those bytes could be taken as file contents.
type formFile struct {
	src     io.Reader
	left    int64
	delim   []byte
	closing string
	tail    []byte // the last len(delim)-1 bytes yielded, to find a delimiter across reads
}

func (f *formFile) Read(p []byte) (int, error) {
	if f.left == 0 {
		return 0, f.finish()
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.src.Read(p)
	f.left -= int64(n)
	if err := f.scan(p[:n]); err != nil {
		return 0, err
	}
	switch {
	case err == io.EOF && f.left > 0:
		return n, io.ErrUnexpectedEOF
	case err == io.EOF:
		err = nil
	}
	return n, err
}

// scan fails if a delimiter ends within b or straddles the previous read.
func (f *formFile) scan(b []byte) error {
	k := len(f.delim) - 1
	edge := append(f.tail, b[:min(len(b), k)]...)
	if bytes.Contains(edge, f.delim) || bytes.Contains(b, f.delim) {
		return errMalformedPOST("The file must be the last field of the form.", errFileNotLast)
	}
	if len(b) >= k {
		edge = b
	}
	f.tail = append(f.tail[:0], edge[max(0, len(edge)-k):]...)
	return nil
}

// finish reads what follows the file: exactly the closing delimiter.
func (f *formFile) finish() error {
	rest, err := io.ReadAll(io.LimitReader(f.src, int64(len(f.closing))+1))
	if err != nil {
		return fmt.Errorf("reading the end of the form: %w", err)
	}
	if string(rest) != f.closing {
		return errMalformedPOST("The file must be the last field, and the form must end with \"--BOUNDARY--\\r\\n\".", errFileNotLast)
	}
	return io.EOF
}
