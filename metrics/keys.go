package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// InstrumentKeys wraps ks so that every call is counted in
// s3seal_kms_requests_total{operation,result} and timed in
// s3seal_kms_request_duration_seconds{operation}. Put it under the data-key
// cache (kms.NewCache(m.InstrumentKeys(ks), ...)) so that only calls
// that reach the key service are counted; cache hits have their own counter.
func (m *Metrics) InstrumentKeys(ks kms.KeyService) kms.KeyService {
	return &instrumentedKeys{ks: ks, m: m}
}

// KMSCalls is how many key-service calls InstrumentKeys has counted so far,
// whatever their operation and result, read from the counter itself: the
// benchmark reads it before and after each cell instead of counting again.
func (m *Metrics) KMSCalls() int64 {
	ch := make(chan prometheus.Metric)
	go func() {
		m.kmsRequests.Collect(ch)
		close(ch)
	}()
	var n float64
	for c := range ch {
		var d dto.Metric
		if c.Write(&d) == nil {
			n += d.GetCounter().GetValue()
		}
	}
	return int64(n)
}

type instrumentedKeys struct {
	ks kms.KeyService
	m  *Metrics
}

func (k *instrumentedKeys) observe(op string, start time.Time, err error) {
	k.m.kmsDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	k.m.kmsRequests.WithLabelValues(op, Result(err)).Inc()
}

func (k *instrumentedKeys) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	start := time.Now()
	dk, err := k.ks.GenerateDataKey(ctx, keyID, encCtx)
	k.observe("GenerateDataKey", start, err)
	return dk, err
}

func (k *instrumentedKeys) Decrypt(ctx context.Context, keyID string, ciphertext []byte, encCtx map[string]string) ([]byte, error) {
	start := time.Now()
	pt, err := k.ks.Decrypt(ctx, keyID, ciphertext, encCtx)
	k.observe("Decrypt", start, err)
	return pt, err
}

func (k *instrumentedKeys) ReEncrypt(ctx context.Context, ciphertext []byte, srcKeyID string, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (kms.Wrapped, error) {
	start := time.Now()
	w, err := k.ks.ReEncrypt(ctx, ciphertext, srcKeyID, srcCtx, dstKeyID, dstCtx)
	k.observe("ReEncrypt", start, err)
	return w, err
}

func (k *instrumentedKeys) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (kms.Wrapped, error) {
	start := time.Now()
	w, err := k.ks.Encrypt(ctx, keyID, plaintext, encCtx)
	k.observe("Encrypt", start, err)
	return w, err
}

// Result is the result label of a key-service call: "ok", the kind of an
// kms.KMSError, or "error" for anything else.
func Result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, kms.ErrKeyNotFound):
		return "not_found"
	case errors.Is(err, kms.ErrKeyDisabled):
		return "disabled"
	case errors.Is(err, kms.ErrAccessDenied):
		return "access_denied"
	case errors.Is(err, kms.ErrInvalidCiphertext):
		return "invalid_ciphertext"
	case errors.Is(err, kms.ErrKMSUnavailable):
		return "unavailable"
	case errors.Is(err, kms.ErrInvalidKMSRequest):
		return "invalid_request"
	}
	return "error"
}
