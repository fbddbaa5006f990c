package main

import (
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
			"The full run takes a few minutes; --quick scales every scenario down.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quick", Usage: "scaled-down run of every scenario (about a minute)"},
			&cli.IntFlag{Name: "ops", Usage: "ADD+DEL pairs per plugin per latency scenario (default: 200, quick 30)"},
			&cli.StringFlag{Name: "plugin", Usage: "use this prebuilt plugin binary `PATH` instead of building one"},
			&cli.StringFlag{Name: "host-local", Usage: "use this prebuilt host-local binary `PATH` instead of building v1.10.0"},
		},
		Subcommands: []*cli.Command{soakCommand()},
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
