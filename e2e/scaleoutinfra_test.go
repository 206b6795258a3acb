package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/s3seal/s3seal/internal/testlog"
)

// The pieces of the scale-out run (TestScaleOut): a distributed MinIO and
// HAProxy, started on 127.0.0.1 and stopped by PID when the test ends.

// minioNode is one server process of a distributed MinIO.
type minioNode struct {
	addr    string   // 127.0.0.1:PORT
	args    []string // the whole cluster's drive list: the same on every node
	env     []string
	logPath string
	cmd     *exec.Cmd
}

// startMinIOCluster starts a distributed MinIO of nodes server processes
// with drives drives each, all in one erasure set, and waits until the
// cluster has write quorum. Its root credential is ak and sk.
func startMinIOCluster(t *testing.T, bin, ak, sk string, nodes, drives int) []*minioNode {
	t.Helper()
	dir := t.TempDir()
	cluster := make([]*minioNode, nodes)
	var endpoints []string
	for i := range cluster {
		cluster[i] = &minioNode{addr: freeAddr(t), logPath: filepath.Join(dir, fmt.Sprintf("minio%d.log", i+1))}
		for d := range drives {
			// Listed one by one, not with {1...n}: the free ports are not
			// consecutive, and each ellipsis argument would be a pool.
			endpoints = append(endpoints, fmt.Sprintf("http://%s%s/n%d/d%d", cluster[i].addr, dir, i+1, d+1))
		}
	}
	for _, n := range cluster {
		n.args = append([]string{"server", "--address", n.addr}, endpoints...)
		n.env = append(os.Environ(), "MINIO_ROOT_USER="+ak, "MINIO_ROOT_PASSWORD="+sk, "MINIO_BROWSER=off",
			"MINIO_CI_CD=1", // drives on the root disk
			// In a container MinIO waits for 127.0.0.1 to resolve to
			// another address unless told which endpoint is this node.
			"_MINIO_SERVER_LOCAL="+n.addr)
		n.start(t, bin)
		t.Cleanup(func() { n.stop(t) })
	}
	if _, err := waitHTTP("http://"+cluster[0].addr+"/minio/health/cluster", 60*time.Second); err != nil {
		t.Fatalf("the distributed MinIO: %v; node 1's log:\n%s", err, cluster[0].log())
	}
	want := fmt.Sprintf("1 set(s), %d drives per set", nodes*drives)
	if !strings.Contains(cluster[0].log(), want) {
		t.Fatalf("the distributed MinIO is not one erasure set (%q); node 1's log:\n%s", want, cluster[0].log())
	}
	return cluster
}

// start runs the node's process (again, after stop), logging to its file.
func (n *minioNode) start(t *testing.T, bin string) {
	t.Helper()
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n.cmd = exec.Command(bin, n.args...)
	n.cmd.Env, n.cmd.Stdout, n.cmd.Stderr = n.env, f, f
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting MinIO: %v", err)
	}
}

// stop ends the node's process with SIGTERM, SIGKILL after 15 s.
func (n *minioNode) stop(t *testing.T) {
	if n.cmd == nil || n.cmd.ProcessState != nil {
		return
	}
	stopProcess(t, n.cmd, "MinIO "+n.addr)
}

func (n *minioNode) log() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

// stopProcess ends cmd with SIGTERM and waits for it, with SIGKILL after
// 15 s.
func stopProcess(t *testing.T, cmd *exec.Cmd, name string) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("%s did not stop on SIGTERM within 15 s", name)
	}
}

