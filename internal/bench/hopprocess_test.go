package bench

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain lets this test binary be the pass-through hop's process, as the
// s3seal binary is.
func TestMain(m *testing.M) {
	RunPassThroughIfChild()
	os.Exit(m.Run())
}

// The hop runs in a process of its own, listening on 127.0.0.1, forwarding
// to the store; its CPU is read by its PID; close stops it by its PID.
func TestHopProcess(t *testing.T) {
	hits := make(chan string, 1)
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.Host + " " + r.RequestURI
		io.WriteString(w, "stored")
	}))
	defer store.Close()
	var errLog bytes.Buffer
	h, err := startHopProcess(store.URL, &errLog)
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(h.addr); host != "127.0.0.1" {
		t.Errorf("the hop listens on %s, want 127.0.0.1 only", h.addr)
	}
	if h.pid() == os.Getpid() {
		t.Fatal("the hop runs in the benchmark's process")
	}
	req, _ := http.NewRequest(http.MethodGet, "http://store.example/bucket/key", nil)
	resp, err := viaClient{inner: http.DefaultClient, addr: h.addr}.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "stored" || <-hits != "store.example /bucket/key" {
		t.Errorf("through the hop: %q", body)
	}
	cpu, ok := h.cpu()
	if runtime.GOOS == "linux" && (!ok || cpu < 0) {
		t.Errorf("the hop's CPU: %v, %v", cpu, ok)
	}

	if err := h.close(); err != nil {
		t.Error(err)
	}
	select {
	case <-h.exited:
	default:
		t.Error("close returned before the hop exited")
	}
	if _, ok := processCPUOf(h.pid()); ok {
		t.Error("the hop's CPU still read after it exited")
	}
	if c, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		c.Close()
		t.Error("the hop still listens after close")
	}
	if errLog.Len() > 0 {
		t.Errorf("hop errors: %s", errLog.String())
	}
}

// A hop whose benchmark dies stops too: its stdin closes.
func TestHopProcessStopsWithItsStdin(t *testing.T) {
	h, err := startHopProcess("http://127.0.0.1:1", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h.stdin.Close()
	select {
	case <-h.exited:
	case <-time.After(10 * time.Second):
		h.close()
		t.Fatal("the hop did not stop when its stdin closed")
	}
}

// The child refuses anything but one http or https URL, and otherwise
// says its address and serves until its stdin closes.
func TestRunPassThroughChild(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{nil, 2, "want one argument"},
		{[]string{"http://a", "http://b"}, 2, "want one argument"},
		{[]string{"ftp://store"}, 2, "want http or https"},
		{[]string{"store:9000"}, 2, "want http or https"},
		{[]string{"http://"}, 2, "want http or https"},
	} {
		var stderr bytes.Buffer
		if code := runPassThroughChild(tc.args, strings.NewReader(""), io.Discard, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("%q: exit %d, %q; want %d, %q", tc.args, code, stderr.String(), tc.code, tc.err)
		}
	}

	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	code := make(chan int, 1)
	go func() { code <- runPassThroughChild([]string{"http://127.0.0.1:1"}, stdinR, stdoutW, io.Discard) }()
	addr, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("the child said %q, %v", addr, err)
	}
	stdinW.Close()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d after its stdin closed, want 0", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the child did not stop when its stdin closed")
	}
}

// The benchmark takes the hop's first line for its address: one on
// 127.0.0.1 only, within the time allowed.
func TestReadHopAddr(t *testing.T) {
	for _, tc := range []struct {
		out, want, err string
	}{
		{"127.0.0.1:4321\n", "127.0.0.1:4321", ""},
		{"127.0.0.1:4321\nmore\n", "127.0.0.1:4321", ""},
		{"0.0.0.0:4321\n", "", `said "0.0.0.0:4321"`},
		{"[::1]:4321\n", "", "want an address on 127.0.0.1"},
		{"", "", `said ""`}, // exited at start
	} {
		got, err := readHopAddr(strings.NewReader(tc.out), time.Second, func() {})
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %q, %v; want %q, %q", tc.out, got, err, tc.want, tc.err)
		}
	}
	// Silence: killed when the time is up.
	r, w := io.Pipe()
	killed := false
	_, err := readHopAddr(r, 50*time.Millisecond, func() { killed = true; w.Close() })
	if !killed || err == nil || !strings.Contains(err.Error(), "no address in 50ms") {
		t.Errorf("a silent hop: killed %v, %v", killed, err)
	}
}
