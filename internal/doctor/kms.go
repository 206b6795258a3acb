package doctor

// The KMS checks, through s3seal's own key services (awskms.Service or
// the embedded keyring) as serve configures them. They write nothing. Their
// messages carry envelope's errors, which keep only error kinds and codes,
// never a KMS message text (local-kms quotes plaintext in those); data keys
// are zeroed as soon as their digest is taken.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/s3seal/s3seal/envelope"
)

var keyNeeded = []string{"kms-key"}

func kmsChecks() []Check {
	return []Check{
		{Name: "kms-key", Title: "the KMS key (S3SEAL_KMS_KEY_ID) resolves and is enabled", Required: true, Start: true, Run: checkKMSKey},
		{Name: "kms-generate-data-key", Title: "GenerateDataKey is allowed with an encryption context", Required: true, Start: true, Steady: true, Needs: keyNeeded, Run: checkGenerateDataKey},
		{Name: "kms-decrypt", Title: "Decrypt is allowed with an encryption context", Required: true, Start: true, Needs: []string{"kms-generate-data-key"}, Run: checkDecrypt},
		{Name: "kms-reencrypt", Title: "ReEncrypt is allowed with an encryption context", Required: true, Start: true, Needs: []string{"kms-generate-data-key"}, Run: checkReEncrypt},
		{Name: "kms-allow-list", Title: "the decrypt allow-list (S3SEAL_KMS_KEY_ID, S3SEAL_KMS_DECRYPT_KEY_IDS) resolves", Required: true, Start: true, Needs: keyNeeded, Run: checkAllowList},
	}
}

// probeDataKey is what GenerateDataKey left for Decrypt and ReEncrypt: the
// wrapped key and a digest of the plaintext key (which is zeroed).
type probeDataKey struct {
	wrapped kms.Wrapped
	digest  [sha256.Size]byte
}

func (s *Session) probeContext() map[string]string {
	return map[string]string{"s3seal:probe": s.cfg.Purpose}
}

// kmsSays is what a failed key-service call says, for a message: "key
// service URL: connection refused", naming the key service when the error
// does not; and its fix, when the error knows one.
func (s *Session) kmsSays(err error) (says, fix string) {
	var ke *kms.KMSError
	if !errors.As(err, &ke) {
		return err.Error(), ""
	}
	e := *ke
	if e.Service == "" {
		e.Service = s.cfg.KMS.Service
	}
	return e.Explain(), e.Fix
}

// kmsFailure is the outcome of a failed key-service call: op asked about
// keyID, what breaks when op fails, and how each kind of failure is fixed.
func (s *Session) kmsFailure(err error, op, keyID, breaks string) Outcome {
	k := s.cfg.KMS
	says, fix := s.kmsSays(err)
	msg := func(what string) string { return what + " — " + breaks }
	switch {
	case errors.Is(err, kms.ErrKMSUnavailable):
		return unavailable(msg(unanswered(err, op)+": "+says), s.unavailableFix(err, fix))
	case errors.Is(err, kms.ErrKeyNotFound):
		return failed(msg(fmt.Sprintf("S3SEAL_KMS_KEY_ID %q names no CMK the key service knows (%s)", keyID, says)), s.missingKeyFix(keyID))
	case errors.Is(err, kms.ErrKeyDisabled):
		return failed(msg(fmt.Sprintf("the CMK %q is disabled or pending deletion (%s)", keyID, says)), s.disabledKeyFix(keyID, ""))
	case errors.Is(err, kms.ErrAccessDenied):
		switch {
		case fix != "":
		case k.Keyring:
			fix = "check the keyring's key with s3seal keys list"
		default:
			fix = fmt.Sprintf("grant s3seal's role %s on %s in the key policy or an IAM policy (s3seal always sends an encryption context)", kms.Permission(op), keyID)
		}
		return failed(msg(fmt.Sprintf("the KMS denies s3seal %s on %q (%s)", op, keyID, says)), fix)
	}
	if fix == "" {
		fix = "check the key's type (a symmetric ENCRYPT_DECRYPT key) and s3seal's KMS configuration"
	}
	return failed(msg(fmt.Sprintf("the KMS refused %s on %q (%s)", op, keyID, says)), fix)
}

// unanswered says how a call to an unavailable KMS went, by its reason.
func unanswered(err error, op string) string {
	var ke *kms.KMSError
	errors.As(err, &ke)
	switch {
	case ke != nil && ke.Reason == kms.ReasonThrottled:
		return "the KMS throttles " + op
	case ke != nil && ke.Reason == kms.ReasonNoCredentials:
		return "s3seal has no credentials to sign " + op + " with"
	case ke != nil && ke.Reason == kms.ReasonCredentialSource:
		return "s3seal could not get credentials to sign " + op + " with"
	}
	return "the KMS does not answer " + op
}