// waitHTTP polls url until it answers 200, for up to limit, and returns
// how long that took.
func waitHTTP(url string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Since(start) < limit {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("%s did not answer 200 in %s", url, limit)
}

// lbServer is one server of an HAProxy backend and where it is checked.
type lbServer struct {
	Name, Addr string
	CheckPort  int // the health check's port: the metrics port of an s3seal
}

// lbBackend is what one HAProxy process balances: round-robin over
// servers, each checked with GET CheckPath every second.
type lbBackend struct {
	Name, Bind, CheckPath string
	Servers               []lbServer
}

// haproxyConfig is HAProxy's configuration: HTTP mode, timeouts for
// transfers of many MiB (a client or server may be idle 5 minutes, a
// request's headers must come in 30 s), a server out after 2 failed
// checks and back after 2 good ones, and connections that fail retried on
// another server. A check may take 6 s: s3seal's /readyz waits up to 5 s
// on the store before it answers, and without it HAProxy would give up
// after the check interval (1 s) and call a slow store a dead replica.
var haproxyConfig = template.Must(template.New("haproxy").Parse(`global
  maxconn 4096
  stats socket {{.Socket}} mode 600 level admin
defaults
  mode http
  timeout connect 5s
  timeout client 5m
  timeout server 5m
  timeout http-request 30s
  timeout http-keep-alive 30s
  timeout queue 30s
  timeout check 6s
  retries 3
  option redispatch
frontend {{.B.Name}}
  bind {{.B.Bind}}
  default_backend {{.B.Name}}-servers
backend {{.B.Name}}-servers
  balance roundrobin
  option httpchk
  http-check send meth GET uri {{.B.CheckPath}}
  http-check expect status 200
  default-server inter 1s fall 2 rise 2
{{- range .B.Servers}}
  server {{.Name}} {{.Addr}} check{{if .CheckPort}} port {{.CheckPort}}{{end}}
{{- end}}
`))

// haproxy is one running HAProxy process.
type haproxy struct {
	URL, socket, backend string
	cmd                  *exec.Cmd
}

// startHAProxy runs Debian's HAProxy in the foreground for b, and waits
// until every server is up.
func startHAProxy(t *testing.T, b lbBackend) *haproxy {
	t.Helper()
	dir := t.TempDir()
	b.Bind = freeAddr(t)
	h := &haproxy{URL: "http://" + b.Bind, socket: filepath.Join(dir, "stats.sock"), backend: b.Name + "-servers"}
	cfg := filepath.Join(dir, "haproxy.cfg")
	f, err := os.Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := haproxyConfig.Execute(f, struct {
		Socket string
		B      lbBackend
	}{h.socket, b}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h.cmd = exec.Command("/usr/sbin/haproxy", "-db", "-f", cfg)
	logs := &testlog.Buffer{}
	h.cmd.Stdout, h.cmd.Stderr = logs, logs
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("starting HAProxy (scripts/deps installs it): %v", err)
	}
	t.Cleanup(func() { stopProcess(t, h.cmd, "HAProxy") })
	for _, s := range b.Servers {
		if _, err := h.waitStatus(s.Name, "UP", 30*time.Second); err != nil {
			t.Fatalf("%v; HAProxy's output:\n%s", err, logs)
		}
	}
	return h
}

// status is what HAProxy's stats say of server: UP, DOWN, "UP 1/2", ...
func (h *haproxy) status(server string) (string, error) {
	row, err := h.row(server)
	return row["status"], err
}

// lbCounters are the backend's counts of failed attempts, each of which
// a client saw as an error (and retried) or HAProxy retried itself.
var lbCounters = []string{"hrsp_5xx", "econ", "eresp", "srv_abrt", "wretr", "wredis"}

// counters are the backend's lbCounters now.
func (h *haproxy) counters() (map[string]int64, error) {
	row, err := h.row("BACKEND")
	if err != nil {
		return nil, err
	}
	c := map[string]int64{}
	for _, name := range lbCounters {
		c[name], _ = strconv.ParseInt(row[name], 10, 64) // empty: 0
	}
	return c, nil
}

// row is HAProxy's stats line of server (or BACKEND) in its backend, by
// column name.
func (h *haproxy) row(server string) (map[string]string, error) {
	c, err := net.DialTimeout("unix", h.socket, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("HAProxy stats socket: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("show stat\n")); err != nil {
		return nil, fmt.Errorf("HAProxy stats socket: %w", err)
	}
	sc := bufio.NewScanner(c)
	var header []string
	for sc.Scan() {
		f := strings.Split(strings.TrimPrefix(sc.Text(), "# "), ",")
		if header == nil {
			header = f
			continue
		}
		if len(f) >= len(header) && f[0] == h.backend && f[1] == server {
			row := map[string]string{}
			for i, name := range header {
				row[name] = f[i]
			}
			return row, nil
		}
	}
	return nil, fmt.Errorf("HAProxy shows no server %s in %s", server, h.backend)
}

// waitStatus polls server's status until it is want (UP or DOWN), for up
// to limit, and returns how long that took.
func (h *haproxy) waitStatus(server, want string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var last string
	for time.Since(start) < limit {
		s, err := h.status(server)
		if err == nil && s == want {
			return time.Since(start), nil
		}
		last = s
		if err != nil {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), errors.New("HAProxy: server " + server + " not " + want + " in " + limit.String() + " (last: " + last + ")")
}
