package keyring

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"
)

// krClock is a settable clock for openKeyring.
type krClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *krClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *krClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func krOpen(t *testing.T) (*Keyring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring.json")
	k, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return k, path
}

func krCreate(t *testing.T, k *Keyring, desc string) KeyInfo {
	t.Helper()
	info, err := k.CreateKey(desc)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func krWantErr(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("got error %v, want %v", err, kind)
	}
}

// krBlobVersion reads the material version out of a wrapped blob.
func krBlobVersion(t *testing.T, blob []byte) uint32 {
	t.Helper()
	idEnd := 2 + int(blob[1])
	return binary.BigEndian.Uint32(blob[idEnd : idEnd+4])
}

var krUUIDv4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestKeyringCreateDescribeList(t *testing.T) {
	k, _ := krOpen(t)
	if got := k.ListKeys(); len(got) != 0 {
		t.Fatalf("new keyring lists %v", got)
	}
	a := krCreate(t, k, "first")
	b := krCreate(t, k, "second")
	for _, info := range []KeyInfo{a, b} {
		if !krUUIDv4.MatchString(info.ID) {
			t.Errorf("id %q is not a UUID v4", info.ID)
		}
		if info.State != kms.KeyEnabled || info.Origin != OriginGenerated || info.Versions != 1 ||
			!info.DeletionDate.IsZero() || len(info.Aliases) != 0 || info.Created.IsZero() {
			t.Errorf("new key: %+v", info)
		}
	}
	if a.ID == b.ID {
		t.Fatal("two keys with one id")
	}
	got, err := k.DescribeKey(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Errorf("DescribeKey = %+v, want %+v", got, a)
	}
	list := k.ListKeys()
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Errorf("ListKeys = %+v", list)
	}
	for _, id := range []string{"", "nope", "alias/nope", b.ID + "x"} {
		_, err := k.DescribeKey(id)
		krWantErr(t, err, kms.ErrKeyNotFound)
	}
}

func TestKeyringListOrder(t *testing.T) {
	clock := &krClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	k, err := openKeyring(filepath.Join(t.TempDir(), "k.json"), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		ids = append(ids, krCreate(t, k, "").ID) // same instant: ordered by id
	}
	clock.advance(-time.Hour)
	early := krCreate(t, k, "early")
	list := k.ListKeys()
	if list[0].ID != early.ID {
		t.Errorf("ListKeys not ordered by creation: %+v", list)
	}
	for i := 1; i < len(list)-1; i++ {
		if list[i].ID > list[i+1].ID {
			t.Errorf("same-instant keys not ordered by id: %+v", list)
		}
	}
}

