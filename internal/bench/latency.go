package bench

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
)

// The latency scenarios: one plugin process at a time, ours and
// host-local's alternating.

// latency runs ADD then DEL of Ops containers, ours and host-local
// alternating, on a pool filled to fraction at random first. DEL after each
// ADD keeps the occupancy where it started.
func (r *runner) latency(ctx context.Context, label string, subnet netip.Prefix, fraction float64) error {
	name := r.network("latency")
	all := allocatable(subnet)
	var taken []netip.Addr
	if fraction > 0 {
		perm := slices.Clone(all)
		r.rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		taken = perm[:int(float64(len(perm))*fraction)]
		slices.SortFunc(taken, netip.Addr.Compare)
		if err := fillEtcd(ctx, r.cli, name, node, taken, netip.Addr{}); err != nil {
			return err
		}
		if err := fillHostLocal(r.hlDir(), name, taken, netip.Addr{}); err != nil {
			return err
		}
	}
	s := sample{}
	for i := 0; i < r.cfg.Ops; i++ {
		id := fmt.Sprintf("lat-%d", i)
		for _, p := range []*Plugin{r.ours, r.hl} {
			e, err := p.mustRun(ctx, "ADD", p.Conf(name, subnet.String(), ""), id, node)
			if err != nil {
				return err
			}
			s.add(p.Name+" ADD", e)
		}
		for _, p := range []*Plugin{r.ours, r.hl} {
			e, err := p.mustRun(ctx, "DEL", p.Conf(name, subnet.String(), ""), id, node)
			if err != nil {
				return err
			}
			s.add(p.Name+" DEL", e)
		}
	}
	r.rep.Latency = append(r.rep.Latency, LatencyResult{
		Pool:       label,
		Ours:       OpLatency{Add: s.stats("etcd ADD"), Del: s.stats("etcd DEL")},
		HostLoc:    OpLatency{Add: s.stats("host-local ADD"), Del: s.stats("host-local DEL")},
		PeakRSSKiB: s.peak,
	})
	return nil
}
