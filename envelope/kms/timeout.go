package kms

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// WithTimeout is ks with every call bounded to d, the retries of the
// client under it included: a key service that does not answer makes a
// request fail as unavailable (503 to S3 clients) rather than wait without
// end.
func WithTimeout(ks KeyService, d time.Duration) KeyService {
	return timeoutKeys{ks: ks, d: d}
}

type timeoutKeys struct {
	ks KeyService
	d  time.Duration
}

// bounded runs call with ctx bounded to t.d; a call cut by that bound
// fails as ErrKMSUnavailable, whatever the client under it made of it.
func bounded[T any](ctx context.Context, t timeoutKeys, op string, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, t.d, errKMSTimeout)
	defer cancel()
	v, err := call(ctx)
	if err != nil && errors.Is(context.Cause(ctx), errKMSTimeout) {
		e := &KMSError{Op: op}
		// Which service did not answer is the client's to say.
		if inner := (*KMSError)(nil); errors.As(err, &inner) {
			// A credential source that hung is no key service out of
			// reach: the client's words name it and its fix.
			if inner.Reason == ReasonCredentialSource {
				return v, err
			}
			e.Service, e.KeyID = inner.Service, inner.KeyID
		}
		e.Kind, e.Reason, e.Cause = ErrKMSUnavailable, ReasonTimeout, fmt.Errorf("%w (%s)", errKMSTimeout, t.d)
		e.Fix = "check that this host reaches the key service; raise S3SEAL_KMS_TIMEOUT if it is merely slow"
		return v, e
	}
	return v, err
}

var errKMSTimeout = errors.New("no answer within S3SEAL_KMS_TIMEOUT")

func (t timeoutKeys) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (DataKey, error) {
	return bounded(ctx, t, "GenerateDataKey", func(ctx context.Context) (DataKey, error) {
		return t.ks.GenerateDataKey(ctx, keyID, encCtx)
	})
}

func (t timeoutKeys) Decrypt(ctx context.Context, keyID string, ciphertext []byte, encCtx map[string]string) ([]byte, error) {
	return bounded(ctx, t, "Decrypt", func(ctx context.Context) ([]byte, error) {
		return t.ks.Decrypt(ctx, keyID, ciphertext, encCtx)
	})
}

func (t timeoutKeys) ReEncrypt(ctx context.Context, ciphertext []byte, srcKeyID string, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (Wrapped, error) {
	return bounded(ctx, t, "ReEncrypt", func(ctx context.Context) (Wrapped, error) {
		return t.ks.ReEncrypt(ctx, ciphertext, srcKeyID, srcCtx, dstKeyID, dstCtx)
	})
}

func (t timeoutKeys) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (Wrapped, error) {
	return bounded(ctx, t, "Encrypt", func(ctx context.Context) (Wrapped, error) {
		return t.ks.Encrypt(ctx, keyID, plaintext, encCtx)
	})
}
