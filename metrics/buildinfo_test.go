package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterBuildInfo(reg, "v1.2.3", "abc123+dirty", "go1.26.8"); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 1 || fams[0].GetName() != "s3seal_build_info" || len(fams[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v", fams)
	}
	m := fams[0].GetMetric()[0]
	if v := m.GetGauge().GetValue(); v != 1 {
		t.Errorf("value %v, want 1", v)
	}
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	want := map[string]string{"version": "v1.2.3", "revision": "abc123+dirty", "goversion": "go1.26.8"}
	if len(labels) != len(want) {
		t.Errorf("labels %v, want %v", labels, want)
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
	// A second registration in the same registry is refused, not doubled.
	if err := RegisterBuildInfo(reg, "v1.2.3", "abc123+dirty", "go1.26.8"); err == nil {
		t.Error("registered twice")
	}
}
