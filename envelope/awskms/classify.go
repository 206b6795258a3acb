package awskms

// What went wrong with a KMS call, for the proxy (the kind) and for
// operators (the reason, the endpoint, the CMK and the fix): the log,
// /readyz and s3seal doctor all read these errors. They keep only error
// codes, Go's own network and TLS errors and s3seal's words, never a KMS
// message text: KMS implementations quote request values in them,
// plaintext included.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"

	kmsapi "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/envelope/kms"
)

// kindOfCode maps a KMS error code to its kind and reason; ok is false for
// codes it does not know, which the caller classifies by HTTP status.
func kindOfCode(code string) (kind error, reason kms.Reason, ok bool) {
	switch code {
	case "NotFoundException":
		return kms.ErrKeyNotFound, kms.ReasonNotFound, true
	case "DisabledException":
		return kms.ErrKeyDisabled, kms.ReasonDisabled, true
	case "KMSInvalidStateException": // pending deletion, pending import, ...
		return kms.ErrKeyDisabled, kms.ReasonPendingDeletion, true
	case "AccessDeniedException",
		"NotAuthorizedException",      // local-kms's spelling
		"UnrecognizedClientException", // unknown access key
		"InvalidClientTokenId",
		"InvalidSignatureException",
		"IncompleteSignature",
		"MissingAuthenticationToken",
		"ExpiredTokenException":
		return kms.ErrAccessDenied, kms.ReasonDenied, true
	case "InvalidCiphertextException",
		"IncorrectKeyException": // ciphertext of another key
		return kms.ErrInvalidCiphertext, "", true
	// The CMK is not a symmetric encryption key: a configuration error,
	// for Decrypt too. Not invalid ciphertext: clients would take a valid
	// upload for gone (NoSuchUpload) or an object for tampered.
	case "InvalidKeyUsageException":
		return kms.ErrInvalidKMSRequest, kms.ReasonKeyUsage, true
	case "ThrottlingException",
		"Throttling",
		"TooManyRequestsException",
		"RequestLimitExceeded":
		return kms.ErrKMSUnavailable, kms.ReasonThrottled, true
	// AWS KMS's resource quotas (keys, aliases, grants per key), not its
	// request rate (ThrottlingException): retrying does not help.
	case "LimitExceededException":
		return kms.ErrInvalidKMSRequest, kms.ReasonQuota, true
	// AWS documents KeyUnavailableException as temporary and retryable, so it
	// is an outage, not a key state an operator must fix.
	case "KeyUnavailableException",
		"KMSInternalException",
		"InternalFailureException", // local-kms's 500
		"InternalFailure",
		"DependencyTimeoutException",
		"ServiceUnavailable",
		"ServiceUnavailableException",
		"RequestTimeout",
		"RequestTimeoutException":
		return kms.ErrKMSUnavailable, "", true
	case "ValidationException",
		"SerializationException",
		"MissingParameterException", // local-kms
		"InvalidGrantTokenException",
		"InvalidArnException",
		"UnsupportedOperationException",
		"DryRunOperationException":
		return kms.ErrInvalidKMSRequest, "", true
	}
	return nil, "", false
}

// kindOfStatus classifies an error code kindOfCode does not know.
func kindOfStatus(err error) (kind error, reason kms.Reason) {
	var status interface{ HTTPStatusCode() int }
	switch {
	case !errors.As(err, &status):
		return kms.ErrInvalidKMSRequest, ""
	case status.HTTPStatusCode() == http.StatusTooManyRequests:
		return kms.ErrKMSUnavailable, kms.ReasonThrottled
	case status.HTTPStatusCode() >= 500:
		return kms.ErrKMSUnavailable, ""
	}
	return kms.ErrInvalidKMSRequest, ""
}

// mapError turns an SDK error into a *KMSError. It never keeps the service's
// message: KMS implementations quote request values in them, plaintext
// included. keyIDs are the keys the request named: the message names them,
// and an AccessDeniedException to Decrypt or ReEncrypt may really mean one
// is disabled.
func (a *Service) mapError(ctx context.Context, op string, err error, keyIDs ...string) error {
	var apiErr smithy.APIError
	// A credential provider's failure may hold another service's error
	// (STS's, say): it is about credentials, not the KMS.
	if !errors.As(err, &apiErr) || errors.As(err, new(*credentialsError)) {
		return a.transportError(op, err, keyIDs)
	}
	e := &kms.KMSError{Op: op, Code: apiErr.ErrorCode(), Service: a.where.service(), KeyID: keyNames(keyIDs)}
	kind, reason, ok := kindOfCode(e.Code)
	if !ok {
		kind, reason = kindOfStatus(err)
	}
	e.Kind, e.Reason = kind, reason
	// local-kms answers AccessDeniedException where AWS answers
	// DisabledException or KMSInvalidStateException (Decrypt of a disabled or
	// pending-deletion key); ask for the key state so both report the same kind.
	if e.Code == "AccessDeniedException" && (op == "Decrypt" || op == "ReEncrypt") {
		if id, state := a.unusableKey(ctx, keyIDs); id != "" {
			e.Kind, e.Reason, e.KeyID = kms.ErrKeyDisabled, kms.ReasonDisabled, id
			if state != types.KeyStateDisabled {
				e.Reason = kms.ReasonPendingDeletion
			}
		}
	}
	e.Fix = a.fixOfCode(op, e)
	return e
}

