// Package kmsapi serves the AWS KMS API (the JSON protocol: POST / with
// X-Amz-Target: TrentService.<Operation>) over s3seal's embedded keyring,
// so that the AWS CLI, the AWS SDKs, and another s3seal's AWS KMS provider
// (envelope/awskms) can use the keyring's keys as they would use AWS KMS.
//
// Keys are named as in AWS: by key id, "alias/NAME", key ARN or alias ARN.
// ARNs carry Config.Region and Config.Account; an ARN of any other
// account or region names no key here. Ciphertext blobs are the keyring's
// own (docs/FORMAT.md §7): they name their key, so Decrypt needs no KeyId.
//
// Every request is authenticated (SigV4, service "kms") and then
// authorized, per action and key, by Config.Authorizer; requests are never
// anonymous. Responses and logs never carry plaintext, data keys or the
// request's blobs, even in error messages.
//
// What the keyring cannot do as AWS does is refused, not imitated: key
// policies, grants and tags, asymmetric and HMAC keys, multi-Region keys,
// custom key stores, expiring imported material, and presigned (query
// string) authentication. See the operations' files for each refusal.
package kmsapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/sigv4"
)

// DefaultRegion and DefaultAccount are what ARNs carry when Config leaves
// them empty. The account is a placeholder of AWS's form: the keyring
// belongs to no AWS account, and clients only compare it.
const (
	DefaultRegion  = "us-east-1"
	DefaultAccount = keyring.DefaultAccount
)

// Config configures the handler: one struct of documented hooks, where
// nil means the default if a safe one exists.
type Config struct {
	Keyring *keyring.Keyring // required
	// Auth verifies the request's SigV4 signature. Required; a
	// *sigv4.Verifier with Service "kms" implements it.
	Auth Authenticator
	// Authorizer decides what each signed-in access key may do. Required:
	// there is no default, so that access fails closed.
	Authorizer Authorizer
	// Region and Account are what ARNs carry, and all that an ARN in a
	// request may carry: the region a client signed for is not trusted for
	// that. "" means DefaultRegion and DefaultAccount.
	Region  string
	Account string
	// Changed is called after every successful change to the keyring (key
	// state, aliases, material, rotation, descriptions, import
	// parameters), so that a server caching data keys can drop those of
	// keys no longer usable. nil: nothing.
	Changed func()
	// Observer is told of every request: op is the operation's name
	// ("Unknown" for anything else), result "ok" or the error's __type.
	// nil: nothing.
	Observer func(op, result string, d time.Duration)
	Logger   *slog.Logger     // nil: slog.Default()
	Now      func() time.Time // times requests for the log and Observer; nil: time.Now
}

// Authenticator verifies a request's signature; *sigv4.Verifier is one.
// The handler hands it the request with its body already read and put
// back, and with X-Amz-Content-Sha256 set to the body's hash when the
// client did not send one, as AWS clients of KMS do not.
type Authenticator interface {
	Verify(r *http.Request) (*sigv4.Request, error)
}

// Authorizer decides what a signed-in principal may do. action is the AWS
// KMS permission name ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom",
// "kms:ReEncryptTo", "kms:GenerateDataKey",
// "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey",
// "kms:CreateKey", "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias",
// "kms:ListKeys", "kms:ListAliases", "kms:UpdateKeyDescription",
// "kms:EnableKey", "kms:DisableKey", "kms:ScheduleKeyDeletion",
// "kms:CancelKeyDeletion", "kms:EnableKeyRotation",
// "kms:DisableKeyRotation", "kms:GetKeyRotationStatus",
// "kms:RotateKeyOnDemand", "kms:GetParametersForImport",
// "kms:ImportKeyMaterial", "kms:GenerateRandom"); keyID is the canonical
// keyring key id the action is on, "" for actions on no key (CreateKey,
// ListKeys, ListAliases, GenerateRandom). It returns the principal's name
// (for logs) and a non-nil error to deny, which is answered as
// AccessDeniedException; the error's text is logged, not sent.
type Authorizer interface {
	Authorize(ctx context.Context, accessKey, action, keyID string) (principal string, err error)
}

// New returns the handler, or an error if cfg lacks a required hook or
// names an account or region no ARN could carry.
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.Keyring == nil:
		return nil, errors.New("kmsapi: Config.Keyring is required")
	case cfg.Auth == nil:
		return nil, errors.New("kmsapi: Config.Auth is required")
	case cfg.Authorizer == nil:
		return nil, errors.New("kmsapi: Config.Authorizer is required")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Account == "" {
		cfg.Account = DefaultAccount
	}
	arns := keyring.ARNs{Region: cfg.Region, Account: cfg.Account}
	if err := arns.Check(); err != nil {
		return nil, fmt.Errorf("kmsapi: %w", err)
	}
	// The ARNs this API answers with end up in objects' metadata (another
	// s3seal records them): the keyring must open them too.
	if used, ok := cfg.Keyring.ARNs(); ok && used != arns {
		return nil, fmt.Errorf("kmsapi: the keyring names keys by ARNs of %s/%s, not %s/%s", used.Region, used.Account, arns.Region, arns.Account)
	}
	return newHandler(cfg), nil
}
