// Package exporter serves Prometheus metrics of networks, computed afresh
// on every scrape through package ipam, as every other frontend works on
// etcd. It knows nothing of configuration files or flags: `etcd-ipam
// exporter` (frontend/cli) loads the networks and hands them over.
//
// Each scrape counts with count-only requests (Session.Usage: one round
// trip per network whatever the pool's size), so that scraping a /8 costs
// what scraping a /24 does.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// Session is what the exporter needs of one network's ipam.Session (the
// CLI's wraps it with the core host it runs on, which Close stops too).
type Session interface {
	Usage(ctx context.Context) ([]ipam.Usage, error)
	Nodes(ctx context.Context) ([]ipam.NodeReport, error)
	RangeSets() []core.RangeSet
	Close() error
}

// Network is one network to export.
type Network struct {
	// Name labels every metric of the network; it must be unique.
	Name string
	// Open connects to the network's etcd. The collector calls it on the
	// first scrape and again after a failed open, so that an exporter
	// started while etcd is down (or refusing its credentials) serves
	// etcd_ipam_up 0 instead of exiting.
	Open func() (Session, error)
}

// step collects one group of a network's metrics. Steps run in order in
// one network's scrape under its deadline; when one fails, the network's
// etcd_ipam_up is 0 and what its steps collected is dropped, so that a
// scrape never mixes counts of a network with gaps in them. A new group
// of per-network metrics is a new step in Collector.steps.
type step interface {
	describe(ch chan<- *prometheus.Desc)
	collect(ctx context.Context, network string, s Session, emit func(prometheus.Metric)) error
}

// Collector is a prometheus.Collector of every network's metrics. Collect
// asks etcd on every call; nothing is cached but the sessions.
type Collector struct {
	networks []*network
	timeout  time.Duration
	log      func(string)
	steps    []step
	up       *prometheus.Desc
	duration *prometheus.Desc
}

// network is one Network with its session, opened on demand.
type network struct {
	Network
	mu      sync.Mutex
	session Session
	// failing is whether the last scrape failed, so that only changes
	// are logged.
	failing bool
}

// Options are the collector's settings.
type Options struct {
	// Timeout bounds each network's part of a scrape.
	Timeout time.Duration
	// Log receives a line when a network stops answering (with the
	// reason) and when it answers again; nil discards them. A line per
	// change rather than per scrape, so that an etcd down for a day does
	// not fill the log.
	Log func(msg string)
}

// NewCollector returns a collector of networks. Close it to close the
// sessions.
func NewCollector(networks []Network, opts Options) (*Collector, error) {
	if opts.Timeout <= 0 {
		return nil, fmt.Errorf("the scrape timeout must be positive, got %v", opts.Timeout)
	}
	if opts.Log == nil {
		opts.Log = func(string) {}
	}
	c := &Collector{
		timeout: opts.Timeout,
		log:     opts.Log,
		steps:   []step{newUsageStep(), newNodeStep(time.Now)},
		up: prometheus.NewDesc("etcd_ipam_up",
			"1 if etcd answered every request of the network's last scrape, else 0 (its other metrics are then absent).",
			[]string{"network"}, nil),
		duration: prometheus.NewDesc("etcd_ipam_scrape_duration_seconds",
			"How long the network's requests to etcd took in this scrape.",
			[]string{"network"}, nil),
	}
	seen := map[string]bool{}
	for _, n := range networks {
		// Two sources of one name would give identical series, which
		// the registry refuses at every scrape.
		if seen[n.Name] {
			return nil, fmt.Errorf("network %q is configured twice; export each network once", n.Name)
		}
		seen[n.Name] = true
		c.networks = append(c.networks, &network{Network: n})
	}
	return c, nil
}

// Describe sends the descriptions of every metric the collector can send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.duration
	for _, s := range c.steps {
		s.describe(ch)
	}
}

// Collect scrapes every network at once, each under its own deadline, so
// that one slow etcd delays the scrape by the timeout at most and not by
// the sum of them. Prometheus gives Collect no context; the deadline
// bounds it instead.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, n := range c.networks {
		wg.Go(func() { c.collectNetwork(n, ch) })
	}
	wg.Wait()
}

func (c *Collector) collectNetwork(n *network, ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	var metrics []prometheus.Metric
	err := c.runSteps(ctx, n, func(m prometheus.Metric) { metrics = append(metrics, m) })
	took := time.Since(start).Seconds()
	up := 1.0
	if err != nil {
		up = 0
		metrics = nil
	}
	c.logChange(n, err)
	for _, m := range metrics {
		ch <- m
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, n.Name)
	ch <- prometheus.MustNewConstMetric(c.duration, prometheus.GaugeValue, took, n.Name)
}

func (c *Collector) runSteps(ctx context.Context, n *network, emit func(prometheus.Metric)) error {
	s, err := n.open()
	if err != nil {
		return err
	}
	for _, st := range c.steps {
		if err := st.collect(ctx, n.Name, s, emit); err != nil {
			return err
		}
	}
	return nil
}

// logChange logs a network that stopped or resumed answering.
func (c *Collector) logChange(n *network, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case err != nil && !n.failing:
		c.log(fmt.Sprintf("network %q: etcd_ipam_up is 0: %v", n.Name, err))
	case err == nil && n.failing:
		c.log(fmt.Sprintf("network %q: etcd answers again", n.Name))
	}
	n.failing = err != nil
}

// open returns the network's session, opening it if no earlier scrape did.
func (n *network) open() (Session, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.session != nil {
		return n.session, nil
	}
	s, err := n.Open()
	if err != nil {
		return nil, fmt.Errorf("opening network %q: %w", n.Name, err)
	}
	n.session = s
	return s, nil
}

