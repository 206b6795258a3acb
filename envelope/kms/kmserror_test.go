package kms_test

import (
	"errors"
	"testing"

	"github.com/s3seal/s3seal/envelope/kms"
)

// TestKMSErrorText: an error reads "kms OP: [SERVICE: ]WHAT[ (CODE)][: CAUSE][; FIX]",
// WHAT being the reason in words, naming the CMK, or the kind without one.
func TestKMSErrorText(t *testing.T) {
	const svc = "key service https://kms.eu-west-1.amazonaws.com"
	for _, tc := range []struct {
		name string
		err  *kms.KMSError
		want string
	}{
		{"kind only", &kms.KMSError{Op: "Decrypt", Kind: kms.ErrKMSUnavailable, Cause: errors.New("locking keyring: busy")},
			"kms Decrypt: key service unavailable: locking keyring: busy"},
		{"refused", &kms.KMSError{Op: "GenerateDataKey", Kind: kms.ErrKMSUnavailable, Service: svc, Reason: kms.ReasonRefused, Fix: "check the route"},
			"kms GenerateDataKey: " + svc + ": connection refused; check the route"},
		{"denied", &kms.KMSError{Op: "Decrypt", Kind: kms.ErrAccessDenied, Code: "AccessDeniedException", Service: svc, KeyID: "alias/x", Reason: kms.ReasonDenied},
			"kms Decrypt: " + svc + ": access denied for CMK alias/x (AccessDeniedException)"},
		{"denied, no key", &kms.KMSError{Op: "Decrypt", Kind: kms.ErrAccessDenied, Code: "AccessDeniedException", Reason: kms.ReasonDenied},
			"kms Decrypt: access denied (AccessDeniedException)"},
		{"not found", &kms.KMSError{Op: "DescribeKey", Kind: kms.ErrKeyNotFound, Code: "NotFoundException", KeyID: "alias/x", Reason: kms.ReasonNotFound},
			"kms DescribeKey: CMK alias/x not found (NotFoundException)"},
		{"disabled", &kms.KMSError{Op: "GenerateDataKey", Kind: kms.ErrKeyDisabled, Code: "DisabledException", Reason: kms.ReasonDisabled},
			"kms GenerateDataKey: the CMK is disabled (DisabledException)"},
		{"TLS", &kms.KMSError{Op: "Encrypt", Kind: kms.ErrKMSUnavailable, Service: svc, Reason: kms.ReasonTLS, Cause: errors.New("certificate signed by unknown authority")},
			"kms Encrypt: " + svc + ": TLS: certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
