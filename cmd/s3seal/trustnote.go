package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/s3seal/s3seal/internal/tlsport"
)

// shellWord quotes s for a POSIX shell where it needs it.
func shellWord(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=@,%", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeTrustNote says, before the banner's commands, what clients need to
// trust s3seal's certificate (trust, from tlsport.CheckTrust), and returns
// the option the commands take for it ("" without TLS, or for a
// certificate the system trusts).
func writeTrustNote(w io.Writer, trust tlsport.Trust) string {
	var invalid x509.CertificateInvalidError
	switch {
	case trust.Err != nil && errors.As(trust.Err, &invalid) && invalid.Reason == x509.Expired:
		fmt.Fprintf(w, "The TLS certificate is not valid now, so clients will refuse it: %v\n"+
			"Renew it (or check this machine's clock), and restart s3seal (README, \"TLS\").\n\n", trust.Err)
	case trust.Err != nil:
		fmt.Fprintf(w, "The TLS certificate does not verify for %s, so clients will refuse it: %v\n"+
			"Use a certificate for that name (README, \"TLS\"), or a name the certificate has in --endpoint-url.\n\n", trust.Host, trust.Err)
	case trust.CAName != "":
		fmt.Fprintf(w, "The TLS certificate is signed by %s, a CA this system does not trust,\n"+
			"and S3SEAL_TLS_CERT does not hold it: clients need that CA's certificate as their CA\n"+
			"bundle (aws --ca-bundle CA.pem, AWS_CA_BUNDLE=CA.pem for SDKs; README, \"TLS\").\n\n", trust.CAName)
	case trust.CABundle != "":
		fmt.Fprintf(w, "The TLS certificate is not signed by a CA this system trusts: clients need\n"+
			"it as their CA bundle (aws --ca-bundle, AWS_CA_BUNDLE for SDKs; README, \"TLS\").\n\n")
		return " --ca-bundle " + shellWord(trust.CABundle)
	}
	return ""
}
