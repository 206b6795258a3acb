package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3seal/s3seal/metrics"
)

// kmsSetup is a keyring with one key, and options writing into buffers.
func kmsSetup(t *testing.T) (Options, KMS, *bytes.Buffer) {
	t.Helper()
	ring, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := ring.CreateKey("bench test")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	gauges, err := metrics.NewBench(reg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	o := Options{Sizes: []int64{1000, 8192}, Count: 3, Concurrency: 2, Stdout: &stdout, Progress: &bytes.Buffer{}, Gauges: gauges}
	return o, KMS{Keys: ring, KeyID: info.ID, Metrics: m, ChartSubtitle: "test keyring"}, &stdout
}

// Each cell's KMS calls are what the metrics counted during it: two per
// object in envelope mode, two per 4096-byte piece in direct mode; the
// preflight's three calls belong to no cell.
func TestRunKMSCountsCalls(t *testing.T) {
	o, k, stdout := kmsSetup(t)
	o.Out = t.TempDir()
	if err := RunKMS(context.Background(), o, k); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(o.Out, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Results []Result }
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		mode  string
		size  int64
		calls int64
	}{
		{modeEnvelope, 1000, 3 * 2}, {modeDirect, 1000, 3 * 2},
		{modeEnvelope, 8192, 3 * 2}, {modeDirect, 8192, 3 * 2 * 2},
	}
	if len(f.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(f.Results), len(want))
	}
	var sum int64
	for i, w := range want {
		r := f.Results[i]
		if r.Mode != w.mode || r.Size != w.size || r.KMSCalls != w.calls {
			t.Errorf("result %d: %s %d with %d calls, want %s %d with %d", i, r.Mode, r.Size, r.KMSCalls, w.mode, w.size, w.calls)
		}
		sum += r.KMSCalls
	}
	if got := k.Metrics.KMSCalls(); got != sum+3 {
		t.Errorf("metrics counted %d calls, want the cells' %d and the preflight's 3", got, sum)
	}
	for _, s := range []string{"envelope/direct", "wrote " + filepath.Join(o.Out, "bench.json") + " and " + filepath.Join(o.Out, "bench.svg")} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
}

// A key the service does not have fails before any cell, with its reason.
func TestRunKMSPreflight(t *testing.T) {
	o, k, stdout := kmsSetup(t)
	k.KeyID = "alias/missing"
	err := RunKMS(context.Background(), o, k)
	if !errors.Is(err, kms.ErrKeyNotFound) {
		t.Errorf("RunKMS with a missing key: %v, want ErrKeyNotFound", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("a failed preflight printed:\n%s", stdout)
	}
}
