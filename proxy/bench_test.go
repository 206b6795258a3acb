package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
)

// BenchmarkProxy64MiB moves 64 MiB through the proxy to the in-memory fake
// store, to profile what the hop costs beyond a plain proxy's copy
// (go test -bench Proxy64MiB -cpuprofile cpu.out ./proxy). The fake store
// runs in the same process: read the profile for the proxy's own frames.
func BenchmarkProxy64MiB(b *testing.B) {
	e := newEnv(b)
	data := randomBytes(64<<20, 5)
	sum := sha256.Sum256(data)
	for _, mode := range []struct {
		name    string
		payload string
	}{{"put unsigned payload", ""}, {"put signed payload", hex.EncodeToString(sum[:])}} {
		b.Run(mode.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				h := http.Header{}
				if mode.payload != "" {
					h.Set("X-Amz-Content-Sha256", mode.payload)
				}
				resp, err := http.DefaultClient.Do(e.signedRequest(b, http.MethodPut, "/"+testBucket+"/big", bytes.NewReader(data), int64(len(data)), h))
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("PUT: %v %v", err, resp)
				}
				resp.Body.Close()
			}
		})
	}
	b.Run("get", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			resp, err := http.DefaultClient.Do(e.signedRequest(b, http.MethodGet, "/"+testBucket+"/big", nil, 0, nil))
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("GET: %v %v", err, resp)
			}
			if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != int64(len(data)) {
				b.Fatalf("GET: %d bytes, %v", n, err)
			}
			resp.Body.Close()
		}
	})
}
