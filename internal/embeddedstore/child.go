package embeddedstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/versity/versitygw/backend/meta"
	"github.com/versity/versitygw/backend/posix"
	"github.com/versity/versitygw/embedgw"
)

// RunIfChild makes this process the embedded store's when it was started as
// one (its first argument is ChildCommand): it runs RunChild and exits.
// Otherwise it returns. Any binary or test that starts an embedded store
// calls it first thing in main or TestMain, since the child is the same
// executable.
func RunIfChild() {
	if len(os.Args) > 1 && os.Args[1] == ChildCommand {
		os.Exit(RunChild(os.Stdin, os.Stderr))
	}
}

// RunChild is the child process: it reads its configuration from stdin,
// serves the store until stdin closes (s3seal stopped it, or died) or a
// signal comes, and returns the process's exit status.
func RunChild(stdin io.Reader, stderr io.Writer) int {
	var cfg childConfig
	dec := json.NewDecoder(stdin)
	if err := dec.Decode(&cfg); err != nil {
		fmt.Fprintf(stderr, "embedded store: reading configuration: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		io.Copy(io.Discard, io.MultiReader(dec.Buffered(), stdin)) // until s3seal closes it
		cancel()
	}()
	if err := serve(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "embedded store: %v\n", err)
		return 1
	}
	return 0
}

// serve runs the gateway over the posix backend until ctx is done.
func serve(ctx context.Context, cfg childConfig) error {
	var ms meta.MetadataStorer = meta.XattrMeta{}
	opts := posix.PosixOpts{
		CopyObjectThreshold: 5 << 30, // S3's limit; zero refuses every copy
		ValidateBucketNames: true,
	}
	if cfg.Metadata == "sidecar" {
		sc, err := meta.NewSideCar(cfg.SidecarDir)
		if err != nil {
			return fmt.Errorf("sidecar metadata in %s: %w", cfg.SidecarDir, err)
		}
		ms, opts.SideCarDir = sc, cfg.SidecarDir
	}
	// Only s3seal's user may read what is stored (ciphertext, but names
	// and sizes too).
	opts.SetNewDirPerm(0o700)
	opts.SetNewFilePerm(0o600)
	be, err := posix.New(cfg.Dir, ms, opts)
	if err != nil {
		return err
	}
	return embedgw.RunVersityGW(ctx, be, &embedgw.Config{
		RootUserAccess:    cfg.AccessKey,
		RootUserSecret:    cfg.SecretKey,
		Region:            cfg.Region,
		Ports:             []string{cfg.Addr},
		MaxConnections:    4096,
		MaxRequests:       4096,
		MultipartMaxParts: 10000,
		Quiet:             true,
	})
}

// xattrSupported reports whether dir's filesystem keeps user extended
// attributes, which the posix backend stores object metadata in.
func xattrSupported(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return meta.XattrMeta{}.Test(dir)
}
