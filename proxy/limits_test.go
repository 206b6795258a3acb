package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/internal/store"
)

// stallTimeout is the ClientTimeout of the tests of stalled clients: short,
// with every wait on it bounded well above it.
const stallTimeout = 300 * time.Millisecond

// sendStalled writes req's request line and headers and the first sent
// bytes of its body over a connection of its own, then nothing more, and
// returns the answer (status 0 if the connection closed without one).
func sendStalled(t *testing.T, addr string, req *http.Request, sent int) (int, string) {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	head := bytes.Index(wire.Bytes(), []byte("\r\n\r\n")) + 4
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(wire.Bytes()[:head+sent]); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(15 * time.Second)) // far above stallTimeout: only a hang fails
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestClientBodyStalls: a body that stops before its end is cut off after
// ClientTimeout with 400 RequestTimeout, whatever its framing and route,
// and the store never completes a write of it.
func TestClientBodyStalls(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientTimeout = stallTimeout })
	uploadID := e.createUpload(t, "mp")
	del := []byte(`<Delete><Object><Key>obj</Key></Object></Delete>`)
	tests := []struct {
		name, method, path string
		body               []byte
	}{
		{"PutObject", "PUT", "/bkt/new", randomBytes(200000, 3)},
		{"UploadPart", "PUT", "/bkt/mp?partNumber=1&uploadId=" + uploadID, randomBytes(100000, 4)},
		{"DeleteObjects", "POST", "/bkt?delete", del},
	}
	addr := e.srv.Listener.Addr().String()
	for _, tt := range tests {
		for mode := range modeNames {
			t.Run(tt.name+"/"+modeNames[mode], func(t *testing.T) {
				before := len(e.store.recorded())
				req := e.wireRequest(t, tt.method, tt.path, tt.body, bodyMode(mode), false, nil)
				status, body := sendStalled(t, addr, req, len(tt.body)/2)
				e.drain(t, 1)
				if status != http.StatusBadRequest || store.ErrorCode([]byte(body)) != "RequestTimeout" {
					t.Errorf("answered %d %s, want 400 RequestTimeout", status, body)
				}
				if writes, completed := e.store.writesSince(before); completed {
					t.Errorf("a stalled body made the store complete %d write(s)", len(writes))
				}
			})
		}
	}
	if e.store.get(testBucket, "new") != nil {
		t.Error("a stalled PutObject left an object")
	}
}

// TestPostFormStalls: a POST form whose fields (read before the client is
// authenticated) stop, or trickle for longer than ClientTimeout in all, or
// whose file stops, gets 400 RequestTimeout and stores nothing.
func TestPostFormStalls(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientTimeout = stallTimeout })
	form := func(t *testing.T) ([]byte, *http.Request) {
		req := e.postRequest(t, postSpec{file: randomBytes(100000, 5)})
		b, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b, req
	}
	fieldsEnd := func(b []byte) int { return bytes.Index(b, []byte(`name="file"`)) }
	t.Run("fields stop", func(t *testing.T) {
		b, req := form(t)
		req.Body = io.NopCloser(bytes.NewReader(b))
		status, body := sendStalled(t, e.srv.Listener.Addr().String(), req, fieldsEnd(b)/2)
		e.drain(t, 1)
		if status != http.StatusBadRequest || store.ErrorCode([]byte(body)) != "RequestTimeout" {
			t.Errorf("answered %d %s, want 400 RequestTimeout", status, body)
		}
	})
	t.Run("file stops", func(t *testing.T) {
		b, req := form(t)
		req.Body = io.NopCloser(bytes.NewReader(b))
		status, body := sendStalled(t, e.srv.Listener.Addr().String(), req, fieldsEnd(b)+50000)
		e.drain(t, 1)
		if status != http.StatusBadRequest || store.ErrorCode([]byte(body)) != "RequestTimeout" {
			t.Errorf("answered %d %s, want 400 RequestTimeout", status, body)
		}
	})
	t.Run("fields trickle", func(t *testing.T) {
		b, req := form(t)
		// A byte every stallTimeout/6: progress all along, and the fields
		// would take far longer than stallTimeout in all.
		req.Body = io.NopCloser(io.MultiReader(&trickle{b: b[:fieldsEnd(b)], every: stallTimeout / 6}, bytes.NewReader(b[fieldsEnd(b):])))
		req.ContentLength = int64(len(b))
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.drain(t, 1)
		if resp.StatusCode != http.StatusBadRequest || store.ErrorCode(body) != "RequestTimeout" {
			t.Errorf("answered %d %s, want 400 RequestTimeout", resp.StatusCode, body)
		}
	})
	if n := e.store.count(); n != 0 {
		t.Errorf("the store holds %d objects", n)
	}
}

