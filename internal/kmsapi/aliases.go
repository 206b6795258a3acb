package kmsapi

import (
	"slices"
	"strings"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// Aliases. Each alias operation is authorized on the key(s) it involves,
// as AWS does: CreateAlias on the target, UpdateAlias on both the key the
// alias named and its new target, DeleteAlias on the key it named.

type aliasInput struct {
	AliasName   string
	TargetKeyId string
}

// checkAliasName requires an alias name (not an ARN): "alias/NAME". The
// keyring checks NAME itself.
func checkAliasName(alias string) error {
	switch {
	case alias == "":
		return required("aliasName")
	case len(alias) > 256:
		return validation("aliasName", "Member must have length less than or equal to 256")
	case !strings.HasPrefix(alias, aliasPrefix):
		return newError(errInvalidAliasName, "alias names begin with alias/")
	}
	return nil
}

// aliasTarget resolves the key an alias is to name: not one going away,
// as AWS refuses.
func (c *call) aliasTarget(ref string) (keyring.KeyInfo, error) {
	key, err := c.resolve("targetKeyId", ref, false)
	if err == nil && key.State == kms.KeyPendingDeletion {
		err = newError(errInvalidState, "%s is pending deletion.", c.h.keyARN(key.ID))
	}
	return key, err
}

func (c *call) createAlias(in *aliasInput) (any, error) {
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	key, err := c.aliasTarget(in.TargetKeyId)
	if err != nil {
		return nil, err
	}
	if err := c.authorize("kms:CreateAlias", key.ID); err != nil {
		return nil, err
	}
	return struct{}{}, c.h.ring.CreateAlias(in.AliasName, key.ID)
}

func (c *call) updateAlias(in *aliasInput) (any, error) {
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	from, err := c.resolve("aliasName", in.AliasName, true)
	if err != nil {
		return nil, err
	}
	to, err := c.aliasTarget(in.TargetKeyId)
	if err != nil {
		return nil, err
	}
	if err := c.authorize("kms:UpdateAlias", from.ID); err != nil {
		return nil, err
	}
	if err := c.authorize("kms:UpdateAlias", to.ID); err != nil {
		return nil, err
	}
	return struct{}{}, c.h.ring.UpdateAlias(in.AliasName, from.ID, to.ID)
}

type deleteAliasInput struct {
	AliasName string
}

func (c *call) deleteAlias(in *deleteAliasInput) (any, error) {
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	key, err := c.resolve("aliasName", in.AliasName, true)
	if err != nil {
		return nil, err
	}
	if err := c.authorize("kms:DeleteAlias", key.ID); err != nil {
		return nil, err
	}
	return struct{}{}, c.h.ring.DeleteAlias(in.AliasName, key.ID)
}

type listAliasesInput struct {
	KeyId string
	pageInput
}

type aliasListEntry struct {
	AliasName   string
	AliasArn    string
	TargetKeyId string
}

type listAliasesOutput struct {
	Aliases    []aliasListEntry
	NextMarker string `json:",omitempty"`
	Truncated  bool
}

func (c *call) listAliases(in *listAliasesInput) (any, error) {
	keys := c.h.ring.ListKeys()
	if in.KeyId != "" {
		key, err := c.resolve("keyId", in.KeyId, false)
		if err != nil {
			return nil, err
		}
		keys = []keyring.KeyInfo{key}
	}
	if err := c.authorize("kms:ListAliases", ""); err != nil {
		return nil, err
	}
	var all []aliasListEntry
	for _, k := range keys {
		for _, a := range k.Aliases {
			all = append(all, aliasListEntry{AliasName: a, AliasArn: c.h.aliasARN(a), TargetKeyId: k.ID})
		}
	}
	slices.SortFunc(all, func(a, b aliasListEntry) int { return strings.Compare(a.AliasName, b.AliasName) })
	page, next, err := pageOf(all, func(e aliasListEntry) string { return e.AliasName }, in.pageInput, 50, 100)
	if err != nil {
		return nil, err
	}
	return &listAliasesOutput{Aliases: append([]aliasListEntry{}, page...), NextMarker: next, Truncated: next != ""}, nil
}
