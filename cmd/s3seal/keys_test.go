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
	"time"

	"github.com/s3seal/s3seal/internal/datadir"

	"github.com/s3seal/s3seal/envelope/keyring"
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
	keysJSON(t, dir, "create")
	tests := []struct {
		name    string
		environ []string
		args    []string
		code    int
		stderr  string
	}{
		{"aws provider, no CMK", []string{"S3SEAL_DATA_DIR=" + dir, "S3SEAL_KMS_PROVIDER=aws"}, []string{"list"}, exitError, "S3SEAL_KMS_KEY_ID is not set: no CMKs are configured; set it (and S3SEAL_KMS_DECRYPT_KEY_IDS) to the CMKs s3seal uses, or describe any CMK with s3seal keys describe ID"},
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

// keysFixture is a keyring with a key in each state a refusal depends on:
// alias/a enabled, alias/d disabled, alias/p pending deletion.
func keysFixture(t *testing.T) (dir string, ids map[string]string) {
	t.Helper()
	dir = t.TempDir()
	ids = map[string]string{}
	for _, name := range []string{"a", "d", "p"} {
		ids[name] = keysJSON(t, dir, "create", "-alias", "alias/"+name)[0].ID
	}
	keysJSON(t, dir, "disable", "alias/d")
	keysJSON(t, dir, "schedule-deletion", "alias/p")
	return dir, ids
}

// writeMaterial writes content to a file and returns its path.
func writeMaterial(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "material")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every refused keys command changes nothing (the keyring file stays
// byte for byte the same: no orphan key, no half-made change) and says
// what is wrong and how to fix it.
func TestKeysRefusalsChangeNothing(t *testing.T) {
	dir, ids := keysFixture(t)
	ring := filepath.Join(dir, datadir.KeyringFile)
	good := writeMaterial(t, hex.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	short := writeMaterial(t, "0123456789")
	pending := "key " + ids["p"] + " is pending deletion; cancel the deletion first; fix: s3seal keys cancel-deletion alias/p (the key stays disabled), then s3seal keys enable alias/p; or use another key"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"create, alias without alias/", []string{"create", "-alias", "team"}, `s3seal keys create: -alias: invalid alias "team": want alias/NAME, as in alias/team`},
		{"create, reserved alias", []string{"create", "-alias", "alias/aws/s3"}, `-alias: invalid alias "alias/aws/s3": alias/aws/ is reserved for AWS-managed keys; choose another NAME`},
		{"create, bad character", []string{"create", "-alias", "alias/a b"}, `-alias: invalid alias "alias/a b": only letters, digits, '/', '_' and '-' are allowed after alias/`},
		{"create, alias taken", []string{"create", "-alias", "alias/a"}, "s3seal keys create: alias alias/a already exists (it names key " + ids["a"] + "); fix: choose another alias, or free this one first: s3seal keys unalias alias/a"},
		{"create, long description", []string{"create", "-description", strings.Repeat("é", 8193)}, "-description: invalid description: 8193 characters, at most 8192"},
		{"create, control character", []string{"create", "-description", "two\nlines"}, "-description: invalid description: control character U+000A at byte 3; use one line of text"},
		{"import, no file flag", []string{"import"}, "-material-file is required: a file with 32 bytes of key material (make one with: openssl rand 32 > FILE)"},
		{"import, missing file", []string{"import", "-material-file", filepath.Join(dir, "nope")}, "-material-file: open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"import, short material", []string{"import", "-material-file", short}, "-material-file " + short + ": 10 bytes, want exactly 32 bytes of key material: raw (openssl rand 32), hex (openssl rand -hex 32) or base64 (openssl rand -base64 32)"},
		{"import, alias taken", []string{"import", "-material-file", good, "-alias", "alias/d"}, "alias alias/d already exists (it names key " + ids["d"] + "); fix: choose another alias, or free this one first: s3seal keys unalias alias/d"},
		{"import, bad alias", []string{"import", "-material-file", good, "-alias", "d"}, `-alias: invalid alias "d": want alias/NAME, as in alias/d`},
		{"alias, bad syntax", []string{"alias", "new", "alias/a"}, `s3seal keys alias: invalid alias "new": want alias/NAME, as in alias/new`},
		{"alias, taken", []string{"alias", "alias/a", "alias/d"}, "alias alias/a already exists (it names key " + ids["a"] + "); fix: choose another alias, or free this one first: s3seal keys unalias alias/a"},
		{"alias, unknown target", []string{"alias", "alias/new", "alias/nope"}, `s3seal keys alias: no key "alias/nope" in ` + ring + ": s3seal keys list shows the keys and aliases there"},
		{"alias, target pending deletion", []string{"alias", "alias/new", "alias/p"}, "s3seal keys alias: " + pending},
		{"rotate, disabled", []string{"rotate", "alias/d"}, "s3seal keys rotate: key " + ids["d"] + " is Disabled; fix: s3seal keys enable alias/d, then try again"},
		{"rotate, pending deletion", []string{"rotate", "alias/p"}, "key " + ids["p"] + " is PendingDeletion; fix: s3seal keys cancel-deletion alias/p (the key stays disabled), then s3seal keys enable alias/p; or use another key"},
		{"enable, pending deletion", []string{"enable", "alias/p"}, "s3seal keys enable: " + pending},
		{"enable-rotation, disabled", []string{"enable-rotation", "alias/d"}, "s3seal keys enable-rotation: key " + ids["d"] + " is Disabled; fix: s3seal keys enable alias/d, then try again"},
		{"enable-rotation, bad period", []string{"enable-rotation", "alias/a", "-period", "0d"}, `-period: "0d": want a whole number of days from 1 to 2560, as in 365d`},
		{"schedule-deletion, days", []string{"schedule-deletion", "alias/a", "-days", "3"}, "s3seal keys schedule-deletion: -days 3: the waiting period is 7 to 30 days"},
		{"schedule-deletion, twice", []string{"schedule-deletion", "alias/p"}, pending},
		{"cancel-deletion, not pending", []string{"cancel-deletion", "alias/a"}, "s3seal keys cancel-deletion: key " + ids["a"] + " is not pending deletion"},
		{"describe, unknown", []string{"describe", "nope"}, `s3seal keys describe: no key "nope" in ` + ring + ": s3seal keys list shows the keys and aliases there"},
		{"disable, unknown", []string{"disable", "alias/nope"}, `no key "alias/nope" in ` + ring},
		{"unalias, unknown", []string{"unalias", "alias/nope"}, `s3seal keys unalias: no key "alias/nope" in ` + ring},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := os.ReadFile(ring)
			if err != nil {
				t.Fatal(err)
			}
			_, stderr, code := keysRun(t, dir, tt.args...)
			if code != exitError || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and:\n%s", code, stderr, exitError, tt.want)
			}
			if after, _ := os.ReadFile(ring); !bytes.Equal(before, after) {
				t.Errorf("the refused command changed the keyring file")
			}
		})
	}
	if n := len(keysJSON(t, dir, "list")); n != 3 {
		t.Errorf("%d keys after the refusals, want the fixture's 3", n)
	}
}

