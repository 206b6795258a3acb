package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope"
)

// readmeBlock is the first ```lang block after README.md's heading.
func readmeBlock(t *testing.T, readme, heading, lang string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	_, rest, ok = strings.Cut(rest, "```"+lang+"\n")
	if !ok {
		t.Fatalf("README.md's %q has no ```%s block", heading, lang)
	}
	block, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		t.Fatalf("README.md's %q block is not closed", heading)
	}
	return block
}

// sessionStep is one command of a console block and the output shown for it.
type sessionStep struct {
	cmd string
	out []string
}

// exampleSession parses the console block of README.md's "Example session".
func exampleSession(t *testing.T, readme string) []sessionStep {
	t.Helper()
	block := readmeBlock(t, readme, "## Example session", "console")
	var steps []sessionStep
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if cmd, ok := strings.CutPrefix(line, "$ "); ok {
			steps = append(steps, sessionStep{cmd: cmd})
			continue
		}
		if len(steps) == 0 {
			t.Fatalf("README.md's example session starts with output, not a command: %q", line)
		}
		steps[len(steps)-1].out = append(steps[len(steps)-1].out, line)
	}
	return steps
}

// The README's first command; the test runs the built binary in its place
// (see TestReadmeExampleSession).
const readmeStart = "go run ./cmd/s3seal 2>s3seal.log &"

// lineReader delivers a stream's lines (the last one even without a
// newline) on a channel, closed at the end of the stream.
func lineReader(r io.Reader) <-chan string {
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				lines <- strings.TrimSuffix(line, "\n")
			}
			if err != nil {
				return
			}
		}
	}()
	return lines
}

// onTerminal is how a terminal shows a line: a carriage return sends the
// cursor back, so only what follows the last one stays (the AWS CLI's
// progress line is overwritten so), and trailing blanks do not show.
func onTerminal(line string) string {
	if i := strings.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	return strings.TrimRight(line, " ")
}

