package main

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/internal/bench"
)

// soakCommand is "bench soak": months of container churn against a
// three-member cluster with auto-compaction on, for the README's
// Operations section (does etcd's database stay bounded?).
func soakCommand() *cli.Command {
	return &cli.Command{
		Name:  "soak",
		Usage: "churn ADD/DEL pairs on a 3-member embedded cluster and report etcd's revisions and database size",
		Description: "Starts a three-member embedded etcd cluster on loopback with auto-compaction on, fills\n" +
			"a /16 with --fill containers from --nodes concurrent sessions, counts the keys and bytes one\n" +
			"ADD and one DEL write, runs --pairs ADD/DEL pairs (each ADDs a container and DELs its node's\n" +
			"oldest), then compacts to the current revision and defragments every member. It prints the\n" +
			"revision and each member's database size after every phase, and whether the database after\n" +
			"compaction and defragmentation is within 2 times its size after the first fill.\n" +
			"The churn stops after --max-churn even if pairs are left; the report says how many were done.\n\n" +
			"Example:\n\n" +
			"   etcd-ipam bench soak --pairs 20000 --max-churn 10m",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quick", Usage: "2,000 pairs after 1,000 containers (about a minute)"},
			&cli.IntFlag{Name: "pairs", Usage: "ADD/DEL pairs after the fill", DefaultText: "100000, quick 2000"},
			&cli.IntFlag{Name: "fill", Usage: "containers ADDed first and kept attached", DefaultText: "10000, quick 1000"},
			&cli.IntFlag{Name: "nodes", Usage: "concurrent sessions, each a node", DefaultText: "4"},
			&cli.StringFlag{Name: "auto-compaction-mode", Value: "revision", Usage: "etcd's --auto-compaction-mode: revision or periodic"},
			&cli.StringFlag{Name: "auto-compaction-retention", Value: "10000", Usage: "etcd's --auto-compaction-retention: revisions, or a duration in periodic mode"},
			&cli.DurationFlag{Name: "max-churn", Usage: "stop the churn after this long", DefaultText: "20m, quick 5m"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cfg := bench.SoakFull()
			if c.Bool("quick") {
				cfg = bench.SoakQuick()
			}
			for _, f := range []struct {
				name string
				to   *int
			}{{"pairs", &cfg.Pairs}, {"fill", &cfg.Fill}, {"nodes", &cfg.Nodes}} {
				if !c.IsSet(f.name) {
					continue
				}
				n := c.Int(f.name)
				if n < 1 {
					return usageErrorf("--%s must be positive, got %d", f.name, n)
				}
				*f.to = n
			}
			if c.IsSet("max-churn") {
				if d := c.Duration("max-churn"); d <= 0 || d > 24*time.Hour {
					return usageErrorf("--max-churn must be between 0 and 24h, got %v", d)
				}
				cfg.MaxChurn = c.Duration("max-churn")
			}
			cfg.CompactionMode, cfg.CompactionRetention = c.String("auto-compaction-mode"), c.String("auto-compaction-retention")
			cfg.Progress = c.App.ErrWriter
			report, err := bench.RunSoak(c.Context, cfg)
			if err != nil {
				return err
			}
			return report.Print(c.App.Writer)
		},
	}
}
