package e2e

// s3seal started before its store and its KMS: it must come up, say it is
// not ready and why, and get ready by itself once they answer.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// failingChecks is /readyz's answer: its status code and the checks it
// names as failing.
func failingChecks(t *testing.T, in *instance) (int, map[string]string) {
	t.Helper()
	code, body := readyz(t, in)
	var doc struct {
		Failed map[string]string `json:"failed"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("/readyz answered %d with %q: %v", code, body, err)
	}
	return code, doc.Failed
}

// checkNotReady checks, for 3 s, that in serves /healthz but not /readyz,
// which names "upstream" exactly when the store is down and the KMS checks
// (kms-*) exactly when the KMS is; then that /readyz and the log say which
// KMS endpoint refused the connection.
func checkNotReady(t *testing.T, in *instance, storeDown, kmsDown bool, kmsURL string) {
	t.Helper()
	defer func() {
		if !kmsDown || t.Failed() {
			return
		}
		_, failed := failingChecks(t, in)
		want := "key service " + kmsURL + ": connection refused"
		if !strings.Contains(failed["kms-key"], want) {
			t.Errorf("/readyz says of kms-key %q, want it to say %q", failed["kms-key"], want)
		}
		if logs := in.logs.String(); !strings.Contains(logs, `"msg":"not ready yet","check":"kms-key"`) || !strings.Contains(logs, want) {
			t.Errorf("the log does not say %q:\n%s", want, logs)
		}
	}()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		resp, err := http.Get(in.MetricsURL + "/healthz")
		if err != nil {
			t.Fatalf("/healthz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz answered %d while a dependency is down", resp.StatusCode)
		}
		code, failed := failingChecks(t, in)
		_, upstream := failed["upstream"]
		_, kmsKey := failed["kms-key"]
		if code != http.StatusServiceUnavailable || upstream != storeDown || kmsKey != kmsDown {
			t.Fatalf("/readyz answered %d naming %v; store down %v, KMS down %v", code, failed, storeDown, kmsDown)
		}
		for name := range failed {
			if strings.HasPrefix(name, "kms-") != kmsDown && name != "upstream" {
				t.Fatalf("/readyz names %s (%s); KMS down %v", name, failed[name], kmsDown)
			}
		}
	}
}

// TestStartOrder: s3seal started while MinIO, the KMS or both are down (a
// fault proxy in front of each that does not listen yet) does not exit: it
// serves /healthz, and /readyz answers 503 naming the failing checks. Once
// they listen, it becomes ready by itself within 30 s (results are cached
// for 10 s), and a PUT and a GET go through.
func TestStartOrder(t *testing.T) {
	e := minioEnv(t)
	for _, tc := range []struct {
		name               string
		storeDown, kmsDown bool
	}{
		{"store and KMS down", true, true},
		{"store down", true, false},
		{"KMS down", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeProxy, kmsProxy := newFaultTCP(t, e.storeURL), newFaultTCP(t, e.kmsURL)
			alias := newCMK(t, e.kmsURL)
			if tc.storeDown {
				storeProxy.down()
			}
			if tc.kmsDown {
				kmsProxy.down()
			}
			via := e
			via.storeURL = storeProxy.URL
			in := startS3sealNotReady(t, via, kmsProxy.URL, alias)
			checkNotReady(t, in, tc.storeDown, tc.kmsDown, kmsProxy.URL)

			if tc.storeDown {
				storeProxy.up(t)
			}
			if tc.kmsDown {
				kmsProxy.up(t)
			}
			deadline := time.Now().Add(30 * time.Second)
			for code, failed := failingChecks(t, in); code != http.StatusOK; code, failed = failingChecks(t, in) {
				if time.Now().After(deadline) {
					t.Fatalf("not ready 30 s after the store and the KMS came up: %d %v", code, failed)
				}
				time.Sleep(500 * time.Millisecond)
			}

			bucket, plain := newBucket(t, e), plaintext(1<<20+9, 90)
			c := sdkClient(t, in)
			if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj"), Body: bytes.NewReader(plain)}); err != nil {
				t.Fatalf("PUT once ready: %v", err)
			}
			checkReadBack(t, e, c, bucket, "obj", plain)
		})
	}
}