// unavailableFix is the fix for a KMS that does not answer err: fix, the
// error's own, or the general one.
func (s *Session) unavailableFix(err error, fix string) string {
	var ke *kms.KMSError
	if errors.As(err, &ke) && (ke.Reason == kms.ReasonNoCredentials || ke.Reason == kms.ReasonCredentialSource) {
		return fix + "; s3seal becomes ready once it finds them"
	}
	switch {
	case fix != "":
	case s.cfg.KMS.Keyring:
		fix = "check that s3seal can read, write and lock the keyring file in S3SEAL_DATA_DIR"
	default:
		fix = "check S3SEAL_KMS_ENDPOINT and S3SEAL_KMS_REGION, and that this host reaches the KMS"
	}
	return fix + "; s3seal becomes ready when it answers"
}

func (s *Session) missingKeyFix(keyID string) string {
	if s.cfg.KMS.Keyring {
		return fmt.Sprintf("create it (s3seal keys create -alias %s, for an alias), or set S3SEAL_KMS_KEY_ID to a key s3seal keys list shows", keyID)
	}
	where := "the KMS"
	if s.cfg.KMS.Service != "" {
		where = s.cfg.KMS.Service
	}
	return "set it to the key id, ARN or alias/NAME of a CMK in " + where + " (AWS KMS keys are regional: check S3SEAL_KMS_REGION)"
}

func (s *Session) disabledKeyFix(keyID string, state kms.KeyState) string {
	switch {
	case s.cfg.KMS.Keyring && state == kms.KeyPendingDeletion:
		return fmt.Sprintf("s3seal keys cancel-deletion %s, then s3seal keys enable %s; or set S3SEAL_KMS_KEY_ID to an enabled key", keyID, keyID)
	case s.cfg.KMS.Keyring:
		return fmt.Sprintf("s3seal keys enable %s, or set S3SEAL_KMS_KEY_ID to an enabled key", keyID)
	case state == kms.KeyPendingDeletion:
		return fmt.Sprintf("aws kms cancel-key-deletion --key-id %s, then aws kms enable-key --key-id %s; or set S3SEAL_KMS_KEY_ID to an enabled key", keyID, keyID)
	}
	return fmt.Sprintf("aws kms enable-key --key-id %s, or set S3SEAL_KMS_KEY_ID to an enabled key", keyID)
}

// checkKMSKey describes the CMK for new objects: it exists and is enabled.
func checkKMSKey(ctx context.Context, s *Session) Outcome {
	k := s.cfg.KMS
	const breaks = "s3seal can neither seal new objects nor read existing ones"
	if k.Status == nil {
		return failed("no key service is configured", "set S3SEAL_KMS_PROVIDER")
	}
	st, err := k.Status.KeyStatus(ctx, k.KeyID)
	if errors.Is(err, kms.ErrAccessDenied) {
		return s.kmsFailure(err, "DescribeKey", k.KeyID, "s3seal resolves its CMKs at start to know which keys objects may name, and refuses every object until it can")
	}
	if err != nil {
		return s.kmsFailure(err, "DescribeKey", k.KeyID, breaks)
	}
	name := k.KeyID
	if len(st.IDs) > 0 && st.IDs[len(st.IDs)-1] != k.KeyID {
		name += " (" + st.IDs[len(st.IDs)-1] + ")"
	}
	if st.State != kms.KeyEnabled {
		return failed(fmt.Sprintf("the CMK %s is %s — %s (cached data keys aside)", name, st.State, breaks), s.disabledKeyFix(k.KeyID, st.State))
	}
	return passed(fmt.Sprintf("the KMS key %s resolves and is enabled", name))
}

func checkGenerateDataKey(ctx context.Context, s *Session) Outcome {
	k := s.cfg.KMS
	dk, err := k.Keys.GenerateDataKey(ctx, k.KeyID, s.probeContext())
	if err != nil {
		clear(dk.Plaintext)
		return s.kmsFailure(err, "GenerateDataKey", k.KeyID, "every PUT and multipart upload through s3seal fails")
	}
	defer clear(dk.Plaintext)
	if len(dk.Plaintext) != envelope.DataKeySize {
		return failed(fmt.Sprintf("GenerateDataKey under %s returned a %d-byte data key, not %d", k.KeyID, len(dk.Plaintext), envelope.DataKeySize),
			"use a symmetric ENCRYPT_DECRYPT key")
	}
	if s.dataKey != nil {
		clear(s.dataKey.wrapped.Ciphertext)
	}
	s.dataKey = &probeDataKey{wrapped: dk.Wrapped, digest: sha256.Sum256(dk.Plaintext)}
	return passed(fmt.Sprintf("GenerateDataKey under %s is allowed with an encryption context", k.KeyID))
}

