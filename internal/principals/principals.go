// Package principals is who may use s3seal and for what: the credential
// from the environment (the admin), and the users kept in DATA_DIR/users.json,
// each with a role and grants. Roles follow AWS KMS's default key policy:
//
//   - admin: everything, on the S3 side and through the KMS API;
//   - key-admin: manages keys through the KMS API (create, describe, alias,
//     enable, disable, rotate, import, schedule deletion) but can neither
//     use them (encrypt, decrypt, generate data keys) nor read or write
//     object data;
//   - key-user: uses the keys it is granted (the KMS API's cryptographic
//     calls, and S3 reads and writes of objects sealed under them) on the
//     buckets it is granted.
//
// users.json holds secret keys in the clear (SigV4 needs them to check a
// signature): like the keyring, it is mode 0600 in the data dir, changed
// under a lock and replaced atomically (internal/sharedfile), so replicas
// sharing the data dir share it too.
package principals

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/s3seal/s3seal/proxy"
)

// File is the principals file's name in the data dir.
const File = "users.json"

// Role is what a principal is for.
type Role string

const (
	RoleAdmin    Role = "admin"
	RoleKeyAdmin Role = "key-admin"
	RoleKeyUser  Role = "key-user"
)

// AdminName is the name of the environment's credential
// (S3SEAL_ACCESS_KEY, or the generated one): reserved, so that a log line
// naming a principal is never ambiguous.
const AdminName = "root"

// AllKeys, as a key grant, grants every key.
const AllKeys = "*"

// Bucket access a grant gives: the S3 operations' kinds (proxy.Access).
var bucketAccess = []proxy.Access{proxy.AccessRead, proxy.AccessWrite, proxy.AccessList, proxy.AccessDelete}

// BucketGrant is access to the buckets whose names match Pattern (path.Match
// syntax: * and ? and [...]).
type BucketGrant struct {
	Pattern string         `json:"pattern"`
	Access  []proxy.Access `json:"access"` // sorted, no repeats
}

// User is one principal of the file. Its secret is for SigV4 only; String
// and the JSON of List leave it out.
type User struct {
	Name      string        `json:"name"`
	Role      Role          `json:"role"`
	AccessKey string        `json:"access_key"`
	SecretKey string        `json:"secret_key"`
	Created   time.Time     `json:"created"`
	Buckets   []BucketGrant `json:"buckets"`
	Keys      []string      `json:"keys"` // key ids, ARNs or alias/NAME; "*" is every key
}

// Limits on names and grants: AWS's for user names and key names, and a
// bound that keeps each principal's checks cheap.
const (
	maxName    = 64
	maxKeyName = 2048
	maxGrants  = 100
)

// checkName allows IAM's user-name characters.
func checkName(name string) error {
	if name == "" || len(name) > maxName {
		return fmt.Errorf("user name %q: want 1 to %d characters", name, maxName)
	}
	if name == AdminName {
		return fmt.Errorf("user name %q is reserved for the credential from the environment", name)
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("+=,.@_-", c)) {
			return fmt.Errorf("user name %q: only letters, digits and +=,.@_- are allowed", name)
		}
	}
	return nil
}

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleKeyAdmin, RoleKeyUser:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: want admin, key-admin or key-user", s)
}

// ParseBuckets reads bucket grants: comma-separated PATTERN[:ACCESS+...],
// where ACCESS is read, write, list or delete and no ACCESS means all four
// (`team-a,logs-*:read+list`).
func ParseBuckets(s string) ([]BucketGrant, error) {
	var out []BucketGrant
	for _, item := range splitList(s) {
		pattern, access, hasAccess := strings.Cut(item, ":")
		g := BucketGrant{Pattern: pattern, Access: slices.Clone(bucketAccess)}
		if hasAccess {
			g.Access = nil
			for _, a := range strings.Split(access, "+") {
				g.Access = append(g.Access, proxy.Access(a))
			}
		}
		if err := g.check(); err != nil {
			return nil, err
		}
		slices.Sort(g.Access)
		g.Access = slices.Compact(g.Access)
		out = append(out, g)
	}
	return out, nil
}

