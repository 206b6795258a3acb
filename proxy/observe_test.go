package proxy

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// recordingObserver keeps every call (the proxy calls it from several goroutines).
type recordingObserver struct {
	mu       sync.Mutex
	requests []string // "op status"
	upstream []string
	cipher   map[string]int64
	cipherD  map[string]time.Duration
	inflight int
	denied   []string
	resumes  []string // "op ok"
}

func (o *recordingObserver) ObserveRequest(op string, status int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests = append(o.requests, op+" "+strconv.Itoa(status))
}

func (o *recordingObserver) ObserveUpstream(op string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.upstream = append(o.upstream, op)
}

func (o *recordingObserver) ObserveCipher(dir string, n int64, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cipher[dir] += n
	o.cipherD[dir] += d
}

func (o *recordingObserver) InflightAdd(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inflight += n
}

func (o *recordingObserver) ObserveDenied(op string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.denied = append(o.denied, op)
}

func (o *recordingObserver) ObserveResume(op string, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.resumes = append(o.resumes, op+" "+strconv.FormatBool(ok))
}

func TestObserver(t *testing.T) {
	obs := &recordingObserver{cipher: map[string]int64{}, cipherD: map[string]time.Duration{}}
	e := newEnv(t, func(c *Config) { c.Observer = obs })
	data := randomBytes(300000, 7)
	e.put(t, "o", data, nil)
	got, _, err := e.get(t, "o")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %v", err)
	}
	// A ranged read in the middle decrypts the chunks it needs.
	out, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String("o"), Range: aws.String("bytes=70000-70009")})
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(part, data[70000:70010]) {
		t.Fatal("range differs")
	}
	if _, _, err := e.get(t, "missing"); err == nil {
		t.Fatal("missing object found")
	}
	e.drain(t, 4)

	obs.mu.Lock()
	defer obs.mu.Unlock()
	want := []string{"PutObject 200", "GetObject 200", "GetObject 206", "GetObject 404"}
	if strings.Join(obs.requests, ",") != strings.Join(want, ",") {
		t.Errorf("requests %v, want %v", obs.requests, want)
	}
	if obs.inflight != 0 {
		t.Errorf("inflight %d after all requests", obs.inflight)
	}
	// PUT 2 upstream calls (the bucket's default CMK, the write), GET 1,
	// ranged GET 2 (probe and span), missing GET 1.
	if strings.Join(obs.upstream, ",") != "PutObject,PutObject,GetObject,GetObject,GetObject,GetObject" {
		t.Errorf("upstream calls %v", obs.upstream)
	}
	if obs.cipher["encrypt"] != int64(len(data)) {
		t.Errorf("encrypted %d bytes, want %d", obs.cipher["encrypt"], len(data))
	}
	// The whole object, then the 64 KiB chunk holding the range, cut to 10 bytes.
	if obs.cipher["decrypt"] != int64(len(data))+10 {
		t.Errorf("decrypted %d bytes, want %d", obs.cipher["decrypt"], len(data)+10)
	}
	if obs.cipherD["encrypt"] <= 0 || obs.cipherD["decrypt"] <= 0 {
		t.Errorf("cipher time %v", obs.cipherD)
	}
}
