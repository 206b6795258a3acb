package kmsapi

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/envelope/keyring"
)

// Key lifecycle: creating, describing, listing, enabling, disabling and
// deleting keys.

// maxDescription is AWS's bound on a key description.
const maxDescription = 8192

// keyIDInput is the input of the operations that take a key id or key ARN only.
type keyIDInput struct {
	KeyId string
}

type keyIDOutput struct {
	KeyId string
}

type keyMetadataOutput struct {
	KeyMetadata *keyMetadata
}

type createKeyInput struct {
	Description                    string
	KeyUsage                       string
	KeySpec                        string
	CustomerMasterKeySpec          string
	Origin                         string
	Policy                         string
	BypassPolicyLockoutSafetyCheck bool
	CustomKeyStoreId               string
	XksKeyId                       string
	MultiRegion                    bool
	Tags                           []json.RawMessage
}

func (c *call) createKey(in *createKeyInput) (any, error) {
	if err := checkCreateKey(in); err != nil {
		return nil, err
	}
	origin, err := keyOrigin(in.Origin)
	if err != nil {
		return nil, err
	}
	if err := c.authorize("kms:CreateKey", ""); err != nil {
		return nil, err
	}
	var info keyring.KeyInfo
	if origin == keyring.OriginExternal {
		info, err = c.h.ring.CreateExternalKey(in.Description)
	} else {
		info, err = c.h.ring.CreateKey(in.Description)
	}
	if err != nil {
		return nil, err
	}
	c.keys = append(c.keys, info.ID)
	return &keyMetadataOutput{KeyMetadata: c.h.metadata(info)}, nil
}

// checkCreateKey refuses the kinds of key the keyring cannot make, and
// what it could only pretend to honour: a key policy (access is the
// Authorizer's to decide), tags (they could not drive access either),
// custom key stores and multi-Region keys.
func checkCreateKey(in *createKeyInput) error {
	if len(in.Description) > maxDescription {
		return validation("description", "Member must have length less than or equal to %d", maxDescription)
	}
	if err := checkKeySpec(in.KeySpec, in.CustomerMasterKeySpec); err != nil {
		return err
	}
	if err := checkEnum("keyUsage", in.KeyUsage, types.KeyUsageType("").Values(), "ENCRYPT_DECRYPT"); err != nil {
		return err
	}
	switch {
	case in.Policy != "":
		return newError(errUnsupported, "key policies are not supported: this server's own authorization decides access")
	case len(in.Tags) > 0:
		return newError(errUnsupported, "tags are not supported")
	case in.CustomKeyStoreId != "" || in.XksKeyId != "":
		return newError(errUnsupported, "custom key stores are not supported")
	case in.MultiRegion:
		return newError(errUnsupported, "multi-Region keys are not supported")
	}
	return nil
}

func checkKeySpec(spec, cmkSpec string) error {
	if spec != "" && cmkSpec != "" {
		return newError(errValidation, "You cannot specify KeySpec and CustomerMasterKeySpec in the same request.")
	}
	if cmkSpec != "" {
		return checkEnum("customerMasterKeySpec", cmkSpec, types.CustomerMasterKeySpec("").Values(), symmetricDefault)
	}
	return checkEnum("keySpec", spec, types.KeySpec("").Values(), symmetricDefault)
}

// checkEnum accepts v if it is empty or a supported value; another value
// of AWS's enum (known) is an UnsupportedOperationException, anything else
// a ValidationException.
func checkEnum[E ~string](field, v string, known []E, supported ...string) error {
	switch {
	case v == "" || slices.Contains(supported, v):
		return nil
	case slices.Contains(known, E(v)):
		return newError(errUnsupported, "%s %s is not supported; use %s", field, v, strings.Join(supported, " or "))
	}
	names := make([]string, len(known))
	for i, k := range known {
		names[i] = string(k)
	}
	return validation(field, "Member must satisfy enum value set: [%s]", strings.Join(names, ", "))
}

