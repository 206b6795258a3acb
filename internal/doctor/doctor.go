// Package doctor checks a configuration of s3seal against the real store
// and key service it names: that the store answers and accepts s3seal's
// credential, behaves as s3seal needs (multipart ETags, part reads, ranges,
// conditions, copies, metadata, sub-resources), and that the KMS key
// resolves, is enabled and allows what s3seal asks of it.
//
// The checks are data (Checks): each has a name, whether a failure makes
// the configuration unusable (Required), whether it writes probe objects
// (Writes: it needs a bucket), whether serve runs it at start and in
// /readyz (Start), and a function saying what it found, what breaks when it
// fails and how to fix it. `s3seal doctor` runs them all; serve runs those
// that write nothing at start, stops on a definite misconfiguration and
// reports a dependency that merely does not answer on /readyz until it does.
package doctor

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/minio/minio-go/v7"
)

// Status is how a check ended.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip" // not run: it needs --bucket, or a check it depends on did not pass
)

// Outcome is what a check found.
type Outcome struct {
	OK bool
	// Message on success describes what was checked; on failure it says
	// what the store or KMS did and what breaks because of it.
	Message string
	Fix     string // on failure: how to fix it
	// Unavailable marks a failure of a dependency that does not answer
	// (network, timeout, 5xx, throttling): it may pass by itself later. Any
	// other failure is a misconfiguration.
	Unavailable bool
	Skipped     bool
}

func passed(msg string) Outcome { return Outcome{OK: true, Message: msg} }

func failed(msg, fix string) Outcome { return Outcome{Message: msg, Fix: fix} }

func unavailable(msg, fix string) Outcome { return Outcome{Message: msg, Fix: fix, Unavailable: true} }

func skipped(msg string) Outcome { return Outcome{Skipped: true, Message: msg} }

// Check is one check.
type Check struct {
	Name     string // stable identifier: "multipart-etag"
	Title    string // what passing means, for people: "multipart ETags end in -N"
	Required bool   // a failure makes the configuration unusable (exit status 1)
	Writes   bool   // writes and deletes probe objects: runs only with a bucket
	Start    bool   // serve runs it at start and /readyz reports it
	// Steady: /readyz runs it again every round even after it has passed
	// (cheap, and what every request depends on). Other start checks are
	// re-run only until they pass.
	Steady bool
	Needs  []string // checks that must have passed first; otherwise this one is skipped
	Run    func(ctx context.Context, s *Session) Outcome
}

// Result is a check's outcome as reported.
type Result struct {
	Name     string `json:"name"`
	Title    string `json:"-"`
	Required bool   `json:"required"`
	Status   Status `json:"status"`
	Message  string `json:"message"`
	Fix      string `json:"fix"`
	// Unavailable: a failure of a dependency that does not answer, not a
	// misconfiguration (see Outcome).
	Unavailable bool `json:"-"`
}

// Line is the result as one line for people: "✓ what was checked",
// "✗ title: what happened — what breaks; fix: how", "- title: skipped: why".
func (r Result) Line() string {
	switch r.Status {
	case Pass:
		if r.Message == "" {
			return "✓ " + r.Title
		}
		return "✓ " + r.Message
	case Skip:
		return "- " + r.Title + ": skipped: " + r.Message
	}
	s := "✗ " + r.Summary()
	if !r.Required {
		s += " (not required)"
	}
	return s
}

// Summary is a failed result without its mark: "title: message; fix: fix".
// It is what serve stops with and what /readyz shows.
func (r Result) Summary() string {
	s := r.Title + ": " + r.Message
	if r.Fix != "" {
		s += "; fix: " + r.Fix
	}
	return s
}

// Report is the outcome of a run of several checks.
type Report struct {
	OK     bool     `json:"ok"` // no required check failed
	Checks []Result `json:"checks"`
	// WritesSkipped: there was no bucket, so the checks that write were
	// skipped and OK covers the others only.
	WritesSkipped bool `json:"-"`
	// Cleanup is why probe objects could not all be deleted, or nil.
	Cleanup error `json:"-"`
}

// Store is the S3 store s3seal forwards to, and how s3seal signs for it.
type Store struct {
	URL       *url.URL
	AccessKey string
	SecretKey string
	Region    string
	// Embedded: s3seal's own embedded store (messages say so).
	Embedded bool
	// Transport sends the checks' requests; nil means a clone of
	// http.DefaultTransport, as the proxy uses.
	Transport http.RoundTripper
}

