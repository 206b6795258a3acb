package config

import (
	"strings"
	"testing"
)

func TestSuggest(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"S3SEAL_UPSTREAM", "S3SEAL_UPSTREAM_URL"},
		{"S3SEAL_LOGLEVEL", "S3SEAL_LOG_LEVEL"},
		{"S3SEAL_KMS_KEYID", "S3SEAL_KMS_KEY_ID"},
		{"S3SEAL_LOG_LEVLE", "S3SEAL_LOG_LEVEL"},
		{"S3SEAL_DATADIR", "S3SEAL_DATA_DIR"},
		{"s3seal_addr", "S3SEAL_ADDR"},
		{"S3SEAL_BANANA_SPLIT", ""},
		{"S3SEAL_X", ""},
	} {
		if got := Suggest(tc.name); got != tc.want {
			t.Errorf("Suggest(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestUnknownVars(t *testing.T) {
	environ := []string{
		"S3SEAL_UPSTREAM=http://minio:9000", "S3SEAL_LOG_LEVEL=debug", "PATH=/bin",
		"S3SEAL_TEST_KMS_ENDPOINT=x", "S3SEAL_SERVICE_HOST=10.0.0.1", "S3SEAL_PORT=tcp://10.0.0.1:8080",
		"S3SEAL_PORT_8080_TCP_ADDR=10.0.0.1", "S3SEAL_SERVICE_PORT_S3=8080", "S3SEAL_TOOLS=/t",
		"S3SEAL_BANANA=1", "S3SEAL_STRICT_CONFIG=false",
	}
	got := UnknownVars(environ)
	want := []Unknown{{"S3SEAL_UPSTREAM", "S3SEAL_UPSTREAM_URL"}, {"S3SEAL_BANANA", ""}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("UnknownVars = %v, want %v", got, want)
	}
}

func TestCheckUnknownStrict(t *testing.T) {
	environ := []string{"S3SEAL_KMS_KEYID=topsecretvalue", "S3SEAL_UPSTREAM_SECRETKEY=hunter2"}
	warn, err := CheckUnknown(environ, false)
	if err != nil || len(warn) != 2 {
		t.Fatalf("not strict: %v, %v", warn, err)
	}
	for _, w := range warn {
		if s := w.String(); strings.Contains(s, "topsecretvalue") || strings.Contains(s, "hunter2") {
			t.Errorf("warning prints a value: %s", s)
		}
	}
	_, err = CheckUnknown(environ, true)
	if err == nil {
		t.Fatal("strict: no error")
	}
	msg := err.Error()
	for _, s := range []string{"S3SEAL_KMS_KEYID", "did you mean S3SEAL_KMS_KEY_ID?", "S3SEAL_UPSTREAM_SECRET_KEY", "S3SEAL_STRICT_CONFIG"} {
		if !strings.Contains(msg, s) {
			t.Errorf("strict error %q lacks %q", msg, s)
		}
	}
	if strings.Contains(msg, "topsecretvalue") || strings.Contains(msg, "hunter2") {
		t.Errorf("strict error prints a value: %s", msg)
	}
}
