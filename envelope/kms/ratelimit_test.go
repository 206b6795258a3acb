package kms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/s3seal/s3seal/envelope/kms"
)

// countingKeys counts the calls that reach it.
type countingKeys struct {
	kms.KeyService
	calls int
}

func (c *countingKeys) ReEncrypt(context.Context, []byte, string, map[string]string, string, map[string]string) (kms.Wrapped, error) {
	c.calls++
	return kms.Wrapped{KeyID: "k"}, nil
}

func TestRateLimitedWaitsAndGivesUp(t *testing.T) {
	inner := &countingKeys{}
	// One token, never refilled within the test: the second call must wait,
	// and gives up when its context ends, without reaching the service.
	ks := kms.RateLimited(inner, rate.NewLimiter(rate.Every(time.Hour), 1))
	if _, err := ks.ReEncrypt(context.Background(), nil, "", nil, "k", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := ks.ReEncrypt(ctx, nil, "", nil, "k", nil)
	if !errors.Is(err, kms.ErrKMSUnavailable) {
		t.Fatalf("second call: %v, want ErrKMSUnavailable", err)
	}
	if inner.calls != 1 {
		t.Fatalf("%d calls reached the service, want 1", inner.calls)
	}
}