// trickle yields b a byte at a time, one every every, up to a bounded
// count of bytes (then io.EOF early: the test is over by then).
type trickle struct {
	b     []byte
	every time.Duration
	n     int
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.b) == 0 || r.n >= 100 {
		return 0, io.EOF
	}
	time.Sleep(r.every)
	p[0], r.b = r.b[0], r.b[1:]
	r.n++
	return 1, nil
}

// TestSlowBodyKeepsMoving: an upload slower than ClientTimeout in all, but
// never idle for as long, is stored whole.
func TestSlowBodyKeepsMoving(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientTimeout = stallTimeout })
	data := randomBytes(8*1024, 6)
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < len(data); i += 1024 {
			time.Sleep(stallTimeout / 4)
			if _, err := pw.Write(data[i : i+1024]); err != nil {
				return
			}
		}
		pw.Close()
	}()
	status, body, _ := e.sendResp(t, e.signedRequest(t, "PUT", "/bkt/slow", pr, int64(len(data)), nil))
	if status != http.StatusOK {
		t.Fatalf("answered %d %s", status, body)
	}
	if got, _, err := e.get(t, "slow"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, %v", len(got), err)
	}
}

// TestRefusedBodyUnread: a request refused before its body is read (here,
// unsigned) does not hold its connection once the body stops coming: net/
// http discards the rest under the same bound, then closes.
func TestRefusedBodyUnread(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientTimeout = stallTimeout })
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("PUT /bkt/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab"))
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	e.drain(t, 1)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("answered %d, want 403", resp.StatusCode)
	}
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Errorf("the connection stayed open: %v", err)
	}
}

// TestRequestSizeLimits: oversized request targets, header sections and
// keys are refused with S3 XML errors before the store sees anything;
// those just within the limits pass.
func TestRequestSizeLimits(t *testing.T) {
	e := newEnv(t)
	e.put(t, "obj", []byte("an object"), nil)
	long := strings.Repeat("k", maxKeyLength)
	tests := []struct {
		name   string
		path   string
		header http.Header
		status int
		code   string
	}{
		{"key of 1024 bytes", "/bkt/" + long, nil, http.StatusOK, ""},
		{"key of 1025 bytes", "/bkt/" + long + "x", nil, http.StatusBadRequest, "KeyTooLongError"},
		{"key of 1024 bytes, percent-encoded", "/bkt/" + strings.Repeat("%C3%A9", maxKeyLength/2), nil, http.StatusOK, ""},
		{"key of 1026 bytes, percent-encoded", "/bkt/" + strings.Repeat("%C3%A9", maxKeyLength/2+1), nil, http.StatusBadRequest, "KeyTooLongError"},
		{"request URI within the limit", "/bkt/obj?x-id=" + strings.Repeat("a", maxRequestURI-100), nil, http.StatusOK, ""},
		{"request URI too long", "/bkt/obj?x-id=" + strings.Repeat("a", maxRequestURI), nil, http.StatusRequestURITooLong, "RequestURITooLong"},
		{"headers within 8 KiB", "/bkt/obj", http.Header{"X-Pad": {strings.Repeat("a", 6<<10)}}, http.StatusOK, ""},
		{"headers over 8 KiB", "/bkt/obj", http.Header{"X-Pad": {strings.Repeat("a", maxHeaderSection)}}, http.StatusBadRequest, "RequestHeaderSectionTooLarge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, body := http.MethodGet, []byte(nil)
			if tt.status == http.StatusOK && strings.HasPrefix(tt.name, "key") {
				method, body = http.MethodPut, []byte("data")
			}
			before := len(e.store.recorded())
			req := e.signedRequest(t, method, tt.path, bytes.NewReader(body), int64(len(body)), tt.header)
			status, code, doc := e.send(t, req)
			if status != tt.status || code != tt.code {
				t.Errorf("answered %d %s, want %d %q", status, doc, tt.status, tt.code)
			}
			if tt.code != "" && len(e.store.recorded()) != before {
				t.Errorf("the store saw %d requests", len(e.store.recorded())-before)
			}
		})
	}
}

