// Package awskms is a kms.KeyService over the AWS KMS API: AWS itself, or
// any server that speaks it. Its errors keep only the kind and code of a
// service's failure, never its message, which may echo plaintext.
package awskms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/s3seal/s3seal/envelope"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/aws/aws-sdk-go-v2/config"
	kmsapi "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// API is the part of *kmsapi.Client that Service uses, so tests can fake it.
type API interface {
	GenerateDataKey(ctx context.Context, in *kmsapi.GenerateDataKeyInput, optFns ...func(*kmsapi.Options)) (*kmsapi.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kmsapi.DecryptInput, optFns ...func(*kmsapi.Options)) (*kmsapi.DecryptOutput, error)
	ReEncrypt(ctx context.Context, in *kmsapi.ReEncryptInput, optFns ...func(*kmsapi.Options)) (*kmsapi.ReEncryptOutput, error)
	Encrypt(ctx context.Context, in *kmsapi.EncryptInput, optFns ...func(*kmsapi.Options)) (*kmsapi.EncryptOutput, error)
	DescribeKey(ctx context.Context, in *kmsapi.DescribeKeyInput, optFns ...func(*kmsapi.Options)) (*kmsapi.DescribeKeyOutput, error)
}

// Service is a KeyService over the AWS KMS API (AWS itself, or any service
// speaking its JSON protocol, such as local-kms).
type Service struct {
	api API
}

var (
	_ kms.KeyService      = (*Service)(nil)
	_ kms.KeyResolver     = (*Service)(nil)
	_ kms.KeyStatusReader = (*Service)(nil)
)

// New returns a KeyService calling api.
func New(api API) *Service {
	return &Service{api: api}
}

// Config selects the KMS to talk to. Zero values defer to the SDK's
// default chain (AWS_REGION, shared config, ...).
type Config struct {
	Region string
	// Endpoint is an optional custom KMS-API endpoint URL, e.g.
	// "http://127.0.0.1:4599" for a local test server.
	Endpoint string
}

// Load builds a KMS client from the SDK default chain: region,
// credentials, AWS_CA_BUNDLE and the rest. It deliberately leaves the HTTP
// client to the SDK: with AWS_CA_BUNDLE set the SDK must be able to rebuild
// its own client with that bundle, which it cannot do with a plain
// *http.Client. optFns come after cfg.Region, so they can override it.
func Load(ctx context.Context, cfg Config, optFns ...func(*config.LoadOptions) error) (*Service, error) {
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("kms endpoint: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("kms endpoint %q: want an http or https URL with a host", cfg.Endpoint)
		}
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	opts = append(opts, optFns...)
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	// Fail here rather than on the first request: KMS keys are regional, and
	// an empty region would only surface later as an endpoint error.
	if awsCfg.Region == "" {
		return nil, errors.New("load aws config: no region set (AWS_REGION or config)")
	}
	client := kmsapi.NewFromConfig(awsCfg, func(o *kmsapi.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = &cfg.Endpoint
		}
	})
	return New(client), nil
}

// GenerateDataKey asks KMS for an AES-256 data key under keyID.
func (a *Service) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (kms.DataKey, error) {
	const op = "GenerateDataKey"
	out, err := a.api.GenerateDataKey(ctx, &kmsapi.GenerateDataKeyInput{
		KeyId:             &keyID,
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encCtx,
	})
	if err != nil {
		return kms.DataKey{}, a.mapError(ctx, op, err)
	}
	// A data key of any other size would fail later, far from its cause.
	if len(out.Plaintext) != envelope.DataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return kms.DataKey{}, &kms.KMSError{Op: op, Kind: kms.ErrKMSUnavailable,
			Cause: fmt.Errorf("malformed response: %d-byte data key, %d-byte blob", len(out.Plaintext), len(out.CiphertextBlob))}
	}
	return kms.DataKey{
		Plaintext: out.Plaintext,
		Wrapped:   kms.Wrapped{Ciphertext: out.CiphertextBlob, KeyID: deref(out.KeyId, keyID)},
	}, nil
}

