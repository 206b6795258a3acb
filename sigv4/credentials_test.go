package sigv4

import "testing"

func TestStaticCredentials(t *testing.T) {
	creds := StaticCredentials{"A": "a", "B": "b"}
	for _, tc := range []struct {
		accessKey, secret string
		ok                bool
	}{
		{"A", "a", true},
		{"B", "b", true},
		{"C", "", false},
		{"", "", false},
	} {
		if secret, ok := creds.Secret(tc.accessKey); secret != tc.secret || ok != tc.ok {
			t.Errorf("Secret(%q) = %q, %v; want %q, %v", tc.accessKey, secret, ok, tc.secret, tc.ok)
		}
	}
}
