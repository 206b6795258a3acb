// Package config is s3seal's configuration: the S3SEAL_* environment
// variables, their defaults and help text, parsed and validated in one
// place. It is a package of its own, not part of cmd/s3seal, so that the
// repository checks (internal/repocheck) judge the deploy files' settings
// with the parser s3seal runs.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is everything s3seal reads from its environment. Each field's help
// tag is its line in `s3seal --help` and in the README table: both are
// generated from these tags (see Vars), so they cannot drift from
// what is parsed. An empty variable counts as unset and takes the default.
type Config struct {
	Addr      string `env:"S3SEAL_ADDR" envDefault:"127.0.0.1:8080" help:"listen address for S3 clients"`
	AccessKey string `env:"S3SEAL_ACCESS_KEY" help:"access key clients sign with; unset: generated on first start and kept in DATA_DIR/credentials.json (0600)"`
	SecretKey string `env:"S3SEAL_SECRET_KEY" help:"secret key clients sign with; set together with S3SEAL_ACCESS_KEY"`
	Region    string `env:"S3SEAL_REGION" envDefault:"us-east-1" help:"region clients sign for"`
	// Older clients, and the boto3 of Debian 12 for its presigned URLs,
	// sign with SigV2, which covers less than SigV4 (sigv4/v2.go).
	SigV2 bool `env:"S3SEAL_SIGV2" envDefault:"true" help:"also accept AWS Signature Version 2 (Authorization: AWS KEY:SIGNATURE, presigned URLs with AWSAccessKeyId, Signature and Expires), which signs neither the body nor the host; false refuses SigV2 and only SigV4 is accepted"`

	UpstreamURL       string        `env:"S3SEAL_UPSTREAM_URL" help:"upstream S3 endpoint (http or https URL); unset: an embedded local store in DATA_DIR/store"`
	UpstreamAccessKey string        `env:"S3SEAL_UPSTREAM_ACCESS_KEY" help:"access key s3seal signs upstream requests with (required with S3SEAL_UPSTREAM_URL)"`
	UpstreamSecretKey string        `env:"S3SEAL_UPSTREAM_SECRET_KEY" help:"secret key for S3SEAL_UPSTREAM_ACCESS_KEY"`
	UpstreamRegion    string        `env:"S3SEAL_UPSTREAM_REGION" envDefault:"us-east-1" help:"region of the upstream store"`
	UpstreamTimeout   time.Duration `env:"S3SEAL_UPSTREAM_TIMEOUT" envDefault:"1m" help:"the longest the store may make no progress while s3seal waits on it (for its answer, to take upload bytes, to send download bytes) before s3seal gives up (503 to the client; a download resumes where it broke, up to 3 times, then is cut); transfers that keep moving are never cut; CompleteMultipartUpload and copies get 15m for their answer"`

	KMSProvider string `env:"S3SEAL_KMS_PROVIDER" envDefault:"keyring" help:"key service: keyring (embedded, in DATA_DIR/keyring.json) or aws (the AWS KMS API)"`
	KMSKeyID    string `env:"S3SEAL_KMS_KEY_ID" help:"CMK for new objects: key id, ARN or alias/NAME; required for aws; keyring default alias/s3seal, created on first start"`
	// Objects name their CMK in metadata the store controls, so s3seal
	// decrypts only under the CMKs listed here and in KMSKeyID.
	KMSDecryptKeyIDs []string      `env:"S3SEAL_KMS_DECRYPT_KEY_IDS" envSeparator:"," help:"further CMKs (ids, ARNs or aliases, comma-separated) whose objects s3seal may decrypt, besides S3SEAL_KMS_KEY_ID; objects under any other CMK are refused"`
	KMSEndpoint      string        `env:"S3SEAL_KMS_ENDPOINT" help:"KMS-API endpoint URL, http or https (aws provider), for a KMS other than AWS's (local-kms, another s3seal's KMS API); unset: AWS KMS in S3SEAL_KMS_REGION (https://kms.REGION.amazonaws.com); credentials from the AWS SDK default chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role; AWS_CA_BUNDLE for a private CA"`
	KMSRegion        string        `env:"S3SEAL_KMS_REGION" help:"region of the CMKs (aws provider): picks AWS KMS's endpoint and is signed into every request, with S3SEAL_KMS_ENDPOINT too; unset: AWS_REGION or the AWS profile's region; none at all stops the start"`
	KMSTimeout       time.Duration `env:"S3SEAL_KMS_TIMEOUT" envDefault:"10s" help:"the longest one key-service call may take, its retries included, before the request fails with 503 ServiceUnavailable"`
	// Unlike every other variable, set but empty is not the default here:
	// it turns the KMS API off (Parse).
	KMSAPIAddr string `env:"S3SEAL_KMS_API_ADDR" envDefault:"127.0.0.1:8081" help:"listen address of the KMS API: the AWS KMS JSON protocol over the embedded keyring, for the principals of s3seal users (keyring provider only); set empty or off to disable"`

	DataKeyCacheSize int           `env:"S3SEAL_DATAKEY_CACHE_SIZE" envDefault:"10000" help:"unwrapped data keys kept in memory to save KMS Decrypt calls; 0 disables the cache"`
	DataKeyCacheTTL  time.Duration `env:"S3SEAL_DATAKEY_CACHE_TTL" envDefault:"5m" help:"how long a cached data key lives; a disabled CMK keeps decrypting cached keys this long"`
	BucketKey        string        `env:"S3SEAL_BUCKET_KEY" envDefault:"false" help:"bucket keys (one KMS call per bucket key, not per object; the KMS audit log then names buckets, not objects): false, never; allowed, for the buckets (PutBucketEncryption BucketKeyEnabled) and PUTs (x-amz-server-side-encryption-bucket-key-enabled) that ask; true, also for every other new PutObject and POST object"`
	BucketKeyTTL     time.Duration `env:"S3SEAL_BUCKET_KEY_TTL" envDefault:"10m" help:"how long one bucket key serves new objects before another is made; a CMK disabled in AWS KMS (not through the keyring) wraps new objects this long"`
	BucketKeyUses    int           `env:"S3SEAL_BUCKET_KEY_USES" envDefault:"100000" help:"how many new objects one bucket key serves before another is made"`

	MetricsAddr string `env:"S3SEAL_METRICS_ADDR" envDefault:"127.0.0.1:9464" help:"separate listener for /metrics (Prometheus), /healthz (process up) and /readyz (upstream and KMS reachable), and /debug/pprof/ with S3SEAL_PPROF"`
	// Registered on the metrics listener's own mux (internal/doctor), never
	// on the S3 or KMS API listener nor on http.DefaultServeMux.
	Pprof   bool   `env:"S3SEAL_PPROF" envDefault:"false" help:"serve Go's net/http/pprof profiles under /debug/pprof/ on S3SEAL_METRICS_ADDR (never on the S3 or KMS API listener); off by default because profiles expose the process's internals, timing included, and the metrics listener must not be reachable publicly"`
	DataDir string `env:"S3SEAL_DATA_DIR" envDefault:"./s3seal-data" help:"keyring, generated credential and embedded store (created 0700)"`

	TLSCert string `env:"S3SEAL_TLS_CERT" help:"PEM certificate file; serve HTTPS when set together with S3SEAL_TLS_KEY"`
	TLSKey  string `env:"S3SEAL_TLS_KEY" help:"PEM private key file for S3SEAL_TLS_CERT"`

	AllowPlaintextReads bool   `env:"S3SEAL_ALLOW_PLAINTEXT_READS" envDefault:"false" help:"serve objects stored without s3seal encryption as they are instead of refusing them"`
	Domain              string `env:"S3SEAL_DOMAIN" help:"base domain that enables virtual-hosted-style requests (BUCKET.DOMAIN)"`
	// Requests still running after it are cut, so a stuck transfer cannot
	// block a deploy forever.
	MaxInflight   int           `env:"S3SEAL_MAX_INFLIGHT" envDefault:"1024" help:"how many authenticated S3 requests are served at once; one more gets 503 SlowDown at once (with Retry-After) instead of waiting, which bounds memory and connections to the store under overload; 0: no limit"`
	ClientTimeout time.Duration `env:"S3SEAL_CLIENT_TIMEOUT" envDefault:"1m" help:"the longest a client may make no progress sending a request body before s3seal gives up on it (400 RequestTimeout; nothing is written), or reading an answer (the connection is cut); transfers that keep moving are never cut; also bounds, in all, the request line and headers (at most 30s) and a POST form upload's fields, which are read before the client is authenticated"`
	DrainTimeout  time.Duration `env:"S3SEAL_DRAIN_TIMEOUT" envDefault:"30s" help:"on SIGTERM or SIGINT, how long in-flight requests may run before they are cut and s3seal exits"`
	LogLevel      string        `env:"S3SEAL_LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error; JSON logs to stderr"`
	// A misspelled variable is otherwise ignored without a word (unknown.go).
	StrictConfig bool `env:"S3SEAL_STRICT_CONFIG" envDefault:"false" help:"an S3SEAL_ variable s3seal does not know (a misspelling) is an error and s3seal exits 1; false: a warning naming the closest known variable"`
}

