package awskms

import (
	"context"
	"os/exec"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// quietProcess runs the profile's credential_process with its stderr
// discarded. The SDK's own provider hands it s3seal's stderr: raw text,
// perhaps secrets, in the middle of s3seal's JSON log. The SDK has no
// option for it, so s3seal builds the provider itself: in place of the
// chain when the chain is the process, or as the credentials of the STS
// client that assumes a role with it.
type quietProcess struct {
	// provider is set once Load has read the shared config, before any
	// request; nil when no credential_process is in the chain.
	provider aws.CredentialsProvider
}

// newQuietProvider is a cached provider running command without stderr.
func newQuietProvider(command string) aws.CredentialsProvider {
	build := processcreds.NewCommandBuilderFunc(func(ctx context.Context) (*exec.Cmd, error) {
		cmd, err := processcreds.DefaultNewCommandBuilder{Args: []string{command}}.NewCommand(ctx)
		if err != nil {
			return nil, err
		}
		cmd.Stderr = nil // the null device; failures say to run it by hand
		return cmd, nil
	})
	return aws.NewCredentialsCache(processcreds.NewProviderCommand(build))
}

// install sets q's provider from cfg's shared config, and puts it in place
// of cfg's chain when that chain is the SDK's credential_process.
func (q *quietProcess) install(cfg *aws.Config) {
	leaf := processConfig(cfg.ConfigSources)
	if leaf == nil {
		return
	}
	q.provider = newQuietProvider(leaf.CredentialProcess)
	if aws.IsCredentialsProvider(cfg.Credentials, (*processcreds.Provider)(nil)) {
		cfg.Credentials = q.provider
	}
}

// processConfig is the profile of the shared config whose
// credential_process the SDK runs: the last of the source_profile chain,
// where the SDK takes the credentials roles are assumed with; nil when
// it has none.
func processConfig(sources []any) *config.SharedConfig {
	for _, src := range sources {
		var sc *config.SharedConfig
		switch v := src.(type) {
		case config.SharedConfig:
			sc = &v
		case *config.SharedConfig:
			sc = v
		default:
			continue
		}
		for sc.Source != nil {
			sc = sc.Source
		}
		if sc.CredentialProcess != "" {
			return sc
		}
	}
	return nil
}

// assumeRole is an stscreds option: the STS client that assumes a role
// with the SDK's credential_process signs with q's provider instead.
func (q *quietProcess) assumeRole(o *stscreds.AssumeRoleOptions) {
	c, ok := o.Client.(*sts.Client)
	if !ok || !aws.IsCredentialsProvider(c.Options().Credentials, (*processcreds.Provider)(nil)) {
		return
	}
	o.Client = quietSTS{Client: c, q: q}
}

type quietSTS struct {
	*sts.Client
	q *quietProcess
}

func (s quietSTS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	if p := s.q.provider; p != nil {
		optFns = append(optFns, func(o *sts.Options) { o.Credentials = p })
	}
	return s.Client.AssumeRole(ctx, in, optFns...)
}
