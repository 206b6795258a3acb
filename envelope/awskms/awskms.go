// Package awskms is a kms.KeyService over the AWS KMS API: AWS itself, or
// any server that speaks it. Its errors keep only the kind and code of a
// service's failure, never its message, which may echo plaintext.
package awskms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/s3seal/s3seal/envelope"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	kmsapi "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
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
	api   API
	where endpoint
	creds *credentialSource // nil when New was given the API
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
	Region string // S3SEAL_KMS_REGION
	// Endpoint is an optional custom KMS-API endpoint URL
	// (S3SEAL_KMS_ENDPOINT), e.g. "http://127.0.0.1:4599" for a local test
	// server.
	Endpoint string
	// Logger gets the AWS SDK's log lines (a warning such as "falling back
	// to IMDSv1"); nil drops them. The SDK would otherwise print them to
	// stderr as plain text.
	Logger *slog.Logger
}

// endpoint is the KMS a Service asks, as messages name it.
type endpoint struct {
	url    string // resolved, credentials in it redacted
	region string
	// from is the setting the URL comes from (S3SEAL_KMS_ENDPOINT,
	// AWS_ENDPOINT_URL_KMS, ...); "" for AWS KMS in the region.
	from string
	// regionSet: the region is S3SEAL_KMS_REGION's, not the SDK chain's.
	regionSet bool
}

// custom says whether a setting chose the URL, rather than the region.
func (w endpoint) custom() bool { return w.from != "" }

// regionSetting names the region and where it came from.
func (w endpoint) regionSetting() string {
	if w.regionSet {
		return "S3SEAL_KMS_REGION=" + w.region
	}
	return "the region " + w.region + " (from AWS_REGION or the AWS profile; S3SEAL_KMS_REGION overrides it)"
}

// service is how errors name the KMS: "key service URL".
func (w endpoint) service() string {
	if w.url == "" {
		return ""
	}
	return "key service " + w.url
}

// name is the endpoint for a fix: its URL, or "the KMS" when unknown.
func (w endpoint) name() string {
	if w.url == "" {
		return "the KMS"
	}
	return w.url
}

// URL is the endpoint the Service sends its requests to: S3SEAL_KMS_ENDPOINT,
// or AWS KMS's in the region; "" when New was given the API.
func (a *Service) URL() string { return a.where.url }

// Load builds a KMS client from the SDK default chain: region,
// credentials, AWS_CA_BUNDLE and the rest. It deliberately leaves the HTTP
// client to the SDK: with AWS_CA_BUNDLE set the SDK must be able to rebuild
// its own client with that bundle, which it cannot do with a plain
// *http.Client. optFns come after cfg.Region, so they can override it.
// Its errors name the variable to set.
func Load(ctx context.Context, cfg Config, optFns ...func(*config.LoadOptions) error) (*Service, error) {
	if err := checkEndpoint(cfg.Endpoint); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	quiet := &quietProcess{}
	// Before optFns: a caller's own assume-role options replace it.
	opts := []func(*config.LoadOptions) error{config.WithLogger(SDKLogger(logger)), config.WithAssumeRoleCredentialOptions(quiet.assumeRole)}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	opts = append(opts, optFns...)
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration for the KMS (check AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE and AWS_CA_BUNDLE): %w", err)
	}
	if err := checkRegion(cfg, awsCfg.Region); err != nil {
		return nil, err
	}
	quiet.install(&awsCfg)
	creds := newCredentialSource(awsCfg)
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = creds
	}
	client := kmsapi.NewFromConfig(awsCfg, func(o *kmsapi.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = &cfg.Endpoint
		}
	})
	where, err := resolveEndpoint(ctx, client.Options(), cfg)
	if err != nil {
		return nil, err
	}
	return &Service{api: client, where: where, creds: creds}, nil
}

