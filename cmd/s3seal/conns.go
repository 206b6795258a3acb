package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/s3seal/s3seal/internal/tlsport"
	"github.com/s3seal/s3seal/metrics"
)

// connLimit caps a listener's open connections below the process's file
// descriptor limit, so that clients that open connections and idle (until
// ReadHeaderTimeout or idleTimeout closes them) cannot leave s3seal
// without descriptors for the store, the key service and its own files.
// The S3 and KMS API listeners share one; the metrics listener has its own.
// A connection beyond the cap is closed as soon as it is accepted, rather
// than left waiting in the listen backlog as netutil.LimitListener would:
// the client learns at once and retries, and accepting keeps going, so
// that a slot freed by a closing connection is used.
type connLimit struct {
	max      int64 // 0: no cap
	open     atomic.Int64
	lastWarn atomic.Int64 // unix nanoseconds of the last warning
	log      *slog.Logger
	what     string // whose connections, for the warning
	// refused, if set, counts a connection closed for the cap, by the
	// setting of the listener it came to.
	refused func(listener string)
}

// healthMaxConns caps the metrics listener's connections (/metrics,
// /healthz, /readyz, pprof): Prometheus and probes need a few, and the
// descriptor reserve (fdReserve) has room for them.
const healthMaxConns = 64

// fdReserve is how many descriptors s3seal keeps from client connections:
// two connections to the store for each of S3SEAL_MAX_INFLIGHT requests (a
// copy reads one object while it writes another), and room for files, the
// listeners and the key service.
func fdReserve(maxInflight int) uint64 {
	return 2*uint64(maxInflight) + 1024
}

// newConnLimit caps connections at nofile, the descriptor limit, less a
// reserve, which is at most half of it; nofile 0 (unknown) means no cap.
func newConnLimit(nofile uint64, maxInflight int, log *slog.Logger) *connLimit {
	l := &connLimit{log: log, what: "client connections (S3SEAL_ADDR, S3SEAL_KMS_API_ADDR)"}
	if nofile == 0 {
		return l
	}
	nofile = min(nofile, 1<<31) // "unlimited" is no count to subtract from
	reserve := nofile / 2
	if maxInflight > 0 {
		reserve = min(reserve, fdReserve(maxInflight))
	}
	l.max = int64(nofile - reserve)
	return l
}

// stateFor is the http.Server.ConnState of the listener whose setting is
// listener: it counts connections from accepted to closed, and closes at
// once those beyond the cap.
func (l *connLimit) stateFor(listener string) func(net.Conn, http.ConnState) {
	return func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			if n := l.open.Add(1); l.max > 0 && n > l.max {
				c.Close() // net/http then reports it StateClosed, as any other
				l.warn(n)
				if l.refused != nil {
					l.refused(listener)
				}
			}
		case http.StateClosed, http.StateHijacked:
			l.open.Add(-1)
		}
	}
}

// warn says the cap was reached, at most once a minute: a flood of
// connections must not become a flood of log lines.
func (l *connLimit) warn(n int64) {
	now, last := time.Now().UnixNano(), l.lastWarn.Load()
	if now-last < int64(time.Minute) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("too many "+l.what+": new ones are closed at once until some close",
		"open", n-1, "max", l.max)
}

// limitConns raises the open-file limit as far as allowed and caps the S3
// and KMS API listeners' connections below it.
func (s *server) limitConns() *connLimit {
	nofile, err := raiseFileLimit()
	if err != nil {
		s.logger.Warn("cannot raise the open-file limit", "err", err)
	}
	l := newConnLimit(nofile, s.cfg.MaxInflight, s.logger)
	l.refused = s.countRefused
	s.logger.Info("client connections", "open_file_limit", nofile, "max_conns", l.max)
	return l
}

// raiseFileLimit raises the soft limit on open files to the hard limit
// and returns it: every client connection holds a descriptor. (Go's os
// package does so too since Go 1.19; this makes it explicit and tells the
// value.)
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return uint64(lim.Cur), fmt.Errorf("setrlimit to %d: %w", lim.Max, err)
		}
		lim = raised
	}
	return uint64(lim.Cur), nil
}

// countRefused counts a connection closed for a cap on listener.
func (s *server) countRefused(listener string) {
	s.metrics.ObserveRefused(listener, metrics.RefusedOverCap)
}

// countPlain has plain answer a plain HTTP request to the TLS listener
// whose setting is listener, and counts it.
func (s *server) countPlain(listener string, plain tlsport.PlainAnswerer) tlsport.PlainAnswerer {
	return func(w http.ResponseWriter, r *http.Request, httpsURL string) {
		s.metrics.ObserveRefused(listener, metrics.RefusedPlainHTTP)
		plain(w, r, httpsURL)
	}
}
