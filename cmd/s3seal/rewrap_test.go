package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRewrapFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, exitUsage, "--bucket is required"},
		{[]string{"--bucket", "b", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"--bucket", "b", "--concurrency", "0"}, exitUsage, "--concurrency must be 1..256"},
		{[]string{"--bucket", "b", "--kms-rate", "-1"}, exitUsage, "--kms-rate at least 0"},
		{[]string{"--help"}, exitOK, "Usage: s3seal rewrap"},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"rewrap"}, tc.args...), []string{"S3SEAL_DATA_DIR=" + t.TempDir()}, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("rewrap %v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
