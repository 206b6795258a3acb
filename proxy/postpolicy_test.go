package proxy

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestParsePolicy(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	exp := `"expiration":"2030-01-01T00:00:00.000Z"`
	tests := []struct {
		name, policy string
		code         string // "" means parsed
	}{
		{"minimal", b64(`{` + exp + `,"conditions":[]}`), ""},
		{"every kind", b64(`{` + exp + `,"conditions":[{"bucket":"b"},["eq","$key","k"],["starts-with","$Content-Type","image/"],` +
			`["content-length-range","1","10"],["content-length-range",0,5]]}`), ""},
		{"not base64", "%%%", "InvalidPolicyDocument"},
		{"not JSON", b64(`{`), "InvalidPolicyDocument"},
		{"no expiration", b64(`{"conditions":[]}`), "InvalidPolicyDocument"},
		{"bad expiration", b64(`{"expiration":"tomorrow","conditions":[]}`), "InvalidPolicyDocument"},
		{"no conditions", b64(`{` + exp + `}`), "InvalidPolicyDocument"},
		{"unknown operator", b64(`{` + exp + `,"conditions":[["ends-with","$key","x"]]}`), "InvalidPolicyDocument"},
		{"field without $", b64(`{` + exp + `,"conditions":[["eq","key","x"]]}`), "InvalidPolicyDocument"},
		{"two elements", b64(`{` + exp + `,"conditions":[["eq","$key"]]}`), "InvalidPolicyDocument"},
		{"range reversed", b64(`{` + exp + `,"conditions":[["content-length-range",10,1]]}`), "InvalidPolicyDocument"},
		{"non-string value", b64(`{` + exp + `,"conditions":[{"key":1}]}`), "InvalidPolicyDocument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePolicy(tc.policy)
			if tc.code == "" && err != nil || tc.code != "" && (err == nil || asS3Error(err).Code != tc.code) {
				t.Fatalf("error %v, want %q", err, tc.code)
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &postPolicy{expiration: exp, hasRange: true, min: 1, max: 10, conds: []policyCond{
		{op: "starts-with", field: "content-type", value: "image/", raw: "ct"},
		{op: "eq", field: "key", value: "k", raw: "key"},
	}}
	tests := []struct {
		name   string
		now    time.Time
		fields map[string]string
		size   int64
		msg    string // "" means accepted
	}{
		{"ok", exp.Add(-time.Hour), map[string]string{"content-type": "image/png", "key": "k", "policy": "p", "x-ignore-a": "b", "bucket": "bkt"}, 5, ""},
		{"type list", exp.Add(-time.Hour), map[string]string{"content-type": "image/png, image/gif", "key": "k"}, 5, ""},
		{"type list, one off", exp.Add(-time.Hour), map[string]string{"content-type": "image/png,text/html", "key": "k"}, 5, "Policy Condition failed: ct"},
		{"expired", exp.Add(time.Second), map[string]string{"content-type": "image/png", "key": "k"}, 5, "Policy expired."},
		{"extra", exp.Add(-time.Hour), map[string]string{"content-type": "image/png", "key": "k", "b": "1", "a": "2"}, 5, "Extra input fields: a, b"},
		{"too large", exp.Add(-time.Hour), map[string]string{"content-type": "image/png", "key": "k"}, 11, "maximum allowed size"},
		{"too small", exp.Add(-time.Hour), map[string]string{"content-type": "image/png", "key": "k"}, 0, "minimum allowed size"},
		{"at the bounds", exp.Add(-time.Hour), map[string]string{"content-type": "image/png", "key": "k"}, 10, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := p.check(tc.now, tc.fields, tc.size)
			if tc.msg == "" && err != nil || tc.msg != "" && (err == nil || !strings.Contains(asS3Error(err).Message, tc.msg)) {
				t.Fatalf("error %v, want %q", err, tc.msg)
			}
		})
	}
}
