package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/internal/testcert"
)

// TestMinioGoStreamingSignatures uses minio-go through s3seal: over plain
// HTTP it signs every 64 KiB chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
func TestMinioGoStreamingSignatures(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		u, _ := url.Parse(in.URL)
		c, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(in.AccessKey, in.SecretKey, ""), Region: region})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		bucket := "mgo-" + randHex(4)
		if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
			t.Fatalf("MakeBucket through s3seal: %v", err)
		}
		for _, n := range []int{0, 1000, 3<<20 + 1} {
			plain := plaintext(n, 3)
			key := "stream/" + randHex(3)
			if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(plain), int64(n),
				minio.PutObjectOptions{ContentType: "text/plain", UserMetadata: map[string]string{"Color": "blue"}}); err != nil {
				t.Fatalf("PutObject %d bytes: %v", n, err)
			}
			checkStored(t, e, bucket, key, plain)
			info, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
			if err != nil || info.Size != int64(n) || info.UserMetadata["Color"] != "blue" {
				t.Fatalf("StatObject: size %d meta %v err %v", info.Size, info.UserMetadata, err)
			}
			for k := range info.UserMetadata {
				if len(k) >= 6 && (k[:6] == "S3seal" || k[:6] == "s3seal") {
					t.Fatalf("s3seal metadata leaked to the client: %v", info.UserMetadata)
				}
			}
			obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(obj)
			obj.Close()
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("GetObject %d bytes: err %v", n, err)
			}
			if n > 100000 {
				opts := minio.GetObjectOptions{}
				opts.SetRange(65530, 70000)
				obj, err := c.GetObject(ctx, bucket, key, opts)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(obj)
				obj.Close()
				if err != nil || !bytes.Equal(got, plain[65530:70001]) {
					t.Fatalf("ranged GetObject: err %v", err)
				}
			}
		}
		n := 0
		for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			n++
		}
		if n != 3 {
			t.Fatalf("listed %d objects, want 3", n)
		}
	})
}

// selfSigned writes a certificate for 127.0.0.1 and returns its paths and PEM.
func selfSigned(t *testing.T) (certFile, keyFile string, certPEM []byte) {
	t.Helper()
	c := testcert.New(t, &x509.Certificate{Subject: pkix.Name{CommonName: "s3seal e2e"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}, nil)
	certFile, keyFile = testcert.WriteChain(t, t.TempDir(), "cert", c)
	return certFile, keyFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// TestSDKTrailersOverTLS: over HTTPS with a body it cannot seek, the SDK
// streams aws-chunked with a trailing CRC32 checksum
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER), which s3seal checks on the
// plaintext.
func TestSDKTrailersOverTLS(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		certFile, keyFile, certPEM := selfSigned(t)
		in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_TLS_CERT="+certFile, "S3SEAL_TLS_KEY="+keyFile)
		c := sdkClient(t, in, config.WithCustomCABundle(bytes.NewReader(certPEM)))
		ctx := context.Background()
		bucket := newBucket(t, e)
		for _, n := range []int{1, 200000} {
			plain := plaintext(n, 7)
			key := "trailer/" + randHex(3)
			// io.MultiReader hides bytes.Reader's Seek: the SDK must stream.
			out, err := c.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(bucket), Key: aws.String(key),
				Body: io.MultiReader(bytes.NewReader(plain)), ContentLength: aws.Int64(int64(n)),
			})
			if err != nil {
				t.Fatalf("PutObject with a non-seekable body over TLS: %v", err)
			}
			if aws.ToString(out.ChecksumCRC32) == "" {
				t.Fatalf("no CRC32 in the response: the trailer path was not exercised")
			}
			checkStored(t, e, bucket, key, plain)
			got, err := readThrough(c, bucket, key)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("GetObject over TLS: %v", err)
			}
		}
	})
}