// The key services S3SEAL_KMS_PROVIDER selects.
const (
	ProviderKeyring = "keyring"
	ProviderAWS     = "aws"
)

// DefaultKeyAlias names the keyring CMK created on first start.
const DefaultKeyAlias = "alias/s3seal"

// Load parses environ (as os.Environ returns it) and validates the
// result, so every command sees the same, checked configuration.
func Load(environ []string) (Config, error) {
	cfg, err := Parse(environ)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// Parse parses environ and fills in defaults that depend on other
// variables, without validating.
func Parse(environ []string) (Config, error) {
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: env.ToMap(environ)}); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", nameParseErrors(err, env.ToMap(environ)))
	}
	cfg.KMSProvider = strings.ToLower(cfg.KMSProvider)
	if v, set := env.ToMap(environ)["S3SEAL_KMS_API_ADDR"]; set && strings.TrimSpace(v) == "" || strings.EqualFold(v, "off") {
		cfg.KMSAPIAddr = ""
	}
	cfg.KMSDecryptKeyIDs = trimList(cfg.KMSDecryptKeyIDs)
	if cfg.KMSProvider == ProviderKeyring && cfg.KMSKeyID == "" {
		cfg.KMSKeyID = DefaultKeyAlias
	}
	return cfg, nil
}

// trimList trims each item and drops empty ones ("a, b," is a and b), and
// returns nil for none, as for an unset variable.
func trimList(items []string) []string {
	var out []string
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// nameParseErrors rewrites env's parse errors, which name the Go field
// ("DataKeyCacheSize") and end in strconv's wording, to name the variable a
// person set, its value and what it takes instead.
func nameParseErrors(err error, vars map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	t := reflect.TypeFor[Config]()
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			errs = append(errs, e)
			continue
		}
		f, ok := t.FieldByName(pe.Name)
		if !ok {
			errs = append(errs, e)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		errs = append(errs, fmt.Errorf("%s is %q: want %s", name, vars[name], typeWord(pe.Type, vars[name])))
	}
	return errors.Join(errs...)
}