// TestRequestSizeLimitsUnsigned: the size limits hold before any
// authentication, on an unsigned request too.
func TestRequestSizeLimitsUnsigned(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		target string
		header http.Header
		code   string
	}{
		{"/bkt/obj?x=" + strings.Repeat("a", maxRequestURI), nil, "RequestURITooLong"},
		{"/bkt/obj", http.Header{"X-Pad": {strings.Repeat("a", 9<<10)}}, "RequestHeaderSectionTooLarge"},
	} {
		u, _ := url.Parse(e.srv.URL + tt.target)
		req := &http.Request{Method: "GET", URL: u, Header: tt.header, Host: u.Host}
		status, code, doc := e.send(t, req)
		if status/100 != 4 || code != tt.code {
			t.Errorf("%.40s: answered %d %s, want %s", tt.target, status, doc, tt.code)
		}
	}
}

// TestClientBodyStallsHTTP2: over HTTP/2 (s3seal with TLS), the deadline
// is the stream's: a stalled body gets 400 RequestTimeout just the same.
func TestClientBodyStallsHTTP2(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientTimeout = stallTimeout })
	srv := httptest.NewUnstartedServer(e.proxy)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(randomBytes(1000, 7)) // then nothing: the body stops at 1000 of 200000 bytes
	req := e.signedRequest(t, "PUT", "/bkt/h2", pr, 200000, nil)
	u, _ := url.Parse(srv.URL)
	req.URL.Scheme, req.URL.Host, req.Host = u.Scheme, u.Host, u.Host
	sign(t, req)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusBadRequest || store.ErrorCode(body) != "RequestTimeout" {
		t.Errorf("answered %s %d %s, want HTTP/2 400 RequestTimeout", resp.Proto, resp.StatusCode, body)
	}
	if e.store.get(testBucket, "h2") != nil {
		t.Error("a stalled upload left an object")
	}
}

