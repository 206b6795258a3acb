package main

// `s3seal users`: the principals in DATA_DIR/users.json (internal/principals).
// A running serve on the same data dir uses a change within 2 seconds.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/internal/datadir"
	"github.com/s3seal/s3seal/internal/principals"
)

const usersUsage = `Usage: s3seal users COMMAND [flags] [NAME]

Client credentials with roles and grants, kept in S3SEAL_DATA_DIR/users.json
(mode 0600; it holds the secret keys). A running s3seal serve on the same
data dir uses a change within 2 seconds. The credential of S3SEAL_ACCESS_KEY
(or the generated one) is not listed here: it is always an admin, named root.

Commands:
  add NAME -role ROLE [-buckets B] [-keys K]   add a user; prints its new access
                                               key and secret key, once
  list                                         list users (never their secrets)
  remove NAME                                  remove a user; its credential stops working
  grant NAME [-buckets B] [-keys K]            add grants
  revoke NAME [-buckets B] [-keys K]           take grants away

Roles:
  admin      everything: S3 and the KMS API
  key-admin  manages keys through the KMS API (create, alias, enable, disable,
             rotate, import, schedule deletion) but cannot use them or read or
             write object data; -keys limits which keys (default: all)
  key-user   uses the keys it is granted (-keys: KMS API encrypt, decrypt,
             generate-data-key, ...; reads and writes of objects sealed under
             them) on the buckets it is granted (-buckets)

-buckets is a comma-separated list of PATTERN[:ACCESS+ACCESS...]: PATTERN
matches bucket names (* ? [...]), ACCESS is read, write, list or delete
(default: all four), e.g. -buckets 'team-a,logs-*:read+list'.
-keys is a comma-separated list of key ids, ARNs or alias/NAME, or * for all.
Every command takes -json for JSON output.
`

// usersEnv is what a users subcommand works with.
type usersEnv struct {
	store   *principals.Store
	out     io.Writer
	warn    io.Writer
	ring    *keyring.Keyring // the data dir's keyring, if it has one: to check key grants' names
	json    bool
	role    string
	buckets string
	keys    string
}

type usersCmd struct {
	args int
	run  func(u *usersEnv, args []string) error
}

func usersCommands() map[string]usersCmd {
	return map[string]usersCmd{
		"add":    {1, usersAdd},
		"list":   {0, usersList},
		"remove": {1, usersRemove},
		"grant":  {1, usersGrant},
		"revoke": {1, usersRevoke},
	}
}

func (c cli) users(args []string) int {
	u := &usersEnv{out: c.stdout, warn: c.stderr}
	commands := usersCommands()
	name, pos, code, done := c.dispatch("users", usersUsage, args, func(name string) (int, bool) {
		cmd, ok := commands[name]
		return cmd.args, ok
	}, func(name string, args []string) ([]string, error) {
		return parseUsersFlags(name, u, args, c.stderr)
	})
	if done {
		return code
	}
	var err error
	if u.store, u.ring, err = c.openUsers(); err != nil {
		return c.fail("users", err)
	}
	if err := commands[name].run(u, pos); err != nil {
		return c.fail("users "+name, err)
	}
	if name != "list" {
		c.noteChange(u.store.Path())
	}
	return exitOK
}

func parseUsersFlags(name string, u *usersEnv, args []string, stderr io.Writer) ([]string, error) {
	fs := flag.NewFlagSet("s3seal users "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&u.json, "json", false, "print JSON")
	switch name {
	case "add":
		fs.StringVar(&u.role, "role", "", "admin, key-admin or key-user")
		fallthrough
	case "grant", "revoke":
		fs.StringVar(&u.buckets, "buckets", "", "bucket grants: PATTERN[:ACCESS+...],...")
		fs.StringVar(&u.keys, "keys", "", "key grants: ids, ARNs or alias/NAME, comma-separated; * for all")
	}
	return parseInterleaved(fs, args)
}

