package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// clearConfigEnv blanks every S3SEAL_ variable for the test (empty counts as
// unset), so the machine's environment cannot leak into a case.
func clearConfigEnv(t *testing.T) {
	t.Helper()
	for _, v := range Vars() {
		t.Setenv(v.Name, "")
	}
}

func TestConfigDefaults(t *testing.T) {
	clearConfigEnv(t)
	cfg, err := Load(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: "127.0.0.1:8080", Region: "us-east-1", UpstreamRegion: "us-east-1",
		KMSProvider: "keyring", KMSKeyID: "alias/s3seal",
		DataKeyCacheSize: 10000, DataKeyCacheTTL: 5 * time.Minute, BucketKey: "false",
		BucketKeyTTL: 10 * time.Minute, BucketKeyUses: 100000,
		MetricsAddr: "127.0.0.1:9464", DataDir: "./s3seal-data", LogLevel: "info",
		DrainTimeout: 30 * time.Second, SigV2: true, UpstreamTimeout: time.Minute, KMSTimeout: 10 * time.Second, MaxInflight: 1024,
		ClientTimeout: time.Minute,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigParsesEveryVariable(t *testing.T) {
	clearConfigEnv(t)
	for k, v := range map[string]string{
		"S3SEAL_ADDR": ":9000", "S3SEAL_ACCESS_KEY": "AK", "S3SEAL_SECRET_KEY": "SK",
		"S3SEAL_REGION": "eu-west-1", "S3SEAL_UPSTREAM_URL": "https://minio.internal:9000",
		"S3SEAL_UPSTREAM_ACCESS_KEY": "UAK", "S3SEAL_UPSTREAM_SECRET_KEY": "USK",
		"S3SEAL_UPSTREAM_REGION": "eu-central-1", "S3SEAL_KMS_PROVIDER": "AWS",
		"S3SEAL_KMS_KEY_ID": "alias/prod", "S3SEAL_KMS_ENDPOINT": "http://127.0.0.1:4599",
		"S3SEAL_KMS_DECRYPT_KEY_IDS": " alias/old ,, arn:aws:kms:eu-west-1:111122223333:key/k1,", "S3SEAL_KMS_REGION": "eu-west-1",
		"S3SEAL_DATAKEY_CACHE_SIZE": "5", "S3SEAL_DATAKEY_CACHE_TTL": "90s", "S3SEAL_METRICS_ADDR": "0.0.0.0:9464",
		"S3SEAL_DATA_DIR": "/var/lib/s3seal", "S3SEAL_TLS_CERT": "c.pem", "S3SEAL_TLS_KEY": "k.pem",
		"S3SEAL_ALLOW_PLAINTEXT_READS": "true", "S3SEAL_DOMAIN": "s3.example.com",
		"S3SEAL_LOG_LEVEL": "DEBUG", "S3SEAL_DRAIN_TIMEOUT": "2s", "S3SEAL_SIGV2": "false",
		"S3SEAL_BUCKET_KEY": "true", "S3SEAL_BUCKET_KEY_TTL": "1h", "S3SEAL_BUCKET_KEY_USES": "500",
		"S3SEAL_PPROF": "true", "S3SEAL_UPSTREAM_TIMEOUT": "2m", "S3SEAL_KMS_TIMEOUT": "3s", "S3SEAL_MAX_INFLIGHT": "64", "S3SEAL_CLIENT_TIMEOUT": "20s",
	} {
		t.Setenv(k, v)
	}
	cfg, err := Load(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: ":9000", AccessKey: "AK", SecretKey: "SK", Region: "eu-west-1",
		UpstreamURL: "https://minio.internal:9000", UpstreamAccessKey: "UAK", UpstreamSecretKey: "USK",
		UpstreamRegion: "eu-central-1", KMSProvider: "aws", KMSKeyID: "alias/prod",
		KMSEndpoint: "http://127.0.0.1:4599", KMSRegion: "eu-west-1",
		KMSDecryptKeyIDs: []string{"alias/old", "arn:aws:kms:eu-west-1:111122223333:key/k1"}, DataKeyCacheSize: 5,
		DataKeyCacheTTL: 90 * time.Second, BucketKey: "true", BucketKeyTTL: time.Hour, BucketKeyUses: 500,
		MetricsAddr: "0.0.0.0:9464", Pprof: true, UpstreamTimeout: 2 * time.Minute, KMSTimeout: 3 * time.Second, MaxInflight: 64, ClientTimeout: 20 * time.Second,
		DataDir: "/var/lib/s3seal", TLSCert: "c.pem", TLSKey: "k.pem", AllowPlaintextReads: true,
		Domain: "s3.example.com", LogLevel: "DEBUG", DrainTimeout: 2 * time.Second,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("parsed:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigValidation(t *testing.T) {
	upstream := map[string]string{"S3SEAL_UPSTREAM_URL": "http://127.0.0.1:9000",
		"S3SEAL_UPSTREAM_ACCESS_KEY": "a", "S3SEAL_UPSTREAM_SECRET_KEY": "b"}
	with := func(base map[string]string, k, v string) map[string]string {
		m := map[string]string{k: v}
		for bk, bv := range base {
			if bk != k {
				m[bk] = bv
			}
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // "" means valid
	}{
		{"zero config", nil, ""},
		{"upstream with credential", upstream, ""},
		{"aws with key", map[string]string{"S3SEAL_KMS_PROVIDER": "aws", "S3SEAL_KMS_KEY_ID": "alias/x"}, ""},
		{"tls pair", map[string]string{"S3SEAL_TLS_CERT": "c", "S3SEAL_TLS_KEY": "k"}, ""},
		{"bucket key", map[string]string{"S3SEAL_BUCKET_KEY": "true"}, ""},
		{"bucket key lifetime 0", map[string]string{"S3SEAL_BUCKET_KEY_TTL": "0s"}, "S3SEAL_BUCKET_KEY_TTL is 0s, want more than 0"},
		{"bucket key uses 0", map[string]string{"S3SEAL_BUCKET_KEY_USES": "0"}, "S3SEAL_BUCKET_KEY_USES is 0, want 1 or more"},
		{"aws without key", map[string]string{"S3SEAL_KMS_PROVIDER": "aws"}, "S3SEAL_KMS_PROVIDER=aws needs S3SEAL_KMS_KEY_ID"},
		{"unknown provider", map[string]string{"S3SEAL_KMS_PROVIDER": "vault"}, `S3SEAL_KMS_PROVIDER "vault": want keyring or aws`},
		{"kms endpoint with keyring", map[string]string{"S3SEAL_KMS_ENDPOINT": "http://127.0.0.1:1"}, "apply to S3SEAL_KMS_PROVIDER=aws only"},
		{"only tls cert", map[string]string{"S3SEAL_TLS_CERT": "c"}, "only one of S3SEAL_TLS_CERT and S3SEAL_TLS_KEY"},
		{"only tls key", map[string]string{"S3SEAL_TLS_KEY": "k"}, "only one of S3SEAL_TLS_CERT and S3SEAL_TLS_KEY"},
		{"upstream without credential", map[string]string{"S3SEAL_UPSTREAM_URL": "http://127.0.0.1:9000"}, "S3SEAL_UPSTREAM_ACCESS_KEY and S3SEAL_UPSTREAM_SECRET_KEY are required"},
		{"upstream without secret", with(upstream, "S3SEAL_UPSTREAM_SECRET_KEY", ""), "are required"},
		{"upstream credential without url", map[string]string{"S3SEAL_UPSTREAM_ACCESS_KEY": "a"}, "S3SEAL_UPSTREAM_URL is not"},
		{"upstream not a url", with(upstream, "S3SEAL_UPSTREAM_URL", "minio:9000"), "want an http or https URL"},
		{"upstream ftp", with(upstream, "S3SEAL_UPSTREAM_URL", "ftp://h"), "want an http or https URL"},
		{"upstream with userinfo", with(upstream, "S3SEAL_UPSTREAM_URL", "http://u:p@h"), "must not carry a credential"},
		{"upstream with query", with(upstream, "S3SEAL_UPSTREAM_URL", "http://h/?x=1"), "no query"},
		{"only access key", map[string]string{"S3SEAL_ACCESS_KEY": "a"}, "must be set together"},
		{"only secret key", map[string]string{"S3SEAL_SECRET_KEY": "s"}, "must be set together"},
		{"bad addr", map[string]string{"S3SEAL_ADDR": "8080"}, "S3SEAL_ADDR \"8080\": want host:port"},
		{"bad metrics addr", map[string]string{"S3SEAL_METRICS_ADDR": "localhost"}, "S3SEAL_METRICS_ADDR"},
		{"negative cache", map[string]string{"S3SEAL_DATAKEY_CACHE_SIZE": "-1"}, "S3SEAL_DATAKEY_CACHE_SIZE is -1"},
		{"cache size not a number", map[string]string{"S3SEAL_DATAKEY_CACHE_SIZE": "many"}, `S3SEAL_DATAKEY_CACHE_SIZE is "many": want a whole number such as 64`},
		{"ttl without a unit", map[string]string{"S3SEAL_DATAKEY_CACHE_TTL": "5"}, `S3SEAL_DATAKEY_CACHE_TTL is "5": want a duration with a unit, such as 5s or 5m`},
		{"ttl not a duration", map[string]string{"S3SEAL_DATAKEY_CACHE_TTL": "soon"}, `S3SEAL_DATAKEY_CACHE_TTL is "soon": want a duration such as 90s, 5m or 1h30m`},
		{"negative drain timeout", map[string]string{"S3SEAL_DRAIN_TIMEOUT": "-1s"}, "S3SEAL_DRAIN_TIMEOUT is -1s"},
		{"drain timeout not a duration", map[string]string{"S3SEAL_DRAIN_TIMEOUT": "30"}, "S3SEAL_DRAIN_TIMEOUT"},
		{"plaintext reads yes", map[string]string{"S3SEAL_ALLOW_PLAINTEXT_READS": "yes"}, `S3SEAL_ALLOW_PLAINTEXT_READS is "yes": want true or false`},
		{"pprof not a bool", map[string]string{"S3SEAL_PPROF": "on"}, `S3SEAL_PPROF is "on": want true or false`},
		{"pprof on", map[string]string{"S3SEAL_PPROF": "true"}, ""},
		{"zero upstream timeout", map[string]string{"S3SEAL_UPSTREAM_TIMEOUT": "0s"}, "S3SEAL_UPSTREAM_TIMEOUT is 0s, want more than 0"},
		{"kms timeout not a duration", map[string]string{"S3SEAL_KMS_TIMEOUT": "10"}, "S3SEAL_KMS_TIMEOUT"},
		{"zero client timeout", map[string]string{"S3SEAL_CLIENT_TIMEOUT": "0s"}, "S3SEAL_CLIENT_TIMEOUT is 0s, want more than 0"},
		{"metrics on the S3 port", map[string]string{"S3SEAL_METRICS_ADDR": "127.0.0.1:8080"},
			`S3SEAL_ADDR and S3SEAL_METRICS_ADDR are "127.0.0.1:8080" and "127.0.0.1:8080": both listen on port 8080; each listener needs a port of its own`},
		{"metrics on every interface, same port", map[string]string{"S3SEAL_METRICS_ADDR": ":8080"}, "both listen on port 8080"},
		{"S3 on the KMS API port", map[string]string{"S3SEAL_ADDR": "0.0.0.0:8081", "S3SEAL_KMS_API_ADDR": "127.0.0.1:8081"}, `S3SEAL_ADDR and S3SEAL_KMS_API_ADDR are "0.0.0.0:8081" and "127.0.0.1:8081"`},
		{"KMS API off frees its port", map[string]string{"S3SEAL_ADDR": "127.0.0.1:8081", "S3SEAL_KMS_API_ADDR": "off"}, ""},
		{"same port, other hosts", map[string]string{"S3SEAL_METRICS_ADDR": "127.0.0.2:8080"}, ""},
		{"localhost is loopback", map[string]string{"S3SEAL_ADDR": "localhost:9464"}, "both listen on port 9464"},
		{"one IPv6 address, two spellings", map[string]string{"S3SEAL_ADDR": "[::1]:8080", "S3SEAL_METRICS_ADDR": "[0:0:0:0:0:0:0:1]:8080"}, "both listen on port 8080"},
		{"aws provider serves no KMS API", map[string]string{"S3SEAL_KMS_PROVIDER": "aws", "S3SEAL_KMS_KEY_ID": "alias/x",
			"S3SEAL_ADDR": "0.0.0.0:8081", "S3SEAL_KMS_API_ADDR": "127.0.0.1:8081"}, ""},
		{"both any free port", map[string]string{"S3SEAL_ADDR": "127.0.0.1:0", "S3SEAL_METRICS_ADDR": "127.0.0.1:0"}, ""},
		{"negative max inflight", map[string]string{"S3SEAL_MAX_INFLIGHT": "-1"}, "S3SEAL_MAX_INFLIGHT is -1"},
		{"bucket keys allowed", map[string]string{"S3SEAL_BUCKET_KEY": "allowed"}, ""},
		{"bucket keys yes", map[string]string{"S3SEAL_BUCKET_KEY": "yes"}, `S3SEAL_BUCKET_KEY is "yes", want false, allowed or true`},
		{"log level", map[string]string{"S3SEAL_LOG_LEVEL": "trace"}, `S3SEAL_LOG_LEVEL "trace"`},
		{"domain with scheme", map[string]string{"S3SEAL_DOMAIN": "https://s3.example.com"}, "want a bare domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConfigEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := Load(os.Environ())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigReportsAllProblemsAtOnce(t *testing.T) {
	clearConfigEnv(t)
	t.Setenv("S3SEAL_KMS_PROVIDER", "aws")
	t.Setenv("S3SEAL_TLS_CERT", "c")
	_, err := Load(os.Environ())
	if err == nil || !strings.Contains(err.Error(), "S3SEAL_KMS_KEY_ID") || !strings.Contains(err.Error(), "S3SEAL_TLS_CERT") {
		t.Fatalf("want both problems reported, got %v", err)
	}
}

// Every Config field must be documented: the help and README tables are
// generated from the tags, so an undocumented field would be invisible.
func TestEveryConfigFieldIsDocumented(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	vars := Vars()
	if len(vars) != typ.NumField() {
		t.Fatalf("%d variables for %d fields", len(vars), typ.NumField())
	}
	for i, v := range vars {
		if !strings.HasPrefix(v.Name, "S3SEAL_") || v.Help == "" {
			t.Errorf("field %s: env %q, help %q: want an S3SEAL_ name and help text", typ.Field(i).Name, v.Name, v.Help)
		}
	}
}

// Only separators and spaces is no list at all.
func TestConfigDecryptKeyIDsBlank(t *testing.T) {
	for _, v := range []string{"", " ", ",", " , ,"} {
		clearConfigEnv(t)
		t.Setenv("S3SEAL_KMS_DECRYPT_KEY_IDS", v)
		cfg, err := Load(os.Environ())
		if err != nil || cfg.KMSDecryptKeyIDs != nil {
			t.Errorf("%q: %q, %v; want nil", v, cfg.KMSDecryptKeyIDs, err)
		}
	}
}
