package tlsport

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Trust is whether clients will trust a port's certificate, and what they
// need if not. Host is the name clients use in the endpoint: the
// listener's address when the certificate is for it, else a name the
// certificate has (a certificate for s3.example.com served on
// 0.0.0.0:8443 is used as https://s3.example.com:8443). Then at most one
// of: CABundle, the certificate file's absolute path, which clients pass
// as --ca-bundle (it holds the self-signed certificate the chain ends in);
// CAName, the CA that signed it when neither this system nor the file
// holds that CA; Err, why clients refuse it whatever they trust (expired,
// for no name the banner could use, ...). None of them: the system's CAs
// trust it.
type Trust struct {
	Host     string
	CABundle string
	CAName   string
	Err      error
}

// CheckTrust checks cert (loaded from certFile), served on a listener
// whose address is listenHost, against roots (nil: the system's).
func CheckTrust(cert tls.Certificate, certFile, listenHost string, roots *x509.CertPool) Trust {
	chain, err := parseChain(cert, certFile)
	if err != nil {
		return Trust{Host: listenHost, Err: err}
	}
	leaf, top := chain[0], chain[len(chain)-1]
	t := Trust{Host: certHost(leaf, listenHost)}
	inter := certPool(chain[1:])
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: t.Host, Roots: roots, Intermediates: inter})
	if err == nil || !untrustedCA(err) {
		t.Err = err
		return t
	}
	// Go would take any certificate of the file as a trust anchor, OpenSSL
	// (the AWS CLI's) only a self-signed one: the file is a CA bundle for
	// clients only when its chain ends in one.
	if !selfSigned(top) {
		t.CAName = top.Issuer.String()
		return t
	}
	if _, err = leaf.Verify(x509.VerifyOptions{DNSName: t.Host, Roots: certPool(chain[len(chain)-1:]), Intermediates: inter}); err != nil {
		t.Err = err
		return t
	}
	t.CABundle = certFile
	if abs, err := filepath.Abs(certFile); err == nil {
		t.CABundle = abs
	}
	return t
}

// parseChain is cert's chain, leaf first.
func parseChain(cert tls.Certificate, certFile string) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for _, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", certFile, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s holds no certificate", certFile)
	}
	return chain, nil
}

// certHost is the name clients use for a listener on listenHost: that
// address if the certificate is for it, else the certificate's first DNS
// name that is no wildcard, or its first IP address. A listener's address
// is often no name clients use at all (0.0.0.0 is shown as 127.0.0.1):
// the certificate says which one they use.
func certHost(leaf *x509.Certificate, listenHost string) string {
	if leaf.VerifyHostname(listenHost) == nil {
		return listenHost
	}
	for _, name := range leaf.DNSNames {
		if !strings.Contains(name, "*") {
			return name
		}
	}
	if len(leaf.IPAddresses) > 0 {
		return leaf.IPAddresses[0].String()
	}
	return listenHost
}

func certPool(certs []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

// untrustedCA says whether err is only that no CA trusted here signed the
// certificate: Verify checks validity and host name before that.
func untrustedCA(err error) bool {
	var unknown x509.UnknownAuthorityError
	var noRoots x509.SystemRootsError
	return errors.As(err, &unknown) || errors.As(err, &noRoots)
}

// selfSigned says whether c is signed by its own key (a root, or a
// self-signed leaf, which may not be a CA and so is checked directly).
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}
