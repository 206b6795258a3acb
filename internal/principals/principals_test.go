package principals

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/proxy"
)

func TestParseBuckets(t *testing.T) {
	all := []proxy.Access{proxy.AccessDelete, proxy.AccessList, proxy.AccessRead, proxy.AccessWrite}
	tests := []struct {
		in      string
		want    []BucketGrant
		wantErr string
	}{
		{in: "", want: nil},
		{in: "team-a", want: []BucketGrant{{"team-a", all}}},
		{in: "team-a, logs-*:read+list", want: []BucketGrant{{"team-a", all}, {"logs-*", []proxy.Access{proxy.AccessList, proxy.AccessRead}}}},
		{in: "x:read+read", want: []BucketGrant{{"x", []proxy.Access{proxy.AccessRead}}}},
		{in: "x:admin", wantErr: "unknown access"},
		{in: "x:", wantErr: "unknown access"},
		{in: "[a", wantErr: "syntax error"},
		{in: ":read", wantErr: "want 1 to 255"},
	}
	for _, tt := range tests {
		got, err := ParseBuckets(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseBuckets(%q) = %v, want error with %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.EqualFunc(got, tt.want, func(a, b BucketGrant) bool {
			return a.Pattern == b.Pattern && slices.Equal(a.Access, b.Access)
		}) {
			t.Errorf("ParseBuckets(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseKeysAndRole(t *testing.T) {
	if got, err := ParseKeys("alias/a, 1234 ,*"); err != nil || !slices.Equal(got, []string{"alias/a", "1234", "*"}) {
		t.Errorf("ParseKeys = %v, %v", got, err)
	}
	if _, err := ParseKeys("alias/a b"); err == nil {
		t.Error("ParseKeys accepted a space")
	}
	for _, r := range []string{"admin", "key-admin", "key-user"} {
		if _, err := ParseRole(r); err != nil {
			t.Errorf("ParseRole(%q): %v", r, err)
		}
	}
	if _, err := ParseRole("root"); err == nil {
		t.Error("ParseRole(root) accepted")
	}
}

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), File)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

func TestStoreChanges(t *testing.T) {
	s, path := openStore(t)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open created the file: %v", err)
	}
	buckets, _ := ParseBuckets("team-a")
	alice, err := s.Add("alice", RoleKeyUser, buckets, []string{"alias/a"})
	if err != nil {
		t.Fatal(err)
	}
	if alice.AccessKey == "" || alice.SecretKey == "" || alice.Created.IsZero() {
		t.Fatalf("Add returned %+v", alice)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v, %v", fi, err)
	}
	ops, err := s.Add("ops", RoleKeyAdmin, nil, nil)
	if err != nil || !slices.Equal(ops.Keys, []string{AllKeys}) {
		t.Fatalf("key-admin without -keys: %+v, %v", ops, err)
	}

	refused := []struct {
		name string
		err  error
	}{
		{"duplicate name", second(s.Add("alice", RoleKeyUser, nil, nil))},
		{"reserved name", second(s.Add(AdminName, RoleKeyUser, nil, nil))},
		{"bad name", second(s.Add("a b", RoleKeyUser, nil, nil))},
		{"key-admin with buckets", second(s.Add("kb", RoleKeyAdmin, buckets, nil))},
		{"admin with grants", second(s.Add("ad", RoleAdmin, nil, []string{"*"}))},
		{"grant to nobody", second(s.Grant("bob", buckets, nil))},
		{"revoke of nothing granted", second(s.Revoke("alice", nil, []string{"alias/none"}))},
		{"remove nobody", s.Remove("bob")},
	}
	for _, r := range refused {
		if r.err == nil {
			t.Errorf("%s: accepted", r.name)
		}
	}
	if got := names(s.Users()); !slices.Equal(got, []string{"alice", "ops"}) {
		t.Fatalf("users after refusals: %v", got)
	}

	logs, _ := ParseBuckets("logs-*:read")
	u, err := s.Grant("alice", logs, []string{"alias/b", "alias/a"})
	if err != nil || len(u.Buckets) != 2 || !slices.Equal(u.Keys, []string{"alias/a", "alias/b"}) {
		t.Fatalf("Grant: %+v, %v", u, err)
	}
	write, _ := ParseBuckets("team-a:write")
	u, err = s.Revoke("alice", write, []string{"alias/a"})
	if err != nil || slices.Contains(u.Buckets[0].Access, proxy.AccessWrite) || !slices.Equal(u.Keys, []string{"alias/b"}) {
		t.Fatalf("Revoke: %+v, %v", u, err)
	}
	if err := s.Remove("ops"); err != nil {
		t.Fatal(err)
	}
	// Another process's view of the same file.
	other, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := other.Users(); len(got) != 1 || got[0].SecretKey != alice.SecretKey || len(got[0].Buckets) != 2 {
		t.Fatalf("reopened: %+v", got)
	}
}

func second[T any](_ T, err error) error { return err }

func names(us []User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Name)
	}
	return out
}