// keyNames names the distinct keys of keyIDs, for messages.
func keyNames(keyIDs []string) string {
	var names []string
	for _, id := range keyIDs {
		if id != "" && !slices.Contains(names, id) {
			names = append(names, id)
		}
	}
	return strings.Join(names, " or ")
}

// fixOfCode says how to fix an error the KMS answered, where s3seal knows
// better than the caller. Key states are left to the caller (the doctor),
// which knows the key service's own tools.
func (a *Service) fixOfCode(op string, e *kms.KMSError) string {
	who := a.creds.who()
	switch e.Reason {
	case kms.ReasonThrottled:
		return "the KMS limits s3seal's request rate: raise the KMS request quota, or make fewer calls with bucket keys (S3SEAL_BUCKET_KEY) and the data-key cache (S3SEAL_DATAKEY_CACHE_SIZE)"
	case kms.ReasonQuota:
		return "the account has reached an AWS KMS resource quota (keys, aliases, grants per key): remove ones no longer used, or ask for a higher quota in Service Quotas"
	case kms.ReasonKeyUsage:
		return keyUsageFix(op)
	}
	switch e.Code {
	case "UnrecognizedClientException", "InvalidClientTokenId":
		return "the KMS does not know " + who + ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to credentials of the account of the KMS at " + a.where.name()
	case "InvalidSignatureException", "IncompleteSignature":
		return "the KMS rejects the signature of " + who + ": check AWS_SECRET_ACCESS_KEY (it must be AWS_ACCESS_KEY_ID's) and this host's clock"
	case "ExpiredTokenException":
		return "the session token of " + who + " has expired: renew the credentials (AWS_SESSION_TOKEN, aws sso login, the instance role)"
	case "MissingAuthenticationToken":
		return "the request was not signed: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
	case "AccessDeniedException", "NotAuthorizedException":
		if e.Kind != kms.ErrAccessDenied {
			return ""
		}
		return fmt.Sprintf("grant %s %s on %s in the key policy or an IAM policy (s3seal always sends an encryption context), or give s3seal other credentials",
			who, kms.Permission(op), cmkOrKeys(e.KeyID))
	}
	return ""
}

// keyUsageFix is the fix for a CMK that is not a symmetric encryption
// key: a Decrypt names the object's CMK, the other operations s3seal's.
func keyUsageFix(op string) string {
	if op == "Decrypt" {
		return "no data key s3seal wrote can be under it: the object's metadata names the wrong CMK, " +
			"or S3SEAL_KMS_DECRYPT_KEY_IDS lists a key that is not a symmetric encryption key (KeySpec SYMMETRIC_DEFAULT)"
	}
	return "S3SEAL_KMS_KEY_ID must name a symmetric encryption key (KeySpec SYMMETRIC_DEFAULT)"
}

func cmkOrKeys(keyID string) string {
	if keyID == "" {
		return "the CMK"
	}
	return keyID
}

// unusableKey is the first of keyIDs DescribeKey shows disabled or pending
// deletion, and its state; "" when none is. Failures count as "no": the
// caller then keeps the AccessDenied it had.
func (a *Service) unusableKey(ctx context.Context, keyIDs []string) (string, types.KeyState) {
	for _, id := range keyIDs {
		if id == "" {
			continue
		}
		out, err := a.api.DescribeKey(ctx, &kmsapi.DescribeKeyInput{KeyId: &id})
		if err != nil || out.KeyMetadata == nil {
			continue
		}
		switch st := out.KeyMetadata.KeyState; st {
		case types.KeyStateDisabled, types.KeyStatePendingDeletion, types.KeyStatePendingReplicaDeletion:
			return id, st
		}
	}
	return "", ""
}

// errNoAnswer is a call cut by its context's deadline.
var errNoAnswer = fmt.Errorf("no answer in the time allowed (%w)", context.DeadlineExceeded)

