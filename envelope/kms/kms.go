// Package kms is what s3seal needs of a key management service: the
// KeyService interface (implemented by envelope/awskms and envelope/keyring)
// with the kinds of failure callers map; a cache of unwrapped data keys; the
// allow-list of CMKs objects may be decrypted under; and ObjectKeys, which
// ties each object's data key to its bucket and key (docs/FORMAT.md §6.1,
// §7).
package kms

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/s3seal/s3seal/envelope"
)

// DataKeySize is the length of every data key GenerateDataKey returns: a
// key for the format (AES-256).
const DataKeySize = envelope.DataKeySize

// MaxEncryptPlaintext is the largest plaintext KeyService.Encrypt accepts,
// the AWS KMS limit that makes envelope encryption necessary in the first place.
const MaxEncryptPlaintext = 4096

// Wrapped is a key-service ciphertext and the canonical id of the CMK that made it
// (for AWS KMS the key ARN, for the keyring its key id).
type Wrapped struct {
	Ciphertext []byte
	KeyID      string
}

// DataKey is a fresh data key. Plaintext is for one object only; callers zero
// it when done.
type DataKey struct {
	Plaintext []byte
	Wrapped
}

// KeyService wraps and unwraps keys under customer master keys (CMKs). It is
// implemented by awskms.Service and keyring.Keyring.
//
// keyID names a CMK by id, ARN or "alias/...". encCtx is the encryption
// context: authenticated, not secret, and required again verbatim to decrypt.
// Every error wraps one of the Err* sentinels below so callers can map it with
// errors.Is, and no error text ever carries key-service output that could echo
// plaintext.
type KeyService interface {
	// GenerateDataKey returns a new 32-byte data key in plaintext and wrapped.
	GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (DataKey, error)
	// Decrypt unwraps ciphertext. keyID may be empty; when set, the ciphertext
	// must belong to that CMK.
	Decrypt(ctx context.Context, keyID string, ciphertext []byte, encCtx map[string]string) ([]byte, error)
	// ReEncrypt unwraps ciphertext under srcCtx and wraps the same plaintext under
	// dstKeyID and dstCtx without revealing it to the caller. srcKeyID may be empty.
	ReEncrypt(ctx context.Context, ciphertext []byte, srcKeyID string, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (Wrapped, error)
	// Encrypt wraps at most MaxEncryptPlaintext bytes: the "direct" mode the
	// benchmark compares envelope encryption against.
	Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (Wrapped, error)
}

// Kinds of key-service failure. The proxy maps them to S3 errors.
var (
	ErrKeyNotFound       = errors.New("key not found")
	ErrKeyDisabled       = errors.New("key disabled or pending deletion")
	ErrAccessDenied      = errors.New("access to key denied")
	ErrInvalidCiphertext = errors.New("invalid ciphertext or encryption context")
	ErrKMSUnavailable    = errors.New("key service unavailable") // retryable
	ErrInvalidKMSRequest = errors.New("invalid key service request")
)

// Reason says how a key-service call failed, finer than its kind: what
// an operator reads in the log, on /readyz and from s3seal doctor. ""
// is a failure of no finer reason (the kind says it all).
type Reason string

const (
	ReasonRefused       Reason = "connection refused"
	ReasonDNS           Reason = "DNS name not found"
	ReasonTimeout       Reason = "timeout"
	ReasonTLS           Reason = "TLS"
	ReasonNoCredentials Reason = "no credentials"
	// ReasonCredentialSource: a credential source is set up (a
	// credential_process, SSO, a role to assume, ...) and failed.
	ReasonCredentialSource Reason = "AWS credentials failed"
	ReasonDenied           Reason = "access denied"
	ReasonThrottled        Reason = "throttled"
	// ReasonQuota is a resource quota (keys, aliases, grants), not a rate.
	ReasonQuota Reason = "KMS resource quota exceeded"
	// ReasonKeyUsage: the CMK is not a symmetric encryption key.
	ReasonKeyUsage        Reason = "wrong key type"
	ReasonDisabled        Reason = "key disabled"
	ReasonNotFound        Reason = "key not found"
	ReasonPendingDeletion Reason = "key pending deletion"
)

// KMSError is a key-service failure: the operation, the kind (one of the Err*
// sentinels) and, when the service gave one, its error code. It deliberately
// keeps no service message: local-kms, for one, echoes plaintext in them.
type KMSError struct {
	Op   string // "GenerateDataKey", "Decrypt", ...
	Kind error
	Code string // e.g. "DisabledException"; empty when there was none
	// Cause is an underlying error known to hold no key-service text
	// (a network or context error), or nil.
	Cause error
	// Service names the key service asked, for operators: "key service
	// https://kms.eu-west-1.amazonaws.com"; "" when the caller says it.
	Service string
	KeyID   string // the CMK the call named, when it matters to the failure
	Reason  Reason
	// Fix is how an operator fixes it, in s3seal's words; "" when nothing
	// general applies (the doctor adds its own fixes).
	Fix string
}

func (e *KMSError) Error() string {
	s := "kms " + e.Op + ": " + e.Explain()
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

// Explain is the failure without the operation and the fix: "key service
// URL: connection refused", "access denied for CMK alias/x
// (AccessDeniedException)".
func (e *KMSError) Explain() string {
	var s string
	if e.Service != "" {
		s = e.Service + ": "
	}
	s += e.what()
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// what is the reason in words, naming the CMK where it is about one.
func (e *KMSError) what() string {
	cmk := "the CMK"
	if e.KeyID != "" {
		cmk = "CMK " + e.KeyID
	}
	switch e.Reason {
	case "":
		return e.Kind.Error()
	case ReasonDenied:
		if e.KeyID != "" {
			return "access denied for " + cmk
		}
		return "access denied"
	case ReasonNotFound:
		return cmk + " not found"
	case ReasonDisabled:
		return cmk + " is disabled"
	case ReasonPendingDeletion:
		return cmk + " is pending deletion or in another state that cannot be used"
	case ReasonKeyUsage:
		return cmk + " cannot be used for ENCRYPT_DECRYPT of symmetric data keys"
	}
	return string(e.Reason)
}

// Unwrap exposes both the kind and the cause to errors.Is / errors.As.
func (e *KMSError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// Permission is the IAM permission an operation of the KeyService needs
// in AWS KMS, for fixes: "kms:Decrypt".
func Permission(op string) string {
	if op == "ReEncrypt" {
		return "kms:ReEncryptFrom and kms:ReEncryptTo"
	}
	return "kms:" + op
}

// CanonicalContext encodes an encryption context unambiguously and
// independently of map order: sorted by key, each key and value prefixed by
// its uint32 big-endian length. The keyring binds it as AAD and the data-key
// cache keys on it.
func CanonicalContext(encCtx map[string]string) []byte {
	keys := make([]string, 0, len(encCtx))
	n := 4
	for k, v := range encCtx {
		keys = append(keys, k)
		n += 8 + len(k) + len(v)
	}
	sort.Strings(keys)
	b := make([]byte, 0, n)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = binary.BigEndian.AppendUint32(b, uint32(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(encCtx[k])))
		b = append(b, encCtx[k]...)
	}
	return b
}

// CheckEncryptInput enforces the Encrypt contract every KeyService shares.
func CheckEncryptInput(op string, plaintext []byte) error {
	if len(plaintext) == 0 || len(plaintext) > MaxEncryptPlaintext {
		return &KMSError{Op: op, Kind: ErrInvalidKMSRequest,
			Cause: fmt.Errorf("plaintext is %d bytes, want 1 to %d", len(plaintext), MaxEncryptPlaintext)}
	}
	return nil
}
