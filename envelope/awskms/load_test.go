package awskms

import (
	"strings"
	"testing"
)

// TestLoadErrors: a configuration that cannot work fails at Load, naming
// s3seal's variable and the value in effect.
func TestLoadErrors(t *testing.T) {
	const noRegion = "no AWS region for the KMS: set S3SEAL_KMS_REGION to the region of the CMK (such as eu-west-1); " +
		"when it is unset AWS_REGION or the AWS profile's region is used"
	cases := []struct {
		name      string
		cfg       Config
		awsRegion string
		want      string
	}{
		{"no region", Config{}, "", noRegion},
		{"no region, custom endpoint", Config{Endpoint: "http://127.0.0.1:4599"}, "",
			noRegion + " (a KMS at S3SEAL_KMS_ENDPOINT needs one too: requests are signed for it)"},
		{"endpoint without scheme", Config{Region: "eu-west-1", Endpoint: "127.0.0.1:4599"}, "",
			`S3SEAL_KMS_ENDPOINT "127.0.0.1:4599" is not an http or https URL with a host: set it to the KMS-API endpoint, such as https://kms.eu-west-1.amazonaws.com or http://127.0.0.1:4599, or unset it for AWS KMS in S3SEAL_KMS_REGION`},
		{"endpoint with a password", Config{Region: "eu-west-1", Endpoint: "ftp://u:pw@kms.example"}, "",
			`S3SEAL_KMS_ENDPOINT "ftp://xxxxx@kms.example" is not an http or https URL with a host: set it to the KMS-API endpoint, such as https://kms.eu-west-1.amazonaws.com or http://127.0.0.1:4599, or unset it for AWS KMS in S3SEAL_KMS_REGION`},
		// url.Parse refuses the first and reads the second as scheme "u":
		// neither shows its userinfo.
		{"unparsable endpoint with a password", Config{Region: "eu-west-1", Endpoint: "http://u:p@[bad"}, "",
			`S3SEAL_KMS_ENDPOINT "http://xxxxx@[bad" is not an http or https URL with a host: set it to the KMS-API endpoint, such as https://kms.eu-west-1.amazonaws.com or http://127.0.0.1:4599, or unset it for AWS KMS in S3SEAL_KMS_REGION`},
		{"unparsable endpoint with a password, no scheme", Config{Region: "eu-west-1", Endpoint: "u:p@w@[bad"}, "",
			`S3SEAL_KMS_ENDPOINT "xxxxx@[bad" is not an http or https URL with a host: set it to the KMS-API endpoint, such as https://kms.eu-west-1.amazonaws.com or http://127.0.0.1:4599, or unset it for AWS KMS in S3SEAL_KMS_REGION`},
		{"bad S3SEAL_KMS_REGION", Config{Region: "eu west 1"}, "",
			`S3SEAL_KMS_REGION "eu west 1" is not a region name: set it to one such as eu-west-1`},
		{"bad AWS_REGION", Config{}, "eu/west",
			`the AWS region "eu/west" (from AWS_REGION or the AWS profile) is not a region name: set S3SEAL_KMS_REGION to one such as eu-west-1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			withoutCredentials(t, "http://127.0.0.1:1")
			t.Setenv("AWS_REGION", tc.awsRegion)
			t.Setenv("AWS_DEFAULT_REGION", "")
			_, err := Load(t.Context(), tc.cfg)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestLoadSharedConfigErrors: a profile or CA bundle the SDK cannot load
// fails at Load, naming the AWS variables to check.
func TestLoadSharedConfigErrors(t *testing.T) {
	const prefix = "loading the AWS configuration for the KMS (check AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE and AWS_CA_BUNDLE): "
	for _, tc := range []struct {
		name, key, value, want string
	}{
		{"unknown profile", "AWS_PROFILE", "nope", "failed to get shared config profile, nope"},
		{"missing CA bundle", "AWS_CA_BUNDLE", "/nonexistent/ca.pem", "open /nonexistent/ca.pem: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withoutCredentials(t, "http://127.0.0.1:1")
			t.Setenv(tc.key, tc.value)
			_, err := Load(t.Context(), Config{Region: "eu-west-1"})
			if err == nil || !strings.HasPrefix(err.Error(), prefix+tc.want) {
				t.Errorf("got  %v\nwant %s%s...", err, prefix, tc.want)
			}
		})
	}
}

// TestEndpointFromAWSVariables: an endpoint the SDK takes from
// AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL is a custom one, and the fixes
// name that variable, not the region.
func TestEndpointFromAWSVariables(t *testing.T) {
	for _, tc := range []struct{ name, env, s3sealEndpoint, want string }{
		{"AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_KMS", "", "AWS_ENDPOINT_URL_KMS"},
		{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL", "", "AWS_ENDPOINT_URL"},
		{"S3SEAL_KMS_ENDPOINT wins", "AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9", "S3SEAL_KMS_ENDPOINT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withoutCredentials(t, "http://127.0.0.1:1")
			t.Setenv("AWS_ENDPOINT_URL_KMS", "")
			t.Setenv("AWS_ENDPOINT_URL", "")
			t.Setenv(tc.env, "http://127.0.0.1:9")
			a, err := Load(t.Context(), Config{Region: "eu-west-1", Endpoint: tc.s3sealEndpoint}, testCreds)
			if err != nil {
				t.Fatal(err)
			}
			const url = "http://127.0.0.1:9"
			if got, want := a.refusedFix(), "nothing listens at "+tc.want+"="+url+": start the KMS, or correct "+tc.want; got != want {
				t.Errorf("refused: got  %q\nwant %q", got, want)
			}
			if got, want := a.dnsFix(), "correct the host name in "+tc.want+"="+url+", or this host's DNS"; got != want {
				t.Errorf("DNS: got  %q\nwant %q", got, want)
			}
		})
	}
}
