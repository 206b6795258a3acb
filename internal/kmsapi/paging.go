package kmsapi

import (
	"encoding/base64"
	"strings"
)

// Paging for the List operations. Items are listed in name order, and a
// marker is the last name a page held, so that a page follows on from the
// previous one even when items come and go in between. Markers are opaque
// to clients, and checked: one this server did not make is an
// InvalidMarkerException.

const markerPrefix = "s3seal-1:"

type pageInput struct {
	Limit  *int32
	Marker string
}

func encodeMarker(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(markerPrefix + name))
}

func decodeMarker(m string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(m)
	name, ok := strings.CutPrefix(string(b), markerPrefix)
	if err != nil || !ok {
		return "", newError(errInvalidMarker, "The marker that specifies where pagination should next begin is not valid.")
	}
	return name, nil
}

// pageOf returns the page in asks for of items, which are sorted by name:
// at most the limit (1 to maxLimit, defLimit if none) of those after the
// marker, and the marker of the next page ("" for the last one).
func pageOf[T any](items []T, name func(T) string, in pageInput, defLimit, maxLimit int) ([]T, string, error) {
	limit := defLimit
	if in.Limit != nil {
		if *in.Limit < 1 || int(*in.Limit) > maxLimit {
			return nil, "", validation("limit", "Member must have value between 1 and %d", maxLimit)
		}
		limit = int(*in.Limit)
	}
	start := 0
	if in.Marker != "" {
		after, err := decodeMarker(in.Marker)
		if err != nil {
			return nil, "", err
		}
		for start < len(items) && name(items[start]) <= after {
			start++
		}
	}
	end := min(start+limit, len(items))
	if end == len(items) {
		return items[start:end], "", nil
	}
	return items[start:end], encodeMarker(name(items[end-1])), nil
}
