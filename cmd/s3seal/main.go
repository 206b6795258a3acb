// Command s3seal is the S3-compatible encrypting reverse proxy: one binary
// with subcommands. `s3seal` alone is `s3seal serve`.
//
// Configuration comes from S3SEAL_* environment variables (see
// `s3seal --help`); with none set, s3seal starts with an embedded keyring,
// an embedded local store and a generated credential, for first runs and
// demos.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/s3seal/s3seal/internal/bench"
	"github.com/s3seal/s3seal/internal/buildinfo"
	"github.com/s3seal/s3seal/internal/config"
	"github.com/s3seal/s3seal/internal/embeddedstore"
)

func main() {
	// Not for people: the embedded store's own process, which serve starts
	// and stops (internal/embeddedstore), and the pass-through hop's, which
	// bench --target starts and stops (internal/bench).
	embeddedstore.RunIfChild()
	bench.RunPassThroughIfChild()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is what a command gets from the process: no command touches os.Args,
// os.Environ or the standard streams directly, so tests can run them.
type cli struct {
	environ        []string
	stdout, stderr io.Writer
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// run dispatches to a subcommand and returns the process exit code.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := cli{environ: environ, stdout: stdout, stderr: stderr}
	cmd, rest := "serve", args
	if len(args) > 0 {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "-h", "-help", "--help", "help":
		return c.help(rest)
	case "version", "-version", "--version":
		// Needs no configuration, so it works however the environment is set.
		fmt.Fprintln(stdout, buildinfo.Read())
		return exitOK
	case "serve":
		return c.serve(ctx, rest)
	case "keys":
		return c.keys(ctx, rest)
	case "users":
		return c.users(rest)
	case "bench":
		return c.bench(ctx, rest)
	case "doctor":
		return c.doctor(ctx, rest)
	case "rewrap":
		return c.rewrap(ctx, rest)
	case "inspect":
		return c.inspect(ctx, rest)
	case "decrypt":
		return c.decrypt(ctx, rest)
	}
	if len(cmd) > 0 && cmd[0] == '-' {
		// `s3seal -x`: a flag meant for the default command.
		return c.serve(ctx, args)
	}
	fmt.Fprintf(stderr, "s3seal: unknown command %q\n\n", cmd)
	c.usage(stderr)
	return exitUsage
}

func (c cli) help(args []string) int {
	if len(args) == 1 && args[0] == "config-markdown" {
		// The README's configuration table, generated like --help.
		if err := config.WriteMarkdown(c.stdout); err != nil {
			return exitError
		}
		return exitOK
	}
	c.usage(c.stdout)
	return exitOK
}

// usage lists the commands that exist and every configuration variable.
func (c cli) usage(w io.Writer) {
	fmt.Fprint(w, `s3seal: an S3-compatible encrypting reverse proxy.

Usage:
  s3seal [serve]      run the proxy (the default command)
  s3seal keys ...     manage the embedded keyring (s3seal keys -h)
  s3seal users ...    client credentials with roles and grants (s3seal users -h)
  s3seal bench ...    envelope vs direct KMS encryption, or the proxy's end-to-end
                      cost (s3seal bench --help)
  s3seal doctor ...   check the configuration against the real store and KMS
                      (s3seal doctor --help)
  s3seal rewrap ...   re-wrap objects' data keys under another CMK or after a
                      rotation; encrypt objects written without s3seal
                      (s3seal rewrap --help)
  s3seal inspect ...  what the store holds for an object, without decrypting it
  s3seal decrypt ...  decrypt an object without a running s3seal, from the store
                      or offline (docs/RECOVERY.md)
  s3seal version      the version, VCS revision and Go version (also --version)
  s3seal help         this text

Configuration (environment variables; empty means unset):
`)
	config.WriteHelp(w)
	fmt.Fprint(w, `
With nothing set, s3seal creates S3SEAL_DATA_DIR with an embedded keyring,
an embedded local store and a generated credential, and prints how to use
them. Those are for first runs and demos: in production set
S3SEAL_UPSTREAM_URL and S3SEAL_KMS_PROVIDER=aws.
`)
}

// fail prints err for a human and returns the error exit code.
func (c cli) fail(cmd string, err error) int {
	fmt.Fprintf(c.stderr, "s3seal %s: %v\n", cmd, err)
	return exitError
}