func (g BucketGrant) check() error {
	if g.Pattern == "" || len(g.Pattern) > 255 {
		return fmt.Errorf("bucket pattern %q: want 1 to 255 characters", g.Pattern)
	}
	if _, err := path.Match(g.Pattern, ""); err != nil {
		return fmt.Errorf("bucket pattern %q: %w", g.Pattern, err)
	}
	if len(g.Access) == 0 {
		return fmt.Errorf("bucket grant %q gives no access", g.Pattern)
	}
	for _, a := range g.Access {
		if !slices.Contains(bucketAccess, a) {
			return fmt.Errorf("bucket grant %q: unknown access %q: want read, write, list or delete", g.Pattern, a)
		}
	}
	return nil
}

// ParseKeys reads key grants: comma-separated key ids, ARNs or alias/NAME,
// or * for every key.
func ParseKeys(s string) ([]string, error) {
	keys := splitList(s)
	for _, k := range keys {
		if err := checkKeyName(k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func checkKeyName(k string) error {
	if k == "" || len(k) > maxKeyName {
		return fmt.Errorf("key %q: want 1 to %d characters", k, maxKeyName)
	}
	for _, c := range k {
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("key %q: spaces and control characters are not allowed", k)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// check is what every user in the file must satisfy. A role's grants must
// make sense for it: an admin needs none, and a key-admin may not be given
// buckets, since it may not read or write object data.
func (u *User) check() error {
	if err := checkName(u.Name); err != nil {
		return err
	}
	if _, err := ParseRole(string(u.Role)); err != nil {
		return fmt.Errorf("user %s: %w", u.Name, err)
	}
	if u.AccessKey == "" || u.SecretKey == "" {
		return fmt.Errorf("user %s lacks an access key or secret key", u.Name)
	}
	if len(u.Buckets) > maxGrants || len(u.Keys) > maxGrants {
		return fmt.Errorf("user %s: more than %d bucket or key grants", u.Name, maxGrants)
	}
	switch {
	case u.Role == RoleAdmin && (len(u.Buckets) > 0 || len(u.Keys) > 0):
		return fmt.Errorf("user %s is an admin, which may do everything: grants would mean nothing", u.Name)
	case u.Role == RoleKeyAdmin && len(u.Buckets) > 0:
		return fmt.Errorf("user %s is a key-admin, which may not read or write object data: it takes no bucket grants", u.Name)
	}
	for _, g := range u.Buckets {
		if err := g.check(); err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	for _, k := range u.Keys {
		if err := checkKeyName(k); err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	return nil
}

// grant adds buckets and keys to u's grants: a pattern it has gains the
// access given, keys are added once.
func (u *User) grant(buckets []BucketGrant, keys []string) {
	for _, g := range buckets {
		i := slices.IndexFunc(u.Buckets, func(h BucketGrant) bool { return h.Pattern == g.Pattern })
		if i < 0 {
			u.Buckets = append(u.Buckets, BucketGrant{Pattern: g.Pattern, Access: slices.Clone(g.Access)})
			continue
		}
		acc := append(u.Buckets[i].Access, g.Access...)
		slices.Sort(acc)
		u.Buckets[i].Access = slices.Compact(acc)
	}
	for _, k := range keys {
		if !slices.Contains(u.Keys, k) {
			u.Keys = append(u.Keys, k)
		}
	}
}

// errNoSuchGrant is a revoke of something never granted: said, so that a
// typo is not taken for a done revocation.
var errNoSuchGrant = errors.New("no such grant")

// revoke takes access away: a bucket pattern loses the access named (all of
// it when ParseBuckets was given none), dropped once it has none; keys are
// removed.
func (u *User) revoke(buckets []BucketGrant, keys []string) error {
	for _, g := range buckets {
		i := slices.IndexFunc(u.Buckets, func(h BucketGrant) bool { return h.Pattern == g.Pattern })
		if i < 0 {
			return fmt.Errorf("user %s has no grant on buckets %q: %w", u.Name, g.Pattern, errNoSuchGrant)
		}
		u.Buckets[i].Access = slices.DeleteFunc(u.Buckets[i].Access, func(a proxy.Access) bool { return slices.Contains(g.Access, a) })
		if len(u.Buckets[i].Access) == 0 {
			u.Buckets = slices.Delete(u.Buckets, i, i+1)
		}
	}
	for _, k := range keys {
		i := slices.Index(u.Keys, k)
		if i < 0 {
			return fmt.Errorf("user %s has no grant on key %q: %w", u.Name, k, errNoSuchGrant)
		}
		u.Keys = slices.Delete(u.Keys, i, i+1)
	}
	return nil
}
