package bench

// The pass-through hop runs in a process of its own: this executable,
// started again with PassThroughCommand. Its CPU is then its own, read from
// the kernel by PID as s3seal's process collector reads s3seal's, and not
// mixed with the benchmark's clients: in the benchmark's process the hop's
// share could only be estimated (the process's less the clients'), which
// for small objects, where the clients cost more than the hop, was noise.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// PassThroughCommand is the hidden first argument that makes this
// executable the pass-through hop's process; the store's URL follows it.
const PassThroughCommand = "__bench-pass-through"

// RunPassThroughIfChild makes this process the pass-through hop when it was
// started as one, and exits when the hop stops; otherwise it returns. Any
// binary or test that runs RunTarget calls it first thing in main or
// TestMain, since the hop is the same executable.
func RunPassThroughIfChild() {
	if len(os.Args) > 1 && os.Args[1] == PassThroughCommand {
		os.Exit(runPassThroughChild(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
}

// runPassThroughChild is the hop's process: it listens on a free port of
// 127.0.0.1, writes that address as one line to stdout, and forwards to the
// store named by args until stdin closes (the benchmark stopped it, or
// died) or SIGTERM or SIGINT comes. It returns the exit status.
func runPassThroughChild(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	store, err := parseStoreURL(args)
	if err != nil {
		fmt.Fprintf(stderr, "pass-through: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		io.Copy(io.Discard, stdin)
		cancel()
	}()
	hop, err := startPassThrough(store, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer hop.close()
	if _, err := fmt.Fprintln(stdout, hop.addr); err != nil {
		return 1
	}
	<-ctx.Done()
	return 0
}

// parseStoreURL is the child's one argument: an http or https URL.
func parseStoreURL(args []string) (*url.URL, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("want one argument, the store's URL; got %d", len(args))
	}
	u, err := url.Parse(args[0])
	if err != nil {
		return nil, fmt.Errorf("store URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("store URL %q: want http or https", args[0])
	}
	return u, nil
}

// hopProcess is the running hop's process, seen from the benchmark.
type hopProcess struct {
	addr   string // where it listens: host:port on 127.0.0.1
	cmd    *exec.Cmd
	stdin  io.WriteCloser // closing it stops the hop
	exited chan struct{}
}

// hopStartTimeout bounds how long the hop may take to say its address.
const hopStartTimeout = 30 * time.Second

// startHopProcess starts this executable as the hop in front of store; the
// hop's errors go to errLog.
func startHopProcess(store string, errLog io.Writer) (*hopProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("pass-through: %w", err)
	}
	cmd := exec.Command(self, PassThroughCommand, store)
	cmd.Env = hopEnv(os.Environ())
	cmd.Stderr = errLog
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("pass-through: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("pass-through: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pass-through: starting %s: %w", self, err)
	}
	h := &hopProcess{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	h.addr, err = readHopAddr(stdout, hopStartTimeout, func() { cmd.Process.Kill() })
	go func() {
		io.Copy(io.Discard, stdout) // Wait closes the pipe: read it to its end first
		cmd.Wait()
		close(h.exited)
	}()
	if err != nil {
		h.close()
		return nil, fmt.Errorf("pass-through: process %d: %w", cmd.Process.Pid, err)
	}
	return h, nil
}

// readHopAddr reads the address the hop writes first, and checks that it
// is on loopback. If none comes within timeout it calls kill, which must
// end the read (killing the process closes the pipe).
func readHopAddr(stdout io.Reader, timeout time.Duration, kill func()) (string, error) {
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	var addr string
	select {
	case addr = <-line:
	case <-time.After(timeout):
		kill()
		<-line
		return "", fmt.Errorf("no address in %v", timeout)
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		return "", fmt.Errorf("it said %q, want an address on 127.0.0.1", addr)
	}
	return addr, nil
}

// hopEnv is the benchmark's environment without s3seal's configuration
// and cloud credentials: the hop needs neither, it signs nothing.
func hopEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "S3SEAL_") && !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}

// pid is the hop's process id.
func (h *hopProcess) pid() int { return h.cmd.Process.Pid }

// cpu is the CPU time, user and system, the hop's process has used so far;
// ok is false where the platform cannot say.
func (h *hopProcess) cpu() (time.Duration, bool) { return processCPUOf(h.pid()) }

// hopStopTimeout is how long the hop has to end its connections and exit
// before it is killed.
const hopStopTimeout = 10 * time.Second

// close stops the hop by its PID (SIGTERM, and its stdin closed for
// platforms without signals), waits for it to exit and kills it if it
// does not in time.
func (h *hopProcess) close() error {
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.stdin.Close()
	select {
	case <-h.exited:
		return nil
	case <-time.After(hopStopTimeout):
		h.cmd.Process.Kill()
		<-h.exited
		return errors.New("pass-through: did not stop in 10 s; killed")
	}
}
