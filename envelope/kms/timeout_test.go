package kms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"
)

// slowKeys answers Decrypt after delay, or fails when its context ends
// first, with the context's error, as an SDK client does.
type slowKeys struct {
	kms.KeyService
	delay   time.Duration
	service string // the Service its errors name; "": it fails with the bare context error
}

func (s slowKeys) Decrypt(ctx context.Context, _ string, _ []byte, _ map[string]string) ([]byte, error) {
	select {
	case <-time.After(s.delay):
		return []byte("key"), nil
	case <-ctx.Done():
		if s.service == "" {
			return nil, ctx.Err()
		}
		return nil, &kms.KMSError{Op: "Decrypt", Kind: kms.ErrKMSUnavailable, Service: s.service, Cause: ctx.Err()}
	}
}

// TestWithTimeout: a key service slower than the bound fails as
// unavailable; one within it answers; a caller's own cancellation stays
// the caller's.
func TestWithTimeout(t *testing.T) {
	const bound = 50 * time.Millisecond
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name        string
		ctx         context.Context
		delay       time.Duration
		unavailable bool
		wantErr     error
	}{
		{"answers within the bound", context.Background(), 0, false, nil},
		{"no answer within the bound", context.Background(), time.Hour, true, nil},
		{"the caller gave up", canceled, time.Hour, false, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slow := slowKeys{delay: tc.delay}
			if tc.unavailable {
				slow.service = "key service http://kms.test"
			}
			_, err := kms.WithTimeout(slow, bound).Decrypt(tc.ctx, "k", nil, nil)
			switch {
			case tc.unavailable:
				var ke *kms.KMSError
				if !errors.Is(err, kms.ErrKMSUnavailable) || !errors.As(err, &ke) || ke.Op != "Decrypt" {
					t.Fatalf("got %v, want Decrypt unavailable", err)
				}
				const want = "kms Decrypt: key service http://kms.test: timeout: no answer within S3SEAL_KMS_TIMEOUT (50ms); " +
					"check that this host reaches the key service; raise S3SEAL_KMS_TIMEOUT if it is merely slow"
				if err.Error() != want {
					t.Fatalf("got %q, want %q", err, want)
				}
			case !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil):
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			case errors.Is(err, kms.ErrKMSUnavailable):
				t.Fatalf("got %v: the caller's cancellation reported as the service's", err)
			}
		})
	}
}

// credentialsHang fails as a credential source that did not answer in
// time, as envelope/awskms reports one.
type credentialsHang struct{ kms.KeyService }

func (credentialsHang) Decrypt(ctx context.Context, _ string, _ []byte, _ map[string]string) ([]byte, error) {
	<-ctx.Done()
	return nil, &kms.KMSError{Op: "Decrypt", Kind: kms.ErrKMSUnavailable, Service: "key service http://kms.test",
		Reason: kms.ReasonCredentialSource, Cause: errors.New("the credential_process of profile p failed (no answer within the time allowed)")}
}

// TestWithTimeoutCredentialSource: a credential source that hangs past
// the bound keeps its own error, not "no answer within S3SEAL_KMS_TIMEOUT":
// the key service was never asked.
func TestWithTimeoutCredentialSource(t *testing.T) {
	_, err := kms.WithTimeout(credentialsHang{}, 20*time.Millisecond).Decrypt(context.Background(), "k", nil, nil)
	var ke *kms.KMSError
	if !errors.As(err, &ke) || ke.Reason != kms.ReasonCredentialSource || !errors.Is(err, kms.ErrKMSUnavailable) {
		t.Fatalf("got %v, want the credential source's error", err)
	}
}
