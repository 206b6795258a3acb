package awskms

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/smithy-go"
)

// credentialSource is the SDK's credential chain, for messages: it turns
// the chain's failures into credentialsErrors, so that they name the
// source that failed rather than read as the KMS's, and remembers where
// the credentials in use came from, so that a denial names it.
type credentialSource struct {
	provider aws.CredentialsProvider
	profile  string // the shared config profile the chain read, if any
	// processProfile is the profile whose credential_process the chain
	// runs: profile's own, or that of its source_profile chain.
	processProfile string

	mu      sync.Mutex
	fromWho string
}

// newCredentialSource wraps the chain of cfg, noting its profile.
func newCredentialSource(cfg aws.Config) *credentialSource {
	c := &credentialSource{provider: cfg.Credentials}
	for _, src := range cfg.ConfigSources {
		switch sc := src.(type) {
		case config.SharedConfig:
			c.profile = sc.Profile
		case *config.SharedConfig:
			c.profile = sc.Profile
		}
	}
	if leaf := processConfig(cfg.ConfigSources); leaf != nil {
		c.processProfile = leaf.Profile
	}
	return c
}

// credentialsError is the credential chain's failure in s3seal's words
// only. The SDK's text is never kept: a credential_process whose output
// does not parse, for one, gets that whole output quoted in it, secret
// access key and session token included.
type credentialsError struct {
	// none: no source gave credentials (the chain ended at EC2 instance
	// metadata, which had no role), as opposed to a source that failed.
	none     bool
	what     string // "the credential_process of profile p failed ..."
	fix      string
	canceled error // the context's error, when that is what stopped it
}

func (e *credentialsError) Error() string {
	if errors.Is(e.canceled, context.DeadlineExceeded) {
		return e.what + " (no answer within the time allowed)"
	}
	return e.what
}
func (e *credentialsError) Unwrap() error { return e.canceled }

// Retrieve implements aws.CredentialsProvider.
func (c *credentialSource) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := c.provider.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, c.failure(err)
	}
	c.mu.Lock()
	c.fromWho = sourceName(creds.Source)
	c.mu.Unlock()
	return creds, nil
}

// failure classifies err by the type of what failed: the error's own
// (a source inside an assumed role's) first, then the chain's provider.
func (c *credentialSource) failure(err error) *credentialsError {
	e := c.sourceFailure(err)
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			e.canceled = ctxErr
		}
	}
	return e
}

// sourceFailure names the source that failed and what to check, in
// fixed words: the SDK's error is only looked at for its types.
func (c *credentialSource) sourceFailure(err error) *credentialsError {
	profile := "default"
	if c.profile != "" {
		profile = c.profile
	}
	var opErr *smithy.OperationError
	service := ""
	if errors.As(err, &opErr) {
		service = opErr.ServiceID
	}
	is := func(target aws.CredentialsProvider) bool { return aws.IsCredentialsProvider(c.provider, target) }
	switch {
	case errors.As(err, new(*processcreds.ProviderError)) || is((*processcreds.Provider)(nil)):
		return &credentialsError{what: c.processName(profile) + " failed or printed something the SDK could not parse",
			fix: "run it by hand to see its output (s3seal discards its stderr): it must exit 0 and print JSON with Version 1, AccessKeyId, SecretAccessKey and, if any, an RFC 3339 Expiration"}
	case errors.As(err, new(*ssocreds.InvalidTokenError)) || service == "SSO" || service == "SSO OIDC" || is((*ssocreds.Provider)(nil)):
		return &credentialsError{what: "AWS SSO credentials of profile " + profile + " failed",
			fix: "run aws sso login --profile " + profile + ", and check the profile's sso_session, sso_account_id and sso_role_name"}
	case service == "STS" || is((*stscreds.AssumeRoleProvider)(nil)) || is((*stscreds.WebIdentityRoleProvider)(nil)):
		return &credentialsError{what: "assuming the IAM role failed (STS)",
			fix: "check AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, or the role_arn, source_profile and web_identity_token_file of profile " + profile +
				", and that the role trusts the credentials that assume it"}
	case is((*endpointcreds.Provider)(nil)):
		return &credentialsError{what: "the container credentials endpoint failed",
			fix: "check AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI and the task role (ECS) or pod identity (EKS)"}
	case service == "ec2imds" || is((*ec2rolecreds.Provider)(nil)):
		return &credentialsError{none: true, what: "none in the environment or the shared config files, and no EC2 instance role", fix: noCredentialsFix}
	}
	return &credentialsError{what: "the AWS SDK's credential chain failed",
		fix: "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the profile in AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE"}
}

// processName names the credential_process that failed by the profile
// holding it, and the profile chosen when that is another.
func (c *credentialSource) processName(profile string) string {
	switch c.processProfile {
	case "":
		return "a credential_process in profile " + profile + "'s chain (" + profile + " or its source_profile)"
	case profile:
		return "the credential_process of profile " + profile
	}
	return "the credential_process of profile " + c.processProfile + " (the source_profile of profile " + profile + ")"
}

// who names the credentials s3seal signs with by their source only: "the
// access key from the environment (AWS_ACCESS_KEY_ID)". Not the key id:
// these fixes reach /readyz, which answers anyone.
func (c *credentialSource) who() string {
	if c == nil {
		return "s3seal's AWS credentials"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fromWho == "" {
		return "s3seal's AWS credentials"
	}
	return "the access key from " + c.fromWho
}

// sourceName says where the SDK found credentials, in the variables an
// operator sets.
func sourceName(source string) string {
	switch {
	case source == "EnvConfigCredentials":
		return "the environment (AWS_ACCESS_KEY_ID)"
	case strings.HasPrefix(source, "SharedConfigCredentials"):
		file := strings.TrimSpace(strings.TrimPrefix(source, "SharedConfigCredentials:"))
		return "the shared credentials file " + file + " (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE)"
	case source == "EC2RoleProvider":
		return "the EC2 instance role"
	case source == "AssumeRoleProvider", source == "WebIdentityCredentials":
		return "an assumed role (AWS_ROLE_ARN or the profile's role_arn)"
	case source == "SSOProvider":
		return "AWS SSO (the profile's sso_session)"
	case source == "CredentialsEndpointProvider":
		return "the container credentials endpoint (ECS task role, EKS pod identity)"
	case source == "ProcessProvider":
		return "the profile's credential_process"
	case source == "":
		return "the AWS SDK's default chain"
	}
	return source
}
