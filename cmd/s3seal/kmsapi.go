package main

import (
	"context"
	"net/http"

	"github.com/s3seal/s3seal/internal/kmsapi"
	"github.com/s3seal/s3seal/sigv4"
)

// newKMSAPI wires the KMS API over the keyring serve uses, for the same
// principals as the S3 side, or returns nil when it is not served (the aws
// provider, or S3SEAL_KMS_API_ADDR empty). A change made through it is in
// force for the proxy at once: it is the same keyring.
func (s *server) newKMSAPI(ctx context.Context) (http.Handler, error) {
	if s.keys.ring == nil || s.cfg.KMSAPIAddr == "" {
		return nil, nil
	}
	return kmsapi.New(kmsapi.Config{
		Keyring:    s.keys.ring,
		Auth:       &sigv4.Verifier{Credentials: s.users, Region: s.cfg.Region, Service: "kms"},
		Authorizer: s.users,
		Region:     s.cfg.Region,
		Changed:    func() { s.keyringChanged(context.WithoutCancel(ctx)) },
		Observer:   s.metrics.ObserveKMSAPI,
		Logger:     s.logger.With("listener", "kms-api"),
	})
}

// writeKMSHTTPSRequired answers a plain HTTP request on the KMS API's TLS
// port in the KMS protocol's shape.
func writeKMSHTTPSRequired(w http.ResponseWriter, _ *http.Request, httpsURL string) {
	kmsapi.WriteHTTPSRequired(w, httpsURL)
}
