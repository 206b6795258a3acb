package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/s3seal/s3seal/internal/store"
)

// postSpec is one browser form upload: a policy and the form sent with it.
type postSpec struct {
	expires   time.Duration // from now; 0 means an hour
	conds     []any         // besides bucket and the signature fields
	fields    [][2]string   // besides key, policy and the signature fields, in order
	key       string        // "" means "up/obj"
	filename  string
	file      []byte
	after     [][2]string // fields after the file
	ak        string      // "" means the client's
	secret    string      // "" means the client's
	omit      string      // a field left out
	tamper    bool        // the policy changed after signing
	noClosing bool        // the form ends without CRLF after its closing delimiter
}

// postRequest builds the form of s, signed with minio-go's POST policy
// signer (an implementation independent of s3seal's).
func (e *env) postRequest(t *testing.T, s postSpec) *http.Request {
	t.Helper()
	now := time.Now().UTC()
	ak := s.ak
	if ak == "" {
		ak = clientAK
	}
	cred := ak + "/" + now.Format("20060102") + "/us-east-1/s3/aws4_request"
	date := now.Format("20060102T150405Z")
	exp := s.expires
	if exp == 0 {
		exp = time.Hour
	}
	conds := append([]any{map[string]string{"bucket": testBucket}, []string{"starts-with", "$key", "up/"},
		map[string]string{"x-amz-algorithm": "AWS4-HMAC-SHA256"}, map[string]string{"x-amz-credential": cred},
		map[string]string{"x-amz-date": date}}, s.conds...)
	doc, err := json.Marshal(map[string]any{"expiration": now.Add(exp).Format("2006-01-02T15:04:05.000Z"), "conditions": conds})
	if err != nil {
		t.Fatal(err)
	}
	policy := base64.StdEncoding.EncodeToString(doc)
	secret := s.secret
	if secret == "" {
		secret = clientSecret
	}
	sig := signer.PostPresignSignatureV4(policy, now, secret, "us-east-1")
	if s.tamper {
		policy = base64.StdEncoding.EncodeToString(bytes.Replace(doc, []byte("up/"), []byte("u/"), 1))
	}
	key := s.key
	if key == "" {
		key = "up/obj"
	}
	fields := append([][2]string{{"key", key}, {"x-amz-algorithm", "AWS4-HMAC-SHA256"}, {"x-amz-credential", cred},
		{"x-amz-date", date}, {"policy", policy}, {"x-amz-signature", sig}}, s.fields...)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range fields {
		if f[0] != s.omit {
			mw.WriteField(f[0], f[1])
		}
	}
	if s.omit != "file" {
		fw, _ := mw.CreateFormFile("file", s.filename)
		fw.Write(s.file)
	}
	for _, f := range s.after {
		mw.WriteField(f[0], f[1])
	}
	mw.Close()
	b := body.Bytes()
	if s.noClosing {
		b = bytes.TrimSuffix(b, []byte("\r\n"))
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/"+testBucket, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req
}

func (e *env) post(t *testing.T, s postSpec) (*http.Response, []byte) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(e.postRequest(t, s))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.drain(t, 1)
	e.store.quiesce()
	return resp, b
}

