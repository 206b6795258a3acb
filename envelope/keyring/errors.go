package keyring

import (
	"fmt"

	"github.com/s3seal/s3seal/envelope/kms"
)

// The keyring mirrors AWS KMS's semantics, so each of its errors carries,
// in KMSError.Code, the error AWS KMS answers in the same situation: a
// server speaking the KMS API over the keyring (internal/kmsapi) passes it
// on, and callers that only need the kind still use errors.Is.
const (
	codeNotFound             = "NotFoundException"
	codeDisabled             = "DisabledException"
	codeInvalidState         = "KMSInvalidStateException"
	codeValidation           = "ValidationException"
	codeAlreadyExists        = "AlreadyExistsException"
	codeInvalidAliasName     = "InvalidAliasNameException"
	codeUnsupported          = "UnsupportedOperationException"
	codeInvalidCiphertext    = "InvalidCiphertextException"
	codeIncorrectKey         = "IncorrectKeyException"
	codeInvalidImportToken   = "InvalidImportTokenException"
	codeExpiredImportToken   = "ExpiredImportTokenException"
	codeIncorrectKeyMaterial = "IncorrectKeyMaterialException"
	codeConflict             = "ConflictException"
)

// ringErr is a keyring failure of kind, answered as AWS KMS's code. The
// formatted cause must never hold key material or plaintext.
func ringErr(op string, kind error, code, format string, args ...any) error {
	return &kms.KMSError{Op: op, Kind: kind, Code: code, Cause: fmt.Errorf(format, args...)}
}

func ringNotFound(op, keyID string) error {
	return ringErr(op, kms.ErrKeyNotFound, codeNotFound, "no key %q", keyID)
}

func ringInvalid(op, format string, args ...any) error {
	return ringErr(op, kms.ErrInvalidKMSRequest, codeValidation, format, args...)
}

// ringUnsupported refuses what AWS KMS refuses for the kind of key (a
// rotation of imported material, say) rather than for its state.
func ringUnsupported(op, format string, args ...any) error {
	return ringErr(op, kms.ErrInvalidKMSRequest, codeUnsupported, format, args...)
}

// ringWrongState refuses an operation the key's state does not allow.
// Like AWS KMS, a disabled key is a DisabledException and any other state
// (pending deletion, pending import) a KMSInvalidStateException; both are
// ErrKeyDisabled, the kind callers act on.
func ringWrongState(op string, key *ringKey) error {
	code := codeInvalidState
	if key.State == kms.KeyDisabled {
		code = codeDisabled
	}
	return ringErr(op, kms.ErrKeyDisabled, code, "key %s is %s", key.ID, key.State)
}

// ringPendingDeletion is the error for changes a key pending deletion refuses,
// like AWS's KMSInvalidStateException.
func ringPendingDeletion(op string, key *ringKey) error {
	return ringErr(op, kms.ErrKeyDisabled, codeInvalidState, "key %s is pending deletion; cancel the deletion first", key.ID)
}

// ringBadCiphertext is a blob that cannot be opened: malformed, tampered
// with, for another keyring, or under another encryption context.
func ringBadCiphertext(op, why string) error {
	return ringErr(op, kms.ErrInvalidCiphertext, codeInvalidCiphertext, "%s", why)
}