// TestReadmeExampleSession runs the README's example session as written:
// s3seal with no configuration in a directory holding a copy of README.md,
// then each `$` command, with bash, in one shell (an `export` holds for the
// commands after it), and checks that every line of output is the line the
// README shows. Only these differ from the README, and each is computed
// rather than matched loosely:
//
//   - what s3seal generates at its first start (the client credential, the
//     keyring's key id), read from the banner it prints;
//   - the addresses: s3seal listens on free ports (S3SEAL_ADDR and
//     S3SEAL_METRICS_ADDR) so that the test can run beside others, and the
//     README's 127.0.0.1:8080 and :9464 are replaced by them;
//   - the working directory, shown in the banner's paths;
//   - README.md's size as `aws s3 ls` shows it, and its stored size (plus a
//     32-byte header and a 16-byte tag per 64 KiB chunk, FORMAT.md), which
//     change with every edit of the README: they must be those of the
//     README.md being tested, and the README's own figures must agree with
//     each other by the format;
//   - the object's date in `aws s3 ls`, which must be now (local time);
//   - the stored bytes after the segment header's fixed first 8 (salt and
//     ciphertext), which must be the stored file's.
//
// A line "  ..." ends what is compared of a command's output, and "<- ..."
// after an output line is a note for the reader, not output.
//
// The README says `go run ./cmd/s3seal`; here the binary built from the same
// package runs in its place, since the working directory is a scratch
// directory rather than a checkout (its stderr goes to s3seal.log, as the
// README's redirection says).
func TestReadmeExampleSession(t *testing.T) {
	embeddedEnv(t) // the skip rules of the e2e tests
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := exampleSession(t, string(readme))
	if len(steps) < 2 || steps[0].cmd != readmeStart {
		t.Fatalf("README.md's example session must start with `$ %s`; the test starts s3seal so, update it with the README", readmeStart)
	}
	work := t.TempDir()
	writeFile(t, work, "README.md", readme)
	env := newUserEnv(t)

	// $ go run ./cmd/s3seal 2>s3seal.log &
	addr, metricsAddr, kmsAPIAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	logFile, err := os.Create(filepath.Join(work, "s3seal.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	s3seal := exec.Command(s3sealBinary(t))
	s3seal.Dir = work
	s3seal.Env = append(append([]string(nil), env...), "S3SEAL_ADDR="+addr, "S3SEAL_METRICS_ADDR="+metricsAddr, "S3SEAL_KMS_API_ADDR="+kmsAPIAddr)
	s3seal.Stderr = logFile
	stdout, err := s3seal.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s3seal.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		s3seal.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s3seal.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			s3seal.Process.Kill()
			<-done
			t.Error("s3seal did not stop on SIGTERM within 15 s")
		}
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("s3seal.log:\n%s", log)
		}
	}()
	bannerLines := lineReader(stdout)
	var banner []string
	for range steps[0].out {
		select {
		case line, ok := <-bannerLines:
			if !ok {
				t.Fatalf("s3seal's output ended after:\n%s", strings.Join(banner, "\n"))
			}
			banner = append(banner, line)
		case <-time.After(30 * time.Second):
			t.Fatalf("no banner from s3seal in 30 s; so far:\n%s", strings.Join(banner, "\n"))
		}
	}

	// What was generated, and where: the README's values and this run's.
	shown, got := strings.Join(steps[0].out, "\n"), strings.Join(banner, "\n")
	keyID := regexp.MustCompile(`(?m)^  kms .*\(([0-9a-f-]{36})\)$`)
	readmeDir, workDir := strings.TrimSuffix(bannerField(shown, "data dir"), "/s3seal-data"), strings.TrimSuffix(bannerField(got, "data dir"), "/s3seal-data")
	values := []struct{ name, readme, now string }{
		{"working directory", readmeDir, workDir},
		{"endpoint", hostPort(bannerField(shown, "endpoint")), hostPort(bannerField(got, "endpoint"))},
		{"health address", hostPort(strings.TrimSuffix(bannerField(shown, "health"), "/healthz")), hostPort(strings.TrimSuffix(bannerField(got, "health"), "/healthz"))},
		{"KMS API address", hostPort(bannerField(shown, "kms api")), hostPort(bannerField(got, "kms api"))},
		{"access key", bannerField(shown, "access key"), bannerField(got, "access key")},
		{"secret key", bannerField(shown, "secret key"), bannerField(got, "secret key")},
		{"key id", submatch(keyID, shown), submatch(keyID, got)},
		{"version", bannerField(shown, "version"), bannerField(got, "version")}, // the build's, whatever it is
	}
	var pairs []string
	for _, v := range values {
		if v.readme == "" || v.now == "" {
			t.Fatalf("the %s is missing from the banner; README shows:\n%s\n\ns3seal printed:\n%s", v.name, shown, got)
		}
		pairs = append(pairs, v.readme, v.now)
	}
	if workDir != work {
		t.Fatalf("the banner's data dir is in %s, want %s", workDir, work)
	}
	if hostPort(bannerField(got, "endpoint")) != addr {
		t.Fatalf("the banner's endpoint is not S3SEAL_ADDR %s:\n%s", addr, got)
	}
	subst := strings.NewReplacer(pairs...)
	compareOutput(t, "$ "+steps[0].cmd, subst, steps[0].out, banner, nil)

	// README.md's size and stored size as the README shows them, which must
	// agree by the format, and as they are for the README under test.
	shownSize, shownStored := sizesShown(t, steps)
	if envelope.SegmentSize(shownSize) != shownStored {
		t.Errorf("README.md's example session shows a %d-byte file stored in %d bytes; the format stores %d", shownSize, shownStored, envelope.SegmentSize(shownSize))
	}
	size := int64(len(readme))
	sizes := map[int64]int64{shownStored: envelope.SegmentSize(size), shownSize: size}
	if shownSize != size {
		t.Logf("README.md is %d bytes; its example session shows %d (from when it was run): compared with %d", size, shownSize, size)
	}

	// The other commands, in one shell.
	sh := exec.Command("bash", "--noprofile", "--norc")
	sh.Dir, sh.Env = work, env
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	sh.Stdout, sh.Stderr = pw, pw
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	defer func() {
		stdin.Close()
		sh.Wait()
	}()
	shLines := lineReader(pr)
	const mark = "__README_STEP_DONE__"
	for _, step := range steps[1:] {
		cmd := subst.Replace(step.cmd)
		if _, err := fmt.Fprintf(stdin, "%s\necho \"%s $?\"\n", cmd, mark); err != nil {
			t.Fatal(err)
		}
		var out []string
		status := ""
	read:
		for {
			select {
			case line, ok := <-shLines:
				if !ok {
					t.Fatalf("$ %s: the shell exited; output:\n%s", cmd, strings.Join(out, "\n"))
				}
				if i := strings.Index(line, mark+" "); i >= 0 {
					if line[:i] != "" {
						out = append(out, onTerminal(line[:i]))
					}
					status = line[i+len(mark)+1:]
					break read
				}
				out = append(out, onTerminal(line))
			case <-time.After(2 * time.Minute):
				t.Fatalf("$ %s: no end in 2 minutes; output so far:\n%s", cmd, strings.Join(out, "\n"))
			}
		}
		if status != "0" {
			t.Errorf("$ %s: exit status %s", cmd, status)
		}
		var stored []byte
		if strings.Contains(cmd, "od -An -tx1") {
			if stored, err = os.ReadFile(filepath.Join(work, "s3seal-data", "store", "demo", "README.md")); err != nil {
				t.Fatal(err)
			}
		}
		compareOutput(t, "$ "+cmd, subst, step.out, out, func(want string, lineNo int) string {
			want = replaceSizes(want, sizes)
			if stored != nil {
				want = odWithStored(want, lineNo, stored)
			}
			return want
		})
	}
}