// TestSlowReaderCut: a client that stops reading a download is cut off
// once a write has waited ClientTimeout, and its request ends (aborted);
// a client that reads slowly but steadily gets the whole object.
//
// A blocked write is woken only once a third or so of the socket's send
// buffer (up to 4 MiB here) has drained, so "steadily" means about 1.3
// MiB per ClientTimeout: the slow reader reads 5 MB/s under 1 s.
func TestSlowReaderCut(t *testing.T) {
	data := randomBytes(12<<20, 11) // well past the socket buffers of both ends
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		pause   time.Duration // between reads of 256 KiB; 0: none at all
		rcvbuf  int           // the client's socket buffer
	}{{"stops reading", stallTimeout, 0, 4 << 10}, {"reads slowly", time.Second, 50 * time.Millisecond, 128 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &recordingObserver{cipher: map[string]int64{}, cipherD: map[string]time.Duration{}}
			e := newEnv(t, func(c *Config) { c.ClientTimeout, c.Observer = tc.timeout, obs })
			e.put(t, "big", data, nil)
			e.drain(t, 1)
			d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
				return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, tc.rcvbuf) })
			}}
			conn, err := d.Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := e.signedRequest(t, "GET", "/"+testBucket+"/big", nil, 0, nil).Write(conn); err != nil {
				t.Fatal(err)
			}
			if tc.pause == 0 {
				e.drain(t, 1) // within 10 s, or it fails
				obs.mu.Lock()
				defer obs.mu.Unlock()
				if last := obs.requests[len(obs.requests)-1]; last != "GetObject 0" {
					t.Errorf("the request ended as %q, want aborted", last)
				}
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, buf := []byte{}, make([]byte, 256<<10)
			for err == nil {
				var n int
				n, err = io.ReadFull(resp.Body, buf)
				got = append(got, buf[:n]...)
				time.Sleep(tc.pause)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("read %d of %d bytes (%v)", len(got), len(data), err)
			}
		})
	}
}

// TestWriteDeadlineNotLeftOver: the write deadline an answer leaves on a
// kept-alive connection does not cut the connection's next request, its
// early 100 Continue included, however long after it comes.
func TestWriteDeadlineNotLeftOver(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientTimeout = stallTimeout })
	e.put(t, "k", []byte("data"), nil)
	e.drain(t, 1)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	send := func(req *http.Request) (int, bool) {
		var reused bool
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		e.drain(t, 1)
		return resp.StatusCode, reused
	}
	if status, _ := send(e.signedRequest(t, "GET", "/"+testBucket+"/k", nil, 0, nil)); status != http.StatusOK {
		t.Fatalf("GET: %d", status)
	}
	time.Sleep(3 * stallTimeout) // the GET's write deadline has passed
	put := e.signedRequest(t, "PUT", "/"+testBucket+"/empty", nil, 0, http.Header{"Expect": {"100-continue"}})
	if status, reused := send(put); status != http.StatusOK || !reused {
		t.Fatalf("PUT on the same connection: %d (reused: %v)", status, reused)
	}
}

// slowKeys makes GenerateDataKey wait: s3seal, not the client, is slow.
type slowKeys struct {
	kms.KeyService
	wait time.Duration
}

func (k slowKeys) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	time.Sleep(k.wait)
	return k.KeyService.GenerateDataKey(ctx, keyID, encCtx)
}

// pausingForwarder relays TCP to target; once armed, it holds the first
// answer that passes after bytes for pause: a slow store that keeps moving.
type pausingForwarder struct {
	target string
	after  int
	pause  time.Duration
	armed  atomic.Bool
}