func TestStoreSharedFile(t *testing.T) {
	a, path := openStore(t)
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Add("one", RoleKeyUser, nil, nil); err != nil {
		t.Fatal(err)
	}
	// b changes the file as it is, not as b last saw it: a's user stays.
	if _, err := b.Add("two", RoleKeyUser, nil, nil); err != nil {
		t.Fatal(err)
	}
	if changed, err := a.Reload(); err != nil || !changed {
		t.Fatalf("Reload: %v, %v", changed, err)
	}
	if got := names(a.Users()); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("users: %v", got)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable users file: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"version":1,"users":[{"name":"x","role":"boss","access_key":"a","secret_key":"s"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reload(); err == nil {
		t.Fatal("Reload accepted an unknown role")
	}
	if got := names(a.Users()); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("a bad file changed the users: %v", got)
	}
}

// fakeResolver names keys as a keyring does: alias/NAME or the id itself.
type fakeResolver map[string]string

func (f fakeResolver) ResolveKey(_ context.Context, name string) ([]string, error) {
	if id, ok := f[name]; ok {
		return []string{id}, nil
	}
	for _, id := range f {
		if id == name {
			return []string{id}, nil
		}
	}
	return nil, &kms.KMSError{Op: "DescribeKey", Kind: kms.ErrKeyNotFound}
}

func directory(t *testing.T) (*Directory, map[string]User) {
	t.Helper()
	s, _ := openStore(t)
	users := map[string]User{}
	add := func(name string, role Role, buckets string, keys []string) {
		b, err := ParseBuckets(buckets)
		if err != nil {
			t.Fatal(err)
		}
		u, err := s.Add(name, role, b, keys)
		if err != nil {
			t.Fatal(err)
		}
		users[name] = u
	}
	add("alice", RoleKeyUser, "team-a,logs-*:read+list", []string{"alias/a", "alias/gone"})
	add("bob", RoleKeyUser, "*", []string{"*"})
	add("ops", RoleKeyAdmin, "", []string{"key-a"})
	add("boss", RoleAdmin, "", nil)
	users[AdminName] = User{Name: AdminName, AccessKey: "ROOTAK", SecretKey: "rootsecret"}
	return NewDirectory(s, "ROOTAK", "rootsecret", fakeResolver{"alias/a": "key-a", "alias/b": "key-b"}), users
}

func TestDirectoryS3(t *testing.T) {
	d, users := directory(t)
	tests := []struct {
		who, bucket string
		access      proxy.Access
		want        bool
	}{
		{AdminName, "any", proxy.AccessAdmin, true},
		{"boss", "any", proxy.AccessWrite, true},
		{"alice", "team-a", proxy.AccessWrite, true},
		{"alice", "team-a", proxy.AccessDelete, true},
		{"alice", "team-b", proxy.AccessRead, false},
		{"alice", "logs-2026", proxy.AccessRead, true},
		{"alice", "logs-2026", proxy.AccessWrite, false},
		{"alice", "logs-2026", proxy.AccessAny, true},
		{"alice", "team-a", proxy.AccessAdmin, false},
		{"alice", "", proxy.AccessList, true},
		{"bob", "whatever", proxy.AccessWrite, true},
		{"ops", "team-a", proxy.AccessRead, false},
		{"ops", "", proxy.AccessList, false},
	}
	for _, tt := range tests {
		p, ok := d.Principal(users[tt.who].AccessKey)
		if !ok || p.Name() != tt.who {
			t.Fatalf("Principal(%s) = %v, %v", tt.who, p, ok)
		}
		if got := p.MayBucket(tt.bucket, tt.access); got != tt.want {
			t.Errorf("%s MayBucket(%q, %q) = %v, want %v", tt.who, tt.bucket, tt.access, got, tt.want)
		}
	}
	keyTests := []struct {
		who, key string
		want     error
	}{
		{"alice", "key-a", nil},
		{"alice", "key-b", kms.ErrNotGranted},
		{"bob", "key-b", nil},
		{"ops", "key-a", kms.ErrNotGranted},
		{"boss", "key-b", nil},
	}
	for _, tt := range keyTests {
		p, _ := d.Principal(users[tt.who].AccessKey)
		if err := p.MayUse(t.Context(), tt.key); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s MayUse(%s) = %v, want %v", tt.who, tt.key, err, tt.want)
		}
	}
	if s, ok := d.Secret(users["alice"].AccessKey); !ok || s != users["alice"].SecretKey {
		t.Error("Secret of alice")
	}
	if _, ok := d.Secret("NOSUCHKEY"); ok {
		t.Error("Secret of an unknown key")
	}
}

