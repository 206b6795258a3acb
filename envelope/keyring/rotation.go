package keyring

import (
	"time"

	"github.com/s3seal/s3seal/envelope/kms"
)

// Automatic rotation, as AWS KMS's EnableKeyRotation: a key with a rotation
// period gets new material each period (RotateDue, which a running serve
// calls); wraps made under older material keep unwrapping. AWS allows 90 to
// 2560 days (365 by default); the keyring takes any period from a second,
// so that rotation can be tried out and tested. Every rotation adds 32
// bytes of material that is kept for good (old objects need it), so a
// short period grows the keyring file without end.

// DefaultRotationPeriod is AWS KMS's default.
const DefaultRotationPeriod = 365 * 24 * time.Hour

// MinRotationPeriod is the shortest period EnableKeyRotation accepts.
const MinRotationPeriod = time.Second

// EnableKeyRotation rotates the key keyID names every period from now on,
// the first time one period from now. Keys with imported material cannot
// rotate automatically (nor by hand: RotateKey).
func (k *Keyring) EnableKeyRotation(keyID string, period time.Duration) (KeyInfo, error) {
	const op = "EnableKeyRotation"
	if period < MinRotationPeriod {
		return KeyInfo{}, ringInvalid(op, "rotation period %s is shorter than %s", period, MinRotationPeriod)
	}
	return k.updateKey(op, keyID, func(key *ringKey, now time.Time) error {
		if err := key.rotatable(op); err != nil {
			return err
		}
		key.RotationPeriod = period
		key.NextRotation = now.UTC().Round(0).Add(period)
		return nil
	})
}

// DisableKeyRotation stops the automatic rotation of the key keyID names.
func (k *Keyring) DisableKeyRotation(keyID string) (KeyInfo, error) {
	return k.updateKey("DisableKeyRotation", keyID, func(key *ringKey, _ time.Time) error {
		key.RotationPeriod, key.NextRotation = 0, time.Time{}
		return nil
	})
}

// due reports whether key's automatic rotation is due at now. A disabled
// key waits (as on AWS, where the rotation happens once it is enabled).
func (key *ringKey) due(now time.Time) bool {
	return key.RotationPeriod > 0 && key.State == kms.KeyEnabled && !now.Before(key.NextRotation)
}

// RotateDue rotates every key whose automatic rotation is due, and returns
// them. Replicas sharing the file may all call it: the check is repeated
// under the file's lock, so each rotation happens once.
func (k *Keyring) RotateDue() ([]KeyInfo, error) {
	now := k.now()
	anyDue := false
	for _, key := range k.state.Load().Keys {
		anyDue = anyDue || key.due(now)
	}
	if !anyDue {
		return nil, nil
	}
	var rotated []KeyInfo
	err := k.update("RotateDue", func(s *keyringState, now time.Time) error {
		for _, key := range s.Keys {
			if key.due(now) {
				key.rotate(now)
				for !now.Before(key.NextRotation) { // asleep for several periods: once is enough
					key.NextRotation = key.NextRotation.Add(key.RotationPeriod)
				}
				rotated = append(rotated, key.info())
			}
		}
		return nil
	})
	return rotated, err
}
