package bench

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"
	"time"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// PhaseResult is one phase of a crowd: the burst or the churn.
type PhaseResult struct {
	// Adds and Dels count the operations that succeeded; their latencies
	// (Add, Del) include the failed ones, which mostly ran into the
	// plugin's deadline.
	Adds, Dels             int
	FailedAdds, FailedDels int
	FirstError             string
	// Wall runs from the moment every node is released to the last
	// node's end.
	Wall     time.Duration
	Add, Del Stats
	// RoundTrips are KV requests served by all members (each request
	// reaches one); Writes are the raft entries applied (every member
	// applies each once); WALBytes are appended to all members' logs
	// together (see scrapeCluster).
	RoundTrips, Writes, WALBytes float64
	LeaderChanged                bool
}

// Failures counts the ADDs and DELs that failed.
func (p PhaseResult) Failures() int { return p.FailedAdds + p.FailedDels }

// Ops is the number of ADDs and DELs that succeeded.
func (p PhaseResult) Ops() int { return p.Adds + p.Dels }

// AddsPerSecond is the phase's throughput in allocations.
func (p PhaseResult) AddsPerSecond() float64 {
	if p.Wall <= 0 {
		return 0
	}
	return float64(p.Adds) / p.Wall.Seconds()
}

func (p PhaseResult) perOp(v float64) float64 {
	if p.Ops() == 0 {
		return 0
	}
	return v / float64(p.Ops())
}

// CrowdResult is one allocator kind at one number of nodes.
type CrowdResult struct {
	Kind                  string // kindOurs or kindFloor
	Nodes, PerNode, Churn int
	Burst, Churned        PhaseResult
	// Live is the number of containers holding an address at the end;
	// Duplicates the addresses held by more than one of them; Mismatches
	// the live containers whose address key in etcd does not name them,
	// and address keys held by containers nobody holds.
	Live, Duplicates, Mismatches int
}

// verify checks that the live containers' addresses are unique and that
// etcd holds exactly those addresses (ignoring containers whose ADD or
// DEL failed, whose state the nodes do not know).
func (c *CrowdResult) verify(ctx context.Context, conf *config.Network, logs []nodeLog) error {
	byAddr := map[netip.Addr]string{}
	unknown := map[string]bool{}
	for _, l := range logs {
		for _, id := range l.uncertain {
			unknown[id] = true
		}
		for id, a := range l.held {
			c.Live++
			if _, dup := byAddr[a]; dup {
				c.Duplicates++
				continue
			}
			byAddr[a] = id
		}
	}
	s, err := ipam.Open(conf, ipam.Options{Core: native.New(), Node: "bench-checker"})
	if err != nil {
		return err
	}
	defer s.Close()
	allocs, err := s.Allocations(ctx)
	if err != nil {
		return fmt.Errorf("listing the allocations to check them: %w", err)
	}
	found := 0
	for _, a := range allocs {
		switch id, ok := byAddr[a.Addr]; {
		case ok && id == a.ContainerID:
			found++
		case unknown[a.ContainerID]:
		default:
			c.Mismatches++
		}
	}
	c.Mismatches += len(byAddr) - found
	return nil
}

// ClusterReport is everything one scale run measured.
type ClusterReport struct {
	Members int
	Pool    string
	Crowds  []CrowdResult // ours then the floor's, for each number of nodes
	Goals   []Goal
}

// pairs returns ours and the floor's crowd for each number of nodes.
func (r *ClusterReport) pairs() [][2]CrowdResult {
	var out [][2]CrowdResult
	for i := 0; i+1 < len(r.Crowds); i += 2 {
		out = append(out, [2]CrowdResult{r.Crowds[i], r.Crowds[i+1]})
	}
	return out
}

