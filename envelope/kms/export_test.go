package kms

import "time"

// Internals the external tests (package kms_test, which may import the
// KeyService implementations) need.

const (
	MaxShownKeyID   = maxShownKeyID
	RetryUnresolved = retryUnresolved
)

// SetClock makes a's clock now.
func SetClock(a *AllowList, now func() time.Time) { a.now = now }

// SetBucketKeysClock makes b's clock now.
func SetBucketKeysClock(b *BucketKeys, now func() time.Time) { b.now = now }
