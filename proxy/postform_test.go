package proxy

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadPostForm reads hand-made forms, whole and one byte at a time (a
// delimiter split across reads must still be found).
func TestReadPostForm(t *testing.T) {
	const ct = "multipart/form-data; boundary=XyZ"
	field := func(name, value string) string {
		return "--XyZ\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n"
	}
	file := func(content string) string {
		return "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\n" + content + "\r\n--XyZ--\r\n"
	}
	tests := []struct {
		name, body string
		file       string // the file's contents when accepted
		code       string // the error, from reading the fields or else the file
	}{
		{"plain", field("key", "k") + file("hello"), "hello", ""},
		{"preamble", "ignored\r\n" + field("key", "k") + file("hello"), "hello", ""},
		{"multi-line value", field("key", "a\r\nb") + file("x"), "x", ""},
		{"boundary-like content", field("key", "k") + file("--XyZ\r\n-XyZ \r\n--Xy"), "--XyZ\r\n-XyZ \r\n--Xy", ""},
		{"empty file", field("key", "k") + file(""), "", ""},
		{"no file", field("key", "k") + "--XyZ--\r\n", "", "InvalidArgument"},
		{"duplicate field", field("key", "k") + field("KEY", "k") + file("x"), "", "InvalidArgument"},
		{"no first boundary", "Content-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n", "", "MalformedPOSTRequest"},
		{"no disposition", "--XyZ\r\nContent-Type: text/plain\r\n\r\nk\r\n" + file("x"), "", "MalformedPOSTRequest"},
		{"long header line", "--XyZ\r\nContent-Disposition: form-data; name=\"" + strings.Repeat("a", 5000) + "\"\r\n\r\nk\r\n" + file("x"), "", "MalformedPOSTRequest"},
		{"too many headers", "--XyZ\r\n" + strings.Repeat("X-A: b\r\n", 20) + "\r\n" + file("x"), "", "MalformedPOSTRequest"},
		{"fields too large", field("key", strings.Repeat("a", maxFormFields+1)) + file("x"), "", "MaxPostPreDataLengthExceededError"},
		{"file not last", field("key", "k") + strings.TrimSuffix(file("x"), "--\r\n") + "\r\n" + field("late", "v")[len("--XyZ\r\n"):] + "--XyZ--\r\n", "", "MalformedPOSTRequest"},
		{"no CRLF at the end", field("key", "k") + strings.TrimSuffix(file("hello"), "\r\n"), "", "MalformedPOSTRequest"},
		{"epilogue", field("key", "k") + file("hello") + "epilogue", "", "MalformedPOSTRequest"},
	}
	for _, tc := range tests {
		for _, split := range []bool{false, true} {
			var body io.Reader = strings.NewReader(tc.body)
			if split {
				body = iotest.OneByteReader(body)
			}
			form, err := readPostForm(body, ct, int64(len(tc.body)))
			var got []byte
			if err == nil {
				got, err = io.ReadAll(form.file)
			}
			switch {
			case tc.code == "" && err != nil:
				t.Errorf("%s (split %v): %v", tc.name, split, err)
			case tc.code != "" && (err == nil || asS3Error(err).Code != tc.code):
				t.Errorf("%s (split %v): error %v, want %s", tc.name, split, err, tc.code)
			case tc.code == "" && !bytes.Equal(got, []byte(tc.file)):
				t.Errorf("%s (split %v): file %q, want %q", tc.name, split, got, tc.file)
			case tc.code == "" && (form.fields["key"] == "" || form.filename != "f.txt"):
				t.Errorf("%s (split %v): fields %v, filename %q", tc.name, split, form.fields, form.filename)
			}
		}
	}
}

// FuzzReadPostForm: whatever the body, reading a form never panics nor
// reads past its Content-Length, and a file it accepts holds no delimiter
// (no later field could have been taken for file contents). Its seeds run
// with the unit tests; run longer with
//
//	go test -run XXX -fuzz FuzzReadPostForm -fuzztime 5m ./proxy/
func FuzzReadPostForm(f *testing.F) {
	f.Add([]byte("--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\ndata\r\n--XyZ--\r\n"), int64(-1))
	f.Add([]byte("--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n\r\n--XyZ\r\n--XyZ--\r\n"), int64(0))
	f.Add([]byte("--XyZ\r\n\r\n--XyZ--"), int64(3))
	f.Fuzz(func(t *testing.T, body []byte, sizeDelta int64) {
		size := int64(len(body)) + sizeDelta%4
		src := &countReader{r: bytes.NewReader(body)}
		form, err := readPostForm(src, "multipart/form-data; boundary=XyZ", size)
		if err != nil {
			return
		}
		file, err := io.ReadAll(form.file)
		if src.n > max(size, 0) {
			t.Fatalf("read %d bytes of a %d-byte body", src.n, size)
		}
		if err == nil && bytes.Contains(file, []byte("\r\n--XyZ")) {
			t.Fatalf("file %q holds a delimiter", file)
		}
	})
}
