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

// The service links Kubernetes adds for Services named s3seal and s3seal-*
// are not reported, in exactly the shapes kubelet makes them; a misspelling
// that merely looks like one (S3SEAL_METRICS_PORT=9090) still is, and no
// known variable is taken for a link.
func TestServiceLinksIgnored(t *testing.T) {
	tests := []struct {
		kv       string
		reported bool
	}{
		{"S3SEAL_SERVICE_HOST=10.0.0.1", false},
		{"S3SEAL_SERVICE_PORT=8080", false},
		{"S3SEAL_SERVICE_PORT_S3=8080", false},
		{"S3SEAL_PORT=tcp://10.0.0.1:8080", false},
		{"S3SEAL_PORT_8080_TCP=tcp://10.0.0.1:8080", false},
		{"S3SEAL_PORT_8080_TCP_ADDR=10.0.0.1", false},
		{"S3SEAL_METRICS_SERVICE_HOST=10.0.0.2", false},
		{"S3SEAL_METRICS_SERVICE_PORT=9090", false},
		{"S3SEAL_METRICS_SERVICE_PORT_HTTP_METRICS=9090", false},
		{"S3SEAL_METRICS_PORT=tcp://10.0.0.2:9090", false},
		{"S3SEAL_METRICS_PORT=tcp://[fd00::2]:9090", false},
		{"S3SEAL_METRICS_PORT_9090_TCP=tcp://10.0.0.2:9090", false},
		{"S3SEAL_METRICS_PORT_9090_TCP_ADDR=10.0.0.2", false},
		{"S3SEAL_METRICS_PORT_9090_TCP_PORT=9090", false},
		{"S3SEAL_METRICS_PORT_9090_TCP_PROTO=tcp", false},
		{"S3SEAL_KMS_API_PORT_8081_UDP_PROTO=udp", false},
		{"S3SEAL_KMS_API_PORT_8081_SCTP=sctp://10.0.0.3:8081", false},
		// Misspellings that look like links, but are not in their shape.
		{"S3SEAL_METRICS_PORT=9090", true},
		{"S3SEAL_PORT=8080", true},
		{"S3SEAL_KMS_API_PORT=:8081", true},
		{"S3SEAL_METRICS_PORT_9090=x", true},
		{"S3SEAL_METRICS_PORT_9090_HTTP=x", true},
		{"S3SEAL_SERVICE_HOSTS=x", true},
		{"S3SEAL_METRICS_ADDRESS=:9090", true},
	}
	for _, tt := range tests {
		got := UnknownVars([]string{tt.kv})
		if reported := len(got) == 1; reported != tt.reported {
			t.Errorf("%s: reported %v, want %v", tt.kv, reported, tt.reported)
		}
	}
	for _, v := range Vars() {
		if ignored(v.Name, "tcp://10.0.0.1:80") {
			t.Errorf("known variable %s has a service link's shape", v.Name)
		}
	}
}
