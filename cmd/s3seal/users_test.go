package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// usersRun runs `s3seal users args...` against dataDir.
func usersRun(t *testing.T, dataDir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"users"}, args...), []string{"S3SEAL_DATA_DIR=" + dataDir}, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestUsersRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{{"list"}, {"add", "alice"}} {
		want := "S3SEAL_DATA_DIR=" + dir + " does not exist: set S3SEAL_DATA_DIR to the data dir of your s3seal serve, or for a new one, create it first (mkdir -m 700 " + dir + ")"
		if _, stderr, code := usersRun(t, dir, args...); code != exitError || !strings.Contains(stderr, want) {
			t.Fatalf("%v in a missing data dir: exit %d, %s; want %q", args, code, stderr, want)
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := usersRun(t, dir, "add", "alice", "--role", "key-user", "--buckets", "team-a,logs-*:read+list", "--keys", "alias/team-a", "--json")
	if code != exitOK {
		t.Fatalf("add: exit %d: %s", code, stderr)
	}
	var cred map[string]string
	if err := json.Unmarshal([]byte(stdout), &cred); err != nil || len(cred) != 2 || cred["access_key"] == "" || cred["secret_key"] == "" {
		t.Fatalf("add -json printed %q (%v)", stdout, err)
	}
	if m := fileMode(t, filepath.Join(dir, "users.json")); m != 0o600 {
		t.Errorf("users.json mode %v, want 0600", m)
	}
	stdout, _, _ = usersRun(t, dir, "add", "ops", "-role", "key-admin")
	if !strings.Contains(stdout, "secret key") {
		t.Errorf("add prints no secret key: %q", stdout)
	}

	for _, args := range [][]string{
		{"grant", "alice", "-buckets", "team-b:read"},
		{"revoke", "alice", "-keys", "alias/team-a"},
		{"grant", "alice", "-keys", "*"},
	} {
		if _, stderr, code := usersRun(t, dir, args...); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	stdout, _, code = usersRun(t, dir, "list", "-json")
	var rows []userJSON
	if err := json.Unmarshal([]byte(stdout), &rows); code != exitOK || err != nil || len(rows) != 2 {
		t.Fatalf("list -json: exit %d, %v: %q", code, err, stdout)
	}
	alice := rows[0]
	if alice.Name != "alice" || alice.AccessKey != cred["access_key"] || len(alice.Buckets) != 3 || strings.Join(alice.Keys, ",") != "*" {
		t.Errorf("alice after the changes: %+v", alice)
	}
	table, _, _ := usersRun(t, dir, "list")
	for _, out := range []string{stdout, table} {
		if strings.Contains(out, cred["secret_key"]) {
			t.Fatal("list shows a secret key")
		}
	}
	if !strings.Contains(table, "team-a:delete+list+read+write") || !strings.Contains(table, "ops") {
		t.Errorf("table:\n%s", table)
	}
	keysRun(t, dir, "create", "-alias", "alias/exists")
	_, stderr, _ = usersRun(t, dir, "grant", "alice", "-keys", "alias/exists,alias/typo")
	if !strings.Contains(stderr, "no key alias/typo") || strings.Contains(stderr, "alias/exists") {
		t.Errorf("grant of a key the keyring lacks: %q", stderr)
	}
	if _, _, code := usersRun(t, dir, "remove", "ops"); code != exitOK {
		t.Fatalf("remove: exit %d", code)
	}
}

// TestUsersListEscaped: bucket patterns and key names are checked only as
// far as matching needs, so list shows them escaped, as keys shows
// descriptions: no terminal escape or bidi override reaches the terminal.
func TestUsersListEscaped(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := usersRun(t, dir, "add", "eve", "--role", "key-user", "--buckets", "a\x1bcb:read", "--keys", "alias/x\u202ey"); code != exitOK {
		t.Fatalf("add: exit %d: %s", code, stderr)
	}
	table, _, _ := usersRun(t, dir, "list")
	js, _, _ := usersRun(t, dir, "list", "-json")
	for _, out := range []string{table, js} {
		if strings.ContainsAny(out, "\x1b\u202e") {
			t.Errorf("list printed a control character: %q", out)
		}
	}
	if !strings.Contains(table, `a\x1bcb:read`) || !strings.Contains(table, `alias/x\u202ey`) {
		t.Errorf("table does not show them escaped:\n%s", table)
	}
	var rows []userJSON
	if err := json.Unmarshal([]byte(js), &rows); err != nil || len(rows) != 1 || rows[0].Buckets[0].Pattern != "a\x1bcb" || rows[0].Keys[0] != "alias/x\u202ey" {
		t.Errorf("list -json does not decode to the grants: %v %+v", err, rows)
	}
}

func TestUsersRefusals(t *testing.T) {
	dir := t.TempDir()
	usersRun(t, dir, "add", "alice", "-role", "key-user")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"add", "bob"}, exitError, "-role is required"},
		{[]string{"add", "bob", "-role", "boss"}, exitError, "unknown role"},
		{[]string{"add", "alice", "-role", "key-user"}, exitError, "already exists"},
		{[]string{"add", "root", "-role", "key-user"}, exitError, "reserved"},
		{[]string{"add", "k", "-role", "key-admin", "-buckets", "b"}, exitError, "takes no bucket grants"},
		{[]string{"add", "b", "-role", "key-user", "-buckets", "x:admin"}, exitError, "unknown access"},
		{[]string{"grant", "alice"}, exitError, "nothing to change"},
		{[]string{"revoke", "alice", "-buckets", "never"}, exitError, "no grant on buckets"},
		{[]string{"remove", "nobody"}, exitError, "no such user"},
		{[]string{"frobnicate"}, exitUsage, "unknown command"},
		{[]string{"add"}, exitUsage, "takes 1 argument"},
	}
	for _, tt := range tests {
		_, stderr, code := usersRun(t, dir, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("users %v: exit %d, %q; want exit %d with %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}