// Only create and import start a keyring (and its data dir); every other
// command refuses a data dir without one, naming S3SEAL_DATA_DIR and the
// fix, and leaves nothing behind.
func TestKeysMissingKeyring(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "missing")
	empty := filepath.Join(base, "empty")
	file := filepath.Join(base, "file")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const fix = "set S3SEAL_DATA_DIR to the data dir of your s3seal serve, or run `s3seal keys create` to start a keyring there"
	tests := []struct {
		dir  string
		args []string
		want string
	}{
		{missing, []string{"list"}, "s3seal keys list: S3SEAL_DATA_DIR=" + missing + " does not exist: " + fix},
		{missing, []string{"describe", "alias/s3seal"}, "S3SEAL_DATA_DIR=" + missing + " does not exist: " + fix},
		{missing, []string{"enable", "alias/s3seal"}, "S3SEAL_DATA_DIR=" + missing + " does not exist: " + fix},
		{missing, []string{"rotation-status", "alias/s3seal"}, "S3SEAL_DATA_DIR=" + missing + " does not exist: " + fix},
		{empty, []string{"list"}, "s3seal keys list: S3SEAL_DATA_DIR=" + empty + " has no keyring.json (no key was ever made there): " + fix},
		{empty, []string{"alias", "alias/x", "alias/y"}, "S3SEAL_DATA_DIR=" + empty + " has no keyring.json"},
		{file, []string{"list"}, "S3SEAL_DATA_DIR=" + file + " is a file, not a directory: set S3SEAL_DATA_DIR to the data dir of your s3seal serve"},
		{file, []string{"create"}, "s3seal keys create: S3SEAL_DATA_DIR=" + file + " is a file, not a directory"},
		// Refused before the keyring is opened: no data dir is made for it.
		{missing, []string{"create", "-alias", "team"}, `invalid alias "team"`},
		{missing, []string{"import", "-material-file", filepath.Join(base, "nope")}, "-material-file: open"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " ")+" in "+filepath.Base(tt.dir), func(t *testing.T) {
			_, stderr, code := keysRun(t, tt.dir, tt.args...)
			if code != exitError || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and:\n%s", code, stderr, exitError, tt.want)
			}
		})
	}
	entries, _ := os.ReadDir(empty)
	if _, err := os.Stat(missing); !os.IsNotExist(err) || len(entries) != 0 {
		t.Errorf("a refused command made the data dir (%v) or files in it (%v)", err, entries)
	}
	// create starts both.
	if keys := keysJSON(t, missing, "create", "-alias", "alias/first"); len(keys) != 1 || keys[0].Aliases[0] != "alias/first" {
		t.Fatalf("create in a new data dir: %+v", keys)
	}
}