// Accepted forms store the file encrypted, with the form's headers, and
// answer as S3 does.
func TestPostObjectAccepted(t *testing.T) {
	file := bytes.Repeat([]byte("browser upload "), 5000)
	tests := []struct {
		name   string
		spec   postSpec
		key    string
		status int
		check  func(t *testing.T, resp *http.Response, body []byte)
	}{
		{name: "default 204", spec: postSpec{}, key: "up/obj", status: 204},
		{name: "filename", spec: postSpec{key: "up/${filename}", filename: "photo.jpg"}, key: "up/photo.jpg", status: 204},
		{name: "status 200", spec: postSpec{conds: []any{map[string]string{"success_action_status": "200"}},
			fields: [][2]string{{"success_action_status", "200"}}}, key: "up/obj", status: 200,
			check: func(t *testing.T, _ *http.Response, body []byte) {
				if len(body) != 0 {
					t.Errorf("body %q", body)
				}
			}},
		{name: "status 201", spec: postSpec{conds: []any{[]string{"eq", "$success_action_status", "201"}},
			fields: [][2]string{{"success_action_status", "201"}}}, key: "up/obj", status: 201,
			check: func(t *testing.T, _ *http.Response, body []byte) {
				if !strings.Contains(string(body), "<PostResponse><Location>") || !strings.Contains(string(body), "<Key>up/obj</Key>") ||
					!strings.Contains(string(body), "<ETag>&#34;") {
					t.Errorf("body %s", body)
				}
			}},
		{name: "redirect", spec: postSpec{conds: []any{[]string{"starts-with", "$success_action_redirect", "https://app.example/"}},
			fields: [][2]string{{"success_action_redirect", "https://app.example/done?x=1"}}}, key: "up/obj", status: 303,
			check: func(t *testing.T, resp *http.Response, _ []byte) {
				u, err := url.Parse(resp.Header.Get("Location"))
				q := u.Query()
				if err != nil || u.Host != "app.example" || q.Get("x") != "1" || q.Get("bucket") != testBucket ||
					q.Get("key") != "up/obj" || q.Get("etag") == "" {
					t.Errorf("Location %q", resp.Header.Get("Location"))
				}
			}},
		{name: "headers and metadata", spec: postSpec{
			conds: []any{[]string{"starts-with", "$Content-Type", "image/"}, map[string]string{"x-amz-meta-color": "blue"},
				[]string{"starts-with", "$cache-control", ""}, []any{"content-length-range", 1, 1 << 20}},
			fields: [][2]string{{"Content-Type", "image/png"}, {"x-amz-meta-color", "blue"}, {"Cache-Control", "no-cache"},
				{"x-ignore-me", "anything"}}}, key: "up/obj", status: 204,
			check: func(t *testing.T, _ *http.Response, _ []byte) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.spec.file = file
			resp, body := e.post(t, tc.spec)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if resp.Header.Get("ETag") == "" || resp.Header.Get("X-Amz-Server-Side-Encryption") != "aws:kms" {
				t.Errorf("headers %v", resp.Header)
			}
			stored := e.store.get(testBucket, tc.key)
			if stored == nil || bytes.Contains(stored.data, file[:64]) {
				t.Fatalf("not stored encrypted under %q", tc.key)
			}
			got, out, err := e.get(t, tc.key)
			if err != nil || !bytes.Equal(got, file) {
				t.Fatalf("read back: %v (%d bytes)", err, len(got))
			}
			for _, f := range tc.spec.fields {
				if strings.EqualFold(f[0], "content-type") && aws.ToString(out.ContentType) != f[1] {
					t.Errorf("Content-Type %q", aws.ToString(out.ContentType))
				}
				if f[0] == "x-amz-meta-color" && out.Metadata["color"] != f[1] {
					t.Errorf("metadata %v", out.Metadata)
				}
			}
			if tc.check != nil {
				tc.check(t, resp, body)
			}
		})
	}
}