func quotient(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// judge checks issue 14's goals: throughput at least 0.85 times the
// floor's, p99 at most 1.5 times the floor's, at most 1.05 write
// transactions per operation, no duplicate and no failure.
func (r *ClusterReport) judge() {
	goal := func(what string, met bool, format string, args ...any) {
		r.Goals = append(r.Goals, Goal{What: what, Measured: fmt.Sprintf(format, args...), Met: met})
	}
	for _, p := range r.pairs() {
		ours, floor := p[0], p[1]
		for _, ph := range []struct {
			name     string
			o, f     PhaseResult
			throughp string
		}{{"burst", ours.Burst, floor.Burst, "allocs/s"}, {"churn", ours.Churned, floor.Churned, "ADDs/s (each after a DEL)"}} {
			if ph.f.Adds == 0 {
				continue
			}
			q := quotient(ph.o.AddsPerSecond(), ph.f.AddsPerSecond())
			goal(fmt.Sprintf("%d nodes, %s: %s >= 0.85x the floor's", ours.Nodes, ph.name, ph.throughp), q >= 0.85,
				"%.0f vs %.0f = %.2fx", ph.o.AddsPerSecond(), ph.f.AddsPerSecond(), q)
			q = ratio(ph.o.Add.P99, ph.f.Add.P99)
			goal(fmt.Sprintf("%d nodes, %s: ADD p99 <= 1.5x the floor's", ours.Nodes, ph.name), q <= 1.5,
				"%s vs %s = %.2fx", ms(ph.o.Add.P99), ms(ph.f.Add.P99), q)
			w := ph.o.perOp(ph.o.Writes)
			goal(fmt.Sprintf("%d nodes, %s: <= 1.05 write txns per ADD or DEL", ours.Nodes, ph.name), w <= 1.05, "%.3f", w)
		}
		goal(fmt.Sprintf("%d nodes: no duplicate address, etcd agrees", ours.Nodes), ours.Duplicates == 0 && ours.Mismatches == 0,
			"%d duplicates, %d mismatches among %d live", ours.Duplicates, ours.Mismatches, ours.Live)
		fails := ours.Burst.Failures() + ours.Churned.Failures()
		goal(fmt.Sprintf("%d nodes: no failed ADD or DEL", ours.Nodes), fails == 0, "%d failed", fails)
	}
}

// Print writes the report as aligned tables.
func (r *ClusterReport) Print(w io.Writer) error {
	fmt.Fprintf(w, "Scale on a %d-member cluster: N nodes at once, each its own client and node name, on %s\n", r.Members, r.Pool)
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "nodes\tphase\tallocator\tADDs\tallocs/s\tADD p50 / p99 / max\tDEL p99\tround trips/op\twrite txns/op\tWAL bytes/op (all members)\tfailed ADD/DEL")
	for _, c := range r.Crowds {
		for _, ph := range []struct {
			name string
			p    PhaseResult
		}{{fmt.Sprintf("burst (%d each)", c.PerNode), c.Burst}, {fmt.Sprintf("churn (%d each)", c.Churn), c.Churned}} {
			p := ph.p
			del := "-"
			if p.Dels > 0 {
				del = ms(p.Del.P99)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%.0f\t%s / %s / %s\t%s\t%.2f\t%.3f\t%.0f\t%d/%d\n", c.Nodes, ph.name, c.Kind, p.Adds, p.AddsPerSecond(),
				ms(p.Add.P50), ms(p.Add.P99), ms(p.Add.Max), del, p.perOp(p.RoundTrips), p.perOp(p.Writes), p.perOp(p.WALBytes), p.FailedAdds, p.FailedDels)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "ADDs and allocs/s count successful ADDs; latencies include failed ones. Per op: per successful ADD or DEL.")
	fmt.Fprintln(w, "\nOurs / the floor (same nodes, same phase)")
	tw = tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "nodes\tphase\tallocs/s\tADD p50\tADD p99\twrite txns/op\tWAL bytes/op\tduplicates (ours, floor)")
	for _, p := range r.pairs() {
		o, f := p[0], p[1]
		for _, ph := range []struct {
			name string
			o, f PhaseResult
		}{{"burst", o.Burst, f.Burst}, {"churn", o.Churned, f.Churned}} {
			fmt.Fprintf(tw, "%d\t%s\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t%d, %d\n", o.Nodes, ph.name,
				quotient(ph.o.AddsPerSecond(), ph.f.AddsPerSecond()), ratio(ph.o.Add.P50, ph.f.Add.P50), ratio(ph.o.Add.P99, ph.f.Add.P99),
				quotient(ph.o.perOp(ph.o.Writes), ph.f.perOp(ph.f.Writes)), quotient(ph.o.perOp(ph.o.WALBytes), ph.f.perOp(ph.f.WALBytes)),
				o.Duplicates+o.Mismatches, f.Duplicates+f.Mismatches)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range r.Crowds {
		for _, p := range []PhaseResult{c.Burst, c.Churned} {
			if p.FirstError != "" {
				fmt.Fprintf(w, "%d nodes, %s: first failure: %s\n", c.Nodes, c.Kind, p.FirstError)
			}
			if p.LeaderChanged {
				fmt.Fprintf(w, "%d nodes, %s: the leader changed during a phase\n", c.Nodes, c.Kind)
			}
		}
	}
	fmt.Fprintln(w, "\nGoals")
	tw = tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "goal\tmeasured\tverdict")
	printGoals(tw, r.Goals)
	return tw.Flush()
}
