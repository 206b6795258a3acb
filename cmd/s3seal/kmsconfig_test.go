package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAWSKMSConfigErrors: every command that uses AWS KMS builds it in one
// place (loadAWSKMS), so each says the same about a configuration that
// cannot work, naming s3seal's variable, and exits 1.
func TestAWSKMSConfigErrors(t *testing.T) {
	// The AWS SDK reads the process's environment, not the command's.
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"no region", nil, "S3SEAL_KMS_PROVIDER=aws: no AWS region for the KMS: set S3SEAL_KMS_REGION to the region of the CMK (such as eu-west-1); " +
			"when it is unset AWS_REGION or the AWS profile's region is used\n"},
		{"bad region", []string{"S3SEAL_KMS_REGION=eu west 1"},
			`S3SEAL_KMS_PROVIDER=aws: S3SEAL_KMS_REGION "eu west 1" is not a region name: set it to one such as eu-west-1` + "\n"},
	}
	commands := [][]string{{"serve"}, {"doctor"}, {"keys", "list"}, {"rewrap", "--bucket", "b"}}
	for _, tc := range cases {
		for _, args := range commands {
			t.Run(tc.name+"/"+args[0], func(t *testing.T) {
				dataDir := filepath.Join(t.TempDir(), "data")
				environ := append(zeroConfigEnv(dataDir), "S3SEAL_KMS_PROVIDER=aws", "S3SEAL_KMS_KEY_ID=alias/x")
				environ = append(environ, tc.env...)
				var stdout, stderr bytes.Buffer
				code := run(context.Background(), args, environ, &stdout, &stderr)
				want := "s3seal " + strings.Join(args[:1], " ") + ": " + tc.want
				if code != exitError || !strings.HasSuffix(stderr.String(), want) {
					t.Errorf("exit %d, stderr %q\nwant it to end in %q", code, stderr.String(), want)
				}
				// Refused before anything was written: no data dir, no credential.
				if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s made the data dir %s (stat: %v)", args[0], dataDir, err)
				}
			})
		}
	}
}
