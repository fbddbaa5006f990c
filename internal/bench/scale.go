package bench

import (
	"context"
	"fmt"
	"net/netip"
)

// The scale scenario: the last ADDs into a nearly full pool.

// scale fills a pool completely, directly rather than by 65,000 ADDs, in
// two states: as a sequential fill leaves it (all but the last Holes
// addresses taken, the position on the last taken one), and as churn
// leaves it (Holes addresses free at random, the position at a random
// address). It times the first ADDs into the same pool empty, the last
// Holes ADDs of each state, and an ADD into the full pool.
func (r *runner) scale(ctx context.Context) error {
	subnet := scalePool(r.cfg.ScaleBits)
	all := allocatable(subnet)
	if r.cfg.Holes >= len(all) {
		return fmt.Errorf("%d holes do not fit into %s", r.cfg.Holes, subnet)
	}
	sequential := r.network("scale-sequential")
	if err := r.fillBoth(ctx, sequential, all[:len(all)-r.cfg.Holes], all[len(all)-r.cfg.Holes-1]); err != nil {
		return err
	}
	holes := map[netip.Addr]bool{}
	for len(holes) < r.cfg.Holes {
		holes[all[r.rng.IntN(len(all))]] = true
	}
	var taken []netip.Addr
	for _, a := range all {
		if !holes[a] {
			taken = append(taken, a)
		}
	}
	churned := r.network("scale-churned")
	if err := r.fillBoth(ctx, churned, taken, all[r.rng.IntN(len(all))]); err != nil {
		return err
	}
	empty := r.network("scale-empty")
	s := sample{}
	for _, phase := range []struct{ label, network string }{{"first", empty}, {"last", sequential}, {"churned", churned}} {
		for i := 0; i < r.cfg.Holes; i++ {
			id := fmt.Sprintf("%s-%d", phase.label, i)
			for _, p := range []*Plugin{r.ours, r.hl} {
				e, err := p.mustRun(ctx, "ADD", p.Conf(phase.network, subnet.String(), ""), id, node)
				if err != nil {
					return err
				}
				s.add(p.Name+" "+phase.label, e)
			}
		}
	}
	res := ScaleResult{Pool: subnet.String(), Addresses: len(all)}
	for _, p := range []*Plugin{r.ours, r.hl} {
		before, err := Scrape(ctx, r.endpoint)
		if err != nil {
			return err
		}
		e, err := p.run(ctx, "ADD", p.Conf(sequential, subnet.String(), ""), "one-too-many", node)
		if err != nil {
			return err
		}
		after, err := Scrape(ctx, r.endpoint)
		if err != nil {
			return err
		}
		if e.ExitCode == 0 {
			return fmt.Errorf("%s handed out an address from a full pool: %s", p.Name, e.Stdout)
		}
		s.add(p.Name+" full", e)
		if p == r.ours {
			res.Ours.Full = e.Elapsed
			res.FullRoundTrips = after.Sub(before).RoundTrips()
			res.FullWrites = after.Sub(before).Writes
		} else {
			res.HostLoc.Full = e.Elapsed
		}
	}
	for _, c := range []struct {
		cost *FillCost
		name string
	}{{&res.Ours, "etcd"}, {&res.HostLoc, "host-local"}} {
		c.cost.First = s.stats(c.name + " first").P50
		c.cost.Last, c.cost.LastMax = s.stats(c.name+" last").P50, s.stats(c.name+" last").Max
		c.cost.Churned, c.cost.ChurnedMax = s.stats(c.name+" churned").P50, s.stats(c.name+" churned").Max
		c.cost.PeakRSSKiB = s.peak[c.name]
	}
	r.rep.Scale = res
	return nil
}

// fillBoth gives network the same taken addresses and position in etcd
// and in host-local's files.
func (r *runner) fillBoth(ctx context.Context, network string, taken []netip.Addr, position netip.Addr) error {
	if err := fillEtcd(ctx, r.cli, network, node, taken, position); err != nil {
		return err
	}
	return fillHostLocal(r.hlDir(), network, taken, position)
}