// keyOrigin maps AWS's Origin to the keyring's.
func keyOrigin(origin string) (keyring.KeyOrigin, error) {
	switch origin {
	case "", originAWSKMS:
		return keyring.OriginGenerated, nil
	case originExternal:
		return keyring.OriginExternal, nil
	}
	return "", checkEnum("origin", origin, types.OriginType("").Values(), originAWSKMS, originExternal)
}

type describeKeyInput struct {
	KeyId       string
	GrantTokens []string
}

func (c *call) describeKey(in *describeKeyInput) (any, error) {
	info, err := c.keyFor("kms:DescribeKey", "keyId", in.KeyId, true)
	if err != nil {
		return nil, err
	}
	return &keyMetadataOutput{KeyMetadata: c.h.metadata(info)}, nil
}

type keyListEntry struct {
	KeyId  string
	KeyArn string
}

type listKeysOutput struct {
	Keys       []keyListEntry
	NextMarker string `json:",omitempty"`
	Truncated  bool
}

func (c *call) listKeys(in *pageInput) (any, error) {
	if err := c.authorize("kms:ListKeys", ""); err != nil {
		return nil, err
	}
	keys := c.h.ring.ListKeys()
	slices.SortFunc(keys, func(a, b keyring.KeyInfo) int { return strings.Compare(a.ID, b.ID) })
	page, next, err := pageOf(keys, func(k keyring.KeyInfo) string { return k.ID }, *in, 100, 1000)
	if err != nil {
		return nil, err
	}
	out := &listKeysOutput{Keys: []keyListEntry{}, NextMarker: next, Truncated: next != ""}
	for _, k := range page {
		out.Keys = append(out.Keys, keyListEntry{KeyId: k.ID, KeyArn: c.h.keyARN(k.ID)})
	}
	return out, nil
}

type updateKeyDescriptionInput struct {
	KeyId       string
	Description *string
}

func (c *call) updateKeyDescription(in *updateKeyDescriptionInput) (any, error) {
	switch {
	case in.Description == nil:
		return nil, required("description")
	case len(*in.Description) > maxDescription:
		return nil, validation("description", "Member must have length less than or equal to %d", maxDescription)
	}
	key, err := c.keyFor("kms:UpdateKeyDescription", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	_, err = c.h.ring.UpdateKeyDescription(key.ID, *in.Description)
	return struct{}{}, err
}

func (c *call) enableKey(in *keyIDInput) (any, error) {
	key, err := c.keyFor("kms:EnableKey", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	return struct{}{}, c.h.ring.EnableKey(key.ID)
}

func (c *call) disableKey(in *keyIDInput) (any, error) {
	key, err := c.keyFor("kms:DisableKey", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	return struct{}{}, c.h.ring.DisableKey(key.ID)
}

type scheduleKeyDeletionInput struct {
	KeyId               string
	PendingWindowInDays *int32
}

type scheduleKeyDeletionOutput struct {
	KeyId               string
	DeletionDate        epoch
	KeyState            string
	PendingWindowInDays int32
}

func (c *call) scheduleKeyDeletion(in *scheduleKeyDeletionInput) (any, error) {
	days := int32(30) // AWS's default
	if in.PendingWindowInDays != nil {
		days = *in.PendingWindowInDays
	}
	if days < 7 || days > 30 {
		return nil, validation("pendingWindowInDays", "Member must have value between 7 and 30")
	}
	key, err := c.keyFor("kms:ScheduleKeyDeletion", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	date, err := c.h.ring.ScheduleKeyDeletion(key.ID, int(days))
	if err != nil {
		return nil, err
	}
	return &scheduleKeyDeletionOutput{KeyId: c.h.keyARN(key.ID), DeletionDate: epoch(date),
		KeyState: "PendingDeletion", PendingWindowInDays: days}, nil
}

func (c *call) cancelKeyDeletion(in *keyIDInput) (any, error) {
	key, err := c.keyFor("kms:CancelKeyDeletion", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	if err := c.h.ring.CancelKeyDeletion(key.ID); err != nil {
		return nil, err
	}
	return &keyIDOutput{KeyId: c.h.keyARN(key.ID)}, nil
}