// Decrypt unwraps ciphertext. A non-empty keyID is sent along, so KMS refuses
// ciphertext made under another key.
func (a *Service) Decrypt(ctx context.Context, keyID string, ciphertext []byte, encCtx map[string]string) ([]byte, error) {
	const op = "Decrypt"
	in := &kmsapi.DecryptInput{CiphertextBlob: ciphertext, EncryptionContext: encCtx}
	if keyID != "" {
		in.KeyId = &keyID
	}
	out, err := a.api.Decrypt(ctx, in)
	if err != nil {
		return nil, a.mapError(ctx, op, err, keyID)
	}
	return out.Plaintext, nil
}

// ReEncrypt moves ciphertext to dstKeyID and dstCtx inside KMS.
func (a *Service) ReEncrypt(ctx context.Context, ciphertext []byte, srcKeyID string, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (kms.Wrapped, error) {
	const op = "ReEncrypt"
	in := &kmsapi.ReEncryptInput{
		CiphertextBlob:               ciphertext,
		SourceEncryptionContext:      srcCtx,
		DestinationKeyId:             &dstKeyID,
		DestinationEncryptionContext: dstCtx,
	}
	if srcKeyID != "" {
		in.SourceKeyId = &srcKeyID
	}
	out, err := a.api.ReEncrypt(ctx, in)
	if err != nil {
		return kms.Wrapped{}, a.mapError(ctx, op, err, srcKeyID, dstKeyID)
	}
	return kms.Wrapped{Ciphertext: out.CiphertextBlob, KeyID: deref(out.KeyId, dstKeyID)}, nil
}

// Encrypt wraps a small plaintext directly under keyID.
func (a *Service) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (kms.Wrapped, error) {
	const op = "Encrypt"
	// Checked here, not left to KMS: its ValidationException for an oversized
	// plaintext quotes the plaintext (local-kms does, verbatim).
	if err := kms.CheckEncryptInput(op, plaintext); err != nil {
		return kms.Wrapped{}, err
	}
	out, err := a.api.Encrypt(ctx, &kmsapi.EncryptInput{KeyId: &keyID, Plaintext: plaintext, EncryptionContext: encCtx})
	if err != nil {
		return kms.Wrapped{}, a.mapError(ctx, op, err)
	}
	return kms.Wrapped{Ciphertext: out.CiphertextBlob, KeyID: deref(out.KeyId, keyID)}, nil
}

// ResolveKey asks DescribeKey for the key id and ARN of the CMK keyID
// names. AWS KMS puts the ARN in Wrapped.KeyID; the id is kept too, since
// both name the key unambiguously.
func (a *Service) ResolveKey(ctx context.Context, keyID string) ([]string, error) {
	st, err := a.KeyStatus(ctx, keyID)
	return st.IDs, err
}

// KeyStatus asks DescribeKey for the canonical names and the state of the
// CMK keyID names.
func (a *Service) KeyStatus(ctx context.Context, keyID string) (kms.KeyStatus, error) {
	const op = "DescribeKey"
	out, err := a.api.DescribeKey(ctx, &kmsapi.DescribeKeyInput{KeyId: &keyID})
	if err != nil {
		return kms.KeyStatus{}, a.mapError(ctx, op, err)
	}
	var st kms.KeyStatus
	if out.KeyMetadata != nil {
		for _, id := range []*string{out.KeyMetadata.KeyId, out.KeyMetadata.Arn} {
			if s := deref(id, ""); s != "" {
				st.IDs = append(st.IDs, s)
			}
		}
		st.State = kms.KeyState(out.KeyMetadata.KeyState)
	}
	if len(st.IDs) == 0 {
		return kms.KeyStatus{}, &kms.KMSError{Op: op, Kind: kms.ErrKMSUnavailable, Cause: errors.New("malformed response: no key id or ARN")}
	}
	return st, nil
}

func deref(s *string, def string) string {
	if s == nil || *s == "" {
		return def
	}
	return *s
}

// kindOfCode maps a KMS error code to its kind; ok is false for codes it
// does not know, which the caller classifies by HTTP status.
func kindOfCode(code string) (kind error, ok bool) {
	switch code {
	case "NotFoundException":
		return kms.ErrKeyNotFound, true
	case "DisabledException",
		"KMSInvalidStateException": // pending deletion, pending import, ...
		return kms.ErrKeyDisabled, true
	case "AccessDeniedException",
		"NotAuthorizedException",      // local-kms's spelling
		"UnrecognizedClientException", // unknown access key
		"InvalidClientTokenId",
		"InvalidSignatureException",
		"IncompleteSignature",
		"MissingAuthenticationToken",
		"ExpiredTokenException":
		return kms.ErrAccessDenied, true
	case "InvalidCiphertextException",
		"IncorrectKeyException", // ciphertext of another key
		"InvalidKeyUsageException":
		return kms.ErrInvalidCiphertext, true
	// AWS documents KeyUnavailableException as temporary and retryable, so it
	// is an outage, not a key state an operator must fix.
	case "KeyUnavailableException",
		"ThrottlingException",
		"Throttling",
		"TooManyRequestsException",
		"RequestLimitExceeded",
		"LimitExceededException",
		"KMSInternalException",
		"InternalFailureException", // local-kms's 500
		"InternalFailure",
		"DependencyTimeoutException",
		"ServiceUnavailable",
		"ServiceUnavailableException",
		"RequestTimeout",
		"RequestTimeoutException":
		return kms.ErrKMSUnavailable, true
	case "ValidationException",
		"SerializationException",
		"MissingParameterException", // local-kms
		"InvalidGrantTokenException",
		"InvalidArnException",
		"UnsupportedOperationException",
		"DryRunOperationException":
		return kms.ErrInvalidKMSRequest, true
	}
	return nil, false
}

// mapError turns an SDK error into a *KMSError. It never keeps the service's
// message: KMS implementations quote request values in them, plaintext
// included. keyIDs are the keys the request named, consulted when an
// AccessDeniedException may really mean a disabled key.
func (a *Service) mapError(ctx context.Context, op string, err error, keyIDs ...string) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return transportError(op, err)
	}
	code := apiErr.ErrorCode()
	kind, ok := kindOfCode(code)
	if !ok {
		kind = kms.ErrInvalidKMSRequest
		var status interface{ HTTPStatusCode() int }
		if errors.As(err, &status) && status.HTTPStatusCode() >= 500 {
			kind = kms.ErrKMSUnavailable
		}
	}
	// local-kms answers AccessDeniedException where AWS answers
	// DisabledException or KMSInvalidStateException (Decrypt of a disabled or
	// pending-deletion key); ask for the key state so both report the same kind.
	if code == "AccessDeniedException" && (op == "Decrypt" || op == "ReEncrypt") && a.anyKeyUnusable(ctx, keyIDs) {
		kind = kms.ErrKeyDisabled
	}
	return &kms.KMSError{Op: op, Kind: kind, Code: code}
}

