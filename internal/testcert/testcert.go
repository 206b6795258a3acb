// Package testcert is test support: certificates and keys for the TLS
// tests, self-signed or signed by a test CA, and written as PEM files.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a certificate and its key.
type Cert struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// New makes the certificate tmpl describes (valid for an hour unless it
// says otherwise), signed by parent, or by itself when parent is nil.
func New(t testing.TB, tmpl *x509.Certificate, parent *Cert) Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	if tmpl.NotAfter.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	}
	if tmpl.IsCA {
		tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return Cert{Cert: cert, Key: key}
}

// WriteChain writes chain (leaf first) to dir/name.pem and the leaf's key
// to dir/name-key.pem.
func WriteChain(t testing.TB, dir, name string, chain ...Cert) (certFile, keyFile string) {
	t.Helper()
	var certs []byte
	for _, c := range chain {
		certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(chain[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, certs, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// Set holds the certificates of the trust cases: self-signed for
// 127.0.0.1 (IP), self-signed for s3.example.com (DNS), for s3.example.com
// signed by CA (ByCA) or by Inter, which CA signed (ByInter), Expired, and
// for a Wildcard only.
type Set struct{ IP, DNS, CA, Inter, ByCA, ByInter, Expired, Wildcard Cert }

// NewSet makes a Set.
func NewSet(t testing.TB) Set {
	t.Helper()
	var c Set
	c.IP = New(t, &x509.Certificate{Subject: pkix.Name{CommonName: "s3seal test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}, nil)
	c.DNS = New(t, &x509.Certificate{Subject: pkix.Name{CommonName: "s3.example.com"}, DNSNames: []string{"s3.example.com"}}, nil)
	c.CA = New(t, &x509.Certificate{Subject: pkix.Name{CommonName: "s3seal test CA"}, IsCA: true}, nil)
	c.Inter = New(t, &x509.Certificate{Subject: pkix.Name{CommonName: "s3seal test intermediate"}, IsCA: true}, &c.CA)
	c.ByCA = New(t, &x509.Certificate{Subject: pkix.Name{CommonName: "s3.example.com"}, DNSNames: []string{"s3.example.com", "s3"}}, &c.CA)
	c.ByInter = New(t, &x509.Certificate{Subject: pkix.Name{CommonName: "s3.example.com"}, DNSNames: []string{"s3.example.com"}}, &c.Inter)
	c.Expired = New(t, &x509.Certificate{Subject: pkix.Name{CommonName: "s3.example.com"}, DNSNames: []string{"s3.example.com"},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}, nil)
	c.Wildcard = New(t, &x509.Certificate{Subject: pkix.Name{CommonName: "*.example.com"}, DNSNames: []string{"*.example.com"}}, nil)
	return c
}
