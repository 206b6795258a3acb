package repocheck

// Tests of the packaging (Dockerfile, docker-compose.yml, deploy/): no Docker
// engine runs here, so they check what can be checked without one. The
// compose file's and the Dockerfile's s3seal environments go through
// s3seal's own configuration parser (internal/config), and the dashboard's
// queries are checked against the families the metrics package registers.

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/s3seal/s3seal/internal/config"
	"github.com/s3seal/s3seal/metrics"
)

const repoRoot = "../.."

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := composecli.NewProjectOptions([]string{filepath.Join(repoRoot, "docker-compose.yml")},
		composecli.WithWorkingDirectory(repoRoot), composecli.WithEnv(nil), composecli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

// env flattens a service's environment into KEY=VALUE pairs.
func serviceEnv(s types.ServiceConfig) (map[string]string, []string) {
	m := map[string]string{}
	var list []string
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
			list = append(list, k+"="+*v)
		}
	}
	slices.Sort(list)
	return m, list
}

// hostPort splits an http URL or host:port.
func hostPort(t *testing.T, s string) (string, string) {
	t.Helper()
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		s = u.Host
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return h, p
}

// mount finds the bind or volume mount of s at target.
func mount(s types.ServiceConfig, target string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if v.Target == target {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestComposeStack(t *testing.T) {
	p := loadCompose(t)
	var names []string
	for n := range p.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"bench", "grafana", "kms", "minio", "prometheus", "s3seal"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	minio, kms, s3s, bench := service(t, p, "minio"), service(t, p, "kms"), service(t, p, "s3seal"), service(t, p, "bench")
	prom, graf := service(t, p, "prometheus"), service(t, p, "grafana")

	// s3seal is built from this repository's Dockerfile.
	if s3s.Build == nil || filepath.Clean(s3s.Build.Context) != filepath.Clean(absRepo(t)) {
		t.Errorf("s3seal build %+v, want the repository root", s3s.Build)
	}
	if bench.Image != s3s.Image || s3s.Image == "" {
		t.Errorf("bench image %q, s3seal image %q: bench must run the image s3seal builds", bench.Image, s3s.Image)
	}

	// s3seal's environment is a valid s3seal configuration ...
	se, seList := serviceEnv(s3s)
	cfg, err := config.Load(seList)
	if err != nil {
		t.Fatalf("s3seal's environment is refused by s3seal: %v", err)
	}
	// ... pointed at MinIO with MinIO's root credential ...
	me, _ := serviceEnv(minio)
	if h, port := hostPort(t, cfg.UpstreamURL); h != "minio" || port != "9000" {
		t.Errorf("S3SEAL_UPSTREAM_URL %s, want the minio service on 9000", cfg.UpstreamURL)
	}
	if cfg.UpstreamAccessKey != me["MINIO_ROOT_USER"] || cfg.UpstreamSecretKey != me["MINIO_ROOT_PASSWORD"] || cfg.UpstreamAccessKey == "" {
		t.Error("s3seal's upstream credential is not MinIO's root credential")
	}
	if !slices.Contains(minio.Command, "server") {
		t.Errorf("minio command %v", minio.Command)
	}
	// ... and at the KMS service, with a key the KMS is seeded with.
	ke, _ := serviceEnv(kms)
	if cfg.KMSProvider != config.ProviderAWS {
		t.Errorf("S3SEAL_KMS_PROVIDER %q, want aws", cfg.KMSProvider)
	}
	if h, port := hostPort(t, cfg.KMSEndpoint); h != "kms" || port != ke["PORT"] {
		t.Errorf("S3SEAL_KMS_ENDPOINT %s, want the kms service on its PORT %s", cfg.KMSEndpoint, ke["PORT"])
	}
	if !strings.HasPrefix(kms.Image, "nsmithuk/local-kms") {
		t.Errorf("kms image %q, want local-kms", kms.Image)
	}
	seedMount, ok := mount(kms, ke["KMS_SEED_PATH"])
	if !ok {
		t.Fatalf("the kms service does not mount its seed at KMS_SEED_PATH %q", ke["KMS_SEED_PATH"])
	}
	var seed struct {
		Aliases []struct {
			AliasName   string `yaml:"AliasName"`
			TargetKeyId string `yaml:"TargetKeyId"`
		} `yaml:"Aliases"`
		Keys struct {
			Symmetric struct {
				Aes []struct {
					Metadata struct {
						KeyId string `yaml:"KeyId"`
					} `yaml:"Metadata"`
					BackingKeys []string `yaml:"BackingKeys"`
				} `yaml:"Aes"`
			} `yaml:"Symmetric"`
		} `yaml:"Keys"`
	}
	readYAML(t, seedMount.Source, &seed)
	seeded := false
	for _, a := range seed.Aliases {
		for _, k := range seed.Keys.Symmetric.Aes {
			if a.AliasName == cfg.KMSKeyID && a.TargetKeyId == k.Metadata.KeyId && len(k.BackingKeys) > 0 && len(k.BackingKeys[0]) == 64 {
				seeded = true
			}
		}
	}
	if !seeded {
		t.Errorf("S3SEAL_KMS_KEY_ID %q is not an alias of an AES key in %s", cfg.KMSKeyID, seedMount.Source)
	}
	if se["AWS_ACCESS_KEY_ID"] == "" || se["AWS_SECRET_ACCESS_KEY"] == "" {
		t.Error("s3seal has no AWS credential for the SDK's default chain")
	}
	if v, ok := mount(s3s, cfg.DataDir); !ok || v.Type != types.VolumeTypeVolume {
		t.Errorf("the data dir %s is not a named volume", cfg.DataDir)
	}

	// Listeners: beyond loopback inside the container, published on the host's loopback.
	_, apiPort := hostPort(t, cfg.Addr)
	_, metricsPort := hostPort(t, cfg.MetricsAddr)
	if h, _ := hostPort(t, cfg.Addr); h != "0.0.0.0" {
		t.Errorf("S3SEAL_ADDR %s: unreachable from other containers", cfg.Addr)
	}
	published := map[string]bool{}
	for _, port := range s3s.Ports {
		published[strconv.FormatUint(uint64(port.Target), 10)] = port.HostIP == "127.0.0.1"
	}
	if !published[apiPort] || !published[metricsPort] {
		t.Errorf("s3seal publishes %v, want %s and %s on 127.0.0.1", s3s.Ports, apiPort, metricsPort)
	}

	// The bench service: the same KMS, a valid command, its metrics port.
	bEnv, bList := serviceEnv(bench)
	bcfg, err := config.Load(bList)
	if err != nil {
		t.Fatalf("bench's environment is refused: %v", err)
	}
	if bcfg.KMSEndpoint != cfg.KMSEndpoint || bcfg.KMSKeyID != cfg.KMSKeyID || bEnv["AWS_ACCESS_KEY_ID"] == "" {
		t.Errorf("bench measures another KMS than s3seal uses: %s %s", bcfg.KMSEndpoint, bcfg.KMSKeyID)
	}
	if len(bench.Command) == 0 || bench.Command[0] != "bench" {
		t.Fatalf("bench command %v", bench.Command)
	}
	benchMetrics := flagValue(bench.Command, "--metrics-addr")
	if benchMetrics == "" {
		t.Fatalf("bench command %v has no --metrics-addr", bench.Command)
	}
	_, benchPort := hostPort(t, benchMetrics)

	// Prometheus scrapes s3seal's metrics port and the bench's.
	promMount, ok := mount(prom, "/etc/prometheus/prometheus.yml")
	if !ok || promMount.Source != filepath.Join(absRepo(t), "deploy/prometheus/prometheus.yml") {
		t.Fatalf("prometheus does not mount deploy/prometheus/prometheus.yml: %+v", prom.Volumes)
	}
	var pc struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, promMount.Source, &pc)
	targets := map[string]bool{}
	for _, sc := range pc.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s scrapes %s", sc.JobName, sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[tg] = true
			}
		}
	}
	if !targets["s3seal:"+metricsPort] {
		t.Errorf("prometheus targets %v lack s3seal:%s (S3SEAL_METRICS_ADDR)", targets, metricsPort)
	}
	if !targets["bench:"+benchPort] {
		t.Errorf("prometheus targets %v lack bench:%s (bench --metrics-addr)", targets, benchPort)
	}

	// Grafana: provisioning and dashboards mounted where the provider looks,
	// the datasource pointing at the prometheus service.
	provMount, ok := mount(graf, "/etc/grafana/provisioning")
	if !ok || provMount.Source != filepath.Join(absRepo(t), "deploy/grafana/provisioning") {
		t.Fatalf("grafana does not mount deploy/grafana/provisioning: %+v", graf.Volumes)
	}
	var dsFile struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(provMount.Source, "datasources/prometheus.yml"), &dsFile)
	if len(dsFile.Datasources) != 1 || dsFile.Datasources[0].Type != "prometheus" {
		t.Fatalf("datasources %+v", dsFile.Datasources)
	}
	if h, port := hostPort(t, dsFile.Datasources[0].URL); h != "prometheus" || port != "9090" {
		t.Errorf("datasource URL %s, want the prometheus service", dsFile.Datasources[0].URL)
	}
	var provFile struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(provMount.Source, "dashboards/s3seal.yml"), &provFile)
	if len(provFile.Providers) != 1 {
		t.Fatalf("dashboard providers %+v", provFile.Providers)
	}
	dashMount, ok := mount(graf, provFile.Providers[0].Options.Path)
	if !ok || dashMount.Source != filepath.Join(absRepo(t), "deploy/grafana/dashboards") {
		t.Errorf("the dashboard provider reads %s, which is not deploy/grafana/dashboards: %+v", provFile.Providers[0].Options.Path, graf.Volumes)
	}
	ge, _ := serviceEnv(graf)
	if home := ge["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != provFile.Providers[0].Options.Path+"/s3seal.json" {
		t.Errorf("home dashboard %q", home)
	}
	dash := readDashboard(t)
	if dash.uidsUsed[dsFile.Datasources[0].UID] == 0 || len(dash.uidsUsed) != 1 {
		t.Errorf("dashboard datasource uids %v, want only the provisioned %q", dash.uidsUsed, dsFile.Datasources[0].UID)
	}
}

