package proxy_test

import (
	"log"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/proxy"
	"github.com/s3seal/s3seal/sigv4"
)

// An encrypting proxy in front of a MinIO on 127.0.0.1:9000, its data keys
// from an embedded keyring (cmd/s3seal wires the same from S3SEAL_*
// variables, with AWS KMS as the other key service). Clients sign for
// AKIDEXAMPLE; s3seal signs for the store with the store's own credential.
func ExampleNew() {
	kr, err := keyring.Open(filepath.Join("/var/lib/s3seal", "keyring.json"))
	if err != nil {
		log.Fatal(err)
	}
	cmk, err := kr.CreateKey("objects")
	if err != nil {
		log.Fatal(err)
	}
	store, _ := url.Parse("http://127.0.0.1:9000")
	p, err := proxy.New(proxy.Config{
		Upstream:          store,
		UpstreamAccessKey: "minioadmin",
		UpstreamSecretKey: "minioadmin",
		Auth: &sigv4.Verifier{
			Credentials: sigv4.StaticCredentials{"AKIDEXAMPLE": "client secret"},
			Region:      "us-east-1",
		},
		Keys: kms.ObjectKeys{
			Keys:    kms.NewCache(kr, 4096, 5*time.Minute), // one unwrap per object, not per request
			KeyID:   cmk.ID,
			Allowed: kms.NewAllowList(kr, cmk.ID),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", p))
}
