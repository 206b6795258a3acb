// Package embeddedstore runs s3seal's zero-configuration store: versitygw's
// S3 gateway (embedgw) with its posix backend, which keeps each object as a
// file under DATA_DIR/store.
//
// The gateway runs in a child process of s3seal's own binary (RunChild): the
// posix backend changes the working directory of its process, and embedgw
// allows one gateway per process, neither of which s3seal's own process
// (or a test binary starting several) can afford. The child listens on
// 127.0.0.1 only, with a root credential made at each start that every
// request must be signed with; it stops when s3seal closes it, and when
// s3seal dies (its stdin closes). A lock on the data dir keeps a second
// s3seal from starting a second store on the same files.
package embeddedstore

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ChildCommand is the hidden s3seal subcommand that runs the child.
const ChildCommand = "__embedded-store"

// Files and directories in the data dir.
const (
	storeDir = "store" // the store's root: a directory per bucket
	// sidecarDir holds object metadata where xattrs are missing. Its name
	// must not start with storeDir's: versitygw refuses a sidecar dir whose
	// path has the root's as a plain string prefix ("store-sidecar" did).
	sidecarDir   = "sidecar"
	metadataFile = "store-metadata" // "xattr" or "sidecar", fixed at the first start
	infoFile     = "store.json"     // how to reach the running store (0600)
	lockFile     = "store.lock"
)

// Region is the region the store signs for.
const Region = "us-east-1"

// ErrLocked means another s3seal runs a store on the data dir.
var ErrLocked = errors.New("the data dir is in use by another s3seal")

// Options configure Start.
type Options struct {
	DataDir string // absolute; the store lives in DataDir/store
	// Command runs the child: s3seal's binary and ChildCommand. Nil means
	// this executable with ChildCommand.
	Command []string
	Env     []string     // extra environment for the child (tests)
	Logger  *slog.Logger // nil: slog.Default()
}