func TestKeyringAliases(t *testing.T) {
	ctx := context.Background()
	k, _ := krOpen(t)
	a := krCreate(t, k, "a")
	b := krCreate(t, k, "b")

	for _, alias := range []string{"alias/app", "alias/app/prod_1-x", "alias/Z"} {
		if err := k.CreateAlias(alias, a.ID); err != nil {
			t.Fatalf("CreateAlias(%q): %v", alias, err)
		}
	}
	// An alias may also be named through another alias.
	if err := k.CreateAlias("alias/other", "alias/app"); err != nil {
		t.Fatal(err)
	}
	info, err := k.DescribeKey("alias/app")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alias/Z", "alias/app", "alias/app/prod_1-x", "alias/other"}
	if info.ID != a.ID || !reflect.DeepEqual(info.Aliases, want) {
		t.Errorf("DescribeKey(alias) = %+v, want id %s aliases %v", info, a.ID, want)
	}

	// Wrapping through an alias records the key id, never the alias.
	dk, err := k.GenerateDataKey(ctx, "alias/app", nil)
	if err != nil {
		t.Fatal(err)
	}
	if dk.KeyID != a.ID {
		t.Errorf("Wrapped.KeyID = %q, want %q", dk.KeyID, a.ID)
	}
	if _, err := k.Decrypt(ctx, "alias/other", dk.Ciphertext, nil); err != nil {
		t.Errorf("Decrypt via alias: %v", err)
	}

	invalid := []string{
		"", "alias/", "app", "alias", "Alias/app", "alias/aws/thing", "alias/sp ace",
		"alias/dot.ted", "alias/é", "alias/" + strings.Repeat("x", 251),
	}
	for _, alias := range invalid {
		krWantErr(t, k.CreateAlias(alias, b.ID), kms.ErrInvalidKMSRequest)
	}
	if err := k.CreateAlias("alias/"+strings.Repeat("x", 250), b.ID); err != nil {
		t.Errorf("256-character alias refused: %v", err)
	}
	krWantErr(t, k.CreateAlias("alias/app", b.ID), kms.ErrInvalidKMSRequest) // duplicate
	krWantErr(t, k.CreateAlias("alias/app", a.ID), kms.ErrInvalidKMSRequest) // even to the same key
	krWantErr(t, k.CreateAlias("alias/new", "alias/missing"), kms.ErrKeyNotFound)
	krWantErr(t, k.CreateAlias("alias/new", "missing"), kms.ErrKeyNotFound)

	// A deletion authorized on another key than the alias names now is refused.
	krWantErr(t, k.DeleteAlias("alias/app", b.ID), kms.ErrInvalidKMSRequest)
	if err := k.DeleteAlias("alias/app", a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = k.DescribeKey("alias/app")
	krWantErr(t, err, kms.ErrKeyNotFound)
	_, err = k.GenerateDataKey(ctx, "alias/app", nil)
	krWantErr(t, err, kms.ErrKeyNotFound)
	krWantErr(t, k.DeleteAlias("alias/app", ""), kms.ErrKeyNotFound)
	krWantErr(t, k.DeleteAlias(a.ID, ""), kms.ErrInvalidKMSRequest)
	if info, _ := k.DescribeKey(a.ID); info.State != kms.KeyEnabled || len(info.Aliases) != 3 {
		t.Errorf("after DeleteAlias: %+v", info)
	}
	// A deleted alias is free again, for any key.
	if err := k.CreateAlias("alias/app", b.ID); err != nil {
		t.Fatal(err)
	}
	if info, _ := k.DescribeKey("alias/app"); info.ID != b.ID {
		t.Errorf("alias/app now names %s, want %s", info.ID, b.ID)
	}
}

func TestKeyringPersistence(t *testing.T) {
	ctx := context.Background()
	k1, path := krOpen(t)
	a := krCreate(t, k1, "persisted")
	if err := k1.CreateAlias("alias/p", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := k1.RotateKey(a.ID); err != nil {
		t.Fatal(err)
	}
	b := krCreate(t, k1, "disabled")
	if err := k1.DisableKey(b.ID); err != nil {
		t.Fatal(err)
	}
	encCtx := map[string]string{"bucket": "b", "key": "k"}
	dk, err := k1.GenerateDataKey(ctx, "alias/p", encCtx)
	if err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("keyring file mode %#o, want 0600", fi.Mode().Perm())
	}
	// No temp files left behind: the keyring and its lock file only.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 2 || ents[1].Name() != filepath.Base(path)+".lock" {
		t.Errorf("keyring directory holds %v, want the keyring and its lock file", ents)
	}

	k2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k2.ListKeys(), k1.ListKeys(); !reflect.DeepEqual(got, want) {
		t.Errorf("reopened ListKeys = %+v\nwant %+v", got, want)
	}
	pt, err := k2.Decrypt(ctx, "alias/p", dk.Ciphertext, encCtx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pt, dk.Plaintext) {
		t.Error("reopened keyring unwrapped a different key")
	}
	_, err = k2.GenerateDataKey(ctx, b.ID, nil)
	krWantErr(t, err, kms.ErrKeyDisabled)
	// And the other way round.
	w, err := k2.Encrypt(ctx, a.ID, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k1.Decrypt(ctx, "", w.Ciphertext, nil); err != nil || string(pt) != "secret" {
		t.Errorf("Decrypt across instances = %q, %v", pt, err)
	}

	// A keyring of its own cannot unwrap it.
	k3, _ := krOpen(t)
	_, err = k3.Decrypt(ctx, "", dk.Ciphertext, encCtx)
	krWantErr(t, err, kms.ErrInvalidCiphertext)
}

func TestKeyringFileFormat(t *testing.T) {
	k, path := krOpen(t)
	a := krCreate(t, k, "d")
	if err := k.CreateAlias("alias/f", a.ID); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version int `json:"version"`
		Keys    []struct {
			ID       string   `json:"id"`
			State    string   `json:"state"`
			Origin   string   `json:"origin"`
			Aliases  []string `json:"aliases"`
			Material [][]byte `json:"material"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if f.Version != 1 || len(f.Keys) != 1 {
		t.Fatalf("file: %s", data)
	}
	key := f.Keys[0]
	if key.ID != a.ID || key.State != "Enabled" || key.Origin != "S3SEAL" ||
		!reflect.DeepEqual(key.Aliases, []string{"alias/f"}) || len(key.Material) != 1 || len(key.Material[0]) != 32 {
		t.Errorf("file key: %+v", key)
	}
	if bytes.Contains(data, []byte("deletion_date")) {
		t.Error("deletion_date written for a key not pending deletion")
	}
}

func TestKeyringOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	m := `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`
	key := func(fields string) string {
		return `{"version":1,"keys":[{"id":"k1","created":"2030-01-01T00:00:00Z",` + fields + `}]}`
	}
	tests := []struct {
		name, content string
		mode          os.FileMode
		wantErr       string
	}{
		{"group-readable", `{"version":1,"keys":[]}`, 0o640, "chmod 600"},
		{"world-readable", `{"version":1,"keys":[]}`, 0o604, "chmod 600"},
		{"group-writable", `{"version":1,"keys":[]}`, 0o620, "chmod 600"},
		{"not json", `{`, 0o600, "parsing"},
		{"version", `{"version":2,"keys":[]}`, 0o600, "version"},
		{"short material", key(`"state":"Enabled","origin":"S3SEAL","material":["AAAA"]`), 0o600, "bytes"},
		{"no material", key(`"state":"Enabled","origin":"S3SEAL","material":[]`), 0o600, "no key material"},
		{"state", key(`"state":"Bogus","origin":"S3SEAL","material":[` + m + `]`), 0o600, "state"},
		{"origin", key(`"state":"Enabled","origin":"AWS","material":[` + m + `]`), 0o600, "origin"},
		{"pending without date", key(`"state":"PendingDeletion","origin":"S3SEAL","material":[` + m + `]`), 0o600, "deletion date"},
		{"alias", key(`"state":"Enabled","origin":"S3SEAL","aliases":["x"],"material":[` + m + `]`), 0o600, "alias"},
		{"duplicate id", `{"version":1,"keys":[` +
			`{"id":"k1","state":"Enabled","origin":"S3SEAL","material":[` + m + `]},` +
			`{"id":"k1","state":"Enabled","origin":"S3SEAL","material":[` + m + `]}]}`, 0o600, "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tt.name, " ", "_")+".json", tt.content, tt.mode)
			_, err := Open(p)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open = %v, want error containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "AAAA") {
				t.Errorf("error quotes key material: %v", err)
			}
		})
	}
	// A valid file of its own kind opens.
	p := write("ok.json", key(`"state":"Enabled","origin":"EXTERNAL","material":[`+m+`]`), 0o600)
	k, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := k.DescribeKey("k1"); err != nil || info.Origin != OriginExternal {
		t.Errorf("DescribeKey = %+v, %v", info, err)
	}
	if _, err := Open(filepath.Join(dir, "missing-dir", "k.json")); err == nil {
		t.Error("opened a keyring in a missing directory")
	}
}

func TestKeyringWriteFailure(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	k, err := Open(filepath.Join(dir, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := krCreate(t, k, "a")
	if err := k.CreateAlias("alias/a", a.ID); err != nil {
		t.Fatal(err)
	}
	before := k.ListKeys()

	// Tests run as root, so a read-only directory would not stop the write:
	// remove the directory instead.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	changes := map[string]func() error{
		"CreateKey":   func() error { _, err := k.CreateKey("x"); return err },
		"ImportKey":   func() error { _, err := k.ImportKey(make([]byte, 32), "x"); return err },
		"RotateKey":   func() error { _, err := k.RotateKey(a.ID); return err },
		"DisableKey":  func() error { return k.DisableKey(a.ID) },
		"CreateAlias": func() error { return k.CreateAlias("alias/b", a.ID) },
		"DeleteAlias": func() error { return k.DeleteAlias("alias/a", "") },
		"ScheduleKeyDeletion": func() error {
			_, err := k.ScheduleKeyDeletion("alias/a", 7)
			return err
		},
	}
	for name, change := range changes {
		err := change()
		if !errors.Is(err, kms.ErrKMSUnavailable) {
			t.Errorf("%s with the directory gone: %v, want ErrKMSUnavailable", name, err)
		}
		if got := k.ListKeys(); !reflect.DeepEqual(got, before) {
			t.Errorf("%s changed the keyring though the write failed:\n%+v\nwant %+v", name, got, before)
		}
	}
	// The keyring still works, as it was.
	dk, err := k.GenerateDataKey(ctx, "alias/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if krBlobVersion(t, dk.Ciphertext) != 1 {
		t.Error("a failed rotation took effect")
	}
}

func TestKeyringRotation(t *testing.T) {
	ctx := context.Background()
	k, path := krOpen(t)
	a := krCreate(t, k, "")
	encCtx := map[string]string{"a": "1"}

	var blobs [][]byte
	var plaintexts [][]byte
	for v := 1; v <= 3; v++ {
		dk, err := k.GenerateDataKey(ctx, a.ID, encCtx)
		if err != nil {
			t.Fatal(err)
		}
		if got := krBlobVersion(t, dk.Ciphertext); got != uint32(v) {
			t.Errorf("blob made at version %d says version %d", v, got)
		}
		w, err := k.Encrypt(ctx, a.ID, []byte("direct"), encCtx)
		if err != nil {
			t.Fatal(err)
		}
		if got := krBlobVersion(t, w.Ciphertext); got != uint32(v) {
			t.Errorf("Encrypt blob at version %d says version %d", v, got)
		}
		blobs = append(blobs, dk.Ciphertext)
		plaintexts = append(plaintexts, dk.Plaintext)
		info, err := k.RotateKey(a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if info.Versions != v+1 || info.ID != a.ID {
			t.Errorf("after rotation %d: %+v", v, info)
		}
	}
	k2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, kr := range []*Keyring{k, k2} {
		for i, blob := range blobs {
			pt, err := kr.Decrypt(ctx, a.ID, blob, encCtx)
			if err != nil || !bytes.Equal(pt, plaintexts[i]) {
				t.Errorf("version %d blob after rotation: %v", i+1, err)
			}
		}
	}
	// ReEncrypt upgrades an old blob to the newest version.
	w, err := k.ReEncrypt(ctx, blobs[0], "", encCtx, a.ID, encCtx)
	if err != nil {
		t.Fatal(err)
	}
	if got := krBlobVersion(t, w.Ciphertext); got != 4 {
		t.Errorf("ReEncrypt wrote version %d, want 4", got)
	}

	// Rotation needs an enabled key with generated material.
	imp, err := k.ImportKey(bytes.Repeat([]byte{7}, 32), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.RotateKey(imp.ID)
	krWantErr(t, err, kms.ErrInvalidKMSRequest)
	if err := k.DisableKey(a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = k.RotateKey(a.ID)
	krWantErr(t, err, kms.ErrKeyDisabled)
	_, err = k.RotateKey("missing")
	krWantErr(t, err, kms.ErrKeyNotFound)
}

func TestKeyringStates(t *testing.T) {
	ctx := context.Background()
	clock := &krClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	k, err := openKeyring(filepath.Join(t.TempDir(), "k.json"), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	a := krCreate(t, k, "a")
	other := krCreate(t, k, "other")
	if err := k.CreateAlias("alias/a", a.ID); err != nil {
		t.Fatal(err)
	}
	dk, err := k.GenerateDataKey(ctx, a.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherBlob, err := k.Encrypt(ctx, other.ID, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}

	// Every crypto operation that touches a's key fails the same way.
	cryptoOps := map[string]func() error{
		"GenerateDataKey": func() error { _, err := k.GenerateDataKey(ctx, "alias/a", nil); return err },
		"Encrypt":         func() error { _, err := k.Encrypt(ctx, a.ID, []byte("x"), nil); return err },
		"Decrypt":         func() error { _, err := k.Decrypt(ctx, "", dk.Ciphertext, nil); return err },
		"Decrypt with id": func() error { _, err := k.Decrypt(ctx, a.ID, dk.Ciphertext, nil); return err },
		"ReEncrypt source": func() error {
			_, err := k.ReEncrypt(ctx, dk.Ciphertext, "", nil, other.ID, nil)
			return err
		},
		"ReEncrypt destination": func() error {
			_, err := k.ReEncrypt(ctx, otherBlob.Ciphertext, "", nil, "alias/a", nil)
			return err
		},
	}
	checkOps := func(want error) {
		t.Helper()
		for name, op := range cryptoOps {
			if err := op(); !errors.Is(err, want) && !(want == nil && err == nil) {
				t.Errorf("%s: %v, want %v", name, err, want)
			}
		}
	}
	checkState := func(want kms.KeyState) {
		t.Helper()
		info, err := k.DescribeKey(a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if info.State != want {
			t.Errorf("state %s, want %s", info.State, want)
		}
	}

	checkOps(nil)
	if err := k.DisableKey("alias/a"); err != nil {
		t.Fatal(err)
	}
	checkState(kms.KeyDisabled)
	checkOps(kms.ErrKeyDisabled)
	if err := k.DisableKey(a.ID); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := k.EnableKey(a.ID); err != nil {
		t.Fatal(err)
	}
	checkState(kms.KeyEnabled)
	checkOps(nil)

	for _, days := range []int{-1, 0, 6, 31} {
		_, err := k.ScheduleKeyDeletion(a.ID, days)
		krWantErr(t, err, kms.ErrInvalidKMSRequest)
	}
	_, err = k.ScheduleKeyDeletion("missing", 7)
	krWantErr(t, err, kms.ErrKeyNotFound)
	krWantErr(t, k.CancelKeyDeletion(a.ID), kms.ErrInvalidKMSRequest) // not pending

	date, err := k.ScheduleKeyDeletion("alias/a", 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.now().Add(7 * 24 * time.Hour); !date.Equal(want) {
		t.Errorf("deletion date %v, want %v", date, want)
	}
	checkState(kms.KeyPendingDeletion)
	if info, _ := k.DescribeKey(a.ID); !info.DeletionDate.Equal(date) {
		t.Errorf("DescribeKey deletion date %v, want %v", info.DeletionDate, date)
	}
	checkOps(kms.ErrKeyDisabled)
	krWantErr(t, k.EnableKey(a.ID), kms.ErrKeyDisabled)
	krWantErr(t, k.DisableKey(a.ID), kms.ErrKeyDisabled)
	_, err = k.ScheduleKeyDeletion(a.ID, 30)
	krWantErr(t, err, kms.ErrKeyDisabled)

	if err := k.CancelKeyDeletion("alias/a"); err != nil {
		t.Fatal(err)
	}
	checkState(kms.KeyDisabled) // like AWS: cancelling does not re-enable
	if info, _ := k.DescribeKey(a.ID); !info.DeletionDate.IsZero() {
		t.Errorf("deletion date %v kept after cancel", info.DeletionDate)
	}
	checkOps(kms.ErrKeyDisabled)
	if err := k.EnableKey(a.ID); err != nil {
		t.Fatal(err)
	}
	checkOps(nil)

	// A disabled key can be scheduled for deletion too.
	if err := k.DisableKey(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := k.ScheduleKeyDeletion(a.ID, 30); err != nil {
		t.Fatal(err)
	}
	checkState(kms.KeyPendingDeletion)
}

func TestKeyringPurge(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.json")
	clock := &krClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	k, err := openKeyring(path, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	doomed := krCreate(t, k, "doomed")
	kept := krCreate(t, k, "kept")
	if err := k.CreateAlias("alias/doomed", doomed.ID); err != nil {
		t.Fatal(err)
	}
	dk, err := k.GenerateDataKey(ctx, doomed.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.ScheduleKeyDeletion(doomed.ID, 7); err != nil {
		t.Fatal(err)
	}

	// Just before the date the key is still there, and survives a reopen.
	clock.advance(7*24*time.Hour - time.Second)
	k2, err := openKeyring(path, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := k2.DescribeKey("alias/doomed"); err != nil || info.State != kms.KeyPendingDeletion {
		t.Fatalf("before the deletion date: %+v, %v", info, err)
	}
	if err := k2.CancelKeyDeletion(doomed.ID); err != nil { // still possible
		t.Fatal(err)
	}
	if _, err := k2.ScheduleKeyDeletion(doomed.ID, 7); err != nil {
		t.Fatal(err)
	}
	material := krMaterial(t, path, doomed.ID)

	// From the deletion date on, the key is gone from the running keyring...
	clock.advance(7 * 24 * time.Hour)
	_, err = k2.DescribeKey(doomed.ID)
	krWantErr(t, err, kms.ErrKeyNotFound)
	_, err = k2.DescribeKey("alias/doomed")
	krWantErr(t, err, kms.ErrKeyNotFound)
	krWantErr(t, k2.CancelKeyDeletion(doomed.ID), kms.ErrKeyNotFound)
	if list := k2.ListKeys(); len(list) != 1 || list[0].ID != kept.ID {
		t.Errorf("ListKeys after the deletion date: %+v", list)
	}
	_, err = k2.Decrypt(ctx, "", dk.Ciphertext, nil)
	krWantErr(t, err, kms.ErrInvalidCiphertext)

	// ...and from the file once it is opened...
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte(doomed.ID)) {
		t.Fatal("test setup: key already gone from the file")
	}
	k3, err := openKeyring(path, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	if bytes.Contains(data, []byte(doomed.ID)) || bytes.Contains(data, []byte(material)) {
		t.Error("deleted key still in the file after reopening")
	}
	if list := k3.ListKeys(); len(list) != 1 || list[0].ID != kept.ID {
		t.Errorf("ListKeys after purge: %+v", list)
	}
	// ...and its alias is free again.
	if err := k3.CreateAlias("alias/doomed", kept.ID); err != nil {
		t.Fatal(err)
	}

	// Any change also drops expired keys from the file.
	if _, err := k3.ScheduleKeyDeletion(kept.ID, 7); err != nil {
		t.Fatal(err)
	}
	material = krMaterial(t, path, kept.ID)
	clock.advance(8 * 24 * time.Hour)
	if _, err := k3.CreateKey("new"); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	if bytes.Contains(data, []byte(kept.ID)) || bytes.Contains(data, []byte(material)) {
		t.Error("expired key written back by a change")
	}
}

// krMaterial returns the base64 text of a key's first material version
// as stored in the file.
func krMaterial(t *testing.T, path, id string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Keys []struct {
			ID       string            `json:"id"`
			Material []json.RawMessage `json:"material"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	for _, key := range f.Keys {
		if key.ID == id {
			return strings.Trim(string(key.Material[0]), `"`)
		}
	}
	t.Fatalf("key %s not in the file", id)
	return ""
}

func TestKeyringImport(t *testing.T) {
	ctx := context.Background()
	material := bytes.Repeat([]byte{0x42}, 32)
	k1, _ := krOpen(t)
	k2, _ := krOpen(t)
	i1, err := k1.ImportKey(material, "customer key")
	if err != nil {
		t.Fatal(err)
	}
	i2, err := k2.ImportKey(material, "same material")
	if err != nil {
		t.Fatal(err)
	}
	if i1.Origin != OriginExternal || i1.State != kms.KeyEnabled || i1.Versions != 1 || i1.Description != "customer key" {
		t.Errorf("imported key: %+v", i1)
	}
	if i1.ID == i2.ID {
		t.Error("two imports got the same id")
	}

	w, err := k1.Encrypt(ctx, i1.ID, []byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k1.Decrypt(ctx, i1.ID, w.Ciphertext, nil); err != nil || string(pt) != "hello" {
		t.Errorf("Decrypt = %q, %v", pt, err)
	}
	// The keyring keeps its own copy of the material.
	clear(material)
	if pt, err := k1.Decrypt(ctx, i1.ID, w.Ciphertext, nil); err != nil || string(pt) != "hello" {
		t.Errorf("Decrypt after the caller reused its buffer = %q, %v", pt, err)
	}
	material = bytes.Repeat([]byte{0x42}, 32)
	// Same material, but the blob names a key id k2 does not have.
	_, err = k2.Decrypt(ctx, "", w.Ciphertext, nil)
	krWantErr(t, err, kms.ErrInvalidCiphertext)

	// The imported material is really what wraps: a blob sealed with it by
	// hand, under k2's id, opens.
	forged := ringWrap(&ringKey{ID: i2.ID, Material: [][]byte{material}}, []byte("by hand"), nil)
	if pt, err := k2.Decrypt(ctx, "", forged.Ciphertext, nil); err != nil || string(pt) != "by hand" {
		t.Errorf("Decrypt of a blob sealed with the imported material = %q, %v", pt, err)
	}

	for _, n := range []int{0, 1, 16, 31, 33, 64} {
		_, err := k1.ImportKey(make([]byte, n), "")
		krWantErr(t, err, kms.ErrInvalidKMSRequest)
	}
	if got := len(k1.ListKeys()); got != 1 {
		t.Errorf("%d keys after refused imports, want 1", got)
	}
}

func TestKeyringInvalidCiphertext(t *testing.T) {
	ctx := context.Background()
	k, _ := krOpen(t)
	a := krCreate(t, k, "a")
	b := krCreate(t, k, "b")
	if err := k.CreateAlias("alias/b", b.ID); err != nil {
		t.Fatal(err)
	}
	encCtx := map[string]string{"bucket": "photos", "key": "cat.jpg"}
	dk, err := k.GenerateDataKey(ctx, a.ID, encCtx)
	if err != nil {
		t.Fatal(err)
	}
	blob := dk.Ciphertext
	if want := 2 + len(a.ID) + 4 + 12 + 32 + 16; len(blob) != want {
		t.Errorf("blob is %d bytes, want %d", len(blob), want)
	}
	if blob[0] != 0x01 || int(blob[1]) != len(a.ID) || string(blob[2:2+len(a.ID)]) != a.ID {
		t.Errorf("blob header % x", blob[:2+len(a.ID)])
	}

	tests := []struct {
		name   string
		keyID  string
		blob   []byte
		encCtx map[string]string
		want   error
	}{
		{"ok", "", blob, encCtx, nil},
		{"ok with id", a.ID, blob, encCtx, nil},
		{"no context", "", blob, nil, kms.ErrInvalidCiphertext},
		{"other value", "", blob, map[string]string{"bucket": "photos", "key": "dog.jpg"}, kms.ErrInvalidCiphertext},
		{"extra pair", "", blob, map[string]string{"bucket": "photos", "key": "cat.jpg", "x": ""}, kms.ErrInvalidCiphertext},
		{"swapped", "", blob, map[string]string{"bucket": "cat.jpg", "key": "photos"}, kms.ErrInvalidCiphertext},
		{"other key id", b.ID, blob, encCtx, kms.ErrInvalidCiphertext},
		{"other key alias", "alias/b", blob, encCtx, kms.ErrInvalidCiphertext},
		{"unknown key id", "missing", blob, encCtx, kms.ErrKeyNotFound},
		{"unknown alias", "alias/missing", blob, encCtx, kms.ErrKeyNotFound},
		{"empty", "", nil, encCtx, kms.ErrInvalidCiphertext},
		{"truncated", "", blob[:len(blob)-1], encCtx, kms.ErrInvalidCiphertext},
		{"header only", "", blob[:2+len(a.ID)+4+12], encCtx, kms.ErrInvalidCiphertext},
		{"extended", "", append(bytes.Clone(blob), 0), encCtx, kms.ErrInvalidCiphertext},
		{"garbage", "", bytes.Repeat([]byte{0xff}, 100), encCtx, kms.ErrInvalidCiphertext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := k.Decrypt(ctx, tt.keyID, tt.blob, tt.encCtx)
			if tt.want == nil {
				if err != nil || !bytes.Equal(pt, dk.Plaintext) {
					t.Fatalf("Decrypt = %v", err)
				}
				return
			}
			krWantErr(t, err, tt.want)
			if pt != nil {
				t.Error("plaintext returned with an error")
			}
			// ReEncrypt checks its source the same way.
			_, err = k.ReEncrypt(ctx, tt.blob, tt.keyID, tt.encCtx, b.ID, nil)
			krWantErr(t, err, tt.want)
		})
	}

	// Every single-bit flip, anywhere in the blob, is caught.
	for i := range blob {
		for bit := range 8 {
			tampered := bytes.Clone(blob)
			tampered[i] ^= 1 << bit
			for _, keyID := range []string{"", a.ID} {
				_, err := k.Decrypt(ctx, keyID, tampered, encCtx)
				if !errors.Is(err, kms.ErrInvalidCiphertext) {
					t.Fatalf("byte %d bit %d flipped, keyID %q: %v", i, bit, keyID, err)
				}
			}
		}
	}
	// Transplanting the body under another key's header fails too.
	bw, err := k.Encrypt(ctx, b.ID, []byte("x"), encCtx)
	if err != nil {
		t.Fatal(err)
	}
	hdr := 2 + len(a.ID) + 4
	transplant := append(bytes.Clone(bw.Ciphertext[:hdr]), blob[hdr:]...)
	_, err = k.Decrypt(ctx, "", transplant, encCtx)
	krWantErr(t, err, kms.ErrInvalidCiphertext)
}

func TestKeyringEncryptLimits(t *testing.T) {
	ctx := context.Background()
	k, _ := krOpen(t)
	a := krCreate(t, k, "")
	for _, n := range []int{1, 32, kms.MaxEncryptPlaintext} {
		pt := bytes.Repeat([]byte{'p'}, n)
		w, err := k.Encrypt(ctx, a.ID, pt, nil)
		if err != nil {
			t.Fatalf("Encrypt %d bytes: %v", n, err)
		}
		if w.KeyID != a.ID {
			t.Errorf("KeyID %q, want %q", w.KeyID, a.ID)
		}
		got, err := k.Decrypt(ctx, "", w.Ciphertext, nil)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("round trip of %d bytes: %v", n, err)
		}
	}
	for _, n := range []int{0, kms.MaxEncryptPlaintext + 1} {
		_, err := k.Encrypt(ctx, a.ID, make([]byte, n), nil)
		krWantErr(t, err, kms.ErrInvalidKMSRequest)
	}
	_, err := k.Encrypt(ctx, "missing", []byte("x"), nil)
	krWantErr(t, err, kms.ErrKeyNotFound)
	_, err = k.GenerateDataKey(ctx, "missing", nil)
	krWantErr(t, err, kms.ErrKeyNotFound)
	_, err = k.ReEncrypt(ctx, []byte("x"), "", nil, "missing", nil)
	krWantErr(t, err, kms.ErrKeyNotFound)
}

func TestKeyringReEncrypt(t *testing.T) {
	ctx := context.Background()
	k, _ := krOpen(t)
	a := krCreate(t, k, "a")
	b := krCreate(t, k, "b")
	src := map[string]string{"v": "src"}
	dst := map[string]string{"v": "dst"}
	dk, err := k.GenerateDataKey(ctx, a.ID, src)
	if err != nil {
		t.Fatal(err)
	}
	w, err := k.ReEncrypt(ctx, dk.Ciphertext, a.ID, src, b.ID, dst)
	if err != nil {
		t.Fatal(err)
	}
	if w.KeyID != b.ID {
		t.Errorf("KeyID %q, want %q", w.KeyID, b.ID)
	}
	if pt, err := k.Decrypt(ctx, b.ID, w.Ciphertext, dst); err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Errorf("Decrypt after ReEncrypt: %v", err)
	}
	_, err = k.Decrypt(ctx, "", w.Ciphertext, src)
	krWantErr(t, err, kms.ErrInvalidCiphertext)
	_, err = k.ReEncrypt(ctx, dk.Ciphertext, "", dst, b.ID, dst)
	krWantErr(t, err, kms.ErrInvalidCiphertext)
}

func TestKeyringNoMaterialLeak(t *testing.T) {
	ctx := context.Background()
	k, path := krOpen(t)
	a := krCreate(t, k, "")
	material := krMaterial(t, path, a.ID)
	raw, err := base64.StdEncoding.DecodeString(material)
	if err != nil || len(raw) != 32 {
		t.Fatal(err)
	}
	infoJSON, _ := json.Marshal(k.ListKeys())
	if bytes.Contains(infoJSON, []byte(material)) {
		t.Error("KeyInfo JSON holds key material")
	}
	dk, _ := k.GenerateDataKey(ctx, a.ID, nil)
	var errs []error
	_, err = k.Decrypt(ctx, "", dk.Ciphertext, map[string]string{"x": "y"})
	errs = append(errs, err)
	_, err = k.Encrypt(ctx, a.ID, make([]byte, 5000), nil)
	errs = append(errs, err)
	_, err = k.ImportKey(raw[:31], "")
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		msg := err.Error()
		if strings.Contains(msg, material) || strings.Contains(msg, string(raw)) ||
			strings.Contains(msg, string(dk.Plaintext)) {
			t.Errorf("error leaks secrets: %q", msg)
		}
	}
}