// typeWord says what a variable of type t takes, with a hint for the
// common slip of a duration without a unit.
func typeWord(t reflect.Type, value string) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		if _, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			return fmt.Sprintf("a duration with a unit, such as %ss or 5m", strings.TrimSpace(value))
		}
		return "a duration such as 90s, 5m or 1h30m"
	case reflect.TypeFor[bool]():
		return "true or false"
	case reflect.TypeFor[int]():
		return "a whole number such as 64"
	}
	return "a value of type " + t.String()
}

// validate reports every problem at once, so a misconfigured deployment is
// fixed in one round rather than one variable per restart.
func (c Config) validate() error {
	var errs []error
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check((c.AccessKey == "") != (c.SecretKey == ""),
		"S3SEAL_ACCESS_KEY and S3SEAL_SECRET_KEY must be set together (or neither, to use a generated credential)")
	errs = append(errs, checkHostPort("S3SEAL_ADDR", c.Addr), checkHostPort("S3SEAL_METRICS_ADDR", c.MetricsAddr))
	if c.KMSAPIAddr != "" {
		errs = append(errs, checkHostPort("S3SEAL_KMS_API_ADDR", c.KMSAPIAddr))
	}
	errs = append(errs, c.checkDistinctAddrs())
	errs = append(errs, c.validateUpstream(), c.validateKMS())
	check(c.DataKeyCacheSize < 0, "S3SEAL_DATAKEY_CACHE_SIZE is %d, want 0 or more", c.DataKeyCacheSize)
	check(c.DataKeyCacheTTL < 0, "S3SEAL_DATAKEY_CACHE_TTL is %s, want 0 or more", c.DataKeyCacheTTL)
	check(c.BucketKey != "false" && c.BucketKey != "allowed" && c.BucketKey != "true",
		"S3SEAL_BUCKET_KEY is %q, want false, allowed or true", c.BucketKey)
	check(c.BucketKeyTTL <= 0, "S3SEAL_BUCKET_KEY_TTL is %s, want more than 0", c.BucketKeyTTL)
	check(c.BucketKeyUses < 1, "S3SEAL_BUCKET_KEY_USES is %d, want 1 or more", c.BucketKeyUses)
	check(c.UpstreamTimeout <= 0, "S3SEAL_UPSTREAM_TIMEOUT is %s, want more than 0", c.UpstreamTimeout)
	check(c.KMSTimeout <= 0, "S3SEAL_KMS_TIMEOUT is %s, want more than 0", c.KMSTimeout)
	check(c.ClientTimeout <= 0, "S3SEAL_CLIENT_TIMEOUT is %s, want more than 0", c.ClientTimeout)
	check(c.MaxInflight < 0, "S3SEAL_MAX_INFLIGHT is %d, want 0 (no limit) or more", c.MaxInflight)
	check(c.DrainTimeout < 0, "S3SEAL_DRAIN_TIMEOUT is %s, want 0 or more", c.DrainTimeout)
	check(c.DataDir == "", "S3SEAL_DATA_DIR is empty")
	check((c.TLSCert == "") != (c.TLSKey == ""),
		"only one of S3SEAL_TLS_CERT and S3SEAL_TLS_KEY is set: HTTPS needs both")
	check(strings.Contains(c.Domain, "/") || strings.Contains(c.Domain, ":"),
		"S3SEAL_DOMAIN %q: want a bare domain such as s3.example.com (no scheme or port)", c.Domain)
	if _, err := parseLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) validateUpstream() error {
	if c.UpstreamURL == "" {
		if c.UpstreamAccessKey != "" || c.UpstreamSecretKey != "" {
			return errors.New("S3SEAL_UPSTREAM_ACCESS_KEY/SECRET_KEY are set but S3SEAL_UPSTREAM_URL is not")
		}
		return nil
	}
	u, err := url.Parse(c.UpstreamURL)
	switch {
	case err != nil:
		return fmt.Errorf("S3SEAL_UPSTREAM_URL: %w", err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("S3SEAL_UPSTREAM_URL %q: want an http or https URL with a host", c.UpstreamURL)
	case u.User != nil:
		return errors.New("S3SEAL_UPSTREAM_URL must not carry a credential: use S3SEAL_UPSTREAM_ACCESS_KEY and S3SEAL_UPSTREAM_SECRET_KEY")
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("S3SEAL_UPSTREAM_URL %q: no query or fragment allowed", c.UpstreamURL)
	case c.UpstreamAccessKey == "" || c.UpstreamSecretKey == "":
		return errors.New("S3SEAL_UPSTREAM_URL is set: S3SEAL_UPSTREAM_ACCESS_KEY and S3SEAL_UPSTREAM_SECRET_KEY are required")
	}
	return nil
}

func (c Config) validateKMS() error {
	switch c.KMSProvider {
	case ProviderKeyring:
		if c.KMSEndpoint != "" || c.KMSRegion != "" {
			return errors.New("S3SEAL_KMS_ENDPOINT and S3SEAL_KMS_REGION apply to S3SEAL_KMS_PROVIDER=aws only")
		}
	case ProviderAWS:
		if c.KMSKeyID == "" {
			return errors.New("S3SEAL_KMS_PROVIDER=aws needs S3SEAL_KMS_KEY_ID (a key id, ARN or alias/NAME)")
		}
	default:
		return fmt.Errorf("S3SEAL_KMS_PROVIDER %q: want keyring or aws", c.KMSProvider)
	}
	return nil
}

func checkHostPort(name, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s %q: want host:port, e.g. 127.0.0.1:8080: %w", name, addr, err)
	}
	return nil
}

