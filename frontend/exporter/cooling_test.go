package exporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// TestCoolingGauge: etcd_ipam_range_cooling_addresses counts, per range,
// the addresses cooling after their release, which stay in
// etcd_ipam_range_allocated_addresses and not in the held gauge.
func TestCoolingGauge(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conf := &config.Network{CNIVersion: "1.1.0", Name: "cool", Cooldown: time.Hour,
		RangeSets: [][]core.RangeSpec{{{Subnet: "192.0.2.0/28"}}, {{Subnet: "2001:db8::/120"}}},
		Etcd:      config.Etcd{Endpoints: []string{srv.Endpoint()}, Timeout: 10 * time.Second}}
	s, err := ipam.Open(conf, ipam.Options{Core: native.New(), Node: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 4 {
		if _, err := s.Add(ctx, fmt.Sprintf("c%d", i), "eth0", nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := s.Del(ctx, fmt.Sprintf("c%d", i), "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewCollector([]Network{{Name: "cool", Open: func() (Session, error) {
		return ipam.Open(conf, ipam.Options{Core: native.New(), Node: "exporter"})
	}}}, Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"etcd_ipam_range_cooling_addresses/0":   3,
		"etcd_ipam_range_cooling_addresses/1":   3,
		"etcd_ipam_range_allocated_addresses/0": 4,
		"etcd_ipam_range_allocated_addresses/1": 4,
		"etcd_ipam_range_held_addresses/0":      0,
		"etcd_ipam_range_held_addresses/1":      0,
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "range_set" {
					got[f.GetName()+"/"+l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
