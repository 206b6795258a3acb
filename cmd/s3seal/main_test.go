package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/bench"
	"github.com/s3seal/s3seal/internal/config"
	"github.com/s3seal/s3seal/internal/embeddedstore"
)

// TestMain lets this test binary be the embedded store's child process and
// the pass-through hop's, as the s3seal binary is: servers and benchmarks
// started by these tests spawn them.
func TestMain(m *testing.M) {
	embeddedstore.RunIfChild()
	bench.RunPassThroughIfChild()
	os.Exit(m.Run())
}

func TestHelpListsEveryVariable(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}, {"serve", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, nil, &stdout, &stderr)
			if code != exitOK {
				t.Fatalf("exit %d; stderr %s", code, stderr.String())
			}
			out := stdout.String() + stderr.String()
			for _, v := range config.Vars() {
				if !strings.Contains(out, v.Name) {
					t.Errorf("help lacks %s", v.Name)
				}
				if v.Default != "" && !strings.Contains(out, v.Default) {
					t.Errorf("help lacks the default of %s (%s)", v.Name, v.Default)
				}
			}
			for _, cmd := range []string{"serve", "keys", "bench", "doctor", "rewrap", "inspect", "decrypt"} {
				if !strings.Contains(out, "s3seal "+cmd) && !strings.Contains(out, "s3seal ["+cmd) {
					t.Errorf("help does not list the %s command", cmd)
				}
			}
		})
	}
}

func TestHelpMarkdownTable(t *testing.T) {
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"help", "config-markdown"}, nil, &stdout, &stdout); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2+len(config.Vars()) {
		t.Fatalf("%d lines, want header + %d rows:\n%s", len(lines), len(config.Vars()), stdout.String())
	}
	if !strings.Contains(stdout.String(), "| `S3SEAL_ADDR` | `127.0.0.1:8080` |") {
		t.Errorf("unexpected table:\n%s", stdout.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, nil, &stdout, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(stderr.String(), `unknown command "frobnicate"`) {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	environ := []string{"S3SEAL_KMS_PROVIDER=aws", "S3SEAL_DATA_DIR=" + t.TempDir()}
	if code := run(context.Background(), nil, environ, &stdout, &stderr); code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(stderr.String(), "S3SEAL_KMS_KEY_ID") {
		t.Errorf("stderr: %s", stderr.String())
	}
}
