package repocheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTroubleshootingMessagesTested keeps README's Troubleshooting table
// true: each message it quotes (its code spans in the "s3seal says" column,
// "..." marking a cut) must appear, fragment by fragment, in some test of
// the repository, which asserts s3seal still says it. Placeholders (ID,
// URL, HOST:PORT, N, /x, an address) stand for what a test fills in, and
// cut a message into fragments too.
func TestTroubleshootingMessagesTested(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := sectionOf(t, string(readme), "## Troubleshooting")
	tests := testSources(t)
	span := regexp.MustCompile("`([^`]+)`")
	cut := regexp.MustCompile(`\.\.\.|\b(ID|URL|HOST:PORT|N)\b|/x\b|\d+\.\d+\.\d+\.\d+:\d+`)
	for _, row := range strings.Split(section, "\n") {
		cells := strings.Split(row, " | ")
		if len(cells) != 3 || strings.HasPrefix(row, "| you did") || strings.HasPrefix(row, "| ---") {
			continue
		}
		for _, m := range span.FindAllStringSubmatch(cells[1], -1) {
			for _, frag := range cut.Split(m[1], -1) {
				frag = strings.TrimSpace(strings.Trim(strings.TrimSpace(frag), ";,"))
				if len(frag) < 12 || strings.HasPrefix(frag, "S3SEAL_") && !strings.ContainsAny(frag, " :") {
					continue // a variable's name, not a message
				}
				if !strings.Contains(tests, frag) {
					t.Errorf("README Troubleshooting quotes %q, which no test asserts", frag)
				}
			}
		}
	}
}

// sectionOf returns the text of the README section under heading, up to
// the next heading of its level.
func sectionOf(t *testing.T, readme, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// testSources is the text of every _test.go file of the repository, with
// Go's escaped quotes undone so that messages compare as printed.
func testSources(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		b.WriteString(strings.ReplaceAll(string(src), `\"`, `"`))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