// checkEndpoint refuses an S3SEAL_KMS_ENDPOINT the SDK could not send to.
func checkEndpoint(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	// Not u.Redacted(): it keeps the user name, and shows an opaque
	// "u:pw@host" (scheme "u") whole.
	shown := redactUserinfo(raw)
	return fmt.Errorf("S3SEAL_KMS_ENDPOINT %q is not an http or https URL with a host: set it to the KMS-API endpoint, such as https://kms.eu-west-1.amazonaws.com or http://127.0.0.1:4599, or unset it for AWS KMS in S3SEAL_KMS_REGION", shown)
}

// redactUserinfo is raw with anything between the scheme and its last
// "@" hidden: a value that is no URL may still hold user:password@.
func redactUserinfo(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return raw[:start] + "xxxxx" + raw[at:]
}

// regionName is what an AWS region name can be: it becomes part of a host name.
var regionName = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)

// checkRegion fails here rather than on the first request: KMS keys are
// regional, and an empty region would only surface later as an endpoint
// error.
func checkRegion(cfg Config, region string) error {
	switch {
	case region == "":
		msg := "no AWS region for the KMS: set S3SEAL_KMS_REGION to the region of the CMK (such as eu-west-1); when it is unset AWS_REGION or the AWS profile's region is used"
		if cfg.Endpoint != "" {
			msg += " (a KMS at S3SEAL_KMS_ENDPOINT needs one too: requests are signed for it)"
		}
		return errors.New(msg)
	case !regionName.MatchString(region) && cfg.Region != "":
		return fmt.Errorf("S3SEAL_KMS_REGION %q is not a region name: set it to one such as eu-west-1", region)
	case !regionName.MatchString(region):
		return fmt.Errorf("the AWS region %q (from AWS_REGION or the AWS profile) is not a region name: set S3SEAL_KMS_REGION to one such as eu-west-1", region)
	}
	return nil
}

// resolveEndpoint is the URL the client sends to, as the SDK resolves it
// (S3SEAL_KMS_ENDPOINT, AWS_ENDPOINT_URL_KMS, or AWS KMS in the region).
func resolveEndpoint(ctx context.Context, o kmsapi.Options, cfg Config) (endpoint, error) {
	params := kmsapi.EndpointParameters{
		Region:       &o.Region,
		Endpoint:     o.BaseEndpoint,
		UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
	}
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, params)
	if err != nil {
		return endpoint{}, fmt.Errorf("no KMS endpoint for region %q (check S3SEAL_KMS_REGION, S3SEAL_KMS_ENDPOINT, AWS_ENDPOINT_URL_KMS): %w", o.Region, err)
	}
	return endpoint{url: ep.URI.Redacted(), region: o.Region, from: endpointSetting(o, cfg), regionSet: cfg.Region != ""}, nil
}

// endpointSetting names the setting the SDK took its base endpoint from,
// in the SDK's order; "" when there is none (AWS KMS in the region).
func endpointSetting(o kmsapi.Options, cfg Config) string {
	switch {
	case cfg.Endpoint != "":
		return "S3SEAL_KMS_ENDPOINT"
	case o.BaseEndpoint == nil || *o.BaseEndpoint == "":
		return ""
	case os.Getenv("AWS_ENDPOINT_URL_KMS") != "":
		return "AWS_ENDPOINT_URL_KMS"
	case os.Getenv("AWS_ENDPOINT_URL") != "":
		return "AWS_ENDPOINT_URL"
	}
	return "the AWS profile's endpoint_url"
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
		return kms.DataKey{}, a.mapError(ctx, op, err, keyID)
	}
	// A data key of any other size would fail later, far from its cause.
	if len(out.Plaintext) != envelope.DataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return kms.DataKey{}, &kms.KMSError{Op: op, Kind: kms.ErrKMSUnavailable, Service: a.where.service(),
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
		return kms.Wrapped{}, a.mapError(ctx, op, err, keyID)
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
		return kms.KeyStatus{}, a.mapError(ctx, op, err, keyID)
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
		return kms.KeyStatus{}, &kms.KMSError{Op: op, Kind: kms.ErrKMSUnavailable, Service: a.where.service(), Cause: errors.New("malformed response: no key id or ARN")}
	}
	return st, nil
}

func deref(s *string, def string) string {
	if s == nil || *s == "" {
		return def
	}
	return *s
}
