package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/ipam"
	"github.com/etcd-cni/etcd-ipam/store"
)

// planCommand prints what the next ADDs would get, without writing: the
// operator's dry run of the plugin.
func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show which addresses the next N ADDs would get, without allocating",
		UsageText: "etcd-ipam plan --config FILE [--count N] [--offline] [--json]",
		Description: "Reads the network's allocations and round-robin positions from etcd (or,\n" +
			"with --offline, assumes an empty pool) and computes, with the plugin's own\n" +
			"allocation core, the addresses the next N ADDs would return: one per range\n" +
			"set, in host-local's round-robin order, for ADDs that request no particular\n" +
			"address. It writes nothing.\n\n" +
			"The plan holds for a quiet network allocated from one node: an ADD or DEL\n" +
			"made in between, or several nodes allocating at the same moment (the\n" +
			"plugin then spreads their searches over the pool), changes the answer.\n\n" +
			"Example:\n\n" +
			"   etcd-ipam plan --config /etc/cni/net.d/10-examplenet.conflist --count 3",
		Flags: append(networkFlags(),
			&cli.IntFlag{Name: "count", Aliases: []string{"n"}, Value: 1, Usage: "plan `N` ADDs"},
			&cli.BoolFlag{Name: "offline", Usage: "plan for an empty pool without contacting etcd"},
			&cli.StringFlag{Name: flagNode, Usage: "plan the ADDs of node `NAME` (default: the name the plugin records on this machine)"},
			jsonFlag(),
		),
		Action: runPlan,
	}
}

// planRange is one range of a plan; its JSON is stable.
type planRange struct {
	rangeUsage
	// FreeAfter is what would be free after the planned ADDs.
	FreeAfter uint64 `json:"freeAfter"`
}

// planReport is the output of plan --json.
type planReport struct {
	Network string `json:"network"`
	Offline bool   `json:"offline"`
	// Adds lists, per planned ADD, its addresses in result order.
	Adds [][]string `json:"adds"`
	// Failure says why ADD number len(Adds)+1 would fail, if it would.
	Failure *planFailure `json:"failure,omitempty"`
	Ranges  []planRange  `json:"ranges"`
	// Racing lists the range sets another node allocated from less than
	// ipam.BurstWindow ago, when an ADD would not follow the plan's order.
	Racing []int `json:"racing"`
}

type planFailure struct {
	RangeSet int    `json:"rangeSet"`
	Message  string `json:"message"`
}

// maxPlan bounds --count: a plan holds every planned address in memory
// (100000 ADDs on a /12 plan in about a second).
const maxPlan = 100000

func runPlan(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	n := c.Int("count")
	if n < 1 || n > maxPlan {
		return usageErrorf("--count must be between 1 and %d, got %d", maxPlan, n)
	}
	conf, err := loadNetwork(c)
	if err != nil {
		return err
	}
	host, closer, err := coreHost(c, conf)
	if err != nil {
		return err
	}
	defer closer.Close()
	var sets []core.RangeSet
	var plan ipam.Plan
	if c.Bool("offline") {
		if sets, err = host.CanonicalizeRangeSets(conf.RangeSets); err != nil {
			return fmt.Errorf("the ranges of network %q: %w", conf.Name, err)
		}
		plan = ipam.Simulate(host, sets, store.PlanState{}, n)
	} else {
		node, err := nodeName(c, conf)
		if err != nil {
			return err
		}
		s, err := ipam.Open(conf, ipam.Options{Core: host, Node: node})
		if err != nil {
			return err
		}
		defer s.Close()
		sets = s.RangeSets()
		if plan, err = s.Plan(c.Context, n); err != nil {
			return fmt.Errorf("planning on network %q: %w", conf.Name, err)
		}
		if conf.Cooldown > 0 {
			// Cooling addresses are taken keys, so the plan skips them
			// already; their count says why a pool looks fuller than
			// its containers (one more round trip, of counts only).
			usage, err := s.Usage(c.Context)
			if err != nil {
				return fmt.Errorf("counting the cooling addresses of network %q: %w", conf.Name, err)
			}
			for i := range plan.Usage {
				if i < len(usage) {
					plan.Usage[i].Cooling = usage[i].Cooling
				}
			}
		}
	}
	report := describePlan(conf.Name, c.Bool("offline"), sets, plan)
	for _, i := range report.Racing {
		fmt.Fprintf(c.App.ErrWriter, "note: another node allocated from range set %d less than %v ago; an ADD now would start at a spread-out spot, so this plan holds once the network is quiet\n", i, ipam.BurstWindow)
	}
	if c.Bool(flagJSON) {
		return writeJSON(c.App.Writer, report)
	}
	printPlan(c.App.Writer, report, len(sets))
	return nil
}

func describePlan(network string, offline bool, sets []core.RangeSet, plan ipam.Plan) planReport {
	report := planReport{Network: network, Offline: offline, Adds: [][]string{}, Racing: append([]int{}, plan.Racing...)}
	planned := map[[2]int]uint64{}
	for _, add := range plan.Adds {
		ips := make([]string, len(add.IPs))
		for i, ip := range add.IPs {
			ips[i] = ip.Address.String()
			if r, ok := sets[ip.RangeSet].RangeFor(ip.Address.Addr()); ok {
				planned[[2]int{ip.RangeSet, r}]++
			}
		}
		report.Adds = append(report.Adds, ips)
	}
	if f := plan.Failure; f != nil {
		report.Failure = &planFailure{RangeSet: f.RangeSet,
			Message: fmt.Sprintf("range set %d (%s) has no free address", f.RangeSet, sets[f.RangeSet])}
		var cooling uint64
		for _, u := range plan.Usage {
			if u.RangeSet == f.RangeSet {
				cooling += u.Cooling
			}
		}
		if cooling > 0 {
			report.Failure.Message += fmt.Sprintf(" (%d %s cooling down after their release: free again when the cooldown has passed)", cooling, pluralize(int(cooling), "address is", "addresses are"))
		}
	}
	for _, u := range describeUsage(sets, plan.Usage) {
		after := u.Free - min(u.Free, planned[[2]int{u.RangeSet, u.Range}])
		report.Ranges = append(report.Ranges, planRange{rangeUsage: u, FreeAfter: after})
	}
	return report
}

func printPlan(w io.Writer, report planReport, nsets int) {
	state := "the live state in etcd"
	if report.Offline {
		state = "an empty pool (--offline)"
	}
	fmt.Fprintf(w, "network %s: the next ADDs from %s\n", report.Network, state)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"ADD"}
	for i := 0; i < nsets; i++ {
		header = append(header, fmt.Sprintf("RANGE SET %d", i))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for k, ips := range report.Adds {
		fmt.Fprintf(tw, "%d\t%s\n", k+1, strings.Join(ips, "\t"))
	}
	_ = tw.Flush()
	if f := report.Failure; f != nil {
		fmt.Fprintf(w, "ADD %d and later would fail: %s\n", len(report.Adds)+1, f.Message)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SET\tRANGE\tSIZE\tUSED\tFREE\tFREE AFTER")
	for _, r := range report.Ranges {
		fmt.Fprintf(tw, "%d\t%s-%s\t%d\t%d\t%d\t%d\n", r.RangeSet, r.RangeStart, r.RangeEnd, r.Size, r.Used, r.Free, r.FreeAfter)
	}
	_ = tw.Flush()
}