func TestDirectoryKMS(t *testing.T) {
	d, users := directory(t)
	tests := []struct {
		who, action, key string
		allow            bool
	}{
		{"alice", "kms:Encrypt", "key-a", true},
		{"alice", "kms:Decrypt", "key-b", false},
		{"alice", "kms:DisableKey", "key-a", false},
		{"alice", "kms:CreateKey", "", false},
		{"alice", "kms:ListAliases", "", true},
		{"ops", "kms:CreateKey", "", true},
		{"ops", "kms:DisableKey", "key-a", true},
		{"ops", "kms:DisableKey", "key-b", false}, // granted key-a only
		{"ops", "kms:Encrypt", "key-a", false},
		{"ops", "kms:GenerateDataKey", "key-a", false},
		{"ops", "kms:GenerateRandom", "", false},
		{"boss", "kms:Decrypt", "key-b", true},
		{AdminName, "kms:ScheduleKeyDeletion", "key-b", true},
	}
	for _, tt := range tests {
		name, err := d.Authorize(t.Context(), users[tt.who].AccessKey, tt.action, tt.key)
		if (err == nil) != tt.allow || name != tt.who {
			t.Errorf("Authorize(%s, %s, %s) = %q, %v; want allowed %v", tt.who, tt.action, tt.key, name, err, tt.allow)
		}
	}
	if _, err := d.Authorize(t.Context(), "NOSUCHKEY", "kms:ListKeys", ""); err == nil {
		t.Error("an unknown access key was authorized")
	}
}

func TestDirectorySync(t *testing.T) {
	d, users := directory(t)
	if err := elsewhere(t, d).Remove("alice"); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Secret(users["alice"].AccessKey); !ok {
		t.Fatal("alice gone before Sync")
	}
	if changed, err := d.Sync(); err != nil || !changed {
		t.Fatalf("Sync: %v, %v", changed, err)
	}
	if _, ok := d.Secret(users["alice"].AccessKey); ok {
		t.Fatal("a removed user's credential still works after Sync")
	}
	if _, ok := d.Secret("ROOTAK"); !ok {
		t.Fatal("the admin credential stopped working")
	}
}

// A users file that cannot be read may hold a removal: until it reads
// again, only the admin is served. (In production: `sudo s3seal users
// remove` leaving a root-owned file the service cannot open; here, a mode
// the reader refuses.)
func TestDirectoryUnreadableFailsClosed(t *testing.T) {
	d, users := directory(t)
	if err := elsewhere(t, d).Remove("alice"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d.store.path, 0o640); err != nil {
		t.Fatal(err)
	}
	if changed, err := d.Sync(); !changed || err == nil {
		t.Fatalf("Sync of an unreadable file: %v, %v", changed, err)
	}
	d.Refresh() // the periodic grant refresh brings nobody back
	for _, who := range []string{"alice", "bob"} {
		if _, ok := d.Secret(users[who].AccessKey); ok {
			t.Errorf("%s is served while the users file is unreadable", who)
		}
	}
	if _, ok := d.Secret("ROOTAK"); !ok {
		t.Error("the admin is not served while the users file is unreadable")
	}
	// Readable again, unchanged since: bob is back, alice stays removed.
	if err := os.Chmod(d.store.path, 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := d.Sync(); !changed || err != nil {
		t.Fatalf("Sync once readable: %v, %v", changed, err)
	}
	if _, ok := d.Secret(users["bob"].AccessKey); !ok {
		t.Error("bob is not served once the file reads again")
	}
	if _, ok := d.Secret(users["alice"].AccessKey); ok {
		t.Error("alice is served again")
	}
}

// A Refresh racing Sync never publishes principals older than what Sync
// read: a removal Sync saw stays in force.
func TestDirectoryRefreshRace(t *testing.T) {
	d, _ := directory(t)
	other := elsewhere(t, d)
	for range 100 {
		u, err := other.Add("victim", RoleKeyUser, nil, []string{"*"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := other.Remove("victim"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() { // KMS API writes: Changed -> Refresh
			for {
				select {
				case <-stop:
					return
				default:
					d.Refresh()
				}
			}
		})
		d.Sync() // the watcher
		close(stop)
		wg.Wait()
		if _, ok := d.Secret(u.AccessKey); ok {
			t.Fatal("a removed user is served after Sync")
		}
	}
}

// elsewhere is d's users file as another process (s3seal users, a
// replica) opens it.
func elsewhere(t *testing.T, d *Directory) *Store {
	t.Helper()
	s, err := Open(d.store.path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
