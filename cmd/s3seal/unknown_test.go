package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/config"
)

// The value of every misspelled variable in these tests: it must never
// be printed, since a misspelled secret key is still a secret.
const secretValue = "s3cr3t-value-never-printed"

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		t.Run(args[0], func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			// A misspelled strict environment does not stop version.
			environ := []string{"S3SEAL_STRICT_CONFIG=true", "S3SEAL_LOGLEVEL=" + secretValue}
			if code := run(context.Background(), args, environ, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d; stderr %s", code, stderr.String())
			}
			out := stdout.String()
			if !strings.HasPrefix(out, "s3seal ") || !strings.Contains(out, "revision ") || !strings.Contains(out, runtime.Version()) {
				t.Errorf("version output %q lacks the version, revision or Go version", out)
			}
		})
	}
}

func TestStrictConfigFails(t *testing.T) {
	for _, cmd := range [][]string{{"serve"}, {"users", "list"}, {"keys", "list"}, {"doctor"}} {
		t.Run(cmd[0], func(t *testing.T) {
			environ := []string{"S3SEAL_DATA_DIR=" + t.TempDir(), "S3SEAL_STRICT_CONFIG=true",
				"S3SEAL_UPSTREAM=" + secretValue, "S3SEAL_KMS_KEYID=" + secretValue}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), cmd, environ, &stdout, &stderr); code != exitError {
				t.Fatalf("exit %d, want %d; stderr %s", code, exitError, stderr.String())
			}
			out := stdout.String() + stderr.String()
			for _, want := range []string{"S3SEAL_UPSTREAM is ignored: did you mean S3SEAL_UPSTREAM_URL?", "S3SEAL_KMS_KEYID is ignored: did you mean S3SEAL_KMS_KEY_ID?", "S3SEAL_STRICT_CONFIG"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, secretValue) {
				t.Errorf("output prints a value:\n%s", out)
			}
		})
	}
}

func TestUnknownWarnsOnStderr(t *testing.T) {
	environ := []string{"S3SEAL_DATA_DIR=" + t.TempDir(), "S3SEAL_LOGLEVEL=" + secretValue, "S3SEAL_TEST_KMS_ENDPOINT=" + secretValue}
	var stdout, stderr bytes.Buffer
	run(context.Background(), []string{"users", "list"}, environ, &stdout, &stderr)
	out := stdout.String() + stderr.String()
	if !strings.Contains(stderr.String(), "s3seal: warning: unknown variable S3SEAL_LOGLEVEL is ignored: did you mean S3SEAL_LOG_LEVEL?") {
		t.Errorf("no warning on stderr:\n%s", out)
	}
	if strings.Contains(out, "S3SEAL_TEST_KMS_ENDPOINT") || strings.Contains(out, secretValue) {
		t.Errorf("warned about a test variable or printed a value:\n%s", out)
	}
}

// serve logs the warning as JSON, with the names as fields.
func TestUnknownLoggedAsJSON(t *testing.T) {
	environ := []string{"S3SEAL_UPSTREAM=" + secretValue, "S3SEAL_BANANA=" + secretValue}
	cfg, err := config.Load(environ)
	if err != nil {
		t.Fatal(err)
	}
	var log, stderr bytes.Buffer
	c := cli{environ: environ, stderr: &stderr}
	if err := c.checkUnknown(cfg, slog.New(slog.NewJSONHandler(&log, nil))); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 || stderr.Len() != 0 || strings.Contains(log.String(), secretValue) {
		t.Fatalf("log:\n%s\nstderr:\n%s", log.String(), stderr.String())
	}
	var rec struct{ Level, Msg, Variable, Suggestion string }
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Level != "WARN" || rec.Variable != "S3SEAL_UPSTREAM" || rec.Suggestion != "S3SEAL_UPSTREAM_URL" {
		t.Errorf("record %+v", rec)
	}
	if !strings.Contains(lines[1], `"variable":"S3SEAL_BANANA","suggestion":""`) {
		t.Errorf("far-off name: %s", lines[1])
	}
}

func TestServeRegistersBuildInfo(t *testing.T) {
	s := &server{}
	if err := s.newMetrics(); err != nil {
		t.Fatal(err)
	}
	fams, err := s.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "s3seal_build_info" {
			if v := f.GetMetric()[0].GetGauge().GetValue(); v != 1 {
				t.Errorf("s3seal_build_info = %v, want 1", v)
			}
			return
		}
	}
	t.Error("no s3seal_build_info on /metrics")
}
