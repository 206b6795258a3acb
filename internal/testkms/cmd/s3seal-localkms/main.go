// Command s3seal-localkms serves a local-kms KMS API on a loopback address
// for tests and CI, with RotateKeyOnDemand added.
//
//	s3seal-localkms -data DIR [-addr 127.0.0.1:0] [-addr-file FILE]
//
// It refuses non-loopback addresses: local-kms keeps key material in the clear
// and answers anyone, so it must never be reachable from another machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/s3seal/s3seal/internal/testkms"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "s3seal-localkms:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "listen address; the host must be a loopback IP")
	dataDir := flag.String("data", "", "directory of the key database (required)")
	addrFile := flag.String("addr-file", "", "write the actual host:port here once listening")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *dataDir == "" {
		return errors.New("-data is required")
	}
	if err := checkLoopback(*addr); err != nil {
		return err
	}

	srv, err := testkms.New(*dataDir)
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	actual := ln.Addr().String()
	if *addrFile != "" {
		// Write then rename so a script polling for the file never reads it
		// half-written.
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(actual+"\n"), 0o644); err != nil {
			ln.Close()
			return fmt.Errorf("write addr file: %w", err)
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			ln.Close()
			return fmt.Errorf("write addr file: %w", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Printf("s3seal-localkms listening on http://%s (data %s, region %s, account %s)",
		actual, absOr(*dataDir), testkms.Region, testkms.AccountID)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if *addrFile != "" {
		// A stale file would point the next script at a dead port.
		_ = os.Remove(*addrFile)
	}
	log.Printf("s3seal-localkms stopped")
	return nil
}

// checkLoopback accepts host:port only when the host is a loopback IP
// literal. An empty host would mean every interface, and a name such as
// "localhost" is whatever the resolver says it is.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: host must be a loopback IP address such as 127.0.0.1", addr)
	}
	return nil
}

func absOr(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