func (f *pausingForwarder) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", f.target)
			if err != nil {
				return
			}
			defer s.Close()
			go io.Copy(s, c)
			buf, n := make([]byte, 4096), 0
			for {
				k, err := s.Read(buf)
				if k > 0 {
					if n < f.after && n+k >= f.after && f.armed.CompareAndSwap(true, false) {
						time.Sleep(f.pause)
					}
					n += k
					if _, err := c.Write(buf[:k]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// TestSlowS3sealHTTP2: over HTTP/2 the stream's deadlines are timers that
// fire whether or not a read or write is under way; a client that sends
// and reads at full speed must not be cut while s3seal itself waits (on a
// slow store's answer between pieces of a download, on the key service
// before it reads an upload's body) for longer than ClientTimeout.
func TestSlowS3sealHTTP2(t *testing.T) {
	pause := 3 * stallTimeout
	fwd := &pausingForwarder{after: 300 << 10, pause: pause}
	e := newEnv(t, func(c *Config) {
		c.ClientTimeout = stallTimeout
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		fwd.target = c.Upstream.Host
		go fwd.serve(ln)
		u := *c.Upstream
		u.Host = ln.Addr().String()
		c.Upstream = &u
	})
	srv := httptest.NewUnstartedServer(e.proxy)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	data, upload := randomBytes(1<<20, 12), randomBytes(4<<20, 13)
	e.put(t, "big", data, nil)
	e.drain(t, 1)
	e2 := newEnv(t, func(c *Config) { c.ClientTimeout = stallTimeout; c.Keys.Keys = slowKeys{c.Keys.Keys, pause} })
	srv2 := httptest.NewUnstartedServer(e2.proxy)
	srv2.EnableHTTP2 = true
	srv2.StartTLS()
	t.Cleanup(srv2.Close)
	for _, tt := range []struct {
		name   string
		e      *env
		srv    *httptest.Server
		method string
		path   string
		body   []byte
	}{
		{"GET, the store pauses mid-answer", e, srv, "GET", "/" + testBucket + "/big", nil},
		{"PUT, the key service pauses before the body is read", e2, srv2, "PUT", "/" + testBucket + "/new", upload},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fwd.armed.Store(true)
			req := tt.e.signedRequest(t, tt.method, tt.path, bytes.NewReader(tt.body), int64(len(tt.body)), nil)
			u, _ := url.Parse(tt.srv.URL)
			req.URL.Scheme, req.URL.Host, req.Host = u.Scheme, u.Host, u.Host
			sign(t, req)
			resp, err := tt.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("answered %s %d (%v) %.200s", resp.Proto, resp.StatusCode, err, body)
			}
			if tt.method == "GET" && !bytes.Equal(body, data) {
				t.Errorf("read %d of %d bytes", len(body), len(data))
			}
			if tt.method == "PUT" {
				if got, _, err := tt.e.get(t, "new"); err != nil || !bytes.Equal(got, upload) {
					t.Errorf("read back %d bytes, %v", len(got), err)
				}
			}
		})
	}
}

// TestUnreadBodyClosed: a request refused with its body unread (a GET
// that carries one) has that body closed, and so discarded by net/http,
// while the handler still runs; a body that stops does not hold the
// handler there, whatever the deadlines between reads are.
func TestUnreadBodyClosed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientTimeout = stallTimeout })
	e.put(t, "k", []byte("data"), nil)
	e.drain(t, 1)
	for _, sent := range []int{0, 2} {
		req := e.signedRequest(t, "GET", "/"+testBucket+"/k", bytes.NewReader(make([]byte, 1000)), 1000, nil)
		start := time.Now()
		status, body := sendStalled(t, e.srv.Listener.Addr().String(), req, sent)
		e.drain(t, 1)
		if status != http.StatusBadRequest || store.ErrorCode([]byte(body)) != "UnexpectedContent" || time.Since(start) > 10*stallTimeout {
			t.Errorf("%d bytes of the body sent: answered %d %.100s after %v, want 400 UnexpectedContent", sent, status, body, time.Since(start))
		}
	}
}

// TestSlowReaderCutHTTP2: over HTTP/2 too, a client that stops reading a
// download is cut once a write has waited ClientTimeout (the stream is
// reset), though the deadline is lifted between writes.
func TestSlowReaderCutHTTP2(t *testing.T) {
	obs := &recordingObserver{cipher: map[string]int64{}, cipherD: map[string]time.Duration{}}
	e := newEnv(t, func(c *Config) { c.ClientTimeout, c.Observer = stallTimeout, obs })
	e.put(t, "big", randomBytes(12<<20, 15), nil) // past the client's flow-control window
	e.drain(t, 1)
	done := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		e.proxy.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	req := e.signedRequest(t, "GET", "/"+testBucket+"/big", nil, 0, nil)
	u, _ := url.Parse(srv.URL)
	req.URL.Scheme, req.URL.Host, req.Host = u.Scheme, u.Host, u.Host
	sign(t, req)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // read nothing
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the request still runs")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if last := obs.requests[len(obs.requests)-1]; last != "GetObject 0" {
		t.Errorf("the request ended as %q, want aborted", last)
	}
}