// Each violated condition is refused with S3's error, and nothing is
// stored.
func TestPostObjectRefused(t *testing.T) {
	small := []byte("a small file")
	tests := []struct {
		name   string
		spec   postSpec
		status int
		code   string
		msg    string
	}{
		{"expired", postSpec{expires: -time.Minute}, 403, "AccessDenied", "Invalid according to Policy: Policy expired."},
		{"wrong key prefix", postSpec{key: "other/obj"}, 403, "AccessDenied", `Policy Condition failed: ["starts-with", "$key", "up/"]`},
		{"eq on metadata", postSpec{conds: []any{map[string]string{"x-amz-meta-color": "blue"}},
			fields: [][2]string{{"x-amz-meta-color", "red"}}}, 403, "AccessDenied", "Policy Condition failed"},
		{"eq on a missing field", postSpec{conds: []any{map[string]string{"x-amz-meta-color": "blue"}}}, 403, "AccessDenied", "Policy Condition failed"},
		{"starts-with Content-Type", postSpec{conds: []any{[]string{"starts-with", "$Content-Type", "image/"}},
			fields: [][2]string{{"Content-Type", "text/html"}}}, 403, "AccessDenied", "Policy Condition failed"},
		{"success_action_status", postSpec{conds: []any{map[string]string{"success_action_status": "201"}},
			fields: [][2]string{{"success_action_status", "200"}}}, 403, "AccessDenied", "Policy Condition failed"},
		{"redirect", postSpec{conds: []any{[]string{"starts-with", "$success_action_redirect", "https://app.example/"}},
			fields: [][2]string{{"success_action_redirect", "https://evil.example/"}}}, 403, "AccessDenied", "Policy Condition failed"},
		{"bucket", postSpec{conds: []any{map[string]string{"bucket": "other"}}}, 403, "AccessDenied", "Policy Condition failed"},
		{"extra field", postSpec{fields: [][2]string{{"x-amz-meta-extra", "x"}}}, 403, "AccessDenied",
			"Invalid according to Policy: Extra input fields: x-amz-meta-extra"},
		{"extra acl", postSpec{fields: [][2]string{{"acl", "public-read"}}}, 403, "AccessDenied", "Extra input fields: acl"},
		{"too large", postSpec{conds: []any{[]any{"content-length-range", 0, 5}}}, 400, "EntityTooLarge", ""},
		{"too small", postSpec{conds: []any{[]any{"content-length-range", 100, 200}}}, 400, "EntityTooSmall", ""},
		{"bad signature", postSpec{secret: "wrong"}, 403, "SignatureDoesNotMatch", ""},
		{"tampered policy", postSpec{tamper: true}, 403, "SignatureDoesNotMatch", ""},
		{"missing key", postSpec{omit: "key"}, 400, "InvalidArgument", "Bucket POST must contain a field named 'key'"},
		{"missing signature field", postSpec{omit: "x-amz-date"}, 400, "InvalidArgument", "x-amz-date"},
		{"anonymous", postSpec{omit: "x-amz-signature"}, 403, "AccessDenied", ""},
		{"no file", postSpec{omit: "file"}, 400, "InvalidArgument", "POST requires exactly one file upload per request."},
		{"file not last", postSpec{after: [][2]string{{"x-amz-meta-late", "x"}}}, 400, "MalformedPOSTRequest", ""},
		{"form not closed with CRLF", postSpec{noClosing: true}, 400, "MalformedPOSTRequest", ""},
		{"reserved metadata", postSpec{conds: []any{map[string]string{"x-amz-meta-s3seal-k": "planted"}},
			fields: [][2]string{{"x-amz-meta-s3seal-k", "planted"}}}, 400, "InvalidArgument", "reserved"},
		{"checksum field", postSpec{conds: []any{map[string]string{"content-md5": "x"}},
			fields: [][2]string{{"Content-MD5", "x"}}}, 400, "InvalidArgument", "content-md5"},
		{"dot segment", postSpec{key: "up/../x"}, 400, "InvalidArgument", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.spec.file = small
			resp, body := e.post(t, tc.spec)
			if resp.StatusCode != tc.status || store.ErrorCode(body) != tc.code || !strings.Contains(string(body), xmlEscape(tc.msg)) {
				t.Fatalf("%d %s, want %d %s %q", resp.StatusCode, body, tc.status, tc.code, tc.msg)
			}
			if n := e.store.count(); n != 0 {
				t.Fatalf("%d object(s) stored", n)
			}
		})
	}
}

// A form POST that is not a browser upload (a query, another operation)
// stays refused, and a bucket POST without a form is not an upload.
func TestPostObjectOtherPosts(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		path, contentType string
		status            int
	}{
		{"/" + testBucket + "?unknown", "multipart/form-data; boundary=b", 501},
		{"/" + testBucket, "application/octet-stream", 501},
	} {
		req := e.signedRequest(t, http.MethodPost, tc.path, strings.NewReader("x"), 1, http.Header{"Content-Type": {tc.contentType}})
		if status, code, body := e.send(t, req); status != tc.status {
			t.Errorf("%s %s: %d %s\n%s", tc.path, tc.contentType, status, code, body)
		}
	}
}

