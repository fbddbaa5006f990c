package reconciler

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// metricValue gathers the registry as a scrape does and returns the value
// of the series of name with labels, and whether it exists.
func metricValue(t *testing.T, m *Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return value(s), true
		}
	}
	return 0, false
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Counter != nil:
		return s.Counter.GetValue()
	}
	return 0
}

// TestMetricsAfterPasses checks the metrics' values after passes against
// a real API server: the leaked gauge per reason counts what the last
// pass found, released or not, the released counter what was released,
// and zero series exist before any release, so that the README's alert
// can fire.
func TestMetricsAfterPasses(t *testing.T) {
	c := newCluster(t, "")
	c.namespace("shop")
	c.node("node-1")
	c.node("node-2")
	c.podADD("shop", "alive", "node-1", "c-alive")
	c.podADD("shop", "a", "node-1", "c-a")
	c.podADD("shop", "b", "node-1", "c-b")
	c.podADD("shop", "on-2", "node-2", "c-on-2")
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	r := c.reconciler(c.admin, "r")
	r.opts.Metrics = m
	c.deletePod("shop", "a")
	c.deletePod("shop", "b")
	if err := c.admin.CoreV1().Nodes().Delete(t.Context(), "node-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone(t, r, "shop", "a")
	gone(t, r, "shop", "b")
	eventually(t, 10*time.Second, "node-2's deletion reached the cache", func() bool {
		_, ok, _ := r.nodes.GetIndexer().GetByKey("node-2")
		return !ok
	})

	check := func(when string, leaked, released map[Reason]float64) {
		t.Helper()
		for _, reason := range Reasons {
			labels := map[string]string{"network": "podnet", "reason": string(reason)}
			if v, ok := metricValue(t, m, "etcd_ipam_reconcile_leaked_attachments", labels); !ok || v != leaked[reason] {
				t.Errorf("%s: leaked{reason=%s} = %v (present %v), want %v", when, reason, v, ok, leaked[reason])
			}
			if v, ok := metricValue(t, m, "etcd_ipam_reconcile_released_total", labels); !ok || v != released[reason] {
				t.Errorf("%s: released_total{reason=%s} = %v (present %v), want %v", when, reason, v, ok, released[reason])
			}
		}
	}
	start := time.Now()
	r.Pass(t.Context())
	check("a pass within the grace", map[Reason]float64{PodGone: 2, NodeGone: 1}, map[Reason]float64{NodeGone: 1})
	last, ok := metricValue(t, m, "etcd_ipam_reconcile_last_pass_timestamp_seconds", nil)
	if !ok || last < float64(start.Unix()) || last > float64(time.Now().Unix()+1) {
		t.Errorf("last pass timestamp %v (present %v), want the pass's start about %d", last, ok, start.Unix())
	}
	time.Sleep(grace)
	r.Pass(t.Context())
	check("the pass past the grace", map[Reason]float64{PodGone: 2}, map[Reason]float64{PodGone: 2, NodeGone: 1})
	r.Pass(t.Context())
	check("a pass with nothing left", nil, map[Reason]float64{PodGone: 2, NodeGone: 1})
	if v, ok := metricValue(t, m, "etcd_ipam_reconcile_api_errors_total", nil); !ok || v != 0 {
		t.Errorf("api_errors_total = %v (present %v), want 0", v, ok)
	}
	if !c.containers()["c-alive"] {
		t.Error("the live pod's attachment was released")
	}
}