// transportError classifies an error that carries no KMS error code: the
// request never got a KMS answer (connection refused, timeout, TLS,
// canceled context, no credentials) or the SDK refused it. Only causes
// that cannot hold response text are kept.
func (a *Service) transportError(op string, err error, keyIDs []string) error {
	var invalidParams smithy.InvalidParamsError
	var invalidParamsPtr *smithy.InvalidParamsError
	if errors.As(err, &invalidParams) || errors.As(err, &invalidParamsPtr) {
		// The SDK's own validation, e.g. an empty key id: no request was sent.
		return &kms.KMSError{Op: op, Kind: kms.ErrInvalidKMSRequest, Service: a.where.service(), KeyID: keyNames(keyIDs)}
	}
	e := &kms.KMSError{Op: op, Kind: kms.ErrKMSUnavailable, Service: a.where.service()}
	var credErr *credentialsError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		e.Cause = context.Canceled
	// Before the deadline: a credential source that hangs (a
	// credential_process waiting for MFA, STS out of reach) stopped the
	// call before any request reached the KMS.
	case errors.As(err, &credErr):
		// credErr holds s3seal's words only, never the SDK's.
		e.Reason, e.Cause, e.Fix = kms.ReasonCredentialSource, credErr, credErr.fix
		if credErr.none {
			e.Reason = kms.ReasonNoCredentials
		}
	case errors.Is(err, context.DeadlineExceeded):
		e.Reason, e.Cause, e.Fix = kms.ReasonTimeout, errNoAnswer, a.reachFix()
	case a.tlsFailure(err, e):
	case errors.As(err, &dnsErr):
		e.Reason, e.Cause, e.Fix = kms.ReasonDNS, dnsErr, a.dnsFix()
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Reason, e.Fix = kms.ReasonRefused, a.refusedFix()
	case errors.As(err, &netErr) && netErr.Timeout():
		e.Reason, e.Fix = kms.ReasonTimeout, a.reachFix()
		if errors.As(err, &opErr) {
			e.Cause = opErr
		}
	case errors.As(err, &opErr):
		e.Cause = opErr
	}
	return e
}

const noCredentialsFix = "the AWS SDK found no credentials for the KMS: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
	"or AWS_PROFILE (a profile in ~/.aws/config), or run with an instance role (EC2 instance profile, ECS task role, EKS pod identity)"

// httpToHTTPS is net/http's error for a plain HTTP answer to a TLS hello
// (it does not wrap tls.RecordHeaderError).
const httpToHTTPS = "http: server gave HTTP response to HTTPS client"

// tlsFailure fills e when err is a TLS failure, and says whether it was.
func (a *Service) tlsFailure(err error, e *kms.KMSError) bool {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	var alert tls.AlertError
	var urlErr *url.Error
	var detail, fix string
	setting := "S3SEAL_KMS_ENDPOINT"
	if a.where.custom() {
		setting = a.where.from
	}
	switch {
	case errors.As(err, &unknownCA):
		detail = "certificate signed by unknown authority"
		fix = "set AWS_CA_BUNDLE to the PEM file of the CA that signed the certificate of " + a.where.name()
	case errors.As(err, &hostname):
		detail = strings.TrimPrefix(hostname.Error(), "x509: ")
		fix = setting + " must name a host the KMS's certificate is valid for"
	case errors.As(err, &invalid):
		detail = strings.TrimPrefix(invalid.Error(), "x509: ")
		fix = "renew the KMS's certificate, or check this host's clock"
	case errors.As(err, &verify):
		detail = "certificate not trusted: " + strings.TrimPrefix(verify.Err.Error(), "x509: ")
		fix = "set AWS_CA_BUNDLE to the PEM file of the CA that signed the certificate of " + a.where.name()
	case errors.As(err, &header) || errors.As(err, &urlErr) && urlErr.Err.Error() == httpToHTTPS:
		detail = "handshake failed: the endpoint does not speak TLS"
		fix = "use an http:// URL in " + setting + " if the KMS serves plain HTTP"
	case errors.As(err, &alert):
		detail = "handshake failed: " + strings.TrimPrefix(alert.Error(), "tls: ")
		fix = "check that the KMS accepts TLS 1.2 or later and needs no client certificate"
	default:
		return false
	}
	e.Reason, e.Cause, e.Fix = kms.ReasonTLS, errors.New(detail), fix
	return true
}

// reachFix, refusedFix and dnsFix name the setting the endpoint comes from.
func (a *Service) reachFix() string {
	return "check that this host reaches " + a.where.name() + " (firewall, HTTPS_PROXY)" + a.whereFrom()
}

func (a *Service) refusedFix() string {
	if a.where.custom() {
		return "nothing listens at " + a.where.from + "=" + a.where.url + ": start the KMS, or correct " + a.where.from
	}
	return a.reachFix()
}

func (a *Service) dnsFix() string {
	switch {
	case a.where.url == "":
		return "check the KMS's host name, and this host's DNS"
	case a.where.custom():
		return "correct the host name in " + a.where.from + "=" + a.where.url + ", or this host's DNS"
	}
	return "check that " + a.where.regionSetting() + " is an AWS region, and this host's DNS"
}

// whereFrom names the setting that chose the endpoint.
func (a *Service) whereFrom() string {
	switch {
	case a.where.url == "":
		return ""
	case a.where.custom():
		return "; it is " + a.where.from
	}
	return "; it is AWS KMS in " + a.where.regionSetting()
}