// KMS is the key service as s3seal is configured to use it.
type KMS struct {
	Keys     kms.KeyService
	Status   kms.KeyStatusReader
	Resolver kms.KeyResolver
	// KeyID is S3SEAL_KMS_KEY_ID, DecryptKeyIDs S3SEAL_KMS_DECRYPT_KEY_IDS.
	KeyID         string
	DecryptKeyIDs []string
	// Allowed is the allow-list the proxy uses; nil: one is made from
	// Resolver, KeyID and DecryptKeyIDs.
	Allowed *kms.AllowList
	// Keyring: the embedded keyring, whose fixes are `s3seal keys`
	// commands rather than KMS permissions.
	Keyring bool
	// Service names the key service in messages when its errors do not:
	// "key service URL", "embedded keyring PATH".
	Service string
}

// Config is what a session checks.
type Config struct {
	Store  Store
	KMS    KMS
	Bucket string // where probe objects may be written; "": the checks that write are skipped
	// Purpose is the value of "s3seal:probe" in the encryption context of
	// the KMS calls, which marks them in the KMS audit log; "" is "doctor".
	Purpose string
	// CheckTimeout bounds each check in RunAll; 0 is one minute.
	CheckTimeout time.Duration
	Now          func() time.Time // nil: time.Now
}

// Session runs checks against one configuration and keeps what the checks
// leave for later ones (the store's clock, the probe objects, a data key's
// digest). Its methods are safe for concurrent use, but checks run one at a
// time.
type Session struct {
	cfg Config

	mu      sync.Mutex // held while a check runs
	results map[string]Result

	// Left by checks for later ones.
	clock     clockSample
	client    *minio.Client
	clientErr error
	prefix    string
	small     *probeObject // a 1000-byte object, made on first use
	multipart *probeObject // the 2-part object
	dataKey   *probeDataKey
	uploads   []string // multipart uploads started, aborted at cleanup unless completed
	completed map[string]bool
	wroteAny  bool
}

// NewSession starts a session; it makes no request.
func NewSession(cfg Config) *Session {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Purpose == "" {
		cfg.Purpose = "doctor"
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = time.Minute
	}
	if cfg.KMS.Allowed == nil && cfg.KMS.Resolver != nil {
		cfg.KMS.Allowed = kms.NewAllowList(cfg.KMS.Resolver, append([]string{cfg.KMS.KeyID}, cfg.KMS.DecryptKeyIDs...)...)
	}
	return &Session{cfg: cfg, results: map[string]Result{}, completed: map[string]bool{}}
}

// Run runs one check, unless it needs a bucket the session has not got or
// a check it needs has not passed, and records its result.
func (s *Session) Run(ctx context.Context, c Check) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	var o Outcome
	switch {
	case c.Writes && s.cfg.Bucket == "":
		o = skipped("it writes probe objects: run with --bucket B")
	default:
		if unmet := s.unmet(c.Needs); unmet != "" {
			o = skipped("needs " + unmet + " to pass first")
		} else {
			o = c.Run(ctx, s)
		}
	}
	r := Result{Name: c.Name, Title: c.Title, Required: c.Required, Message: o.Message}
	switch {
	case o.Skipped:
		r.Status = Skip
	case o.OK:
		r.Status = Pass
	default:
		r.Status, r.Fix, r.Unavailable = Fail, o.Fix, o.Unavailable
	}
	s.results[c.Name] = r
	return r
}

// unmet names the first of needs that has not passed, or "".
func (s *Session) unmet(needs []string) string {
	for _, n := range needs {
		if s.results[n].Status != Pass {
			return n
		}
	}
	return ""
}

// Last is the latest result of the check named name.
func (s *Session) Last(name string) (Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.results[name]
	return r, ok
}

// RunAll runs checks in order, each bounded by Config.CheckTimeout, and
// passes each result to progress (when not nil) as it comes; then it
// deletes every probe object and aborts every upload it made, whatever
// happened (also when ctx is done).
func (s *Session) RunAll(ctx context.Context, checks []Check, progress func(Result)) Report {
	rep := Report{OK: true}
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
		r := s.Run(cctx, c)
		cancel()
		if progress != nil {
			progress(r)
		}
		if r.Status == Fail && r.Required {
			rep.OK = false
		}
		if c.Writes && s.cfg.Bucket == "" {
			rep.WritesSkipped = true
		}
		rep.Checks = append(rep.Checks, r)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	rep.Cleanup = s.Cleanup(cctx)
	return rep
}

// Checks returns every check, in the order they run.
func Checks() []Check {
	return slices.Concat(storeChecks(), kmsChecks())
}

// StartChecks are the checks serve runs at start and /readyz reports: the
// Start checks, which write nothing.
func StartChecks() []Check {
	var out []Check
	for _, c := range Checks() {
		if c.Start && !c.Writes {
			out = append(out, c)
		}
	}
	return out
}

// Probe is the prefix of every probe object's key.
const Probe = ".s3seal-doctor/"

// oneLine keeps the first line of s, cut to n bytes, for messages quoting
// what a store said.
func oneLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
