package repocheck

// Tests of the Kubernetes manifests in deploy/k8s. No cluster runs here, so
// they check what a cluster would otherwise show only at apply or roll-out
// time: that the objects fit together (selectors, named ports, the Secret
// and ConfigMap the pod takes its environment from), that the probes reach
// the listener s3seal serves them on, and that the environment the pod
// gets is one s3seal's own parser (internal/config) accepts, with the
// values meant.

import (
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/s3seal/s3seal/internal/config"
)

// k8sObject is one YAML document of deploy/k8s, its kind-specific part
// still undecoded.
type k8sObject struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	node *yaml.Node
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path   string `yaml:"path"`
		Port   string `yaml:"port"` // a number or a container port's name
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
		SecretRef    *struct{ Name string } `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string     `yaml:"name"`
		Value     yaml.Node  `yaml:"value"`
		ValueFrom *yaml.Node `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []k8sVolumeMount `yaml:"volumeMounts"`
}

type k8sVolumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
}

type k8sDeployment struct {
	Spec struct {
		Replicas int           `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Strategy struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxUnavailable string `yaml:"maxUnavailable"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				EnableServiceLinks            *bool `yaml:"enableServiceLinks"`
				AutomountServiceAccountToken  *bool `yaml:"automountServiceAccountToken"`
				TerminationGracePeriodSeconds *int  `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    *int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sService struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPDB struct {
	Spec struct {
		MinAvailable   string        `yaml:"minAvailable"`
		MaxUnavailable string        `yaml:"maxUnavailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

// Values are nodes so that a number or a boolean, which Kubernetes refuses
// where it wants a string, is seen as such.
type k8sConfigMap struct {
	Data map[string]yaml.Node `yaml:"data"`
}

type k8sSecret struct {
	Type       string               `yaml:"type"`
	StringData map[string]yaml.Node `yaml:"stringData"`
	Data       map[string]string    `yaml:"data"` // base64
}

// k8sManifests is deploy/k8s, one object of each kind s3seal needs.
type k8sManifests struct {
	objects    []k8sObject
	deployment k8sDeployment
	container  k8sContainer // the Deployment's only container
	service    k8sService
	pdb        k8sPDB
	configMap  k8sConfigMap
	secret     k8sSecret
	names      map[string]string // kind -> metadata.name
}

// The kinds deploy/k8s holds, with the API version each is served at.
var k8sKinds = map[string]string{
	"Deployment":          "apps/v1",
	"Service":             "v1",
	"PodDisruptionBudget": "policy/v1",
	"ConfigMap":           "v1",
	"Secret":              "v1",
}

// readK8sObjects parses every YAML document of deploy/k8s/*.yaml.
func readK8sObjects(t *testing.T) []k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy/k8s/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no deploy/k8s/*.yaml: %v", err)
	}
	var objs []k8sObject
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for {
			node := new(yaml.Node)
			err := dec.Decode(node)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			o := k8sObject{file: filepath.Base(file), node: node}
			if err := node.Decode(&o); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			objs = append(objs, o)
		}
		f.Close()
	}
	return objs
}

// loadK8s reads deploy/k8s and decodes each object by its kind.
func loadK8s(t *testing.T) k8sManifests {
	t.Helper()
	m := k8sManifests{objects: readK8sObjects(t), names: map[string]string{}}
	for _, o := range m.objects {
		if _, dup := m.names[o.Kind]; dup {
			t.Fatalf("%s: a second %s", o.file, o.Kind)
		}
		m.names[o.Kind] = o.Metadata.Name
		var dst any
		switch o.Kind {
		case "Deployment":
			dst = &m.deployment
		case "Service":
			dst = &m.service
		case "PodDisruptionBudget":
			dst = &m.pdb
		case "ConfigMap":
			dst = &m.configMap
		case "Secret":
			dst = &m.secret
		default:
			t.Fatalf("%s: kind %q, which no test here checks", o.file, o.Kind)
		}
		if err := o.node.Decode(dst); err != nil {
			t.Fatalf("%s: %s: %v", o.file, o.Kind, err)
		}
	}
	for kind := range k8sKinds {
		if _, ok := m.names[kind]; !ok {
			t.Fatalf("deploy/k8s has no %s", kind)
		}
	}
	cs := m.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("the Deployment has %d containers, want s3seal alone", len(cs))
	}
	m.container = cs[0]
	return m
}

func TestK8sKinds(t *testing.T) {
	m := loadK8s(t)
	for _, o := range m.objects {
		if want := k8sKinds[o.Kind]; o.APIVersion != want {
			t.Errorf("%s: %s at apiVersion %q, want %q", o.file, o.Kind, o.APIVersion, want)
		}
		if o.Metadata.Name == "" {
			t.Errorf("%s: %s without metadata.name", o.file, o.Kind)
		}
	}
}

// stringValue is a YAML scalar Kubernetes takes as a string: a bare 256 or
// true is refused where an environment value or ConfigMap data is wanted.
func stringValue(n yaml.Node) (string, bool) {
	return n.Value, n.Kind == yaml.ScalarNode && n.Tag == "!!str"
}

// envSource is one place a pod's variable comes from.
type envSource struct {
	where string
	vars  map[string]string
}

// k8sEnvSources are the Deployment's envFrom sources (ConfigMap and
// Secret, checked to be the ones in deploy/k8s) and its env, in the order
// Kubernetes applies them.
func k8sEnvSources(t *testing.T, m k8sManifests) []envSource {
	t.Helper()
	var sources []envSource
	for _, from := range m.container.EnvFrom {
		switch {
		case from.ConfigMapRef != nil && from.ConfigMapRef.Name == m.names["ConfigMap"]:
			vars := map[string]string{}
			for k, n := range m.configMap.Data {
				v, ok := stringValue(n)
				if !ok {
					t.Errorf("ConfigMap %s: %s is %s %q, want a quoted string", from.ConfigMapRef.Name, k, n.Tag, n.Value)
				}
				vars[k] = v
			}
			sources = append(sources, envSource{"ConfigMap " + from.ConfigMapRef.Name, vars})
		case from.SecretRef != nil && from.SecretRef.Name == m.names["Secret"]:
			sources = append(sources, envSource{"Secret " + from.SecretRef.Name, secretVars(t, m.secret)})
		default:
			t.Fatalf("envFrom %+v names neither deploy/k8s's ConfigMap nor its Secret", from)
		}
	}
	vars := map[string]string{}
	for _, e := range m.container.Env {
		v, ok := stringValue(e.Value)
		if e.ValueFrom != nil || !ok {
			t.Errorf("env %s: want a string value (valueFrom and numbers cannot be checked here)", e.Name)
		}
		vars[e.Name] = v
	}
	return append(sources, envSource{"the Deployment's env", vars})
}

func secretVars(t *testing.T, s k8sSecret) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for k, n := range s.StringData {
		v, ok := stringValue(n)
		if !ok {
			t.Errorf("Secret stringData %s is %s, want a quoted string", k, n.Tag)
		}
		vars[k] = v
	}
	for k, b64 := range s.Data {
		v, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Errorf("Secret data %s: %v", k, err)
		}
		vars[k] = string(v)
	}
	return vars
}

// The AWS SDK's variables the Secret may carry, for the KMS credential.
var awsVars = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

// k8sEnv is the environment s3seal's container gets, every name checked
// to be one s3seal reads (a renamed variable fails here) and set once (two
// definitions would leave one silently unused).
func k8sEnv(t *testing.T, m k8sManifests) []string {
	t.Helper()
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	for _, v := range awsVars {
		known[v] = true
	}
	from := map[string]string{}
	var environ []string
	for _, src := range k8sEnvSources(t, m) {
		for _, name := range slices.Sorted(maps.Keys(src.vars)) {
			if !known[name] {
				t.Errorf("%s sets %s, which s3seal does not read (config.Vars, or the AWS SDK's %v)", src.where, name, awsVars)
			}
			if prev, dup := from[name]; dup {
				t.Errorf("%s is set in %s and in %s", name, prev, src.where)
			}
			from[name] = src.where
			environ = append(environ, name+"="+src.vars[name])
		}
	}
	return environ
}

// k8sConfig is the pod's environment through s3seal's own parser.
func k8sConfig(t *testing.T, m k8sManifests) config.Config {
	t.Helper()
	cfg, err := config.Load(k8sEnv(t, m))
	if err != nil {
		t.Fatalf("s3seal refuses the pod's environment: %v", err)
	}
	return cfg
}

func TestK8sEnvironment(t *testing.T) {
	m := loadK8s(t)
	cfg := k8sConfig(t, m)
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"S3SEAL_UPSTREAM_URL", cfg.UpstreamURL, "https://s3.eu-central-1.amazonaws.com"},
		{"S3SEAL_UPSTREAM_REGION", cfg.UpstreamRegion, "eu-central-1"},
		{"S3SEAL_UPSTREAM_TIMEOUT", cfg.UpstreamTimeout, time.Minute},
		{"S3SEAL_KMS_PROVIDER", cfg.KMSProvider, config.ProviderAWS},
		{"S3SEAL_KMS_ENDPOINT", cfg.KMSEndpoint, "https://kms.eu-central-1.amazonaws.com"},
		{"S3SEAL_KMS_REGION", cfg.KMSRegion, "eu-central-1"},
		{"S3SEAL_KMS_KEY_ID", cfg.KMSKeyID, "alias/s3seal"},
		{"S3SEAL_KMS_TIMEOUT", cfg.KMSTimeout, 10 * time.Second},
		{"S3SEAL_MAX_INFLIGHT", cfg.MaxInflight, 256},
		{"S3SEAL_DRAIN_TIMEOUT", cfg.DrainTimeout, 30 * time.Second},
		{"S3SEAL_ADDR", cfg.Addr, "0.0.0.0:8080"},
		{"S3SEAL_METRICS_ADDR", cfg.MetricsAddr, "0.0.0.0:9464"},
		{"S3SEAL_DATA_DIR", cfg.DataDir, "/data"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Stateless: what serve would otherwise keep in its data dir, each
	// replica its own, comes from outside (serve.go: loadClientCredential,
	// openKeyService, setUpstream).
	if cfg.AccessKey == "" || cfg.UpstreamURL == "" || cfg.KMSProvider != config.ProviderAWS {
		t.Error("each replica would generate a credential, a keyring or a store of its own")
	}
	env := k8sEnv(t, m)
	for _, name := range awsVars[:2] {
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, name+"=") }) {
			t.Errorf("no %s for the AWS SDK, which the aws KMS provider uses", name)
		}
	}
}

// containerPort resolves a probe's or Service's port, a number or a
// container port's name, to a number.
func containerPort(t *testing.T, c k8sContainer, port string) int {
	t.Helper()
	if n, err := strconv.Atoi(port); err == nil {
		return n
	}
	for _, p := range c.Ports {
		if p.Name == port {
			return p.ContainerPort
		}
	}
	t.Fatalf("port %q is not one of the container's", port)
	return 0
}

// listenPort is the port of a host:port, which must not be loopback: the
// kubelet and the Service reach the pod at its own address.
func listenPort(t *testing.T, name, addr string) int {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", name, addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		t.Errorf("%s %q listens on loopback, out of the kubelet's and the Service's reach", name, addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("%s %q: %v", name, addr, err)
	}
	return n
}

func TestK8sProbesAndPorts(t *testing.T) {
	m := loadK8s(t)
	cfg := k8sConfig(t, m)
	c := m.container
	apiPort, metricsPort := listenPort(t, "S3SEAL_ADDR", cfg.Addr), listenPort(t, "S3SEAL_METRICS_ADDR", cfg.MetricsAddr)
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/healthz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s with httpGet", p.name)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			t.Errorf("%s gets %s, want %s", p.name, g.Path, p.path)
		}
		// The health listener is plain HTTP even when S3 is served over TLS.
		if port := containerPort(t, c, g.Port); port != metricsPort || g.Scheme != "" && g.Scheme != "HTTP" {
			t.Errorf("%s asks port %d (scheme %q), want HTTP on S3SEAL_METRICS_ADDR's %d", p.name, port, g.Scheme, metricsPort)
		}
	}
	if containerPort(t, c, "s3") != apiPort || containerPort(t, c, "metrics") != metricsPort {
		t.Errorf("container ports %+v, want s3 on %d (S3SEAL_ADDR) and metrics on %d", c.Ports, apiPort, metricsPort)
	}
	ports := m.service.Spec.Ports
	if len(ports) != 1 || containerPort(t, c, ports[0].TargetPort) != apiPort {
		t.Errorf("Service ports %+v, want one, to the S3 port %d (and never to the metrics port)", ports, apiPort)
	}
	if !subset(m.service.Spec.Selector, m.deployment.Spec.Template.Metadata.Labels) || len(m.service.Spec.Selector) == 0 {
		t.Errorf("the Service selects %v, which the pods (%v) do not all match", m.service.Spec.Selector, m.deployment.Spec.Template.Metadata.Labels)
	}
}

// subset says every label of sel is in labels, as a selector matches.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestK8sAvailability(t *testing.T) {
	m := loadK8s(t)
	cfg := k8sConfig(t, m)
	d := m.deployment.Spec
	pod := d.Template.Metadata.Labels
	if d.Replicas != 3 {
		t.Errorf("replicas %d, want 3", d.Replicas)
	}
	if !subset(d.Selector.MatchLabels, pod) || len(d.Selector.MatchLabels) == 0 {
		t.Errorf("the Deployment's selector %v does not match its pods' labels %v", d.Selector.MatchLabels, pod)
	}
	if sel := m.pdb.Spec.Selector.MatchLabels; !maps.Equal(sel, d.Selector.MatchLabels) {
		t.Errorf("the PodDisruptionBudget selects %v, the Deployment %v", sel, d.Selector.MatchLabels)
	}
	// One pod at a time may go, by eviction or by roll-out, so that two of
	// three keep serving.
	if p := m.pdb.Spec; !(p.MaxUnavailable == "1" && p.MinAvailable == "" || p.MinAvailable == "2" && p.MaxUnavailable == "") {
		t.Errorf("PodDisruptionBudget minAvailable %q maxUnavailable %q, want maxUnavailable 1 or minAvailable 2", p.MinAvailable, p.MaxUnavailable)
	}
	if u := d.Strategy.RollingUpdate.MaxUnavailable; d.Strategy.Type != "RollingUpdate" || u != "0" && u != "1" {
		t.Errorf("strategy %s with maxUnavailable %q, want RollingUpdate with 0 or 1", d.Strategy.Type, u)
	}
	// The kubelet kills the pod once the grace period is over, preStop
	// included: it must outlast the sleep and s3seal's whole drain.
	grace := d.Template.Spec.TerminationGracePeriodSeconds
	var sleep time.Duration
	if ps := m.container.Lifecycle.PreStop; ps != nil && ps.Sleep != nil {
		sleep = time.Duration(ps.Sleep.Seconds) * time.Second
	}
	if grace == nil || time.Duration(*grace)*time.Second <= sleep+cfg.DrainTimeout {
		t.Errorf("terminationGracePeriodSeconds unset or at most preStop's %s plus S3SEAL_DRAIN_TIMEOUT's %s", sleep, cfg.DrainTimeout)
	}
}

// dockerfileUID is the uid of the Dockerfile's final USER.
func dockerfileUID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\d+)`).FindAllStringSubmatch(string(b), -1)
	if len(users) == 0 {
		t.Fatal("the Dockerfile has no numeric USER")
	}
	uid, _ := strconv.Atoi(users[len(users)-1][1])
	return uid
}

func TestK8sPodSecurity(t *testing.T) {
	m := loadK8s(t)
	cfg := k8sConfig(t, m)
	spec, c := m.deployment.Spec.Template.Spec, m.container
	isFalse := func(b *bool) bool { return b != nil && !*b }
	isTrue := func(b *bool) bool { return b != nil && *b }
	for _, check := range []struct {
		ok   bool
		what string
	}{
		// Else Kubernetes adds S3SEAL_PORT, S3SEAL_SERVICE_HOST, ... for
		// the Service named s3seal.
		{isFalse(spec.EnableServiceLinks), "enableServiceLinks: false"},
		{isFalse(spec.AutomountServiceAccountToken), "automountServiceAccountToken: false"},
		{isTrue(spec.SecurityContext.RunAsNonRoot), "runAsNonRoot: true"},
		{spec.SecurityContext.RunAsUser != nil && *spec.SecurityContext.RunAsUser == dockerfileUID(t), "runAsUser: the Dockerfile's USER"},
		{isFalse(c.SecurityContext.AllowPrivilegeEscalation), "allowPrivilegeEscalation: false"},
		{isTrue(c.SecurityContext.ReadOnlyRootFilesystem), "readOnlyRootFilesystem: true"},
		{slices.Equal(c.SecurityContext.Capabilities.Drop, []string{"ALL"}), "capabilities: drop ALL"},
		// The image README "Docker and the compose stack" builds, serving.
		{strings.HasPrefix(c.Image, "s3seal:") && slices.Equal(c.Args, []string{"serve"}), "image s3seal:TAG, args [serve]"},
	} {
		if !check.ok {
			t.Errorf("the pod lacks %s", check.what)
		}
	}
	// The TLS files are the keys of a Secret mounted where they are named.
	secretVolumes := map[string]bool{}
	for _, v := range spec.Volumes {
		secretVolumes[v.Name] = v.Secret != nil && v.Secret.SecretName != ""
	}
	for name, file := range map[string]string{"S3SEAL_TLS_CERT": cfg.TLSCert, "S3SEAL_TLS_KEY": cfg.TLSKey} {
		mounted := slices.ContainsFunc(c.VolumeMounts, func(vm k8sVolumeMount) bool {
			return secretVolumes[vm.Name] && filepath.Dir(file) == filepath.Clean(vm.MountPath)
		})
		if file == "" || !mounted {
			t.Errorf("%s %q is not a file of a mounted Secret", name, file)
		}
	}
}

// From docs/bench.md "Memory" (README "Speed"): s3seal's peak RSS is
// about 29 MiB at start plus about 0.55 MiB per request in flight,
// whatever the objects' size (66 MiB with 64 transfers at once).
const (
	startRSS      = 29 << 20
	rssPerRequest = 0.55 * (1 << 20)
)

// quantity parses a Kubernetes memory quantity in bytes or binary units.
func quantity(t *testing.T, q string) int64 {
	t.Helper()
	units := map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "": 1}
	num := strings.TrimRight(q, "KMGi")
	n, err := strconv.ParseInt(num, 10, 64)
	unit, ok := units[q[len(num):]]
	if err != nil || !ok {
		t.Fatalf("memory quantity %q: want a whole number of bytes, Ki, Mi or Gi", q)
	}
	return n * unit
}

// The memory limit holds S3SEAL_MAX_INFLIGHT requests at the measured
// cost, so that overload is answered with 503 SlowDown, not an OOM kill.
func TestK8sMemory(t *testing.T) {
	m := loadK8s(t)
	cfg := k8sConfig(t, m)
	r := m.container.Resources
	if r.Limits["memory"] == "" || r.Requests["memory"] == "" {
		t.Fatalf("resources %+v, want a memory request and limit", r)
	}
	limit, request := quantity(t, r.Limits["memory"]), quantity(t, r.Requests["memory"])
	if cfg.MaxInflight <= 0 {
		t.Fatalf("S3SEAL_MAX_INFLIGHT %d: with no bound no memory limit holds", cfg.MaxInflight)
	}
	if need := startRSS + int64(float64(cfg.MaxInflight)*rssPerRequest); limit < need {
		t.Errorf("memory limit %s, below the %d MiB that S3SEAL_MAX_INFLIGHT=%d requests take", r.Limits["memory"], need>>20, cfg.MaxInflight)
	}
	if request > limit || request < startRSS {
		t.Errorf("memory request %s, want between s3seal's RSS at start and the limit", r.Requests["memory"])
	}
}
