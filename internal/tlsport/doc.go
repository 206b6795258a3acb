// Package tlsport serves an API (S3, the KMS API) over TLS on a port that
// clients may mistakenly speak plain HTTP to: such a request gets an answer
// in the API's own protocol that says to use https (HTTPSOnly), and failed
// handshakes are logged summarized rather than one line each
// (HandshakeLog). It also tells the operator whether clients will trust
// the port's certificate, and what they need if not (CheckTrust).
package tlsport
