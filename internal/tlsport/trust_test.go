package tlsport

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/testcert"
)

func TestCheckTrust(t *testing.T) {
	certs := testcert.NewSet(t)
	pool := func(c testcert.Cert) *x509.CertPool {
		p := x509.NewCertPool()
		p.AddCert(c.Cert)
		return p
	}
	tests := []struct {
		name     string
		chain    []testcert.Cert
		listen   string
		roots    *x509.CertPool
		host     string
		caBundle bool
		caName   string
		err      string
	}{
		{"self-signed, system roots", []testcert.Cert{certs.IP}, "127.0.0.1", nil, "127.0.0.1", true, "", ""},
		{"trusted by the given roots", []testcert.Cert{certs.IP}, "127.0.0.1", pool(certs.IP), "127.0.0.1", false, "", ""},
		{"listener on another address: the certificate's", []testcert.Cert{certs.IP}, "192.0.2.1", nil, "127.0.0.1", true, "", ""},
		{"for a DNS name, its CA trusted", []testcert.Cert{certs.ByCA}, "127.0.0.1", pool(certs.CA), "s3.example.com", false, "", ""},
		{"self-signed for a DNS name", []testcert.Cert{certs.DNS}, "127.0.0.1", nil, "s3.example.com", true, "", ""},
		{"signed by a CA the file lacks", []testcert.Cert{certs.ByCA}, "127.0.0.1", nil, "s3.example.com", false, "CN=s3seal test CA", ""},
		{"with its CA in the file", []testcert.Cert{certs.ByCA, certs.CA}, "127.0.0.1", nil, "s3.example.com", true, "", ""},
		{"with an intermediate, the root not in the file", []testcert.Cert{certs.ByInter, certs.Inter}, "127.0.0.1", nil, "s3.example.com", false, "CN=s3seal test CA", ""},
		{"with an intermediate and the root", []testcert.Cert{certs.ByInter, certs.Inter, certs.CA}, "127.0.0.1", nil, "s3.example.com", true, "", ""},
		{"expired", []testcert.Cert{certs.Expired}, "127.0.0.1", nil, "s3.example.com", false, "", "x509: certificate has expired or is not yet valid"},
		{"for no name the banner could use", []testcert.Cert{certs.Wildcard}, "127.0.0.1", nil, "127.0.0.1", false, "",
			"x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		certFile, keyFile := testcert.WriteChain(t, dir, "cert", tt.chain...)
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		got := CheckTrust(cert, certFile, tt.listen, tt.roots)
		if got.Host != tt.host || (got.CABundle == certFile) != tt.caBundle || (!tt.caBundle && got.CABundle != "") || got.CAName != tt.caName ||
			(tt.err == "") != (got.Err == nil) || (got.Err != nil && !strings.Contains(got.Err.Error(), tt.err)) {
			t.Errorf("%s: got %+v; want host %s, ca bundle %v, CA %q, error %q", tt.name, got, tt.host, tt.caBundle, tt.caName, tt.err)
		}
	}
}