// anyKeyUnusable reports whether DescribeKey shows one of keyIDs disabled or
// pending deletion. Failures count as "no": the caller then keeps the
// AccessDenied it had.
func (a *Service) anyKeyUnusable(ctx context.Context, keyIDs []string) bool {
	for _, id := range keyIDs {
		if id == "" {
			continue
		}
		out, err := a.api.DescribeKey(ctx, &kmsapi.DescribeKeyInput{KeyId: &id})
		if err != nil || out.KeyMetadata == nil {
			continue
		}
		switch out.KeyMetadata.KeyState {
		case types.KeyStateDisabled, types.KeyStatePendingDeletion, types.KeyStatePendingReplicaDeletion:
			return true
		}
	}
	return false
}

// transportError classifies an error that carries no KMS error code: the
// request never got a KMS answer (connection refused, timeout, canceled
// context) or the SDK refused it. Only causes that cannot hold response text
// are kept.
func transportError(op string, err error) error {
	var invalidParams smithy.InvalidParamsError
	var invalidParamsPtr *smithy.InvalidParamsError
	if errors.As(err, &invalidParams) || errors.As(err, &invalidParamsPtr) {
		// The SDK's own validation, e.g. an empty key id: no request was sent.
		return &kms.KMSError{Op: op, Kind: kms.ErrInvalidKMSRequest}
	}
	e := &kms.KMSError{Op: op, Kind: kms.ErrKMSUnavailable}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.Canceled):
		e.Cause = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		e.Cause = context.DeadlineExceeded
	case errors.As(err, &opErr):
		e.Cause = opErr
	case errors.As(err, &dnsErr):
		e.Cause = dnsErr
	}
	return e
}