// Dates read in the right tense: a deletion or rotation to come is
// "on" a date, one that has passed is "since" or in the past tense.
func TestKeysDatesTense(t *testing.T) {
	dir, ids := keysFixture(t)
	deletion := keysJSON(t, dir, "describe", "alias/p")[0].DeletionDate.UTC().Format(time.DateOnly)
	if _, stderr, code := keysRun(t, dir, "enable-rotation", "alias/a", "-period", "90d"); code != exitOK {
		t.Fatal(stderr)
	}
	next := keysJSON(t, dir, "describe", "alias/a")[0].NextRotation.UTC()

	out, _, _ := keysRun(t, dir, "describe", "alias/p")
	if want := "PendingDeletion (deletion on " + deletion + ")"; !strings.Contains(out, want) {
		t.Errorf("describe of a key pending deletion:\n%s\nwant %q", out, want)
	}
	out, _, _ = keysRun(t, dir, "list")
	if want := "90d (next on " + next.Format(time.DateOnly) + ")"; !strings.Contains(out, want) {
		t.Errorf("list:\n%s\nwant %q", out, want)
	}
	out, _, _ = keysRun(t, dir, "rotation-status", "alias/a")
	if want := "key " + ids["a"] + ": automatic rotation enabled, every 90d, next rotation on " + next.Format(time.RFC3339) + "; 1 material version(s)"; strings.TrimSpace(out) != want {
		t.Errorf("rotation-status: %q, want %q", out, want)
	}

	// A rotation that is due (no serve ran to make it).
	setNextRotation(t, filepath.Join(dir, datadir.KeyringFile), ids["a"], "2020-01-02T03:04:05Z")
	out, _, _ = keysRun(t, dir, "rotation-status", "alias/a")
	if want := "every 90d, due since 2020-01-02T03:04:05Z (a running s3seal serve rotates it within 2 seconds)"; !strings.Contains(out, want) {
		t.Errorf("rotation-status of a due key: %q, want %q", out, want)
	}
	out, _, _ = keysRun(t, dir, "list")
	if want := "90d (due since 2020-01-02)"; !strings.Contains(out, want) {
		t.Errorf("list:\n%s\nwant %q", out, want)
	}
	out, _, _ = keysRun(t, dir, "rotate", "alias/a")
	if !strings.Contains(out, "90d (due since 2020-01-02)") {
		t.Errorf("rotate output: %s", out)
	}
	// JSON keeps machine-readable timestamps.
	if k := keysJSON(t, dir, "describe", "alias/a")[0]; k.NextRotation.Format(time.RFC3339) != "2020-01-02T03:04:05Z" {
		t.Errorf("JSON next_rotation %v", k.NextRotation)
	}
}

// setNextRotation edits the keyring file, as a clock that moved on would
// leave it.
func setNextRotation(t *testing.T, path, id, when string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range doc["keys"].([]any) {
		if key := k.(map[string]any); key["id"] == id {
			key["next_rotation"] = when
		}
	}
	out, _ := json.Marshal(doc)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDated(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		at   time.Time
		want string
	}{
		{now.Add(24 * time.Hour), "deletion on 2026-12-03"},
		{now.Add(-24 * time.Hour), "deleted on 2026-12-01"},
		{now, "deleted on 2026-12-02"},
	}
	for _, tt := range tests {
		if got := dated(tt.at, now, "deletion on", "deleted on"); got != tt.want {
			t.Errorf("dated(%v) = %q, want %q", tt.at, got, tt.want)
		}
	}
}

// A keyring file that does not parse is named once, with its path and
// what to do, not "keyring: keyring: ...".
func TestKeysCorruptKeyring(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, datadir.KeyringFile)
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := keysRun(t, dir, "list")
	want := "s3seal keys list: keyring: parsing " + path + ": unexpected end of JSON input; the file is damaged: restore it from a backup " +
		"(do not delete it: the objects sealed under its keys cannot be decrypted without it)"
	if code != exitError || !strings.Contains(stderr, want) || strings.Count(stderr, "keyring:") != 1 {
		t.Errorf("exit %d, stderr:\n%s\nwant %q, keyring: once", code, stderr, want)
	}
}