// Close closes every session a scrape opened.
func (c *Collector) Close() error {
	var errs []error
	for _, n := range c.networks {
		n.mu.Lock()
		if n.session != nil {
			errs = append(errs, n.session.Close())
			n.session = nil
		}
		n.mu.Unlock()
	}
	return errors.Join(errs...)
}

// usageStep counts the capacity, the excluded, the allocated, the held
// and the cooling addresses of every range with one round trip of
// count-only requests.
type usageStep struct {
	capacity, allocated, excluded, held, cooling *prometheus.Desc
}

func newUsageStep() *usageStep {
	labels := []string{"network", "range_set", "range"}
	return &usageStep{
		capacity: prometheus.NewDesc("etcd_ipam_range_capacity_addresses",
			"Addresses the range can hand out (its gateway and \"exclude\" list left out), as etcd-ipam usage counts them.",
			labels, nil),
		allocated: prometheus.NewDesc("etcd_ipam_range_allocated_addresses",
			"Addresses of the range allocated in etcd (of those it can hand out).",
			labels, nil),
		excluded: prometheus.NewDesc("etcd_ipam_range_excluded_addresses",
			"Addresses of the range its \"exclude\" list keeps from being handed out (the gateway aside).",
			labels, nil),
		held: prometheus.NewDesc("etcd_ipam_range_held_addresses",
			"Allocated addresses of the range that no container has: held for a pod (sticky) or reserved by an operator.",
			labels, nil),
		cooling: prometheus.NewDesc("etcd_ipam_range_cooling_addresses",
			"Allocated addresses of the range cooling down after their release (ipam \"cooldown\"): held for nobody until their lease ends.",
			labels, nil),
	}
}

func (u *usageStep) describe(ch chan<- *prometheus.Desc) {
	ch <- u.capacity
	ch <- u.allocated
	ch <- u.excluded
	ch <- u.held
	ch <- u.cooling
}

func (u *usageStep) collect(ctx context.Context, network string, s Session, emit func(prometheus.Metric)) error {
	usage, err := s.Usage(ctx)
	if err != nil {
		return fmt.Errorf("counting the addresses of network %q: %w", network, err)
	}
	sets := s.RangeSets()
	for _, r := range usage {
		set, rng := strconv.Itoa(r.RangeSet), RangeText(sets[r.RangeSet][r.Range])
		emit(prometheus.MustNewConstMetric(u.capacity, prometheus.GaugeValue, float64(r.Capacity), network, set, rng))
		emit(prometheus.MustNewConstMetric(u.allocated, prometheus.GaugeValue, float64(r.Used), network, set, rng))
		emit(prometheus.MustNewConstMetric(u.excluded, prometheus.GaugeValue, float64(r.Excluded), network, set, rng))
		emit(prometheus.MustNewConstMetric(u.held, prometheus.GaugeValue, float64(r.Held), network, set, rng))
		emit(prometheus.MustNewConstMetric(u.cooling, prometheus.GaugeValue, float64(r.Cooling), network, set, rng))
	}
	return nil
}

// nodeStep reports each node's addresses and how long ago it was last
// seen: the liveness records and one count per node, never the
// allocations themselves.
type nodeStep struct {
	now                 func() time.Time
	allocated, lastSeen *prometheus.Desc
}

func newNodeStep(now func() time.Time) *nodeStep {
	labels := []string{"network", "node"}
	return &nodeStep{
		now: now,
		allocated: prometheus.NewDesc("etcd_ipam_node_allocated_addresses",
			"Addresses the node holds in the network, counted from its index.",
			labels, nil),
		lastSeen: prometheus.NewDesc("etcd_ipam_node_last_seen_age_seconds",
			"Seconds since the plugin last recorded the node (on ADD, DEL, CHECK, GC or STATUS; at most once a minute).",
			labels, nil),
	}
}

func (n *nodeStep) describe(ch chan<- *prometheus.Desc) {
	ch <- n.allocated
	ch <- n.lastSeen
}

func (n *nodeStep) collect(ctx context.Context, network string, s Session, emit func(prometheus.Metric)) error {
	nodes, err := s.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("reading the nodes of network %q: %w", network, err)
	}
	now := n.now()
	for _, node := range nodes {
		emit(prometheus.MustNewConstMetric(n.allocated, prometheus.GaugeValue, float64(node.Addresses), network, node.Node))
		emit(prometheus.MustNewConstMetric(n.lastSeen, prometheus.GaugeValue, now.Sub(node.At).Seconds(), network, node.Node))
	}
	return nil
}

// RangeText is a range as the range label and etcd-ipam usage show it:
// "10.1.0.2-10.1.255.254".
func RangeText(r core.Range) string {
	return r.RangeStart.String() + "-" + r.RangeEnd.String()
}

// Handler serves the collector's metrics, with the exporter's own Go
// runtime and process metrics, from a registry of its own: nothing global,
// so that two exporters in one process (the tests) do not mix.
func Handler(c *Collector) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, col := range []prometheus.Collector{
		c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("registering the exporter's metrics: %w", err)
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), nil
}

// Serve answers scrapes of /metrics on ln until ctx ends, then waits for
// the scrapes in flight (each ends within the collector's timeout).
func Serve(ctx context.Context, ln net.Listener, metrics http.Handler) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "etcd-ipam exporter: metrics at /metrics")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serving metrics on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("stopping the metrics server on %s: %w", ln.Addr(), err)
	}
	<-done
	return nil
}