// A form's credential is a principal's: its bucket and CMK grants apply as
// to a PutObject, and the form's SSE-KMS fields choose the CMK.
func TestPostObjectPrincipals(t *testing.T) {
	e, second, _, _ := accessEnv(t)
	sse := postSpec{conds: []any{map[string]string{"x-amz-server-side-encryption": "aws:kms"},
		map[string]string{"x-amz-server-side-encryption-aws-kms-key-id": second}},
		fields: [][2]string{{"x-amz-server-side-encryption", "aws:kms"}, {"x-amz-server-side-encryption-aws-kms-key-id", second}}}
	tests := []struct {
		name, who string
		spec      postSpec
		status    int
		cmk       string
	}{
		{"alice, default CMK", "alice", postSpec{}, 204, e.keyID},
		{"bob, not granted the default CMK", "bob", postSpec{}, 403, ""},
		{"bob, his CMK by SSE fields", "bob", sse, 204, second},
		{"carol, no grant on the bucket", "carol", postSpec{}, 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.ak, tc.spec.secret = strings.ToUpper(tc.who), tc.who+"-secret"
			tc.spec.key, tc.spec.file = "up/"+tc.who, []byte("from "+tc.who)
			resp, body := e.post(t, tc.spec)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			o := e.store.get(testBucket, tc.spec.key)
			if tc.cmk == "" {
				if o != nil || store.ErrorCode(body) != "AccessDenied" {
					t.Fatalf("stored %v, answer %s", o != nil, body)
				}
				return
			}
			meta, err := parseMetadata(o.header)
			if err != nil || meta.KeyID != tc.cmk {
				t.Fatalf("stored under %q (%v), want %q", meta.KeyID, err, tc.cmk)
			}
		})
	}
}

// Virtual-hosted style: the bucket is the host's, and so is Location.
func TestPostObjectVirtualHosted(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Domain = "s3.test" })
	req := e.postRequest(t, postSpec{file: []byte("virtual"), conds: []any{map[string]string{"success_action_status": "201"}},
		fields: [][2]string{{"success_action_status", "201"}}})
	req.URL.Path = "/"
	req.Host = testBucket + ".s3.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.drain(t, 1)
	if want := "http://" + testBucket + ".s3.test/up/obj"; resp.StatusCode != 201 || resp.Header.Get("Location") != want ||
		!strings.Contains(string(body), "<Location>"+want+"</Location>") {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	if got, _, err := e.get(t, "up/obj"); err != nil || string(got) != "virtual" {
		t.Fatalf("read back %q %v", got, err)
	}
}

// aws-sdk-go-v2's PresignPostObject makes a form s3seal takes, and its
// content-length-range is enforced.
func TestPostObjectAWSSDK(t *testing.T) {
	e := newEnv(t)
	presigned, err := s3.NewPresignClient(e.client).PresignPostObject(bg(),
		&s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("sdk/obj")},
		func(o *s3.PresignPostOptions) { o.Conditions = []any{[]any{"content-length-range", 1, 64}} })
	if err != nil {
		t.Fatal(err)
	}
	send := func(file []byte) (int, []byte) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for k, v := range presigned.Values {
			mw.WriteField(k, v)
		}
		fw, _ := mw.CreateFormFile("file", "obj")
		fw.Write(file)
		mw.Close()
		resp, err := http.Post(presigned.URL, mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.drain(t, 1)
		return resp.StatusCode, b
	}
	if status, b := send(bytes.Repeat([]byte("x"), 65)); status != 400 || store.ErrorCode(b) != "EntityTooLarge" {
		t.Fatalf("65 bytes: %d %s", status, b)
	}
	if status, b := send([]byte("from the Go SDK")); status != 204 {
		t.Fatalf("%d %s", status, b)
	}
	if got, _, err := e.get(t, "sdk/obj"); err != nil || string(got) != "from the Go SDK" {
		t.Fatalf("read back %q %v", got, err)
	}
}
