package kmsapi

import (
	"time"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// Key rotation: automatic (with AWS's period bounds, in days) and on
// demand. Keys with imported material cannot rotate, as on AWS, and their
// rotation status is an UnsupportedOperationException.

const day = 24 * time.Hour

type enableKeyRotationInput struct {
	KeyId                string
	RotationPeriodInDays *int32
}

func (c *call) enableKeyRotation(in *enableKeyRotationInput) (any, error) {
	days := int32(keyring.DefaultRotationPeriod / day)
	if in.RotationPeriodInDays != nil {
		days = *in.RotationPeriodInDays
	}
	if days < 90 || days > 2560 {
		return nil, validation("rotationPeriodInDays", "Member must have value between 90 and 2560")
	}
	key, err := c.keyFor("kms:EnableKeyRotation", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	_, err = c.h.ring.EnableKeyRotation(key.ID, time.Duration(days)*day)
	return struct{}{}, err
}

func (c *call) disableKeyRotation(in *keyIDInput) (any, error) {
	key, err := c.keyFor("kms:DisableKeyRotation", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	if err := c.rotationSettable(key); err != nil {
		return nil, err
	}
	_, err = c.h.ring.DisableKeyRotation(key.ID)
	return struct{}{}, err
}

// rotationSettable refuses, as AWS does, a rotation change to a key that
// cannot rotate or is not enabled. (The keyring itself lets rotation be
// turned off in any state: it is harmless there.)
func (c *call) rotationSettable(key keyring.KeyInfo) error {
	switch {
	case key.Origin != keyring.OriginGenerated:
		return newError(errUnsupported, "%s origin is EXTERNAL which is not valid for this operation.", c.h.keyARN(key.ID))
	case key.State == kms.KeyDisabled:
		return newError(errDisabled, "%s is disabled.", c.h.keyARN(key.ID))
	case key.State != kms.KeyEnabled:
		return newError(errInvalidState, "%s is %s and not valid for this operation.", c.h.keyARN(key.ID), key.State)
	}
	return nil
}

type getKeyRotationStatusOutput struct {
	KeyId                string
	KeyRotationEnabled   bool
	RotationPeriodInDays int32 `json:",omitempty"`
	NextRotationDate     epoch `json:",omitzero"`
}

func (c *call) getKeyRotationStatus(in *keyIDInput) (any, error) {
	key, err := c.keyFor("kms:GetKeyRotationStatus", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	if key.Origin != keyring.OriginGenerated {
		return nil, newError(errUnsupported, "%s origin is EXTERNAL which is not valid for this operation.", c.h.keyARN(key.ID))
	}
	out := &getKeyRotationStatusOutput{KeyId: c.h.keyARN(key.ID), KeyRotationEnabled: key.RotationPeriod > 0}
	if out.KeyRotationEnabled {
		// The keyring takes periods shorter than a day (for trials); AWS
		// speaks in whole days.
		out.RotationPeriodInDays = int32(max(key.RotationPeriod/day, 1))
		out.NextRotationDate = epoch(key.NextRotation)
	}
	return out, nil
}

func (c *call) rotateKeyOnDemand(in *keyIDInput) (any, error) {
	key, err := c.keyFor("kms:RotateKeyOnDemand", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	if _, err := c.h.ring.RotateKey(key.ID); err != nil {
		return nil, err
	}
	return &keyIDOutput{KeyId: c.h.keyARN(key.ID)}, nil
}
