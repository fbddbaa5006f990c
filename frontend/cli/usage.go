package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// usageCommand shows how full each range is, for a person at a glance
// (a bar per range) or for a script (--json).
func usageCommand() *cli.Command {
	return &cli.Command{
		Name:      "usage",
		Usage:     "show size, used and free addresses of every range as a bar chart",
		UsageText: "etcd-ipam usage --config FILE [--json]",
		Description: "Counts the allocated addresses of every range in etcd (one round trip) and\n" +
			"draws one bar per range. Size is what the range can hand out: its gateway\n" +
			"and the addresses its \"exclude\" list names are left out, and Excluded says\n" +
			"how many the list keeps back (size + excluded is the size without it).\n" +
			"Held and cooling addresses are used: held for a pod or reserved, or\n" +
			"cooling down after their release (ipam \"cooldown\").\n\n" +
			"Example:\n\n" +
			"   etcd-ipam usage --config /etc/cni/net.d/10-examplenet.conflist",
		Flags:  append(networkFlags(), jsonFlag()),
		Action: runUsage,
	}
}

// rangeUsage is one range of the usage report; its JSON is stable.
type rangeUsage struct {
	RangeSet   int     `json:"rangeSet"`
	Range      int     `json:"range"`
	Subnet     string  `json:"subnet"`
	RangeStart string  `json:"rangeStart"`
	RangeEnd   string  `json:"rangeEnd"`
	Gateway    string  `json:"gateway"`
	Size       uint64  `json:"size"`
	Used       uint64  `json:"used"`
	Free       uint64  `json:"free"`
	Excluded   uint64  `json:"excluded"` // never handed out, not in Size
	Held       uint64  `json:"held"`     // of Used: held for a pod or reserved
	Cooling    uint64  `json:"cooling"`  // of Used: cooling after a release (ipam "cooldown")
	Percent    float64 `json:"percent"`  // rounded to two decimals
}

// usageReport is the output of usage --json.
type usageReport struct {
	Network string       `json:"network"`
	Ranges  []rangeUsage `json:"ranges"`
}

// describeUsage joins the counts with the ranges they belong to.
func describeUsage(sets []core.RangeSet, usage []ipam.Usage) []rangeUsage {
	out := make([]rangeUsage, 0, len(usage))
	for _, u := range usage {
		r := sets[u.RangeSet][u.Range]
		free := uint64(0)
		if u.Used < u.Capacity {
			free = u.Capacity - u.Used
		}
		percent := 100.0
		if u.Capacity > 0 {
			percent = math.Round(float64(u.Used)/float64(u.Capacity)*100*100) / 100
		}
		out = append(out, rangeUsage{
			RangeSet: u.RangeSet, Range: u.Range,
			Subnet: r.Subnet.String(), RangeStart: r.RangeStart.String(), RangeEnd: r.RangeEnd.String(), Gateway: r.Gateway.String(),
			Size: u.Capacity, Used: u.Used, Free: free, Excluded: u.Excluded, Held: u.Held, Cooling: u.Cooling, Percent: percent,
		})
	}
	return out
}

func runUsage(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	conf, s, err := openSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	usage, err := s.Usage(c.Context)
	if err != nil {
		return fmt.Errorf("reading usage of network %q: %w", conf.Name, err)
	}
	report := usageReport{Network: conf.Name, Ranges: describeUsage(s.RangeSets(), usage)}
	if c.Bool(flagJSON) {
		return writeJSON(c.App.Writer, report)
	}
	printUsage(c.App.Writer, report, conf.Cooldown > 0)
	return nil
}

// barWidth is the length of a usage bar in characters.
const barWidth = 30

// bar draws percent as a bar of barWidth: '#' used, '.' free. Any use at
// all shows at least one '#', and only a full range is all '#'.
func bar(used, size uint64, percent float64) string {
	filled := int(percent / 100 * barWidth)
	if used > 0 && filled == 0 {
		filled = 1
	}
	if used < size && filled == barWidth {
		filled = barWidth - 1
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", barWidth-filled) + "]"
}

// printUsage writes the chart; the COOLING column only where it can say
// something (the network has a cooldown, or addresses cool from one it
// had), so that a network without a cooldown reads as before.
func printUsage(w io.Writer, report usageReport, cooldown bool) {
	for _, r := range report.Ranges {
		cooldown = cooldown || r.Cooling > 0
	}
	fmt.Fprintf(w, "network %s\n", report.Network)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	cooling := func(r rangeUsage) string { return "" }
	if cooldown {
		fmt.Fprintln(tw, "SET\tRANGE\tUSAGE\tUSED\tHELD\tCOOLING\tSIZE\tFREE\tEXCLUDED")
		cooling = func(r rangeUsage) string { return fmt.Sprintf("%d\t", r.Cooling) }
	} else {
		fmt.Fprintln(tw, "SET\tRANGE\tUSAGE\tUSED\tHELD\tSIZE\tFREE\tEXCLUDED")
	}
	for _, r := range report.Ranges {
		fmt.Fprintf(tw, "%d\t%s-%s\t%s %5.1f%%\t%d\t%d\t%s%d\t%d\t%d\n", r.RangeSet, r.RangeStart, r.RangeEnd,
			bar(r.Used, r.Size, r.Percent), r.Percent, r.Used, r.Held, cooling(r), r.Size, r.Free, r.Excluded)
	}
	_ = tw.Flush()
}