func TestKeyringConcurrency(t *testing.T) {
	ctx := context.Background()
	k, _ := krOpen(t)
	a := krCreate(t, k, "")
	if err := k.CreateAlias("alias/c", a.ID); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 100)
	for g := range 8 {
		wg.Go(func() {
			encCtx := map[string]string{"g": string(rune('a' + g))}
			for range 50 {
				dk, err := k.GenerateDataKey(ctx, "alias/c", encCtx)
				if err != nil {
					errc <- err
					return
				}
				pt, err := k.Decrypt(ctx, a.ID, dk.Ciphertext, encCtx)
				if err != nil {
					errc <- err
					return
				}
				if !bytes.Equal(pt, dk.Plaintext) {
					errc <- errors.New("round trip mismatch")
					return
				}
			}
		})
	}
	// Changes run alongside the crypto operations.
	wg.Go(func() {
		for range 10 {
			if _, err := k.RotateKey(a.ID); err != nil {
				errc <- err
				return
			}
			if _, err := k.CreateKey(""); err != nil {
				errc <- err
				return
			}
			_ = k.ListKeys()
		}
	})
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if info, _ := k.DescribeKey(a.ID); info.Versions != 11 {
		t.Errorf("Versions = %d, want 11", info.Versions)
	}
}

func TestKeyringCanceledContext(t *testing.T) {
	k, _ := krOpen(t)
	a := krCreate(t, k, "")
	w, err := k.Encrypt(context.Background(), a.ID, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errs := map[string]error{}
	_, errs["GenerateDataKey"] = k.GenerateDataKey(ctx, a.ID, nil)
	_, errs["Encrypt"] = k.Encrypt(ctx, a.ID, []byte("x"), nil)
	_, errs["Decrypt"] = k.Decrypt(ctx, "", w.Ciphertext, nil)
	_, errs["ReEncrypt"] = k.ReEncrypt(ctx, w.Ciphertext, "", nil, a.ID, nil)
	_, errs["ResolveKey"] = k.ResolveKey(ctx, a.ID)
	for op, err := range errs {
		if !errors.Is(err, kms.ErrKMSUnavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v", op, err)
		}
	}
}

func TestKeyringKeyStatus(t *testing.T) {
	k, err := Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := k.CreateKey("status")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.CreateAlias("alias/status", info.ID); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if st, err := k.KeyStatus(ctx, "alias/status"); err != nil || st.State != kms.KeyEnabled || !slices.Equal(st.IDs, []string{info.ID}) {
		t.Errorf("enabled: %+v %v", st, err)
	}
	if err := k.DisableKey(info.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := k.KeyStatus(ctx, info.ID); err != nil || st.State != kms.KeyDisabled {
		t.Errorf("disabled: %+v %v", st, err)
	}
	if _, err := k.KeyStatus(ctx, "alias/none"); !errors.Is(err, kms.ErrKeyNotFound) {
		t.Errorf("missing: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := k.KeyStatus(cancelled, info.ID); !errors.Is(err, kms.ErrKMSUnavailable) {
		t.Errorf("cancelled: %v", err)
	}
}
