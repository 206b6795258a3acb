package keyring

import (
	"fmt"
	"regexp"
	"strings"
)

// ARNs names keys as AWS does, by key and alias ARNs of one region and
// account. The keyring's own names are its key ids and aliases; ARNs are
// what the KMS API (internal/kmsapi) answers with, and so what another
// s3seal using that API as its AWS KMS records in its objects' metadata.
type ARNs struct {
	Region, Account string
}

// DefaultAccount is the account of the keyring's ARNs: a placeholder of
// AWS's form, since the keyring belongs to no AWS account and clients only
// compare it.
const DefaultAccount = "000000000000"

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

// Check reports a region or account no ARN could carry.
func (a ARNs) Check() error {
	if !regionPattern.MatchString(a.Region) || len(a.Region) > 64 {
		return fmt.Errorf("region %q: want lowercase letters, digits and dashes", a.Region)
	}
	if !accountPattern.MatchString(a.Account) {
		return fmt.Errorf("account %q: want 12 digits", a.Account)
	}
	return nil
}

// Key is the ARN of the key id.
func (a ARNs) Key(id string) string {
	return "arn:aws:kms:" + a.Region + ":" + a.Account + ":key/" + id
}

// Alias is the ARN of the alias ("alias/NAME").
func (a ARNs) Alias(alias string) string {
	return "arn:aws:kms:" + a.Region + ":" + a.Account + ":" + alias
}

// Local turns a key reference into what the keyring resolves: a key id or
// "alias/NAME". A reference that is no ARN is returned as it is; an ARN
// must be a KMS key or alias ARN of a's region and account (ok is false
// for any other).
func (a ARNs) Local(ref string) (name string, ok bool) {
	rest, isARN := strings.CutPrefix(ref, "arn:")
	if !isARN {
		return ref, true
	}
	parts := strings.SplitN(rest, ":", 5) // partition, service, region, account, resource
	if len(parts) != 5 || parts[0] != "aws" || parts[1] != "kms" || parts[2] != a.Region || parts[3] != a.Account {
		return "", false
	}
	if id, isKey := strings.CutPrefix(parts[4], "key/"); isKey && id != "" && !strings.HasPrefix(id, ringAliasPrefix) {
		return id, true
	}
	if strings.HasPrefix(parts[4], ringAliasPrefix) {
		return parts[4], true
	}
	return "", false
}

// UseARNs makes the keyring take a's ARNs wherever a crypto operation or
// DescribeKey takes a key reference, and give a key's ARN beside its id in
// ResolveKey and KeyStatus, so that objects whose metadata names the key
// by ARN open here. Call it before the keyring is in use.
func (k *Keyring) UseARNs(a ARNs) error {
	if err := a.Check(); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	k.arns = a
	return nil
}

// ARNs returns the ARNs set by UseARNs; ok is false if none are.
func (k *Keyring) ARNs() (a ARNs, ok bool) {
	return k.arns, k.arns != ARNs{}
}

// local is ref as the keyring's state resolves it. An ARN the keyring
// does not use names no key: "" resolves to nothing.
func (k *Keyring) local(ref string) string {
	if k.arns == (ARNs{}) {
		return ref
	}
	name, ok := k.arns.Local(ref)
	if !ok {
		return ""
	}
	return name
}

// names is every name the keyring gives the key id: the id, and its ARN
// with UseARNs.
func (k *Keyring) names(id string) []string {
	if k.arns == (ARNs{}) {
		return []string{id}
	}
	return []string{id, k.arns.Key(id)}
}
