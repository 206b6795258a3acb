package principals

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/proxy"
)

// Directory is the principals as a running s3seal sees them: the
// environment's credential (an admin named AdminName) and the users of a
// Store, kept current by Sync. It is what checks signatures
// (sigv4.Credentials), S3 requests (proxy.Principals) and KMS API requests
// (Authorize) against. It is safe for concurrent use.
type Directory struct {
	store    *Store // nil: the admin only
	admin    User
	resolver kms.KeyResolver // names the CMKs of key grants
	snap     atomic.Pointer[snapshot]

	// mu makes building and publishing a snapshot one step, so that a
	// snapshot of an older file never replaces one of a newer file.
	mu sync.Mutex
	// unreadable: the last reload of the file failed, and only the admin
	// is served until it reads again; under mu.
	unreadable bool
}

// snapshot is the principals at one time, by access key; never modified.
type snapshot struct {
	byKey map[string]*principal
}

// NewDirectory returns the directory of the admin credential and store's
// users (store nil: the admin only). Key grants name CMKs as resolver does.
func NewDirectory(store *Store, adminAccessKey, adminSecretKey string, resolver kms.KeyResolver) *Directory {
	d := &Directory{store: store, resolver: resolver,
		admin: User{Name: AdminName, Role: RoleAdmin, AccessKey: adminAccessKey, SecretKey: adminSecretKey}}
	d.Refresh()
	return d
}

// Sync takes in changes to the users file and reports whether the
// principals changed. A file that cannot be read or checked fails closed:
// it may hold a removal or a revocation, so until it reads again only the
// admin credential works (and the error says why).
func (d *Directory) Sync() (bool, error) {
	if d.store == nil {
		return false, nil
	}
	changed, err := d.store.Reload()
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case err != nil && !d.unreadable:
		d.unreadable = true
		d.publish()
		return true, fmt.Errorf("%w; until it reads again only the admin credential (%s) is served", err, AdminName)
	case err != nil:
		return false, err
	case changed || d.unreadable:
		d.unreadable = false
		d.publish()
		return true, nil
	}
	return false, nil
}

// Refresh rebuilds the principals from the store as loaded, so that key
// grants are resolved again (lazily): an alias may name another key now.
func (d *Directory) Refresh() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.publish()
}

// publish builds the principals from the store as loaded now (none of its
// users while it is unreadable) and puts them in force. Called under mu.
func (d *Directory) publish() {
	snap := &snapshot{byKey: map[string]*principal{}}
	var users []User
	if d.store != nil && !d.unreadable {
		users = d.store.Users()
	}
	for _, u := range users {
		snap.byKey[u.AccessKey] = newPrincipal(u, d.resolver)
	}
	// The environment's credential wins a clash, which random keys make
	// all but impossible: it must keep working whatever the file says.
	snap.byKey[d.admin.AccessKey] = newPrincipal(d.admin, d.resolver)
	d.snap.Store(snap)
}

// Secret returns the secret key of accessKey (sigv4.Credentials).
func (d *Directory) Secret(accessKey string) (string, bool) {
	p, ok := d.snap.Load().byKey[accessKey]
	if !ok {
		return "", false
	}
	return p.secret, true
}

// Principal returns the principal of accessKey (proxy.Principals).
func (d *Directory) Principal(accessKey string) (proxy.Principal, bool) {
	p, ok := d.snap.Load().byKey[accessKey]
	return p, ok
}

// Authorize decides whether the principal of accessKey may perform a KMS
// API action ("kms:Encrypt", ...) on the key keyID (a canonical id; "" for
// actions on no key), as AWS's default key policy splits key
// administrators from key users. It returns the principal's name.
func (d *Directory) Authorize(ctx context.Context, accessKey, action, keyID string) (string, error) {
	p, ok := d.snap.Load().byKey[accessKey]
	if !ok {
		return "", fmt.Errorf("no principal has access key %s any more", accessKey)
	}
	if p.role == RoleAdmin {
		return p.name, nil
	}
	if !roleActions[p.role][action] {
		return p.name, fmt.Errorf("a %s may not %s", p.role, action)
	}
	if keyID == "" {
		return p.name, nil
	}
	if err := p.grantsKey(ctx, keyID); err != nil {
		return p.name, err
	}
	return p.name, nil
}

// roleActions is what each role but admin may do through the KMS API: AWS
// KMS's default key policy statements for key users and key
// administrators, plus the account-level calls each needs.
var roleActions = map[Role]map[string]bool{
	RoleKeyUser: set("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
		"kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey",
		"kms:ListKeys", "kms:ListAliases", "kms:GenerateRandom"),
	RoleKeyAdmin: set("kms:CreateKey", "kms:DescribeKey", "kms:ListKeys", "kms:ListAliases",
		"kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:UpdateKeyDescription",
		"kms:EnableKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
		"kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:GetKeyRotationStatus",
		"kms:RotateKeyOnDemand", "kms:GetParametersForImport", "kms:ImportKeyMaterial"),
}

func set(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, it := range items {
		m[it] = true
	}
	return m
}

// principal is one user's credential and grants, resolved for checks.
type principal struct {
	name    string
	role    Role
	secret  string
	buckets []BucketGrant
	allKeys bool
	keys    *kms.AllowList // the keys granted, unless allKeys
}

var _ proxy.Principal = (*principal)(nil)

func newPrincipal(u User, resolver kms.KeyResolver) *principal {
	return &principal{name: u.Name, role: u.Role, secret: u.SecretKey, buckets: u.Buckets,
		allKeys: slices.Contains(u.Keys, AllKeys), keys: kms.NewGrantList(resolver, u.Keys...)}
}

func (p *principal) Name() string { return p.name }

// MayBucket: admins may do anything, key-admins nothing (no object data);
// key-users what a grant whose pattern matches bucket gives. Every
// authenticated key-user may list buckets: ListBuckets shows only those
// it has grants on.
func (p *principal) MayBucket(bucket string, access proxy.Access) bool {
	switch {
	case p.role == RoleAdmin:
		return true
	case p.role != RoleKeyUser || access == proxy.AccessAdmin:
		return false
	case bucket == "":
		return access == proxy.AccessList
	}
	for _, g := range p.buckets {
		if ok, err := path.Match(g.Pattern, bucket); err == nil && ok &&
			(access == proxy.AccessAny || slices.Contains(g.Access, access)) {
			return true
		}
	}
	return false
}

// MayUse (kms.KeyGrant): admins may use every CMK, key-admins none,
// key-users those granted.
func (p *principal) MayUse(ctx context.Context, keyID string) error {
	switch p.role {
	case RoleAdmin:
		return nil
	case RoleKeyAdmin:
		return fmt.Errorf("%w: %s is a key-admin, which may not use keys", kms.ErrNotGranted, p.name)
	}
	return p.grantsKey(ctx, keyID)
}

// grantsKey checks keyID against the key grants.
func (p *principal) grantsKey(ctx context.Context, keyID string) error {
	if p.allKeys {
		return nil
	}
	err := p.keys.Check(ctx, keyID)
	if errors.Is(err, kms.ErrKeyNotAllowed) {
		return fmt.Errorf("%w: %s has no grant on key %s", kms.ErrNotGranted, p.name, keyID)
	}
	return err
}
