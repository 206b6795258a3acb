package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/s3seal/s3seal/internal/buildinfo"
	"github.com/s3seal/s3seal/internal/config"
	"github.com/s3seal/s3seal/internal/datadir"

	"github.com/s3seal/s3seal/envelope/awskms"
	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/s3seal/s3seal/internal/doctor"
	"github.com/s3seal/s3seal/internal/embeddedstore"
	"github.com/s3seal/s3seal/internal/principals"
	"github.com/s3seal/s3seal/internal/tlsport"
	"github.com/s3seal/s3seal/metrics"
	"github.com/s3seal/s3seal/proxy"
	"github.com/s3seal/s3seal/sigv4"
)

// Timeouts of the S3 listener. There is deliberately no ReadTimeout or
// WriteTimeout: uploads and downloads of large objects legitimately take
// longer than any fixed bound; a body that stops moving is cut by the
// proxy after S3SEAL_CLIENT_TIMEOUT instead. The request line and headers
// must arrive within readHeaderTimeout in all (or S3SEAL_CLIENT_TIMEOUT, if
// shorter), and a connection kept alive closes after idleTimeout without
// a request: neither a silent nor an idle client holds a file descriptor
// for long.
const (
	readHeaderTimeout = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// serve runs the proxy until ctx is done (SIGINT or SIGTERM in main).
func (c cli) serve(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { c.usage(fs.Output()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "s3seal serve: unexpected argument %q (configuration is by environment variables: s3seal --help)\n", fs.Arg(0))
		return exitUsage
	}
	cfg, err := config.Load(c.environ)
	if err != nil {
		c.warnUnknown()
		return c.fail("serve", err)
	}
	logger := newLogger(c.stderr, cfg.LogLevel)
	if err := c.checkUnknown(cfg, logger); err != nil {
		return c.fail("serve", err)
	}
	build := buildinfo.Read()
	logger.Info("starting", "version", build.Version, "revision", build.RevisionLabel(), "goversion", build.GoVersion)
	s, err := newServer(ctx, cfg, logger)
	if err != nil {
		return c.fail("serve", err)
	}
	s.writeBanner(c.stdout)
	if err := s.run(ctx); err != nil {
		return c.fail("serve", err)
	}
	return exitOK
}

// clientCredential is the credential clients sign with, and whether its
// secret came from the data dir (and so may be shown in the banner).
type clientCredential struct {
	datadir.Credential
	generated bool
}

// loadClientCredential is the configured credential, or else the data
// dir's.
func loadClientCredential(cfg Config, logger *slog.Logger) (clientCredential, error) {
	if cfg.AccessKey != "" {
		return clientCredential{Credential: datadir.Credential{AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey}}, nil
	}
	c, err := datadir.ClientCredential(cfg.DataDir, logger)
	return clientCredential{Credential: c, generated: true}, err
}

// upstreamStore is where s3seal keeps the (encrypted) objects.
type upstreamStore struct {
	url                  *url.URL
	accessKey, secretKey string
	region               string
}

// configuredUpstream is the store S3SEAL_UPSTREAM_URL names; ok is false
// when it is unset (the embedded store).
func configuredUpstream(cfg Config) (_ upstreamStore, ok bool, _ error) {
	if cfg.UpstreamURL == "" {
		return upstreamStore{}, false, nil
	}
	u, err := url.Parse(cfg.UpstreamURL) // validated in loadConfig
	if err != nil {
		return upstreamStore{}, false, fmt.Errorf("S3SEAL_UPSTREAM_URL: %w", err)
	}
	return upstreamStore{url: u, accessKey: cfg.UpstreamAccessKey, secretKey: cfg.UpstreamSecretKey, region: cfg.UpstreamRegion}, true, nil
}

// doctorStore is the store as the doctor's checks see it.
func (u upstreamStore) doctorStore(embedded bool) doctor.Store {
	return doctor.Store{URL: u.url, AccessKey: u.accessKey, SecretKey: u.secretKey, Region: u.region, Embedded: embedded}
}

// keySetup is the key service, the CMK for new objects and the CMKs
// objects may be read under.
type keySetup struct {
	service  kms.KeyService      // uncached: what readiness probes
	resolver kms.KeyResolver     // the same service, naming CMKs for the allow-list
	status   kms.KeyStatusReader // the same service, describing a CMK's state
	keyID    string
	allowed  *kms.AllowList
	keyring  bool
	ring     *keyring.Keyring // the embedded keyring, or nil
	// where names the key service for messages: "key service URL",
	// "embedded keyring PATH".
	where    string
	describe string // for the banner
}

// doctorKMS is the key service as the doctor's checks see it.
func (k keySetup) doctorKMS(cfg Config) doctor.KMS {
	return doctor.KMS{Keys: k.service, Status: k.status, Resolver: k.resolver, KeyID: k.keyID,
		DecryptKeyIDs: cfg.KMSDecryptKeyIDs, Allowed: k.allowed, Keyring: k.keyring, Service: k.where}
}

// server is a configured s3seal with its listeners bound, not yet serving.
type server struct {
	cfg        Config
	logger     *slog.Logger
	cred       clientCredential
	keys       keySetup
	upstream   upstreamStore
	store      *embeddedstore.Store // nil when S3SEAL_UPSTREAM_URL is set
	stopping   atomic.Bool          // closing the store is expected now
	registry   *prometheus.Registry
	metrics    *metrics.Metrics
	cache      *kms.Cache      // unwrapped data keys
	bucketKeys *kms.BucketKeys // nil with S3SEAL_BUCKET_KEY=false
	users      *principals.Directory

	api, health     *http.Server
	apiLn, healthLn net.Listener
	kmsAPI          *http.Server // nil when the KMS API is not served
	kmsAPILn        net.Listener
	tls             bool       // kept apart: http.Server edits its TLSConfig once serving
	conns           *connLimit // the S3 and KMS API listeners' open connections
	healthConns     *connLimit // the metrics listener's
	// newDataDir says what this start makes where there was nothing (a
	// data dir, a keyring), for one warning once it is made; or "".
	newDataDir string
}

// newServer does everything short of serving: bootstrap of the data dir,
// key service, upstream (starting the embedded store if there is none),
// proxy, and both listeners, so that the banner can print real addresses
// and every configuration error surfaces before the first request.
func newServer(ctx context.Context, cfg Config, logger *slog.Logger) (_ *server, err error) {
	s := &server{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if err = s.newMetrics(); err != nil {
		return nil, err
	}
	if s.newDataDir, err = checkDataDir(cfg); err != nil {
		return nil, err
	}
	// The key service first: a KMS configuration that cannot work stops
	// the start before anything (a generated credential) is written.
	if s.keys, err = openKeyService(ctx, cfg, logger, true); err != nil {
		return nil, err
	}
	if s.cred, err = loadClientCredential(cfg, logger); err != nil {
		return nil, err
	}
	s.warnNewDataDir()
	if s.users, err = openPrincipals(cfg, s.cred, s.keys.resolver); err != nil {
		return nil, err
	}
	// The CMKs objects may be read under: resolved by the start checks below.
	s.keys.allowed = kms.NewAllowList(s.keys.resolver, cfg.CMKs()...)
	if err = s.setUpstream(ctx); err != nil {
		return nil, err
	}
	s.warnNewDataDir() // the embedded store's, with an external KMS and credential
	handler, err := s.newProxy()
	if err != nil {
		return nil, err
	}
	kmsHandler, err := s.newKMSAPI(ctx)
	if err != nil {
		return nil, err
	}
	// The doctor's checks that write nothing, now and then behind /readyz:
	// a misconfiguration stops the start, an unreachable dependency leaves
	// s3seal not ready until it answers. The checks have their own small
	// client: the proxy tunes its transport for one busy upstream, and a
	// probe should not queue behind that traffic.
	sess := doctor.NewSession(doctor.Config{Store: s.upstream.doctorStore(s.store != nil), KMS: s.keys.doctorKMS(cfg), Purpose: "ready"})
	checks := doctor.StartChecks()
	if err = doctor.CheckAtStart(ctx, sess, checks, logger); err != nil {
		return nil, err
	}
	ready := doctor.NewReadiness(sess, checks)
	if err = s.listen(handler, doctor.HealthHandler(ready, metrics.Handler(s.registry), cfg.Pprof), kmsHandler); err != nil {
		return nil, err
	}
	if cfg.Pprof {
		logger.Info("profiling on (S3SEAL_PPROF): net/http/pprof served on the metrics listener", "url", s.healthURL()+"/debug/pprof/")
	}
	datadir.WarnLoose(cfg.DataDir, logger)
	warnPlainHTTP(s.apiLn.Addr(), s.tls, logger)
	if s.kmsAPILn != nil {
		warnPlainHTTP(s.kmsAPILn.Addr(), s.tls, logger)
	}
	return s, nil
}

// checkDataDir names a data dir that is a file or out of reach as such,
// whatever would read it first; a missing one is made by what needs it. It
// returns what this start will make where there is nothing: a mistyped
// S3SEAL_DATA_DIR starts a new data dir (the documented way to start one),
// which warnNewDataDir says.
func checkDataDir(cfg Config) (newDataDir string, err error) {
	err = datadir.Check(cfg.DataDir, "")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "started a new data dir: if you meant an existing one, stop s3seal and set S3SEAL_DATA_DIR to it", nil
	case err != nil:
		return "", err
	case cfg.KMSProvider == providerKeyring && !fileExists(filepath.Join(cfg.DataDir, datadir.KeyringFile)):
		return "started a new keyring in a data dir that had none: if you meant another data dir, stop s3seal and set S3SEAL_DATA_DIR to it", nil
	}
	return "", nil
}

// warnNewDataDir warns, once, that this start made the data dir (or its
// keyring), naming its absolute path, as soon as it exists.
func (s *server) warnNewDataDir() {
	if s.newDataDir == "" || !fileExists(s.cfg.DataDir) {
		return
	}
	s.logger.Warn(s.newDataDir, "dir", absPath(s.cfg.DataDir), "variable", "S3SEAL_DATA_DIR="+s.cfg.DataDir)
	s.newDataDir = ""
}

// newMetrics makes the process's own registry: s3seal's families plus the
// Go runtime and process collectors, served on /metrics.
func (s *server) newMetrics() error {
	s.registry = prometheus.NewRegistry()
	if err := s.registry.Register(collectors.NewGoCollector()); err != nil {
		return err
	}
	if err := s.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return err
	}
	m, err := metrics.New(s.registry)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	s.metrics = m
	build := buildinfo.Read()
	if err := metrics.RegisterBuildInfo(s.registry, build.Version, build.RevisionLabel(), build.GoVersion); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// openKeyService builds the configured key service, for serve, bench and
// doctor alike. Only serve starts (first) a keyring, its data dir and the
// default key: the other commands (first false) refuse a data dir without
// a keyring, most likely a mistyped S3SEAL_DATA_DIR.
// Whether the CMK exists and is enabled is for the doctor's checks (at
// start, and in /readyz), which tell a misconfiguration from a KMS that is
// merely unreachable at boot.
func openKeyService(ctx context.Context, cfg Config, logger *slog.Logger, first bool) (keySetup, error) {
	switch cfg.KMSProvider {
	case providerAWS:
		kms, err := loadAWSKMS(ctx, cfg, logger)
		if err != nil {
			return keySetup{}, err
		}
		return keySetup{service: kms, resolver: kms, status: kms, keyID: cfg.KMSKeyID, where: "key service " + kms.URL(),
			describe: "aws kms " + kms.URL() + ", key " + cfg.KMSKeyID}, nil
	default:
		ring, err := openServeRing(cfg.DataDir, first)
		if err != nil {
			return keySetup{}, err
		}
		// The KMS API names keys by ARNs, which another s3seal using it
		// records in objects: they open here too, whether the API is on now
		// or not.
		if err := ring.UseARNs(keyring.ARNs{Region: cfg.Region, Account: keyring.DefaultAccount}); err != nil {
			return keySetup{}, fmt.Errorf("S3SEAL_REGION: %w", err)
		}
		if cfg.KMSKeyID == defaultKeyAlias && first {
			if err := datadir.EnsureKey(ring, defaultKeyAlias, logger); err != nil {
				return keySetup{}, err
			}
		}
		where := "embedded keyring " + absPath(filepath.Join(cfg.DataDir, datadir.KeyringFile))
		describe := fmt.Sprintf("%s, key %s", where, cfg.KMSKeyID)
		if info, err := ring.DescribeKey(cfg.KMSKeyID); err == nil {
			describe += " (" + info.ID + ")"
		}
		return keySetup{service: ring, resolver: ring, status: ring, keyID: cfg.KMSKeyID, keyring: true, ring: ring, where: where, describe: describe}, nil
	}
}

// openServeRing opens the data dir's keyring; first (serve) starts one.
func openServeRing(dir string, first bool) (*keyring.Keyring, error) {
	if first {
		return datadir.CreateKeyring(dir)
	}
	return datadir.OpenKeyring(dir, "")
}

// loadAWSKMS is the AWS KMS client of S3SEAL_KMS_PROVIDER=aws, for every
// command that uses it (serve, doctor, bench, rewrap, decrypt, keys): the
// SDK's log lines go to logger as JSON, and its errors name the variables
// to set.
func loadAWSKMS(ctx context.Context, cfg Config, logger *slog.Logger) (*awskms.Service, error) {
	svc, err := awskms.Load(ctx, awskms.Config{Region: cfg.KMSRegion, Endpoint: cfg.KMSEndpoint, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("S3SEAL_KMS_PROVIDER=aws: %w", err)
	}
	return svc, nil
}

// setUpstream uses the configured upstream or starts the embedded store.
func (s *server) setUpstream(ctx context.Context) error {
	cfg := s.cfg
	up, ok, err := configuredUpstream(cfg)
	if err != nil || ok {
		s.upstream = up
		return err
	}
	store, err := startEmbeddedStore(ctx, cfg, s.logger)
	if errors.Is(err, embeddedstore.ErrLocked) {
		return fmt.Errorf("%w: stop it first, or give this one another S3SEAL_DATA_DIR", err)
	}
	if err != nil {
		return err
	}
	s.store = store
	s.upstream = embeddedUpstream(store)
	s.logger.Info("embedded store started", "url", store.URL, "dir", store.Dir, "metadata", store.Metadata)
	go s.watchStore(store)
	return nil
}

// startEmbeddedStore starts the embedded store in cfg's data dir. A start
// is finished even when a signal came meanwhile: the caller then shuts down
// cleanly, the store included.
func startEmbeddedStore(ctx context.Context, cfg Config, logger *slog.Logger) (*embeddedstore.Store, error) {
	if err := datadir.Ensure(cfg.DataDir); err != nil {
		return nil, err
	}
	return embeddedstore.Start(context.WithoutCancel(ctx), embeddedstore.Options{DataDir: absPath(cfg.DataDir), Logger: logger})
}

// embeddedUpstream is the embedded store as an upstream.
func embeddedUpstream(store *embeddedstore.Store) upstreamStore {
	return upstreamStore{url: store.URLValue(), accessKey: store.AccessKey, secretKey: store.SecretKey, region: store.Region}
}

// watchStore says loudly if the embedded store stops while s3seal runs:
// every request then fails, and /readyz says so.
func (s *server) watchStore(store *embeddedstore.Store) {
	<-store.Exited()
	if s.stopping.Load() {
		return
	}
	s.logger.Error("the embedded store stopped unexpectedly; restart s3seal", "dir", store.Dir)
}

// openPrincipals is the configured credential (an admin) and the users of
// the data dir's users.json, if any.
func openPrincipals(cfg Config, cred clientCredential, resolver kms.KeyResolver) (*principals.Directory, error) {
	store, err := principals.Open(filepath.Join(cfg.DataDir, principals.File))
	if err != nil {
		return nil, err
	}
	return principals.NewDirectory(store, cred.AccessKey, cred.SecretKey, resolver), nil
}

// newProxy wires the proxy: client signatures checked against the
// principals, their grants enforced, data keys from the cached key
// service. Transport is left nil so that the proxy uses its own, tuned for
// one upstream.
func (s *server) newProxy() (http.Handler, error) {
	cfg := s.cfg
	verifier := &sigv4.Verifier{Credentials: s.users, Region: cfg.Region, SigV2: cfg.SigV2, Domain: cfg.Domain}
	// Counted under the cache: s3seal_kms_* are calls that reached the key
	// service. Readiness probes use s.keys.service directly and are not
	// counted (at most one per readiness period, internal/doctor).
	bounded := kms.WithTimeout(s.metrics.InstrumentKeys(s.keys.service), cfg.KMSTimeout)
	cached := kms.NewCache(bounded, cfg.DataKeyCacheSize, cfg.DataKeyCacheTTL)
	s.cache = cached
	if err := s.metrics.ObserveCache(cached); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	keys := kms.ObjectKeys{Keys: cached, KeyID: s.keys.keyID, Allowed: s.keys.allowed, Grants: true}
	if cfg.BucketKey != "false" {
		// For the buckets and PUTs that ask (proxy.Config.Keys), and with
		// S3SEAL_BUCKET_KEY=true for the others too.
		bks, err := kms.NewBucketKeys(cfg.BucketKeyTTL, cfg.BucketKeyUses)
		if err != nil {
			return nil, err
		}
		keys.BucketKeys, s.bucketKeys = bks, bks
	}
	p, err := proxy.New(proxy.Config{
		Upstream:            s.upstream.url,
		UpstreamAccessKey:   s.upstream.accessKey,
		UpstreamSecretKey:   s.upstream.secretKey,
		UpstreamRegion:      s.upstream.region,
		UpstreamTimeout:     cfg.UpstreamTimeout,
		MaxInflight:         cfg.MaxInflight,
		ClientTimeout:       cfg.ClientTimeout,
		Auth:                verifier,
		Keys:                keys,
		BucketKeysByDefault: cfg.BucketKey == "true",
		Principals:          s.users,
		Domain:              cfg.Domain,
		AllowPlaintextReads: cfg.AllowPlaintextReads,
		// s3seal runs the embedded store and knows it marks multipart ETags.
		StoreMarksMultipartETags: s.store != nil,
		Logger:                   s.logger,
		Observer:                 s.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return p, nil
}

// listen binds the listeners (the KMS API's when kmsAPI is not nil); with
// TLS configured, the certificate is loaded now so that a bad file fails
// the start, not the first handshake. The KMS API is served with the same
// certificate as the S3 API: its requests carry plaintext too.
func (s *server) listen(api, health, kmsAPI http.Handler) error {
	errorLog := slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)
	headerTimeout := readHeaderTimeout
	if t := s.cfg.ClientTimeout; t > 0 && t < headerTimeout {
		headerTimeout = t
	}
	s.conns = s.limitConns()
	s.api = &http.Server{Handler: api, ReadHeaderTimeout: headerTimeout, IdleTimeout: idleTimeout,
		MaxHeaderBytes: proxy.MaxHeaderBytes, ConnState: s.conns.stateFor("S3SEAL_ADDR"), ErrorLog: errorLog}
	s.healthConns = &connLimit{max: healthMaxConns, log: s.logger, what: "connections to S3SEAL_METRICS_ADDR", refused: s.countRefused}
	s.health = &http.Server{Handler: health, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idleTimeout,
		ConnState: s.healthConns.stateFor("S3SEAL_METRICS_ADDR"), ErrorLog: errorLog}
	if kmsAPI != nil {
		// Its requests are small: unlike S3 transfers, they get a bound.
		s.kmsAPI = &http.Server{Handler: kmsAPI, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
			WriteTimeout: time.Minute, IdleTimeout: idleTimeout, ConnState: s.conns.stateFor("S3SEAL_KMS_API_ADDR"), ErrorLog: errorLog}
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		s.api.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.api.ErrorLog = tlsport.NewHandshakeLog(s.logger, "S3SEAL_ADDR").ErrorLog()
		if s.kmsAPI != nil {
			s.kmsAPI.TLSConfig = s.api.TLSConfig.Clone()
			s.kmsAPI.ErrorLog = tlsport.NewHandshakeLog(s.logger, "S3SEAL_KMS_API_ADDR").ErrorLog()
		}
		s.tls = true
	}
	var err error
	if s.apiLn, err = listenOn("S3SEAL_ADDR", s.cfg.Addr); err != nil {
		return err
	}
	if s.healthLn, err = listenOn("S3SEAL_METRICS_ADDR", s.cfg.MetricsAddr); err != nil {
		return err
	}
	if s.kmsAPI != nil {
		if s.kmsAPILn, err = listenOn("S3SEAL_KMS_API_ADDR", s.cfg.KMSAPIAddr); err != nil {
			return fmt.Errorf("%w (or set S3SEAL_KMS_API_ADDR=off to turn the KMS API off)", err)
		}
	}
	return nil
}

// listenOn binds addr, set by the variable name, and says in the operator's
// terms why it cannot: the bare "bind: address already in use" names neither
// the setting nor what to do.
func listenOn(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	var why string
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		why = "address already in use: another program (or another s3seal) listens there; stop it or set " + name + " to a free port"
	case errors.Is(err, syscall.EACCES):
		why = "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port of 1024 or more"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		why = "no network interface of this machine has that address; use one of its addresses, or 0.0.0.0 for all"
	default:
		return nil, fmt.Errorf("%s=%s: %w", name, addr, err)
	}
	return nil, &listenError{msg: name + "=" + addr + ": " + why, err: err}
}

// listenError is a bind failure explained: its text replaces the system's,
// which it still wraps for errors.Is.
type listenError struct {
	msg string
	err error
}

func (e *listenError) Error() string { return e.msg }
func (e *listenError) Unwrap() error { return e.err }

// warnPlainHTTP says loudly that plain HTTP beyond this machine is unsafe:
// anyone who can read the traffic sees the data, and can replay a captured
// request (with its body) within the 15-minute signature window.
func warnPlainHTTP(addr net.Addr, tls bool, logger *slog.Logger) {
	tcp, ok := addr.(*net.TCPAddr)
	if tls || !ok || tcp.IP.IsLoopback() {
		return
	}
	logger.Warn("SERVING PLAIN HTTP ON A NON-LOOPBACK ADDRESS: anyone who can read the traffic sees every object "+
		"in the clear and can replay captured requests for up to 15 minutes; set S3SEAL_TLS_CERT and S3SEAL_TLS_KEY, "+
		"or put s3seal behind a TLS-terminating proxy on the same host", "addr", addr.String())
}

// run serves until ctx is done or a listener fails, then shuts down: stop
// accepting, let in-flight requests finish for up to S3SEAL_DRAIN_TIMEOUT
// (requests still running then are cut), and only
// then close the embedded store they may still be using.
func (s *server) run(ctx context.Context) error {
	errc := make(chan error, 3)
	go s.watchFiles(ctx)
	go func() { errc <- serveOn(s.api, s.apiLn, s.tls, s.countPlain("S3SEAL_ADDR", proxy.WriteHTTPSRequired)) }()
	go func() { errc <- s.health.Serve(s.healthLn) }()
	kmsAPIAddr := ""
	if s.kmsAPI != nil {
		go func() {
			errc <- serveOn(s.kmsAPI, s.kmsAPILn, s.tls, s.countPlain("S3SEAL_KMS_API_ADDR", writeKMSHTTPSRequired))
		}()
		kmsAPIAddr = s.kmsAPILn.Addr().String()
	}
	s.logger.Info("serving", "addr", s.apiLn.Addr().String(), "tls", s.tls,
		"health_addr", s.healthLn.Addr().String(), "kms_api_addr", kmsAPIAddr, "upstream", s.upstream.url.String())

	var serveErr error
	select {
	case <-ctx.Done():
		s.logger.Info("shutting down", "drain_timeout", s.cfg.DrainTimeout.String())
	case serveErr = <-errc:
		s.logger.Error("listener failed; shutting down", "err", serveErr)
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	servers := []*http.Server{s.api, s.health}
	if s.kmsAPI != nil {
		servers = append(servers, s.kmsAPI)
	}
	var shutdownErr error
	for _, srv := range servers {
		shutdownErr = errors.Join(shutdownErr, srv.Shutdown(drainCtx))
	}
	if shutdownErr != nil {
		s.logger.Warn("drain timed out; closing remaining connections", "err", shutdownErr)
		for _, srv := range servers {
			srv.Close()
		}
	}
	for _, srv := range servers {
		if l, ok := srv.ErrorLog.Writer().(*tlsport.HandshakeLog); ok {
			l.Close() // what it counted and has not said yet
		}
	}
	s.closeStore()
	s.logger.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// filePoll is how often serve syncs with the keyring and users files:
// changes made with s3seal keys and s3seal users (or by a replica) take
// effect within it, and rotations that are due happen on it. Key grants
// are resolved again every grantRefresh, so that an AWS KMS alias
// re-pointed elsewhere moves grants on it along.
const (
	filePoll     = 2 * time.Second
	grantRefresh = time.Minute
)

// watchFiles keeps serve in step with the keyring (if it uses one) and
// users files until ctx ends.
func (s *server) watchFiles(ctx context.Context) {
	t := time.NewTicker(filePoll)
	defer t.Stop()
	lastRefresh := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.keys.ring != nil {
			s.syncKeyring(ctx)
		}
		s.syncUsers()
		if time.Since(lastRefresh) >= grantRefresh {
			s.users.Refresh()
			lastRefresh = time.Now()
		}
	}
}

// syncUsers takes in changes to users.json.
func (s *server) syncUsers() {
	changed, err := s.users.Sync()
	if err != nil {
		s.logger.Error("syncing with the users file", "err", err)
	}
	if changed {
		s.logger.Info("users changed; in use now")
	}
}

// syncKeyring rotates due keys and takes in others' changes: the data keys
// of a CMK no longer usable leave the cache at once (a disabled key stops
// reads as well as writes), and aliases are resolved again.
func (s *server) syncKeyring(ctx context.Context) {
	ring := s.keys.ring
	rotated, changed, err := ring.Sync()
	for _, k := range rotated {
		s.logger.Info("key rotated", "key_id", k.ID, "versions", k.Versions, "next_rotation", k.NextRotation)
	}
	if err != nil {
		s.logger.Error("syncing with the keyring file; keeping what was loaded", "err", err)
	}
	if !changed {
		return
	}
	s.keyringChanged(ctx)
	s.logger.Info("keyring changed; in use now")
}

// keyringChanged puts a keyring change in force: the data keys of a CMK no
// longer usable leave the cache, and aliases are resolved again, for the
// allow-list and for key grants.
func (s *server) keyringChanged(ctx context.Context) {
	ring := s.keys.ring
	s.cache.Forget(func(keyID string) bool { return !ring.Usable(keyID) })
	if s.bucketKeys != nil {
		// All of them: besides a CMK disabled, a rotation or an alias
		// moved means new objects should go under what the keyring says now.
		s.bucketKeys.Forget(func(string) bool { return true })
	}
	if err := s.keys.allowed.Refresh(ctx); err != nil {
		s.logger.Error("resolving the CMK allow-list after a keyring change", "err", err)
	}
	s.users.Refresh()
}

// serveOn serves srv on ln, with TLS when tls (the certificate is already
// in srv.TLSConfig); a plain HTTP request there gets plain's answer, which
// says to use https (tlsport.HTTPSOnly).
func serveOn(srv *http.Server, ln net.Listener, tls bool, plain tlsport.PlainAnswerer) error {
	if tls {
		return srv.ServeTLS(tlsport.HTTPSOnly(ln, plain), "", "")
	}
	return srv.Serve(ln)
}

// closeAll releases what a failed newServer had already set up.
func (s *server) closeAll() {
	for _, ln := range []net.Listener{s.apiLn, s.healthLn, s.kmsAPILn} {
		if ln != nil {
			ln.Close()
		}
	}
	s.closeStore()
}

func (s *server) closeStore() {
	if s.store == nil {
		return
	}
	s.stopping.Store(true)
	if err := s.store.Close(); err != nil {
		s.logger.Warn("closing the embedded store", "err", err)
	}
	s.store = nil
}

// endpoint is the URL clients use. A wildcard listen address is shown as
// 127.0.0.1, which is at least reachable from this machine.
func (s *server) endpoint() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + tlsport.ReachableAddr(s.apiLn.Addr())
}

func (s *server) healthURL() string {
	return "http://" + tlsport.ReachableAddr(s.healthLn.Addr())
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// bannerTrust is what clients need to trust the certificate, and the host
// they reach s3seal by: the listener's, or with TLS a name the certificate
// has (tlsport.CheckTrust).
func (s *server) bannerTrust() tlsport.Trust {
	host, _, _ := net.SplitHostPort(tlsport.ReachableAddr(s.apiLn.Addr()))
	if !s.tls {
		return tlsport.Trust{Host: host}
	}
	return tlsport.CheckTrust(s.api.TLSConfig.Certificates[0], s.cfg.TLSCert, host, nil)
}

// bannerURL is the URL of ln as the banner shows it, by host.
func (s *server) bannerURL(ln net.Listener, host string) string {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return map[bool]string{true: "https", false: "http"}[s.tls] + "://" + net.JoinHostPort(host, port)
}

// writeBanner tells a person how to use what just started. A secret from
// the environment is never printed (it would end up in logs); a generated
// one lives in the data dir anyway and is what a first run needs to see.
func (s *server) writeBanner(w io.Writer) {
	secret, secretNote, secretRef := s.cred.SecretKey, "(kept in "+absPath(filepath.Join(s.cfg.DataDir, datadir.CredentialsFile))+")", s.cred.SecretKey
	if !s.cred.generated {
		secret, secretNote, secretRef = "(hidden)", "(from S3SEAL_SECRET_KEY)", `"$S3SEAL_SECRET_KEY"`
	}
	upstream := s.upstream.url.String()
	if s.store != nil {
		upstream = "embedded store (versitygw) in " + s.store.Dir
	}
	trust := s.bannerTrust()
	endpoint := s.bannerURL(s.apiLn, trust.Host)
	fmt.Fprintf(w, "\ns3seal is running.\n\n")
	fmt.Fprintf(w, "  version     %s\n", buildinfo.Read())
	fmt.Fprintf(w, "  endpoint    %s\n", endpoint)
	fmt.Fprintf(w, "  access key  %s\n", s.cred.AccessKey)
	fmt.Fprintf(w, "  secret key  %s  %s\n", secret, secretNote)
	fmt.Fprintf(w, "  region      %s\n", s.cfg.Region)
	fmt.Fprintf(w, "  data dir    %s\n", absPath(s.cfg.DataDir))
	fmt.Fprintf(w, "  upstream    %s\n", upstream)
	fmt.Fprintf(w, "  kms         %s\n", s.keys.describe)
	if s.kmsAPILn != nil {
		fmt.Fprintf(w, "  kms api     %s  (aws kms --endpoint-url ...; s3seal users -h)\n", s.bannerURL(s.kmsAPILn, trust.Host))
	}
	fmt.Fprintf(w, "  health      %s/healthz  %s/readyz\n", s.healthURL(), s.healthURL())
	fmt.Fprintf(w, "  metrics     %s/metrics\n\n", s.healthURL())
	if s.store != nil || s.cfg.KMSProvider == providerKeyring {
		fmt.Fprint(w, "The embedded store and keyring are for first runs and demos: the keyring\n"+
			"keeps its master keys in the clear in the data dir. In production set\n"+
			"S3SEAL_UPSTREAM_URL and S3SEAL_KMS_PROVIDER=aws (see s3seal --help).\n\n")
	}
	env := fmt.Sprintf("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s aws --endpoint-url %s",
		s.cred.AccessKey, secretRef, s.cfg.Region, shellWord(endpoint))
	env += writeTrustNote(w, trust)
	fmt.Fprintf(w, "Try it:\n  %s s3 mb s3://demo\n  %s s3 cp README.md s3://demo/\n  %s s3 ls s3://demo/\n\n", env, env, env)
}