// openUsers opens the data dir's users.json, and its keyring if it has
// one. The data dir must exist, for a change too: users added to a
// mistyped one would be users no serve knows.
func (c cli) openUsers() (*principals.Store, *keyring.Keyring, error) {
	cfg, err := c.parseConfig()
	if err != nil {
		return nil, nil, err
	}
	if cfg.DataDir == "" {
		return nil, nil, errors.New("configuration: S3SEAL_DATA_DIR is empty")
	}
	if err := datadir.Check(cfg.DataDir, "for a new one, create it first (mkdir -m 700 "+cfg.DataDir+")"); err != nil {
		return nil, nil, err
	}
	store, err := principals.Open(filepath.Join(cfg.DataDir, principals.File))
	if err != nil {
		return nil, nil, err
	}
	var ring *keyring.Keyring
	if ringPath := filepath.Join(cfg.DataDir, datadir.KeyringFile); cfg.KMSProvider == providerKeyring && fileExists(ringPath) {
		ring, _ = keyring.Open(ringPath) // only to check names: a keyring that does not open checks nothing
	}
	return store, ring, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkKeyNames says which key grants name no key of the keyring (yet):
// a typo would otherwise grant nothing without a word.
func (u *usersEnv) checkKeyNames(keys []string) {
	if u.ring == nil {
		return
	}
	for _, k := range keys {
		if _, err := u.ring.DescribeKey(k); k != principals.AllKeys && err != nil {
			fmt.Fprintf(u.warn, "warning: the keyring has no key %s (yet): the grant takes effect once it does\n", k)
		}
	}
}

// grants parses -buckets and -keys.
func (u *usersEnv) grants() ([]principals.BucketGrant, []string, error) {
	buckets, err := principals.ParseBuckets(u.buckets)
	if err != nil {
		return nil, nil, fmt.Errorf("-buckets: %w", err)
	}
	keys, err := principals.ParseKeys(u.keys)
	if err != nil {
		return nil, nil, fmt.Errorf("-keys: %w", err)
	}
	return buckets, keys, nil
}

func usersAdd(u *usersEnv, args []string) error {
	if u.role == "" {
		return errors.New("-role is required: admin, key-admin or key-user")
	}
	role, err := principals.ParseRole(u.role)
	if err != nil {
		return fmt.Errorf("-role: %w", err)
	}
	buckets, keys, err := u.grants()
	if err != nil {
		return err
	}
	u.checkKeyNames(keys)
	user, err := u.store.Add(args[0], role, buckets, keys)
	if err != nil {
		return err
	}
	if u.json {
		return json.NewEncoder(u.out).Encode(map[string]string{"access_key": user.AccessKey, "secret_key": user.SecretKey})
	}
	fmt.Fprintf(u.out, "user %s (%s) added.\n\n  access key  %s\n  secret key  %s\n\n", user.Name, user.Role, user.AccessKey, user.SecretKey)
	fmt.Fprintln(u.out, "The secret key is shown only now: hand it to its user over a safe channel.")
	return nil
}

func usersRemove(u *usersEnv, args []string) error {
	if err := u.store.Remove(args[0]); err != nil {
		return err
	}
	if !u.json {
		fmt.Fprintf(u.out, "user %s removed.\n", args[0])
	}
	return nil
}

func usersGrant(u *usersEnv, args []string) error {
	return u.change(args[0], true, u.store.Grant)
}

func usersRevoke(u *usersEnv, args []string) error {
	return u.change(args[0], false, u.store.Revoke)
}

func (u *usersEnv) change(name string, granting bool, op func(string, []principals.BucketGrant, []string) (principals.User, error)) error {
	buckets, keys, err := u.grants()
	if err != nil {
		return err
	}
	if len(buckets) == 0 && len(keys) == 0 {
		return errors.New("nothing to change: give -buckets, -keys or both")
	}
	if granting {
		u.checkKeyNames(keys)
	}
	user, err := op(name, buckets, keys)
	if err != nil {
		return err
	}
	return u.print(user)
}

func usersList(u *usersEnv, _ []string) error {
	return u.print(u.store.Users()...)
}

// userJSON is a user as listed: never its secret.
type userJSON struct {
	Name      string                   `json:"name"`
	Role      principals.Role          `json:"role"`
	AccessKey string                   `json:"access_key"`
	Created   time.Time                `json:"created"`
	Buckets   []principals.BucketGrant `json:"buckets"`
	Keys      []string                 `json:"keys"`
}

func (u *usersEnv) print(users ...principals.User) error {
	rows := make([]userJSON, 0, len(users))
	for _, user := range users {
		rows = append(rows, userJSON{Name: user.Name, Role: user.Role, AccessKey: user.AccessKey,
			Created: user.Created, Buckets: user.Buckets, Keys: user.Keys})
	}
	// Bucket patterns and key names are checked only for what matching
	// needs: shown escaped, as keys' descriptions are.
	if u.json {
		return writeJSON(u.out, rows)
	}
	tw := tabwriter.NewWriter(u.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tACCESS KEY\tBUCKETS\tKEYS\tCREATED")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", termSafe(r.Name), r.Role, r.AccessKey, termSafe(bucketsText(r.Buckets)),
			termSafe(orDash(strings.Join(r.Keys, ","))), r.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

func bucketsText(gs []principals.BucketGrant) string {
	var parts []string
	for _, g := range gs {
		acc := make([]string, len(g.Access))
		for i, a := range g.Access {
			acc[i] = string(a)
		}
		parts = append(parts, g.Pattern+":"+strings.Join(acc, "+"))
	}
	return orDash(strings.Join(parts, ","))
}
