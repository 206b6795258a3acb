package doctor

// /healthz, /readyz and /metrics, on the metrics listener (kept off the S3 port so a
// load balancer's probes never reach the S3 API or need a signature), and
// /debug/pprof/ there when S3SEAL_PPROF=true.
//
// /healthz: the process is up and serving HTTP. Nothing else: a restart
// would not fix an unreachable KMS.
//
// /readyz: s3seal can do its job right now. Its probes are the checks of
// `s3seal doctor` that write nothing (StartChecks), which
// serve also runs once at start:
//   - upstream: a signed ListBuckets answered. AccessDenied still counts
//     (the credential is valid, it merely lacks s3:ListAllMyBuckets, which
//     the proxy does not need); a rejected credential or a 5xx does not.
//   - kms-key: the CMK for new objects resolves (DescribeKey) and is enabled.
//   - kms-generate-data-key, kms-decrypt, kms-reencrypt: what the proxy
//     asks of the KMS is allowed, with the probe context
//     {"s3seal:probe": "ready"}, which marks these calls in the KMS audit
//     log. Data keys are zeroed at once.
//   - kms-allow-list: the CMKs objects may be read under are resolved
//     (DescribeKey of each configured name). Until they are, every object
//     is refused.
// At start, a check failing on a definite misconfiguration (a key that does
// not exist or is disabled, a denied permission, a refused store
// credential) stops s3seal; one whose dependency merely does not answer
// leaves it not ready, and /readyz shows the doctor's message until the
// check passes. Once passed, a check is not run again, except upstream and
// kms-generate-data-key (Steady), which every request depends on. Results
// are cached for readyTTL, so a probe every second costs at most one KMS
// call per 10 s once ready (about 8,600 a day per instance).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

const (
	readyTTL     = 10 * time.Second
	probeTimeout = 5 * time.Second
)

// probe is one Readiness check.
type probe struct {
	name  string
	check func(ctx context.Context) error
}

// Readiness is /readyz: it runs its probes and caches their combined result.
type Readiness struct {
	probes []probe
	now    func() time.Time

	mu      sync.Mutex // held while probing, so concurrent /readyz calls share one round
	checked time.Time
	failed  map[string]string // probe name -> error; empty when ready
}

func newReadiness(probes ...probe) *Readiness {
	return &Readiness{probes: probes, now: time.Now}
}

// Status returns the failing probes (none when ready), probing again when
// the cached result is older than readyTTL.
func (r *Readiness) Status(ctx context.Context) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed != nil && r.now().Sub(r.checked) < readyTTL {
		return r.failed
	}
	failed := map[string]string{}
	for _, p := range r.probes {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		if err := p.check(pctx); err != nil {
			failed[p.name] = err.Error()
		}
		cancel()
	}
	r.failed, r.checked = failed, r.now()
	return failed
}

// HealthHandler serves /healthz and /readyz, /metrics when metrics is not
// nil, and net/http/pprof's handlers under /debug/pprof/ when profiling is
// true (S3SEAL_PPROF).
func HealthHandler(ready *Readiness, metrics http.Handler, profiling bool) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	if profiling {
		handlePprof(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if failed := ready.Status(r.Context()); len(failed) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failed": failed})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return mux
}

// handlePprof registers net/http/pprof's handlers on mux, as its init does
// on http.DefaultServeMux, which s3seal never serves. Index also serves the
// named profiles (/debug/pprof/heap, goroutine, allocs, block, mutex,
// threadcreate). No method is set: symbol takes POST as well as GET.
func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// NewReadiness is the readiness of checks, run in sess: a check that has
// passed is not run again unless it is Steady; a check skipped because one it
// needs has not passed counts as not ready.
func NewReadiness(sess *Session, checks []Check) *Readiness {
	return newReadiness(checkProbes(sess, checks)...)
}

// checkProbes makes the probes of checks, run in sess.
func checkProbes(sess *Session, checks []Check) []probe {
	probes := make([]probe, 0, len(checks))
	for _, c := range checks {
		probes = append(probes, probe{name: c.Name, check: func(ctx context.Context) error {
			if last, ok := sess.Last(c.Name); ok && last.Status == Pass && !c.Steady {
				return nil
			}
			r := sess.Run(ctx, c)
			switch r.Status {
			case Pass:
				return nil
			case Skip:
				return errors.New("not checked: " + r.Message)
			}
			return errors.New(r.Summary())
		}})
	}
	return probes
}

// CheckAtStart runs the start checks once, each bounded by probeTimeout. A
// required check failing on a misconfiguration stops the start with the
// doctor's message; one whose dependency does not answer is logged, and
// /readyz reports it until it passes.
func CheckAtStart(ctx context.Context, sess *Session, checks []Check, logger *slog.Logger) error {
	var stop []Result
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		r := sess.Run(cctx, c)
		cancel()
		// A skipped check waits for one that failed, which is logged.
		switch {
		case r.Status != Fail:
		case r.Unavailable || !r.Required:
			logger.Warn("not ready yet", "check", r.Name, "err", r.Summary())
		default:
			logger.Error("configuration check failed", "check", r.Name, "err", r.Summary())
			stop = append(stop, r)
		}
	}
	if len(stop) == 0 {
		return nil
	}
	msg := stop[0].Summary()
	if n := len(stop) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more failed check%s: see the log above, or run s3seal doctor)", n, map[bool]string{true: "s"}[n > 1])
	}
	return errors.New(msg)
}
