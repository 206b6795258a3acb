package bench

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxSize bounds the object sizes: every worker holds an object's plaintext
// and ciphertext in memory.
const MaxSize = 1 << 30

// sizeUnits are the units ParseSizes accepts, matched case-insensitively.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
}

// parseSize reads "16MiB", "4k", "1000" and the like.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q: want a whole number with an optional unit (B, KiB, MiB, GiB)", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (want B, KiB, MiB, GiB)", s, strings.TrimSpace(s[i:]))
	}
	if n > MaxSize/unit {
		return 0, fmt.Errorf("%q is more than %s", s, FormatSize(MaxSize))
	}
	return n * unit, nil
}

// ParseSizes reads a comma-separated list of sizes: distinct sizes from 1
// byte to MaxSize, returned in ascending order.
func ParseSizes(list string) ([]int64, error) {
	var out []int64
	for f := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		n, err := parseSize(f)
		if err != nil {
			return nil, err
		}
		if n < 1 {
			return nil, fmt.Errorf("%q: sizes start at 1 byte", strings.TrimSpace(f))
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%s is listed twice", FormatSize(n))
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no sizes given")
	}
	slices.Sort(out)
	return out, nil
}

// FormatSize names a size in the largest binary unit that divides it:
// 4096 is "4KiB", 1000 is "1000B". Labels and tables use it.
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		v    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// sizesOf lists the sizes results have, each once, in the order they come.
func sizesOf[R any](results []R, size func(R) int64) []int64 {
	var sizes []int64
	for _, r := range results {
		if !slices.Contains(sizes, size(r)) {
			sizes = append(sizes, size(r))
		}
	}
	return sizes
}
