package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testlog"
)

// TestReadmeKMSWalkthrough runs README.md's KMS walkthrough as written, with
// bash (-e, -u, pipefail), against a zero-configuration s3seal started in a
// scratch directory as the README says, and checks every "# ..." result
// its comments promise. Only the addresses differ: s3seal listens on free
// ports, which replace the README's 127.0.0.1:8080 and :8081, and `go run
// ./cmd/s3seal` is the binary built from that package.
func TestReadmeKMSWalkthrough(t *testing.T) {
	embeddedEnv(t) // the skip rules of the e2e tests
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	script := readmeBlock(t, string(readme), "### KMS walkthrough", "sh")
	work, env := t.TempDir(), newUserEnv(t)
	addr, kmsAPIAddr := freeAddr(t), freeAddr(t)
	in := &instance{URL: "http://" + addr, MetricsURL: "http://" + freeAddr(t), logs: &testlog.Buffer{}}
	s3seal := exec.Command(s3sealBinary(t))
	s3seal.Dir = work
	s3seal.Env = append(append([]string(nil), env...), "S3SEAL_ADDR="+addr,
		"S3SEAL_METRICS_ADDR="+hostPort(in.MetricsURL), "S3SEAL_KMS_API_ADDR="+kmsAPIAddr)
	s3seal.Stdout, s3seal.Stderr = in.logs, in.logs
	if err := s3seal.Start(); err != nil {
		t.Fatal(err)
	}
	in.cmd = s3seal
	t.Cleanup(func() { in.stop(t) })
	if err := in.awaitReady(); err != nil {
		t.Fatalf("%v; logs:\n%s", err, in.logs)
	}

	run := strings.NewReplacer("127.0.0.1:8080", addr, "127.0.0.1:8081", kmsAPIAddr,
		"go run ./cmd/s3seal", s3sealBinary(t)).Replace(script)
	sh := exec.Command("bash", "--noprofile", "--norc", "-euo", "pipefail", "-c", run)
	sh.Dir, sh.Env = work, env
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	done := make(chan error, 1)
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- sh.Wait() }()
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		sh.Process.Kill()
		t.Fatalf("the walkthrough did not end in 3 minutes; output:\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("the walkthrough failed: %v; output:\n%s", err, out.String())
	}
	// Each command's promised result ("# ..." at its end) in the output,
	// in order, one result per line of output: the space a comment puts
	// between fields is a tab in the AWS CLI's text output.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	i := 0
	for _, want := range promisedResults(script) {
		for i < len(lines) && normalize(lines[i]) != want {
			i++
		}
		if i == len(lines) {
			t.Fatalf("the walkthrough's output lacks %q (in order); output:\n%s", want, out.String())
		}
		i++
	}
}

// promisedResults are the trailing "# ..." comments of the script's
// commands (not comment lines), in order.
func promisedResults(script string) []string {
	var out []string
	trailing := regexp.MustCompile(`\S\s+#\s+(.+)$`)
	for _, line := range strings.Split(script, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if m := trailing.FindStringSubmatch(line); m != nil && !strings.Contains(line, "sleep") && !strings.Contains(line, "() {") {
			out = append(out, normalize(m[1]))
		}
	}
	return out
}

// normalize makes runs of blanks one space.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }
