package kms

import (
	"context"

	"golang.org/x/time/rate"
)

// RateLimited is ks with every call waiting for limiter first, so that a
// bulk job (s3seal rewrap) stays within a KMS request quota shared with
// the servers that use the same CMKs. A call whose context ends while it
// waits fails as the key service being unavailable, without being sent.
func RateLimited(ks KeyService, limiter *rate.Limiter) KeyService {
	return rateLimited{ks: ks, limiter: limiter}
}

type rateLimited struct {
	ks      KeyService
	limiter *rate.Limiter
}

func (r rateLimited) wait(ctx context.Context, op string) error {
	if err := r.limiter.Wait(ctx); err != nil {
		return &KMSError{Op: op, Kind: ErrKMSUnavailable, Cause: err}
	}
	return nil
}

func (r rateLimited) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (DataKey, error) {
	if err := r.wait(ctx, "GenerateDataKey"); err != nil {
		return DataKey{}, err
	}
	return r.ks.GenerateDataKey(ctx, keyID, encCtx)
}

func (r rateLimited) Decrypt(ctx context.Context, keyID string, ciphertext []byte, encCtx map[string]string) ([]byte, error) {
	if err := r.wait(ctx, "Decrypt"); err != nil {
		return nil, err
	}
	return r.ks.Decrypt(ctx, keyID, ciphertext, encCtx)
}

func (r rateLimited) ReEncrypt(ctx context.Context, ciphertext []byte, srcKeyID string, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (Wrapped, error) {
	if err := r.wait(ctx, "ReEncrypt"); err != nil {
		return Wrapped{}, err
	}
	return r.ks.ReEncrypt(ctx, ciphertext, srcKeyID, srcCtx, dstKeyID, dstCtx)
}

func (r rateLimited) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (Wrapped, error) {
	if err := r.wait(ctx, "Encrypt"); err != nil {
		return Wrapped{}, err
	}
	return r.ks.Encrypt(ctx, keyID, plaintext, encCtx)
}