func submatch(re *regexp.Regexp, s string) string {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

// sizesShown finds README.md's size in the session's `aws s3 ls` line and
// its stored size in the `wc -c` line.
func sizesShown(t *testing.T, steps []sessionStep) (size, stored int64) {
	t.Helper()
	lsLine := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +(\d+) README\.md$`)
	wcLine := regexp.MustCompile(`^(\d+) s3seal-data/store/demo/README\.md$`)
	for _, s := range steps {
		for _, line := range s.out {
			if m := lsLine.FindStringSubmatch(line); m != nil {
				size, _ = strconv.ParseInt(m[1], 10, 64)
			}
			if m := wcLine.FindStringSubmatch(line); m != nil {
				stored, _ = strconv.ParseInt(m[1], 10, 64)
			}
		}
	}
	if size == 0 || stored == 0 {
		t.Fatal("README.md's example session shows no `aws s3 ls` of README.md or no `wc -c` of the stored file")
	}
	return size, stored
}

// replaceSizes replaces each whole number that is a key of sizes in line
// by its value, keeping a right-aligned column's width (as `aws s3 ls`
// aligns sizes).
func replaceSizes(line string, sizes map[int64]int64) string {
	return regexp.MustCompile(`( *)\b(\d+)\b`).ReplaceAllStringFunc(line, func(m string) string {
		old, _ := strconv.ParseInt(strings.TrimLeft(m, " "), 10, 64)
		now, ok := sizes[old]
		if !ok {
			return m
		}
		n := strconv.FormatInt(now, 10)
		pad := len(m) - len(n)
		if strings.HasPrefix(m, " ") && pad < 1 {
			pad = 1
		}
		return strings.Repeat(" ", max(pad, 0)) + n
	})
}

// odWithStored puts the stored file's bytes in line lineNo of the README's
// `od -An -tx1` output, 16 to a line, after the segment header's first 8
// bytes (version, reserved bytes and part number: fixed, and left as the
// README shows them).
func odWithStored(line string, lineNo int, stored []byte) string {
	fields := strings.Fields(line)
	for i := range fields {
		at := lineNo*16 + i
		if at >= 8 && at < len(stored) && regexp.MustCompile(`^[0-9a-f]{2}$`).MatchString(fields[i]) {
			fields[i] = fmt.Sprintf("%02x", stored[at])
		}
	}
	return " " + strings.Join(fields, " ")
}

// compareOutput checks got against the README's lines for cmd: each README
// line, its values substituted (subst, then adjust when not nil) and a
// trailing "<- note" dropped, must be the line printed; an object date must
// be now; a README line "..." ends the comparison.
func compareOutput(t *testing.T, cmd string, subst *strings.Replacer, readme, got []string, adjust func(want string, lineNo int) string) {
	t.Helper()
	note := regexp.MustCompile(`\s+<- .*$`)
	date := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
	for i, want := range readme {
		if strings.TrimSpace(want) == "..." {
			return
		}
		want = subst.Replace(note.ReplaceAllString(want, ""))
		if adjust != nil {
			want = adjust(want, i)
		}
		if i >= len(got) {
			t.Errorf("%s: output ends before line %d, %q; it is:\n%s", cmd, i+1, want, strings.Join(got, "\n"))
			return
		}
		line := got[i]
		if d := date.FindString(want); d != "" {
			when, err := time.ParseInLocation(time.DateTime, date.FindString(line), time.Local)
			if err != nil || time.Since(when).Abs() > 5*time.Minute {
				t.Errorf("%s: line %d, %q: its date is not now (%v)", cmd, i+1, line, err)
			}
			want = strings.Replace(want, d, date.FindString(line), 1)
		}
		if line != want {
			t.Errorf("%s: line %d is\n\t%q\nwant\n\t%q", cmd, i+1, line, want)
		}
	}
	if len(got) > len(readme) {
		t.Errorf("%s: more output than README.md shows:\n%s", cmd, strings.Join(got[len(readme):], "\n"))
	}
}

// newUserEnv is the environment of a new user: no S3SEAL_* and no AWS
// credential; `aws` is the AWS CLI v2 (on this machine a v1 shim may come
// first on PATH), reading no configuration files.
func newUserEnv(t *testing.T) []string {
	t.Helper()
	awsCLI := "/usr/bin/aws"
	if _, err := os.Stat(awsCLI); err != nil {
		t.Fatalf("the README's sessions need the AWS CLI v2 at %s (scripts/deps installs it): %v", awsCLI, err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(awsCLI, filepath.Join(bin, "aws")); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "S3SEAL_"), strings.HasPrefix(name, "AWS_"), name == "PATH":
		default:
			env = append(env, kv)
		}
	}
	return append(env, "PATH="+bin+":"+os.Getenv("PATH"), "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
}
