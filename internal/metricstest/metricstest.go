// Package metricstest scrapes a /metrics endpoint for tests and reads values
// out of the result, so tests check what Prometheus would see rather than the
// collectors' internals.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one parsed scrape: family name -> family.
type Scrape map[string]*dto.MetricFamily

// Get scrapes url (the text exposition format) and parses it.
func Get(url string) (Scrape, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return Parse(resp.Body)
}

// Parse reads the text exposition format.
func Parse(r io.Reader) (Scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Labels selects series: "name=value" pairs; a series matches when it has
// every pair given (and any others).
func matches(m *dto.Metric, labels []string) bool {
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Has reports whether the family exists.
func (s Scrape) Has(family string) bool {
	_, ok := s[family]
	return ok
}

// Sum adds up the value of every series of family matching labels
// ("name=value" each): a counter's or gauge's value, a histogram's sample
// count. A missing family sums to 0.
func (s Scrape) Sum(family string, labels ...string) float64 {
	mf, ok := s[family]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range mf.GetMetric() {
		if !matches(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			total += float64(m.GetSummary().GetSampleCount())
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// HistogramSum adds up the sample sums of family's matching series.
func (s Scrape) HistogramSum(family string, labels ...string) float64 {
	mf, ok := s[family]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range mf.GetMetric() {
		if matches(m, labels) && m.Histogram != nil {
			total += m.GetHistogram().GetSampleSum()
		}
	}
	return total
}

// LabelValues lists the values label takes across family's series.
func (s Scrape) LabelValues(family, label string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range s[family].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && !seen[lp.GetValue()] {
				seen[lp.GetValue()] = true
				out = append(out, lp.GetValue())
			}
		}
	}
	return out
}
