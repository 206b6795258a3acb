package main

// /healthz, /readyz and /metrics, on the metrics listener (kept off the S3 port so a
// load balancer's probes never reach the S3 API or need a signature).
//
// /healthz: the process is up and serving HTTP. Nothing else: a restart
// would not fix an unreachable KMS.
//
// /readyz: s3seal can do its job right now, which takes two remote
// services and the CMK allow-list:
//   - upstream: a signed ListBuckets (GET /) answered. AccessDenied still
//     counts as ready (the credential is valid, it merely lacks
//     s3:ListAllMyBuckets, which the proxy does not need); a rejected
//     credential or a 5xx does not.
//   - kms: a GenerateDataKey under the configured CMK with the probe
//     context {"s3seal:probe": "ready"}. GenerateDataKey rather than
//     Encrypt because it is what every PUT needs: a least-privilege key
//     policy (GenerateDataKey, Decrypt, ReEncrypt, DescribeKey) would fail
//     an Encrypt probe while the proxy works fine. The returned data key
//     is zeroed and discarded; the probe context marks these calls in the
//     KMS audit log.
//   - kms-allow-list: the CMKs objects may be read under are resolved
//     (DescribeKey of each configured name). Until they are, every object
//     is refused; once they are, the probe costs nothing.
// Results are cached for readyTTL, so a probe every second costs at most
// one KMS call per 10 s (about 8,600 a day per instance).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/s3seal/s3seal/envelope"
)

const (
	readyTTL     = 10 * time.Second
	probeTimeout = 5 * time.Second
)

// probe is one readiness check.
type probe struct {
	name  string
	check func(ctx context.Context) error
}

// readiness runs the probes and caches their combined result.
type readiness struct {
	probes []probe
	now    func() time.Time

	mu      sync.Mutex // held while probing, so concurrent /readyz calls share one round
	checked time.Time
	failed  map[string]string // probe name -> error; empty when ready
}

func newReadiness(probes ...probe) *readiness {
	return &readiness{probes: probes, now: time.Now}
}

// status returns the failing probes (none when ready), probing again when
// the cached result is older than readyTTL.
func (r *readiness) status(ctx context.Context) map[string]string {
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

// healthHandler serves /healthz and /readyz, and /metrics when metrics is
// not nil.
func healthHandler(ready *readiness, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if failed := ready.status(r.Context()); len(failed) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failed": failed})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// probeContext marks readiness calls in the key service's audit log.
var probeContext = map[string]string{"s3seal:probe": "ready"}

// kmsProbe checks that the CMK for new objects can make data keys.
func kmsProbe(ks envelope.KeyService, keyID string) probe {
	return probe{name: "kms", check: func(ctx context.Context) error {
		dk, err := ks.GenerateDataKey(ctx, keyID, probeContext)
		clear(dk.Plaintext)
		return err
	}}
}

// allowListProbe checks that the CMK allow-list is resolved, resolving it
// if not, so /readyz says why objects are refused.
func allowListProbe(allowed *envelope.AllowList) probe {
	return probe{name: "kms-allow-list", check: allowed.Resolve}
}

// upstreamProbe checks that the upstream store answers a signed ListBuckets.
func upstreamProbe(client *http.Client, upstream *url.URL, cred credential, region string) probe {
	return probe{name: "upstream", check: func(ctx context.Context) error {
		return listBuckets(ctx, client, upstream, cred, region)
	}}
}

// emptySHA256 is the payload hash of a request without a body.
var emptySHA256 = func() string { h := sha256.Sum256(nil); return hex.EncodeToString(h[:]) }()

func listBuckets(ctx context.Context, client *http.Client, upstream *url.URL, cred credential, region string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, upstream.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	creds := aws.Credentials{AccessKeyID: cred.AccessKey, SecretAccessKey: cred.SecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptySHA256, "s3", region, time.Now()); err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("upstream unreachable: %w", err)
	}
	defer resp.Body.Close()
	return judgeListBuckets(resp)
}

// credentialErrors are the S3 error codes that mean s3seal's own upstream
// credential or region is wrong: every proxied request would fail the same way.
var credentialErrors = map[string]bool{
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
	"AuthorizationHeaderMalformed": true, "InvalidToken": true, "ExpiredToken": true,
}

// judgeListBuckets decides readiness from a ListBuckets answer: any other
// 4xx (AccessDenied above all) shows a reachable store that accepted the
// credential.
func judgeListBuckets(resp *http.Response) error {
	if resp.StatusCode < 300 {
		return nil
	}
	var s3err struct{ Code string }
	xml.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&s3err) // best effort: a missing code is judged by the status
	switch {
	case resp.StatusCode >= 500:
		return fmt.Errorf("upstream answered %d %s", resp.StatusCode, s3err.Code)
	case credentialErrors[s3err.Code]:
		return fmt.Errorf("upstream refused s3seal's credential: %d %s", resp.StatusCode, s3err.Code)
	}
	return nil
}
