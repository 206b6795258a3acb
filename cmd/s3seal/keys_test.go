package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/datadir"
)

// keysRun runs `s3seal keys args...` against dataDir.
func keysRun(t *testing.T, dataDir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"keys"}, args...), []string{"S3SEAL_DATA_DIR=" + dataDir}, &out, &errOut)
	return out.String(), errOut.String(), code
}

// keysJSON runs a keys command with -json and decodes its output.
func keysJSON(t *testing.T, dataDir string, args ...string) []keyJSON {
	t.Helper()
	stdout, stderr, code := keysRun(t, dataDir, append(args, "-json")...)
	if code != exitOK {
		t.Fatalf("keys %v: exit %d: %s", args, code, stderr)
	}
	var keys []keyJSON
	if err := json.Unmarshal([]byte(stdout), &keys); err != nil {
		t.Fatalf("keys %v: %v in %q", args, err, stdout)
	}
	return keys
}

func TestKeysRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")

	if keys := keysJSON(t, dir, "list"); len(keys) != 0 {
		t.Fatalf("fresh keyring lists %+v", keys)
	}
	created := keysJSON(t, dir, "create", "-description", "team a", "-alias", "alias/team-a")
	if len(created) != 1 || created[0].Description != "team a" || created[0].State != "Enabled" ||
		len(created[0].Aliases) != 1 || created[0].Aliases[0] != "alias/team-a" || created[0].Versions != 1 {
		t.Fatalf("create: %+v", created)
	}
	id := created[0].ID
	if m := fileMode(t, filepath.Join(dir, datadir.KeyringFile)); m != 0o600 {
		t.Errorf("keyring mode %v, want 0600", m)
	}

	// Flags may follow positional arguments.
	if k := keysJSON(t, dir, "rotate", "alias/team-a"); k[0].Versions != 2 {
		t.Errorf("rotate: %+v", k)
	}
	if k := keysJSON(t, dir, "disable", id); k[0].State != "Disabled" {
		t.Errorf("disable: %+v", k)
	}
	if k := keysJSON(t, dir, "enable", id); k[0].State != "Enabled" {
		t.Errorf("enable: %+v", k)
	}
	if k := keysJSON(t, dir, "schedule-deletion", id, "-days", "7"); k[0].State != "PendingDeletion" || k[0].DeletionDate.IsZero() {
		t.Errorf("schedule-deletion: %+v", k)
	}
	if k := keysJSON(t, dir, "cancel-deletion", id); k[0].State != "Disabled" || !k[0].DeletionDate.IsZero() {
		t.Errorf("cancel-deletion: %+v", k)
	}
	if k := keysJSON(t, dir, "alias", "alias/second", id); len(k[0].Aliases) != 2 {
		t.Errorf("alias: %+v", k)
	}
	if k := keysJSON(t, dir, "unalias", "alias/second"); len(k[0].Aliases) != 1 || k[0].Aliases[0] != "alias/team-a" {
		t.Errorf("unalias: %+v", k)
	}

	material := filepath.Join(t.TempDir(), "material.hex")
	if err := os.WriteFile(material, []byte(hex.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	imported := keysJSON(t, dir, "import", "-material-file", material, "-description", "byok")
	if imported[0].Origin != "EXTERNAL" || imported[0].Description != "byok" {
		t.Errorf("import: %+v", imported)
	}

	// The table names every key, and no key material.
	stdout, _, code := keysRun(t, dir, "list")
	if code != exitOK || !strings.Contains(stdout, id) || !strings.Contains(stdout, imported[0].ID) ||
		!strings.Contains(stdout, "alias/team-a") || !strings.HasPrefix(stdout, "ID") {
		t.Errorf("list table (exit %d):\n%s", code, stdout)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, datadir.KeyringFile))
	var ring struct{ Keys []struct{ Material []string } }
	if err := json.Unmarshal(raw, &ring); err != nil {
		t.Fatal(err)
	}
	for _, k := range ring.Keys {
		for _, m := range k.Material {
			if strings.Contains(stdout, m) {
				t.Errorf("list prints key material")
			}
		}
	}
}

// The key a zero-config start creates is visible to `keys list`.
func TestKeysSeesServeDefaultKey(t *testing.T) {
	dir := t.TempDir()
	startZeroConfig(t, dir)
	keys := keysJSON(t, dir, "list")
	if len(keys) != 1 || len(keys[0].Aliases) != 1 || keys[0].Aliases[0] != defaultKeyAlias {
		t.Errorf("keys = %+v, want one with %s", keys, defaultKeyAlias)
	}
}

func TestKeysErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		environ []string
		args    []string
		code    int
		stderr  string
	}{
		{"aws provider, no CMK", []string{"S3SEAL_DATA_DIR=" + dir, "S3SEAL_KMS_PROVIDER=aws"}, []string{"list"}, exitError, "S3SEAL_KMS_KEY_ID is not set"},
		{"aws provider, a change", []string{"S3SEAL_DATA_DIR=" + dir, "S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID=alias/x"}, []string{"disable", "alias/x"}, exitError, "with AWS's tools"},
		{"unknown command", nil, []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"missing id", nil, []string{"rotate"}, exitUsage, "rotate takes 1 argument"},
		{"extra argument", nil, []string{"list", "x"}, exitUsage, "list takes 0 argument"},
		{"unknown key", nil, []string{"disable", "alias/nope"}, exitError, "alias/nope"},
		{"bad days", nil, []string{"schedule-deletion", "alias/nope", "-days", "3"}, exitError, "7 to 30"},
		{"import without file", nil, []string{"import"}, exitError, "-material-file is required"},
		{"bad flag", nil, []string{"create", "-nope"}, exitUsage, "flag provided but not defined"},
		{"no command", nil, nil, exitUsage, "Usage: s3seal keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := tt.environ
			if environ == nil {
				environ = []string{"S3SEAL_DATA_DIR=" + dir}
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"keys"}, tt.args...), environ, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tt.code, tt.stderr)
			}
		})
	}
}

func TestKeysHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"keys", "-h"}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, cmd := range []string{"list", "create", "rotate", "disable", "enable", "schedule-deletion", "cancel-deletion", "alias", "unalias", "import"} {
		if !strings.Contains(stdout.String(), "  "+cmd+" ") {
			t.Errorf("keys help lacks %s", cmd)
		}
	}
}

func TestDecodeMaterial(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	for name, in := range map[string][]byte{
		"raw":    key,
		"hex":    []byte(hex.EncodeToString(key) + "\n"),
		"base64": []byte("q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n"),
	} {
		got, err := decodeMaterial(in)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: %x, %v", name, got, err)
		}
	}
	if _, err := decodeMaterial([]byte("short")); err == nil {
		t.Error("short material accepted")
	}
}

func TestKeysRotationCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	id := keysJSON(t, dir, "create", "-alias", "alias/rot")[0].ID
	rotation := func(args ...string) keyRotationJSON {
		t.Helper()
		stdout, stderr, code := keysRun(t, dir, append(args, "-json")...)
		var r keyRotationJSON
		if code != exitOK || json.Unmarshal([]byte(stdout), &r) != nil {
			t.Fatalf("keys %v: exit %d %s %s", args, code, stdout, stderr)
		}
		return r
	}
	if r := rotation("rotation-status", "alias/rot"); r.Enabled || r.ID != id {
		t.Fatalf("a new key: %+v", r)
	}
	if r := rotation("enable-rotation", "alias/rot"); !r.Enabled || r.Period != "365d" || r.Next.IsZero() {
		t.Fatalf("default period: %+v", r)
	}
	if r := rotation("enable-rotation", id, "-period", "90d"); r.Period != "90d" {
		t.Fatalf("-period 90d: %+v", r)
	}
	if keys := keysJSON(t, dir, "list"); keys[0].Rotation != "90d" || keys[0].NextRotation.IsZero() {
		t.Fatalf("list: %+v", keys[0])
	}
	if r := rotation("disable-rotation", id); r.Enabled || r.Period != "" {
		t.Fatalf("disabled: %+v", r)
	}
	out, _, code := keysRun(t, dir, "rotation-status", id)
	if code != exitOK || !strings.Contains(out, "automatic rotation disabled") {
		t.Fatalf("text status: %d %q", code, out)
	}
	for _, bad := range []string{"0d", "x", "-5m", "1ms", "213504d", "100000h"} {
		if _, stderr, code := keysRun(t, dir, "enable-rotation", id, "-period", bad); code != exitError || stderr == "" {
			t.Errorf("-period %s: exit %d %q", bad, code, stderr)
		}
	}
}
