package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/s3seal/s3seal/sigv4"
)

// The sealed checksum is encrypted, not only authenticated: a store that
// reads s3seal-s cannot recover a low-entropy object (a 4-digit PIN) by
// trying guesses against it, nor read an object's CRC32 out of it.
func TestSealedChecksumNotInTheClear(t *testing.T) {
	e := newEnv(t)
	secret := []byte("4711")
	_, err := e.client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String("pin"), Body: bytes.NewReader(secret),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := e.store.get(testBucket, "pin").header.Get("X-Amz-Meta-S3seal-S")
	sealed, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(sealed) == 0 {
		t.Fatalf("s3seal-s %q: %v", s, err)
	}
	for i := range 10000 {
		guess := fmt.Sprintf("%04d", i)
		if sum := sha256.Sum256([]byte(guess)); bytes.Contains(sealed, sum[:8]) {
			t.Errorf("the store recovered the object's plaintext %q from x-amz-meta-s3seal-s alone", guess)
		}
	}
	// And for the SDKs' default CRC32: the checksum of any object is in the clear.
	data := randomBytes(1000, 9)
	e.put(t, "crc", data, nil)
	sealed, _ = base64.StdEncoding.DecodeString(e.store.get(testBucket, "crc").header.Get("X-Amz-Meta-S3seal-S"))
	if bytes.Contains(sealed, crc32Bytes(crc32.ChecksumIEEE(data))) {
		t.Errorf("the store's metadata holds the plaintext's CRC32 in the clear: % x", sealed)
	}
}

// The checksum kept is the one the body was verified against, never one
// the verifier did not check: an x-amz-checksum-* query parameter on a
// header-signed PUT (which the verifier does not read, but classify moves
// into the request's headers) is not kept.
func TestChecksumKeptIsTheOneVerified(t *testing.T) {
	e := newEnv(t)
	data := []byte("hello, world")
	bogus := base64.StdEncoding.EncodeToString([]byte{0xde, 0xad, 0xbe, 0xef})
	req := e.signedRequest(t, http.MethodPut, "/"+testBucket+"/k?x-amz-checksum-crc32="+url.QueryEscape(bogus), bytes.NewReader(data), int64(len(data)),
		http.Header{"X-Amz-Sdk-Checksum-Algorithm": {"CRC32"}})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Checksum-Crc32") != crc32Base64(data) {
		t.Fatalf("PUT: %d, answered x-amz-checksum-crc32 %q (the body's %q)", resp.StatusCode,
			resp.Header.Get("X-Amz-Checksum-Crc32"), crc32Base64(data))
	}
	if status, got := e.rawRead(t, http.MethodGet, "k", checksumOn); status != 200 || strings.Contains(got, bogus) {
		t.Errorf("GET with checksum mode: %d %q: a checksum the body was never verified against was kept", status, got)
	}
}

// "attributes" is not a SigV2 sub-resource (no SigV2 signer signs it), so
// a SigV2 GetObjectAttributes signature verifies for the same request
// without ?attributes, a GetObject: the signed x-amz-object-attributes
// header it carries makes such a replay refused.
func TestSigV2AttributesSignatureNotReplayable(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Auth = &sigv4.Verifier{Credentials: staticCreds{clientAK: clientSecret}, Region: "us-east-1", SigV2: true}
	})
	data := randomBytes(5000, 11)
	e.put(t, "secret", data, nil)

	attrs, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/"+testBucket+"/secret?attributes", nil)
	attrs.Header.Set("X-Amz-Object-Attributes", "ObjectSize")
	signed := signer.SignV2(*attrs, clientAK, clientSecret, false)
	resp, err := http.DefaultClient.Do(signed)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the SigV2 GetObjectAttributes itself: %d", resp.StatusCode)
	}

	// The captured request, its query dropped: same headers, same signature.
	replay, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/"+testBucket+"/secret", nil)
	replay.Header = signed.Header.Clone()
	resp, err = http.DefaultClient.Do(replay)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || bytes.Contains(body, data[:64]) {
		t.Errorf("a SigV2 GetObjectAttributes signature replayed without ?attributes: %d, %d bytes", resp.StatusCode, len(body))
	}
}