// Info says how to reach a running store; s3seal writes it to
// DataDir/store.json for `s3seal bench` and `s3seal doctor`.
type Info struct {
	URL       string `json:"url"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	Region    string `json:"region"`
	PID       int    `json:"pid"`
}

// Store is a running embedded store.
type Store struct {
	Info
	Dir      string // the store's root
	Metadata string // "xattr" or "sidecar"

	dataDir string
	lock    *os.File
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	exited  chan struct{}
	waitErr error
	log     *slog.Logger
}

// Start locks the data dir and starts the store. It returns once the store
// accepts connections.
func Start(ctx context.Context, o Options) (_ *Store, err error) {
	if !filepath.IsAbs(o.DataDir) {
		return nil, fmt.Errorf("embedded store: data dir %q is not absolute", o.DataDir)
	}
	s := &Store{dataDir: o.DataDir, Dir: filepath.Join(o.DataDir, storeDir), log: o.Logger, exited: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.lock, err = lockDataDir(filepath.Join(o.DataDir, lockFile)); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err = os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	if s.Metadata, err = metadataMode(o.DataDir); err != nil {
		return nil, err
	}
	if s.Metadata == "sidecar" {
		if err = os.MkdirAll(filepath.Join(o.DataDir, sidecarDir), 0o700); err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
	}
	cfg := childConfig{Dir: s.Dir, Region: Region, Metadata: s.Metadata, SidecarDir: filepath.Join(o.DataDir, sidecarDir),
		AccessKey: randomString(20), SecretKey: randomString(40)}
	for attempt := 0; ; attempt++ {
		if cfg.Addr, err = freeLoopbackAddr(); err != nil {
			return nil, err
		}
		if err = s.spawn(ctx, o, cfg); err == nil || attempt == 2 || !errors.Is(err, errAddrTaken) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	s.Info = Info{URL: "http://" + cfg.Addr, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, Region: Region, PID: os.Getpid()}
	return s, writeInfo(filepath.Join(o.DataDir, infoFile), s.Info)
}

// URLValue is the store's endpoint as a URL.
func (s *Store) URLValue() *url.URL {
	u, _ := url.Parse(s.URL)
	return u
}

// Close stops the store (its in-flight requests get up to 10 s) and
// releases the data dir.
func (s *Store) Close() error {
	var err error
	if s.cmd != nil {
		s.stdin.Close() // the child's signal to stop
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			err = errors.New("embedded store: did not stop in 10 s; killed")
		}
		s.cmd = nil
		os.Remove(filepath.Join(s.dataDir, infoFile))
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
	return err
}

// Exited is closed when the child has exited, whether asked to or not.
func (s *Store) Exited() <-chan struct{} { return s.exited }

// childConfig is what the child reads from its stdin.
type childConfig struct {
	Dir        string `json:"dir"`
	Addr       string `json:"addr"`
	AccessKey  string `json:"access_key"`
	SecretKey  string `json:"secret_key"`
	Region     string `json:"region"`
	Metadata   string `json:"metadata"`
	SidecarDir string `json:"sidecar_dir"`
}

var errAddrTaken = errors.New("address taken")

// spawn starts the child and waits until it accepts connections.
func (s *Store) spawn(ctx context.Context, o Options, cfg childConfig) error {
	argv := o.Command
	if argv == nil {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("embedded store: %w", err)
		}
		argv = []string{self, ChildCommand}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(childEnv(os.Environ()), o.Env...)
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out := &childLog{log: s.log}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("embedded store: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("embedded store: starting %s: %w", argv[0], err)
	}
	s.cmd, s.stdin, s.exited = cmd, stdin, make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := json.NewEncoder(stdin).Encode(cfg); err != nil {
		return fmt.Errorf("embedded store: configuring the child: %w", err)
	}
	return s.awaitReady(ctx, cfg.Addr, out)
}

// awaitReady waits up to 30 s for the child to accept connections.
func (s *Store) awaitReady(ctx context.Context, addr string, out *childLog) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.exited:
			s.cmd = nil
			if strings.Contains(out.String(), "address already in use") {
				return fmt.Errorf("embedded store on %s: %w", addr, errAddrTaken)
			}
			return fmt.Errorf("embedded store exited at start (%v): %s", s.waitErr, out.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("embedded store: not listening after 30 s")
		}
	}
}

// childEnv is s3seal's environment without its secrets: the store needs
// none of s3seal's configuration, nor its cloud credentials.
func childEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "S3SEAL_") && !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}

// lockDataDir takes an exclusive lock on path, or says who holds it.
func lockDataDir(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s)", ErrLocked, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("embedded store: locking %s: %w", path, err)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

// metadataMode is how the store keeps object metadata: in extended
// attributes where the filesystem has them, else in sidecar files. The
// choice is made at the first start and kept: the objects written depend
// on it.
func metadataMode(dataDir string) (string, error) {
	path := filepath.Join(dataDir, metadataFile)
	b, err := os.ReadFile(path)
	if err == nil {
		mode := strings.TrimSpace(string(b))
		if mode == "xattr" && xattrSupported(filepath.Join(dataDir, storeDir)) != nil {
			return "", fmt.Errorf("the embedded store in %s keeps object metadata in extended attributes, "+
				"which the filesystem it is on now does not support: move the data dir back to a filesystem with user xattrs (ext4, xfs, btrfs, tmpfs)", dataDir)
		}
		if mode != "xattr" && mode != "sidecar" {
			return "", fmt.Errorf("%s says %q, want xattr or sidecar", path, mode)
		}
		return mode, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("embedded store: %w", err)
	}
	mode := "xattr"
	if xattrSupported(filepath.Join(dataDir, storeDir)) != nil {
		mode = "sidecar"
	}
	return mode, os.WriteFile(path, []byte(mode+"\n"), 0o600)
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("embedded store: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func writeInfo(path string, info Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("embedded store: %w", err)
	}
	return os.Rename(tmp, path)
}

// Discover reads how to reach the store a running s3seal has in dataDir.
func Discover(dataDir string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dataDir, infoFile))
	if errors.Is(err, os.ErrNotExist) {
		return info, fmt.Errorf("no embedded store is running in %s: start s3seal with this data dir first", dataDir)
	}
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s: %w", filepath.Join(dataDir, infoFile), err)
	}
	return info, nil
}

// randomString is n letters and digits from crypto/rand.
func randomString(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// childLog passes the child's output to the log (debug: the gateway is
// quiet, and s3seal logs every request itself) and keeps its start for
// error messages.
type childLog struct {
	log   *slog.Logger
	mu    sync.Mutex
	first strings.Builder
}

func (c *childLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first.Len() < 4096 {
		c.first.Write(p[:min(len(p), 4096-c.first.Len())])
	}
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		c.log.Debug(sc.Text(), "component", "embedded-store")
	}
	return len(p), nil
}

func (c *childLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(c.first.String())
}
