package repocheck

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/config"
)

// TestReadmeConfigTable keeps the README's configuration table identical to
// the one generated from the Config struct, so the README stays true.
func TestReadmeConfigTable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := config.WriteMarkdown(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), table.String()) {
		t.Fatalf("README.md's configuration table differs from `s3seal help config-markdown`:\n%s", table.String())
	}
}