// create and import that start a keyring say so, with its absolute path,
// rather than that a running serve uses the change: none does, and the
// data dir may be a mistyped one. A change to an existing keyring says the
// usual.
func TestKeysNewKeyringNote(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "missing")
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	material := writeMaterial(t, strings.Repeat("ab", 32))
	const served = "note: a running s3seal serve on this data dir uses this change within 2 seconds"
	started := func(dir string) string {
		return "note: started a new keyring at " + filepath.Join(dir, datadir.KeyringFile) + " (S3SEAL_DATA_DIR=" + dir +
			"): no s3seal serve uses it yet; if you meant an existing data dir, set S3SEAL_DATA_DIR to it"
	}
	tests := []struct {
		name      string
		dir       string
		args      []string
		want, not string
	}{
		{"create in a missing data dir", missing, []string{"create"}, started(missing), served},
		{"create again", missing, []string{"create"}, served, "started a new keyring"},
		{"import in an empty data dir", empty, []string{"import", "-material-file", material}, started(empty), served},
		{"create in a keyring import started", empty, []string{"create", "-alias", "alias/x"}, served, "started a new keyring"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := keysRun(t, tt.dir, tt.args...)
			if code != exitOK || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, tt.not) {
				t.Errorf("exit %d, stderr:\n%s\nwant %q, not %q", code, stderr, tt.want, tt.not)
			}
		})
	}
}

// A description (or alias) from the KMS API may hold escape sequences:
// the table and describe show them escaped, never raw to the terminal,
// and -json keeps them as JSON escapes that decode to the same text.
func TestKeysEscapeDescriptions(t *testing.T) {
	dir := t.TempDir()
	ring, err := keyring.Open(filepath.Join(dir, datadir.KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	const desc = "red \x1b[31m over\rwrite \u009b2J tab\t bidi\u202e é"
	info, err := ring.CreateKeyWith(keyring.KeySpec{Description: desc, Alias: "alias/team"})
	if err != nil {
		t.Fatal(err)
	}
	const shown = `red \x1b[31m over\rwrite \u009b2J tab\t bidi\u202e é`
	for _, args := range [][]string{{"list"}, {"describe", info.ID}, {"describe", "alias/team"}} {
		stdout, stderr, code := keysRun(t, dir, args...)
		if code != exitOK || !strings.Contains(stdout, shown) || strings.ContainsAny(stdout, "\x1b\r\u009b\u202e\t") {
			t.Errorf("keys %v: exit %d, stdout %q (stderr %s), want %q and no raw control characters", args, code, stdout, stderr, shown)
		}
		stdout, _, _ = keysRun(t, dir, append(args, "-json")...)
		if strings.ContainsAny(stdout, "\x1b\r\u009b\t") {
			t.Errorf("keys %v -json: raw control characters in %q", args, stdout)
		}
		if keys := keysJSON(t, dir, args...); len(keys) != 1 || keys[0].Description != desc {
			t.Errorf("keys %v -json: %+v, want the description %q", args, keys, desc)
		}
	}
}

// -json escapes every non-printable beyond ASCII (bidi overrides and
// isolates, which would reorder the line as shown, C1 controls, a tag
// character beyond U+FFFF) and DEL, and decodes to the same text.
func TestWriteJSONEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain é ✓", `"plain é ✓"`},
		{"rtl\u202eoverride", `"rtl\u202eoverride"`},
		{"iso\u2066\u2067\u2068\u2069late", `"iso\u2066\u2067\u2068\u2069late"`},
		{"csi\u009b2J del\x7f", `"csi\u009b2J del\u007f"`},
		{"zw\u200bsp nb\u00a0sp", `"zw\u200bsp nb\u00a0sp"`},
		{"tag\U000e0041", `"tag\udb40\udc41"`},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := writeJSON(&b, tt.in); err != nil {
			t.Fatal(err)
		}
		var back string
		if got := strings.TrimSuffix(b.String(), "\n"); got != tt.want || json.Unmarshal(b.Bytes(), &back) != nil || back != tt.in {
			t.Errorf("writeJSON(%q) = %s (decodes to %q), want %s", tt.in, got, back, tt.want)
		}
	}
}

func TestTermSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, with: punctuation/é", "plain text, with: punctuation/é"},
		{"\x1b[31mred", `\x1b[31mred`},
		{"a\rb\nc\td", `a\rb\nc\td`},
		{"\u009b2J\x7f", `\u009b2J\x7f`},
		{"rtl\u202eoverride", `rtl\u202eoverride`},
		{"bad \xff utf-8", `bad \xff utf-8`},
	}
	for _, tt := range tests {
		if got := termSafe(tt.in); got != tt.want {
			t.Errorf("termSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