// sameKey reports whether plaintext is the probe's data key, and zeroes it.
func (s *Session) sameKey(plaintext []byte) bool {
	d := sha256.Sum256(plaintext)
	clear(plaintext)
	return subtle.ConstantTimeCompare(d[:], s.dataKey.digest[:]) == 1
}

func checkDecrypt(ctx context.Context, s *Session) Outcome {
	k, dk := s.cfg.KMS, s.dataKey
	if dk == nil {
		return skipped("needs a data key from GenerateDataKey")
	}
	pt, err := k.Keys.Decrypt(ctx, dk.wrapped.KeyID, dk.wrapped.Ciphertext, s.probeContext())
	if err != nil {
		clear(pt)
		return s.kmsFailure(err, "Decrypt", k.KeyID, "no object can be read through s3seal")
	}
	if !s.sameKey(pt) {
		return failed("Decrypt returned another key than GenerateDataKey made — every object read through s3seal fails authentication",
			"check that S3SEAL_KMS_ENDPOINT is the KMS itself")
	}
	return passed(fmt.Sprintf("Decrypt under %s is allowed with an encryption context", k.KeyID))
}

func checkReEncrypt(ctx context.Context, s *Session) Outcome {
	k, dk := s.cfg.KMS, s.dataKey
	if dk == nil {
		return skipped("needs a data key from GenerateDataKey")
	}
	const breaks = "every CopyObject through s3seal fails (a copy re-wraps the data key with ReEncrypt, for the copy's name), and objects cannot be moved to another CMK"
	w, err := k.Keys.ReEncrypt(ctx, dk.wrapped.Ciphertext, dk.wrapped.KeyID, s.probeContext(), k.KeyID, s.probeContext())
	if err != nil {
		return s.kmsFailure(err, "ReEncrypt", k.KeyID, breaks)
	}
	pt, err := k.Keys.Decrypt(ctx, w.KeyID, w.Ciphertext, s.probeContext())
	if err != nil {
		clear(pt)
		return s.kmsFailure(err, "Decrypt", k.KeyID, "objects copied through s3seal cannot be read")
	}
	if !s.sameKey(pt) {
		return failed("ReEncrypt wrapped another key than the one it was given — "+breaks, "check that S3SEAL_KMS_ENDPOINT is the KMS itself")
	}
	return passed(fmt.Sprintf("ReEncrypt under %s is allowed with an encryption context", k.KeyID))
}

// checkAllowList resolves the CMKs objects may be read under, as the
// proxy's allow-list (the same list, when serve passes it in).
func checkAllowList(ctx context.Context, s *Session) Outcome {
	k := s.cfg.KMS
	if k.Allowed == nil {
		return failed("no key resolver is configured", "set S3SEAL_KMS_PROVIDER")
	}
	const breaks = "s3seal refuses every object until the list resolves"
	err := k.Allowed.Resolve(ctx)
	var entry *kms.AllowEntryError
	switch {
	case err == nil:
		n := 1 + len(k.DecryptKeyIDs)
		return passed(fmt.Sprintf("the decrypt allow-list resolves (%d CMK%s: S3SEAL_KMS_KEY_ID%s)", n, plural(n), map[bool]string{true: " and S3SEAL_KMS_DECRYPT_KEY_IDS"}[n > 1]))
	case errors.Is(err, kms.ErrKeyNotFound) && errors.As(err, &entry):
		if entry.Entry == k.KeyID {
			return failed(fmt.Sprintf("S3SEAL_KMS_KEY_ID %q names no CMK the key service knows — %s", entry.Entry, breaks), s.missingKeyFix(entry.Entry))
		}
		return failed(fmt.Sprintf("S3SEAL_KMS_DECRYPT_KEY_IDS lists %q, which names no CMK the key service knows — %s", entry.Entry, breaks),
			"correct it or remove it from the list")
	case errors.Is(err, kms.ErrAccessDenied) && errors.As(err, &entry):
		return failed(fmt.Sprintf("the KMS denies s3seal DescribeKey on %q — %s", entry.Entry, breaks),
			"grant kms:DescribeKey on every key in S3SEAL_KMS_KEY_ID and S3SEAL_KMS_DECRYPT_KEY_IDS (s3seal resolves them at start to know which keys objects may name)")
	case errors.Is(err, kms.ErrKMSUnavailable):
		says, fix := s.kmsSays(err)
		return unavailable(unanswered(err, "DescribeKey")+": "+says+" — "+breaks, s.unavailableFix(err, fix))
	}
	return failed(fmt.Sprintf("the allow-list does not resolve (%v) — %s", err, breaks), "check S3SEAL_KMS_KEY_ID and S3SEAL_KMS_DECRYPT_KEY_IDS")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