// parseLogLevel accepts exactly the four documented names: slog's own parser
// also takes offsets such as "info+2", which would only confuse.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("S3SEAL_LOG_LEVEL %q: want debug, info, warn or error", s)
}

// NewLogger writes JSON logs to w at level (S3SEAL_LOG_LEVEL).
func NewLogger(w io.Writer, level string) *slog.Logger {
	l, err := parseLogLevel(level)
	if err != nil {
		l = slog.LevelInfo // validate has already refused bad levels
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// Var is one documented environment variable.
type Var struct {
	Name, Default, Help string
}

// Vars lists Config's variables in declaration order, from its tags.
func Vars() []Var {
	t := reflect.TypeFor[Config]()
	vars := make([]Var, 0, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		vars = append(vars, Var{Name: name, Default: f.Tag.Get("envDefault"), Help: f.Tag.Get("help")})
	}
	return vars
}

// WriteHelp prints the variables as an aligned table, for --help.
func WriteHelp(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	for _, v := range Vars() {
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Help)
	}
	return tw.Flush()
}

// WriteMarkdown prints the same table as Markdown, for the README
// (`s3seal help config-markdown`).
func WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n| --- | --- | --- |\n")
	for _, v := range Vars() {
		def := "—"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, strings.ReplaceAll(v.Help, "|", `\|`))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// CMKs is every CMK s3seal is configured with: S3SEAL_KMS_KEY_ID, then
// S3SEAL_KMS_DECRYPT_KEY_IDS — the allow-list's entries.
func (c Config) CMKs() []string {
	return append([]string{c.KMSKeyID}, c.KMSDecryptKeyIDs...)
}
