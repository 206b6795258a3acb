package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// notConfig are S3SEAL_ names that are set around s3seal without being its
// configuration, so they must not be reported as misspellings: the test
// suite's and the scripts' own variables. Kubernetes' service links are
// serviceLink's.
var notConfig = []struct {
	name   string
	prefix bool
}{
	{"S3SEAL_TEST_", true},
	{"S3SEAL_TOOLS", false},
	{"S3SEAL_FUZZTIME", false},
}

// The variables Kubernetes adds to every pod for each Service of the
// namespace (kubelet's envvars: SVC is the Service's name, upper case, '-'
// as '_'), for Services named s3seal or s3seal-*: SVC_SERVICE_HOST,
// SVC_SERVICE_PORT, SVC_SERVICE_PORT_PORTNAME, and the Docker-style
// SVC_PORT_PORT_PROTO with _ADDR, _PORT and _PROTO. Only these exact shapes
// are ignored, so that a misspelling still is reported; SVC_PORT, which a
// misspelling could look like, only with a link's value (tcp://IP:PORT).
var (
	serviceLink     = regexp.MustCompile(`^S3SEAL(_[A-Z0-9_]+)?_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT_[0-9]+_(TCP|UDP|SCTP)(_ADDR|_PORT|_PROTO)?)$`)
	servicePort     = regexp.MustCompile(`^S3SEAL(_[A-Z0-9_]+)?_PORT$`)
	servicePortLink = regexp.MustCompile(`^(tcp|udp|sctp)://[^/\s]+:[0-9]+$`)
)

// Unknown is an S3SEAL_ variable in the environment that s3seal does not
// read, and the known variable it most likely meant ("" if none is close).
type Unknown struct {
	Name, Suggestion string
}

// String is the warning for a person. It never holds the variable's value,
// which may be a secret.
func (u Unknown) String() string {
	if u.Suggestion != "" {
		return fmt.Sprintf("unknown variable %s is ignored: did you mean %s?", u.Name, u.Suggestion)
	}
	return fmt.Sprintf("unknown variable %s is ignored (s3seal --help lists the variables)", u.Name)
}

// UnknownVars lists the S3SEAL_ variables in environ that s3seal does not
// know, in environ's order.
func UnknownVars(environ []string) []Unknown {
	known := map[string]bool{}
	for _, v := range Vars() {
		known[v.Name] = true
	}
	var out []Unknown
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(strings.ToUpper(name), "S3SEAL_") || known[name] || ignored(name, value) {
			continue
		}
		out = append(out, Unknown{Name: name, Suggestion: Suggest(name)})
	}
	return out
}

// CheckUnknown is the start-up check: the warnings to give, or, with
// strict set, an error holding them all.
func CheckUnknown(environ []string, strict bool) ([]Unknown, error) {
	unknown := UnknownVars(environ)
	if !strict || len(unknown) == 0 {
		return unknown, nil
	}
	errs := make([]error, 0, len(unknown))
	for _, u := range unknown {
		errs = append(errs, errors.New(u.String()))
	}
	return nil, fmt.Errorf("configuration (S3SEAL_STRICT_CONFIG): %w", errors.Join(errs...))
}

// ignored says whether the unknown variable name, set to value, is one of
// notConfig or a Kubernetes service link. (A known variable is never
// ignored: it is read before this is asked.)
func ignored(name, value string) bool {
	for _, n := range notConfig {
		if name == n.name || n.prefix && strings.HasPrefix(name, n.name) {
			return true
		}
	}
	return serviceLink.MatchString(name) || servicePort.MatchString(name) && servicePortLink.MatchString(value)
}

// Suggest names the known variable closest to name, by edit distance on the
// part after S3SEAL_, or "" when none is close enough to be a likely typo.
// A known name that extends name by whole words (S3SEAL_UPSTREAM for
// S3SEAL_UPSTREAM_URL) counts as close however many letters it adds.
func Suggest(name string) string {
	typed := strings.TrimPrefix(strings.ToUpper(name), "S3SEAL_")
	limit := max(2, len([]rune(typed))/3)
	best, bestDist := "", -1
	for _, v := range Vars() {
		want := strings.TrimPrefix(v.Name, "S3SEAL_")
		d := distance(typed, want)
		if d > limit && !strings.HasPrefix(want, typed+"_") {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = v.Name, d
		}
	}
	return best
}

// distance is the optimal string alignment distance: insertions, deletions,
// substitutions and transpositions of neighbours (LOGLEVLE) each count 1.
func distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	prev2 := make([]int, len(t)+1)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(t)]
}
