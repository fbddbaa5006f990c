package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/internal/bench"
)

// benchCommand measures the plugin as a runtime runs it, beside host-local,
// and prints the table the README's Performance section shows.
func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure the plugin against host-local v1.10.0 on an embedded etcd",
		Description: "Builds the plugin and host-local v1.10.0 (run it inside the etcd-ipam module;\n" +
			"--plugin and --host-local compare other builds), starts an embedded etcd on loopback and\n" +
			"runs whole plugin processes: sequential ADD/DEL latency on an empty /16 and at\n" +
			"90% of a /20, 8 to 64 concurrent allocators on one network (round trips counted\n" +
			"from etcd's /metrics), filling a /16 completely, and GC of 10,000 stale\n" +
			"allocations. It prints a table and whether the performance goals hold.\n" +
			"The full run takes a few minutes; --quick scales every scenario down.\n" +
			"\"bench scale\" measures many nodes at once on a three-member cluster instead.",
		Subcommands: []*cli.Command{benchScaleCommand(), soakCommand()},
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quick", Usage: "scaled-down run of every scenario (about a minute)"},
			&cli.IntFlag{Name: "ops", Usage: "ADD+DEL pairs per plugin per latency scenario (default: 200, quick 30)"},
			&cli.StringFlag{Name: "plugin", Usage: "use this prebuilt plugin binary `PATH` instead of building one"},
			&cli.StringFlag{Name: "host-local", Usage: "use this prebuilt host-local binary `PATH` instead of building v1.10.0"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cfg := bench.Full()
			if c.Bool("quick") {
				cfg = bench.Quick()
			}
			if n := c.Int("ops"); n != 0 {
				if n < 1 {
					return usageErrorf("--ops must be positive, got %d", n)
				}
				cfg.Ops = n
			}
			cfg.Plugin, cfg.HostLocal = c.String("plugin"), c.String("host-local")
			cfg.Progress = c.App.ErrWriter
			report, err := bench.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			return report.Print(c.App.Writer)
		},
	}
}

// benchScaleCommand measures many nodes allocating at once against a
// three-member cluster, beside the floor: the least etcd work the same
// allocations need.
func benchScaleCommand() *cli.Command {
	def := bench.ScaleDefaults()
	return &cli.Command{
		Name:  "scale",
		Usage: "measure many nodes at once on a three-member etcd cluster against the floor",
		Description: "Starts a three-member etcd cluster on loopback in this process and, for each\n" +
			"--nodes count, opens one session per simulated node (its own client and node name),\n" +
			"releases them all at once for a burst of --per-node ADDs each, then --churn DEL+ADD\n" +
			"cycles each. The floor does the same at the same concurrency with the least etcd work an\n" +
			"uncontended ADD needs (one read, one create-if-absent write of the same keys) and no\n" +
			"allocation logic. It prints throughput, latency, write transactions and WAL bytes per\n" +
			"operation for both, checks that no address was handed out twice, and judges the goals.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "nodes", Value: joinInts(def.Nodes), Usage: "comma-separated numbers of simulated nodes, one run each"},
			&cli.IntFlag{Name: "per-node", Value: def.PerNode, Usage: "ADDs each node makes in the burst"},
			&cli.IntFlag{Name: "churn", Value: def.Churn, Usage: "DEL+ADD cycles each node makes after the burst"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cfg := def
			nodes, err := parseInts(c.String("nodes"))
			if err != nil {
				return usageErrorf("--nodes: %v", err)
			}
			cfg.Nodes, cfg.PerNode, cfg.Churn = nodes, c.Int("per-node"), c.Int("churn")
			if cfg.PerNode < 1 || cfg.Churn < 0 {
				return usageErrorf("--per-node must be positive and --churn not negative, got %d and %d", cfg.PerNode, cfg.Churn)
			}
			cfg.Progress = c.App.ErrWriter
			report, err := bench.RunCluster(c.Context, cfg)
			if err != nil {
				return err
			}
			return report.Print(c.App.Writer)
		},
	}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// parseInts reads a comma-separated list of positive numbers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}
