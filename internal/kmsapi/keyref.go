package kmsapi

import (
	"errors"
	"strings"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// How requests name keys, and responses name them back: key ids, alias
// names, and ARNs of this server's region and account.

// maxKeyRef is AWS's bound on a KeyId member.
const maxKeyRef = 2048

const aliasPrefix = "alias/"

func (h *handler) arns() keyring.ARNs {
	return keyring.ARNs{Region: h.cfg.Region, Account: h.cfg.Account}
}

func (h *handler) keyARN(id string) string { return h.arns().Key(id) }

func (h *handler) aliasARN(alias string) string { return h.arns().Alias(alias) }

// localName turns a key reference into what the keyring resolves: a key
// id or "alias/NAME". An ARN must be a KMS ARN of this server's region and
// account; ok is false for any other.
func (h *handler) localName(ref string) (name string, ok bool) { return h.arns().Local(ref) }

// resolve finds the key ref (in request member field) names. aliases says
// whether the operation takes alias names and ARNs, as AWS's crypto
// operations and DescribeKey do; the others take key ids and key ARNs only.
func (c *call) resolve(field, ref string, aliases bool) (keyring.KeyInfo, error) {
	if ref == "" {
		return keyring.KeyInfo{}, required(field)
	}
	if len(ref) > maxKeyRef {
		return keyring.KeyInfo{}, validation(field, "Member must have length less than or equal to %d", maxKeyRef)
	}
	name, ok := c.h.localName(ref)
	if !ok || (!aliases && strings.HasPrefix(name, aliasPrefix)) {
		return keyring.KeyInfo{}, notFound(ref)
	}
	info, err := c.h.ring.DescribeKey(name)
	if errors.Is(err, kms.ErrKeyNotFound) {
		return keyring.KeyInfo{}, notFound(ref)
	}
	return info, err
}

// notFound names the reference, bounded and printable, as AWS quotes it.
func notFound(ref string) *apiError {
	return newError(errNotFound, "Key '%s' does not exist", kms.Printable(ref, 256))
}

// keyFor resolves ref and authorizes action on the key it names.
func (c *call) keyFor(action, field, ref string, aliases bool) (keyring.KeyInfo, error) {
	info, err := c.resolve(field, ref, aliases)
	if err != nil {
		return keyring.KeyInfo{}, err
	}
	return info, c.authorize(action, info.ID)
}

// authorize asks the Authorizer whether the caller may do action on the
// key keyID ("" for actions on no key). A denial's reason is logged only.
func (c *call) authorize(action, keyID string) error {
	if keyID != "" {
		c.keys = append(c.keys, keyID)
	}
	principal, err := c.h.cfg.Authorizer.Authorize(c.ctx, c.accessKey, action, keyID)
	if principal != "" {
		c.principal = principal
	}
	if err == nil {
		return nil
	}
	resource := "*"
	if keyID != "" {
		resource = c.h.keyARN(keyID)
	}
	e := newError(errAccessDenied, "%s is not authorized to perform: %s on resource: %s",
		kms.Printable(c.accessKey, 128), action, resource)
	e.cause = err
	return e
}