// flagValue finds "--name value" or "--name=value" in a command line.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func absRepo(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 || !strings.HasPrefix(froms[0][1], "golang:1.26") {
		t.Errorf("want a multi-stage build from golang:1.26: %v", froms)
	}
	final := froms[len(froms)-1][1]
	if !strings.Contains(final, "distroless/static") && final != "scratch" {
		t.Errorf("final image %s, want distroless static or scratch", final)
	}
	for _, want := range []string{
		`CGO_ENABLED=0 go build -trimpath -ldflags "-s -w"`, // CI's flags
		"./cmd/s3seal", "EXPOSE 8080 9464", `ENTRYPOINT ["/usr/local/bin/s3seal"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Errorf("final USER %v, want a non-root user", users)
	}
	// The image's defaults make a valid configuration.
	var envs []string
	code := regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(df, "")
	for _, m := range regexp.MustCompile(`(S3SEAL_[A-Z_]+)=(\S+)`).FindAllStringSubmatch(code, -1) {
		envs = append(envs, m[1]+"="+m[2])
	}
	if _, err := config.Load(envs); err != nil || len(envs) == 0 {
		t.Errorf("the Dockerfile's environment %v: %v", envs, err)
	}
}

// dashboard is what the tests read from the Grafana dashboard.
type dashboard struct {
	titles   []string
	exprs    []string
	uidsUsed map[string]int
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/grafana/dashboards/s3seal.json"))
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	}
	type panel struct {
		Type    string   `json:"type"`
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var doc struct {
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	d := dashboard{uidsUsed: map[string]int{}}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			d.titles = append(d.titles, p.Title)
			for _, tg := range p.Targets {
				d.exprs = append(d.exprs, tg.Expr)
				d.uidsUsed[tg.Datasource.UID]++
			}
			walk(p.Panels)
		}
	}
	walk(doc.Panels)
	if doc.UID == "" {
		t.Error("dashboard without uid")
	}
	return d
}

// promqlNames extracts the metric names a PromQL expression selects: what
// is left after dropping strings, label matchers, ranges, grouping clauses,
// function calls, keywords and numbers.
func promqlNames(expr string) []string {
	for _, re := range []string{`"(?:[^"\\]|\\.)*"`, `\{[^}]*\}`, `\[[^\]]*\]`,
		`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`} {
		expr = regexp.MustCompile(re).ReplaceAllString(expr, " ")
	}
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
	var names []string
	for _, loc := range regexp.MustCompile(`\b[a-zA-Z_:][a-zA-Z0-9_:]*`).FindAllStringIndex(expr, -1) {
		word := expr[loc[0]:loc[1]]
		rest := strings.TrimLeft(expr[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || keywords[strings.ToLower(word)] {
			continue // a function or aggregation, or an operator
		}
		if loc[0] > 0 && (expr[loc[0]-1] >= '0' && expr[loc[0]-1] <= '9' || expr[loc[0]-1] == '.') {
			continue // the exponent of a number such as 1e-9
		}
		names = append(names, word)
	}
	return names
}

func TestPromqlNames(t *testing.T) {
	got := promqlNames(`histogram_quantile(0.99, sum by (le, operation) (rate(a_bucket{x="y}"}[5m]))) / clamp_min(b + sum(c), 1e-9) and on(job) d offset 5m`)
	if want := []string{"a_bucket", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("promqlNames = %v, want %v", got, want)
	}
}

// Every metric a dashboard query uses is one s3seal exports, and the
// dashboard has the panels the issue asks for.
func TestDashboardQueriesUseExportedMetrics(t *testing.T) {
	fams, err := metrics.Families()
	if err != nil {
		t.Fatal(err)
	}
	exported := metrics.SeriesNames(fams)
	d := readDashboard(t)
	if len(d.exprs) < 8 {
		t.Fatalf("only %d queries", len(d.exprs))
	}
	used := map[string]bool{}
	for _, e := range d.exprs {
		names := promqlNames(e)
		if len(names) == 0 {
			t.Errorf("query %q selects no metric", e)
		}
		for _, n := range names {
			used[n] = true
			if !exported[n] {
				t.Errorf("query %q uses %s, which s3seal does not export", e, n)
			}
		}
	}
	for _, n := range []string{
		"s3seal_bench_throughput_bytes_per_second", "s3seal_envelope_bytes_total", "s3seal_envelope_seconds_total",
		"s3seal_kms_requests_total", "s3seal_kms_request_duration_seconds_bucket",
		"s3seal_requests_total", "s3seal_request_duration_seconds_bucket",
		"s3seal_datakey_cache_hits_total", "s3seal_datakey_cache_misses_total",
	} {
		if !used[n] {
			t.Errorf("no panel uses %s", n)
		}
	}
	all := strings.ToLower(strings.Join(d.titles, "\n"))
	for _, topic := range []string{"envelope vs direct", "kms calls", "kms latency", "request rate", "request latency", "cache hit ratio"} {
		if !strings.Contains(all, topic) {
			t.Errorf("no panel about %q in %q", topic, d.titles)
		}
	}
}
