package reconciler

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the reconciler's Prometheus metrics, in a registry of their
// own as the exporter's are: nothing global, so that two reconcilers in
// one process (the tests) do not mix.
type Metrics struct {
	registry  *prometheus.Registry
	leaked    *prometheus.GaugeVec
	released  *prometheus.CounterVec
	apiErrors prometheus.Counter
	lastPass  prometheus.Gauge
}

// NewMetrics registers the reconciler's metrics with Go and process
// metrics.
func NewMetrics() (*Metrics, error) {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		leaked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etcd_ipam_reconcile_leaked_attachments",
			Help: "Attachments whose pod is gone, replaced or terminal, or whose node is gone, as of the last full pass (released or not)."},
			[]string{"network", "reason"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_ipam_reconcile_released_total",
			Help: "Attachments the reconciler released."}, []string{"network", "reason"}),
		apiErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_ipam_reconcile_api_errors_total",
			Help: "Live reads from the Kubernetes API server that failed (the attachment waits for the next pass)."}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_ipam_reconcile_last_pass_timestamp_seconds",
			Help: "When the last full pass that read every network started, in Unix seconds."}),
	}
	for _, c := range []prometheus.Collector{m.leaked, m.released, m.apiErrors, m.lastPass,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := m.registry.Register(c); err != nil {
			return nil, fmt.Errorf("registering the reconciler's metrics: %w", err)
		}
	}
	return m, nil
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Gatherer is the registry, for tests that read values.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.registry }
