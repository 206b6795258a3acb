package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Rewrap is the progress of `s3seal rewrap`, exported while it runs
// (--metrics-addr) so a long job can be watched and alerted on like the
// servers it shares the KMS with.
type Rewrap struct {
	objects     *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	listed      prometheus.Counter
	listedBytes prometheus.Counter
}

// Outcomes of one object in a rewrap, the values of the outcome label.
var rewrapOutcomes = []string{"rewrapped", "encrypted", "up_to_date", "skipped", "failed"}

// NewRewrap registers the rewrap families in reg.
func NewRewrap(reg prometheus.Registerer) (*Rewrap, error) {
	m := &Rewrap{
		objects: counterVec("rewrap_objects_total",
			"Rewrap: objects finished, by outcome (rewrapped, encrypted, up_to_date, skipped, failed).", "outcome"),
		bytes: counterVec("rewrap_bytes_total",
			"Rewrap: plaintext bytes of the objects finished, by outcome.", "outcome"),
		listed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "rewrap_listed_objects_total",
			Help: "Rewrap: objects listed so far; the job is done when the finished objects reach it and listing has ended."}),
		listedBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "rewrap_listed_bytes_total",
			Help: "Rewrap: plaintext bytes of the objects listed so far."}),
	}
	if err := register(reg, m.objects, m.bytes, m.listed, m.listedBytes); err != nil {
		return nil, err
	}
	for _, o := range rewrapOutcomes {
		m.objects.WithLabelValues(o)
		m.bytes.WithLabelValues(o)
	}
	return m, nil
}

// ObserveListed records one object listed.
func (m *Rewrap) ObserveListed(size int64) {
	m.listed.Inc()
	m.listedBytes.Add(float64(max(size, 0)))
}

// ObserveObject records one object finished with outcome.
func (m *Rewrap) ObserveObject(outcome string, size int64) {
	m.objects.WithLabelValues(outcome).Inc()
	m.bytes.WithLabelValues(outcome).Add(float64(max(size, 0)))
}
