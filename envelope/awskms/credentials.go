package awskms

import (
	"context"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// credentialSource is the SDK's credential chain, for messages: it marks
// the chain's failures (credentialsError), so that they read "no
// credentials" rather than as the KMS's, and remembers which access key
// and source are in use, so that a denial names them.
type credentialSource struct {
	provider aws.CredentialsProvider

	mu             sync.Mutex
	keyID, fromWho string
}

// credentialsError is the credential chain's failure. Its text is the
// SDK's about the chain (no EC2 IMDS role found, an expired SSO token,
// ...), which never holds a KMS answer.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// Retrieve implements aws.CredentialsProvider.
func (c *credentialSource) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := c.provider.Retrieve(ctx)
	if err != nil {
		return creds, &credentialsError{err: err}
	}
	c.mu.Lock()
	c.keyID, c.fromWho = creds.AccessKeyID, sourceName(creds.Source)
	c.mu.Unlock()
	return creds, nil
}

// who names the credentials s3seal signs with: "access key AKIA... from
// the environment (AWS_ACCESS_KEY_ID)". An access key id is not a secret:
// it is in every request and in the KMS's audit log.
func (c *credentialSource) who() string {
	if c == nil {
		return "s3seal's AWS credentials"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keyID == "" {
		return "s3seal's AWS credentials"
	}
	return "access key " + c.keyID + " from " + c.fromWho
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
	case source == "":
		return "the AWS SDK's default chain"
	}
	return source
}
