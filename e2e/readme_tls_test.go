package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The last line of README.md's TLS block; the test runs the built binary
// in its place, with these variables.
const readmeTLSStart = "S3SEAL_TLS_CERT=cert.pem S3SEAL_TLS_KEY=key.pem go run ./cmd/s3seal"

// TestReadmeTLS follows README.md's "TLS" section as a new user would: its
// openssl command makes the certificate, s3seal serves with it, and the
// banner's "Try it" commands, run as printed with the AWS CLI v2 (no
// AWS_CA_BUNDLE), work over HTTPS; a plain HTTP request to the port is
// told to use https.
func TestReadmeTLS(t *testing.T) {
	embeddedEnv(t) // the skip rules of the e2e tests
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := strings.TrimSuffix(readmeBlock(t, string(readme), "### TLS", "sh"), "\n")
	makeCert, start, ok := strings.Cut(block, "\n"+readmeTLSStart)
	if !ok || start != "" {
		t.Fatalf("README.md's TLS block must end with `%s`; the test starts s3seal so:\n%s", readmeTLSStart, block)
	}
	work := t.TempDir()
	writeFile(t, work, "README.md", readme)
	env := newUserEnv(t)
	openssl := exec.Command("bash", "--noprofile", "--norc", "-e", "-c", makeCert)
	openssl.Dir, openssl.Env = work, env
	if out, err := openssl.CombinedOutput(); err != nil {
		t.Fatalf("README.md's openssl command: %v\n%s", err, out)
	}

	addr := freeAddr(t)
	banner := startForBanner(t, work, append(env, "S3SEAL_TLS_CERT=cert.pem", "S3SEAL_TLS_KEY=key.pem",
		"S3SEAL_ADDR="+addr, "S3SEAL_METRICS_ADDR="+freeAddr(t), "S3SEAL_KMS_API_ADDR="+freeAddr(t)))
	if got := bannerField(banner, "endpoint"); got != "https://"+addr {
		t.Fatalf("banner endpoint %q, want https://%s:\n%s", got, addr, banner)
	}
	_, try, _ := strings.Cut(banner, "Try it:\n")
	cmds := strings.Split(strings.TrimSpace(try), "\n")
	if len(cmds) != 3 || !strings.Contains(cmds[0], " --ca-bundle "+filepath.Join(work, "cert.pem")+" ") {
		t.Fatalf("the banner's commands do not take the certificate as --ca-bundle:\n%s", banner)
	}
	for _, cmd := range cmds {
		sh := exec.Command("bash", "--noprofile", "--norc", "-c", strings.TrimSpace(cmd))
		sh.Dir, sh.Env = work, env
		if out, err := sh.CombinedOutput(); err != nil {
			t.Fatalf("the banner's %s: %v\n%s", cmd, err, out)
		}
	}
	out := run(t, nil, "curl", "-sS", "http://"+addr+"/demo/README.md")
	if want := "<Message>This port serves HTTPS: use https://" + addr + " as the endpoint.</Message>"; !strings.Contains(out, want) {
		t.Errorf("plain HTTP to the TLS port: %s\nwant %s", out, want)
	}
}

// startForBanner starts the s3seal binary in dir with env, stopped when the
// test ends, and returns its banner, up to the end of its "Try it" commands.
func startForBanner(t *testing.T, dir string, env []string) string {
	t.Helper()
	cmd := exec.Command(s3sealBinary(t))
	cmd.Dir, cmd.Env = dir, env
	var log strings.Builder
	cmd.Stderr = &log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("s3seal's log:\n%s", log.String())
		}
	})
	var banner []string
	lines, inTry := lineReader(stdout), false
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("s3seal's output ended after:\n%s", strings.Join(banner, "\n"))
			}
			banner = append(banner, line)
			if inTry && line == "" {
				return strings.Join(banner, "\n")
			}
			inTry = inTry || line == "Try it:"
		case <-time.After(30 * time.Second):
			t.Fatalf("no banner from s3seal in 30 s; so far:\n%s", strings.Join(banner, "\n"))
		}
	}
}
