package proxy

import (
	"strconv"
	"strings"
)

// byteRange is a satisfiable range of an object: n bytes from off.
type byteRange struct{ off, n int64 }

// rangeResult is how a Range header applies to an object of a given size.
type rangeResult int

const (
	rangeNone          rangeResult = iota // no usable Range: serve the whole object
	rangeOK                               // serve byteRange with 206
	rangeUnsatisfiable                    // answer 416 InvalidRange
)

// parseRange applies a Range header to an object of size bytes the way S3
// does: one range of the forms bytes=a-b, bytes=a- and bytes=-n; a header
// that is malformed, names another unit or lists several ranges is ignored
// and the whole object served; a range starting at or past the end, a zero
// suffix, and any range of an empty object are unsatisfiable.
func parseRange(h string, size int64) (byteRange, rangeResult) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return byteRange{}, rangeNone
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return byteRange{}, rangeNone
	}
	num := func(s string) (int64, bool) {
		if s == "" || strings.TrimLeft(s, "0123456789") != "" {
			return 0, false
		}
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	}
	switch {
	case first == "":
		n, ok := num(last)
		if !ok {
			return byteRange{}, rangeNone
		}
		if n == 0 || size == 0 {
			return byteRange{}, rangeUnsatisfiable
		}
		n = min(n, size)
		return byteRange{off: size - n, n: n}, rangeOK
	default:
		a, ok := num(first)
		if !ok {
			return byteRange{}, rangeNone
		}
		b := int64(-1)
		if last != "" {
			if b, ok = num(last); !ok || b < a {
				return byteRange{}, rangeNone
			}
		}
		if a >= size {
			return byteRange{}, rangeUnsatisfiable
		}
		if b < 0 || b >= size {
			b = size - 1
		}
		return byteRange{off: a, n: b - a + 1}, rangeOK
	}
}
