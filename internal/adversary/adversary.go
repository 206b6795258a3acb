// Package adversary is an S3 store that lies, for tests. A Store is a
// reverse proxy in front of a real store (MinIO, or a fake one in unit
// tests): it forwards every request re-signed with the real store's
// credential and, as told by its Lies, changes what the real store is asked
// or what its answer says. s3seal is pointed at it as its upstream, so a test
// can show that each lie a store could tell fails one of s3seal's checks
// rather than reach a client.
//
// Typical use, with real the real store's URL:
//
//	store, err := adversary.New(real, accessKey, secretKey, "")
//	srv := httptest.NewServer(store) // s3seal's upstream
//	store.Set(adversary.Lie{Match: adversary.Match{Method: "HEAD", PartNumber: -1},
//		Kind: adversary.ContentLength, N: 16}) // every part is 16 bytes longer
//	... exercise s3seal, expect a refusal, then inspect store.Requests()
//
// It is test support kept in a normal package so that the tests of several
// packages (unit, fuzz, end-to-end) can share it. Production code must not
// import it.
package adversary

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/s3seal/s3seal/internal/store"
)

// Store is a lying S3 store: a reverse proxy to a real one. It is safe for
// concurrent use.
type Store struct {
	up *store.Client // the real store

	mu      sync.Mutex
	lies    []Lie
	matched []int // per lie: requests its Match selected so far, for Nth
	records []*Record
	etags   map[string]string // ETags shown by ETagParts -> the real ones
}

// Record is one request the Store received, as the client sent it (before
// any lie changed it).
type Record struct {
	Method   string
	Path     string // decoded: "/bucket/key"
	RawQuery string
	Header   http.Header
	// BodyBytes counts the body bytes read from the client, which the Store
	// does only as fast as the real store takes them.
	BodyBytes int64
	// Complete: the body arrived in full, its declared Content-Length (or,
	// for a chunked body, up to its end) read without error.
	Complete bool
	// Lies are the kinds of the lies whose Match selected this request.
	Lies []Kind
}

// Lie is one falsification and the requests it applies to.
type Lie struct {
	Match Match // which requests it applies to; the zero Match matches every request
	Kind  Kind
	N     int64  // the lie's parameter (see each Kind)
	Key   string // another object's key in the same bucket (OtherObject, OtherMetadata), or a header name (DropHeader)
}

// Match selects requests. Every set field must match; the zero Match
// matches every request. Matching looks at the request as received.
type Match struct {
	Method     string // "" any
	Key        string // object key, "" any (bucket requests have key "")
	PartNumber int    // >0: only requests with ?partNumber=N; <0: only requests with any partNumber; 0 any
	Ranged     bool   // only requests carrying a Range header or x-amz-copy-source-range
	// Nth >0: only the Nth request matching the rest (1-based, counted per
	// Lie from the Set that installed it).
	Nth int
}

// New returns an honest Store forwarding to the real store at upstream
// (path-style; upstream's path, if any, prefixes every request's) with the
// given credential. region "" means us-east-1.
func New(upstream *url.URL, accessKey, secretKey, region string) (*Store, error) {
	up, err := store.New(store.Config{Endpoint: upstream, AccessKey: accessKey, SecretKey: secretKey, Region: region})
	if err != nil {
		return nil, fmt.Errorf("adversary: %w", err)
	}
	return &Store{up: up}, nil
}

// Set replaces the active lies and restarts their Nth counts. With no lies
// the Store is an honest proxy.
func (s *Store) Set(lies ...Lie) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lies = slices.Clone(lies)
	s.matched = make([]int, len(lies))
}

// Requests returns a copy of every request received since New or Reset, in
// order of arrival. A body still flowing is counted as far as it got.
func (s *Store) Requests() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(s.records))
	for i, r := range s.records {
		out[i] = *r
		out[i].Header = r.Header.Clone()
		out[i].Lies = slices.Clone(r.Lies)
	}
	return out
}

// Reset forgets the recorded requests. It leaves the lies and their counts.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = nil
}

// ServeHTTP forwards r to the real store with the request-side lies that
// match it, and answers with what the store said, changed by the matching
// answer-side lies.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lies, rec := s.admit(r)
	body, done := s.countBody(r, rec)
	// The record is final once the transport is done with the body.
	defer func() {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}()
	bucket, key := splitPath(r.URL.Path)
	req := s.outgoing(r, bucket, key, lies)
	resp, err := s.up.Stream(r.Context(), req, body, r.ContentLength)
	if err != nil {
		fail(w, err)
		return
	}
	defer resp.Body.Close()
	a, err := s.lieAbout(r, bucket, resp, lies)
	if err != nil {
		fail(w, err)
		return
	}
	a.write(w)
}

// admit records r and returns the lies that apply to it, in Kind order
// (stable), which is the order they are applied in.
func (s *Store) admit(r *http.Request) ([]Lie, *Record) {
	_, key := splitPath(r.URL.Path)
	rec := &Record{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Complete: r.ContentLength == 0}
	s.mu.Lock()
	defer s.mu.Unlock()
	var active []Lie
	for i, l := range s.lies {
		if !l.Match.matches(r, key) {
			continue
		}
		s.matched[i]++
		if l.Match.Nth > 0 && s.matched[i] != l.Match.Nth {
			continue
		}
		active = append(active, l)
		rec.Lies = append(rec.Lies, l.Kind)
	}
	s.records = append(s.records, rec)
	slices.SortStableFunc(active, func(a, b Lie) int { return int(a.Kind) - int(b.Kind) })
	return active, rec
}

func (m Match) matches(r *http.Request, key string) bool {
	switch {
	case m.Method != "" && !strings.EqualFold(m.Method, r.Method):
		return false
	case m.Key != "" && m.Key != key:
		return false
	case m.Ranged && r.Header.Get("Range") == "" && r.Header.Get("X-Amz-Copy-Source-Range") == "":
		return false
	case m.PartNumber == 0:
		return true
	}
	q := r.URL.Query()
	if !q.Has("partNumber") {
		return false
	}
	n, err := strconv.Atoi(q.Get("partNumber"))
	return m.PartNumber < 0 || (err == nil && n == m.PartNumber)
}

// splitPath splits a path-style request path into bucket and key.
func splitPath(p string) (bucket, key string) {
	bucket, key, _ = strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return bucket, key
}

// fail answers an error of the Store itself (not of the real store).
func fail(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusBadGateway)
	var msg strings.Builder
	_ = xml.EscapeText(&msg, []byte(err.Error()))
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AdversaryError</Code><Message>` +
		msg.String() + `</Message></Error>`))
}
