package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/ipam"
)

// reclaimCommand frees the addresses of nodes that have been silent for a
// given time: an operator's decision, reported before it is carried out.
func reclaimCommand() *cli.Command {
	return &cli.Command{
		Name:      "reclaim",
		Usage:     "release the allocations of nodes not seen for a given time",
		UsageText: "etcd-ipam reclaim --config FILE --silent-for DURATION [--yes] [--json]",
		Description: "Lists the nodes not seen for --silent-for (at least " + ipam.MinSilence.String() + ") and what they hold;\n" +
			"with --yes, releases it: each attachment only if unchanged since it was\n" +
			"listed, so a DEL or a node that comes back in between wins. A node left\n" +
			"holding nothing, and not seen again, is forgotten. Without --yes nothing\n" +
			"is written. Only reclaim nodes you know are gone: a node merely cut off from\n" +
			"etcd still runs containers with those addresses.\n\n" +
			"Example:\n\n" +
			"   etcd-ipam reclaim --config net.conflist --silent-for 24h",
		Flags: append(networkFlags(),
			&cli.DurationFlag{Name: "silent-for", Usage: "reclaim nodes not seen for `DURATION` (Go syntax: 90m, 24h)"},
			&cli.BoolFlag{Name: "yes", Usage: "release; without it, only report"},
			jsonFlag(),
		),
		Action: runReclaim,
	}
}

// reclaimNode is one silent node in reclaim's output; its JSON is stable.
type reclaimNode struct {
	Node        string         `json:"node"`
	LastSeen    time.Time      `json:"lastSeen"`
	By          string         `json:"by"`
	Attachments []gcAttachment `json:"attachments"`
	// Released counts the attachments released (0 without --yes); fewer
	// than listed means some changed after they were listed.
	Released  int  `json:"released"`
	Forgotten bool `json:"forgotten"`
}

// reclaimReport is the output of reclaim --json.
type reclaimReport struct {
	Network   string        `json:"network"`
	SilentFor string        `json:"silentFor"`
	DryRun    bool          `json:"dryRun"`
	Nodes     []reclaimNode `json:"nodes"`
}

func runReclaim(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if !c.IsSet("silent-for") {
		return usageErrorf("reclaim needs --silent-for DURATION (at least %s), the silence after which a node counts as gone", ipam.MinSilence)
	}
	silentFor := c.Duration("silent-for")
	if err := ipam.CheckSilence(silentFor); err != nil {
		return usageError{err}
	}
	conf, s, err := openSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	silent, err := s.SilentNodes(c.Context, silentFor)
	if err != nil {
		return err
	}
	report := reclaimReport{Network: conf.Name, SilentFor: silentFor.String(), DryRun: !c.Bool("yes"), Nodes: []reclaimNode{}}
	for _, n := range silent {
		row := reclaimNode{Node: n.Node, LastSeen: n.At, By: n.By, Attachments: []gcAttachment{}}
		for _, att := range n.Attachments {
			row.Attachments = append(row.Attachments, gcAttachment{ContainerID: att.ContainerID, IfName: att.IfName,
				Node: att.Node, Created: att.Created, IPs: attachmentAddrs(att)})
		}
		if !report.DryRun {
			row.Released, row.Forgotten, err = s.Reclaim(c.Context, n)
			if err != nil {
				return fmt.Errorf("reclaiming node %s after releasing %d of %d attachments: %w", n.Node, row.Released, len(n.Attachments), err)
			}
		}
		report.Nodes = append(report.Nodes, row)
	}
	if c.Bool(flagJSON) {
		return writeJSON(c.App.Writer, report)
	}
	now := time.Now()
	for _, n := range report.Nodes {
		fmt.Fprintf(c.App.Writer, "node %s: silent for %s (last seen %s by %s), %d %s\n", cell(n.Node), silence(now, n.LastSeen),
			n.LastSeen.UTC().Format(time.RFC3339), cell(orDash(n.By)), len(n.Attachments), pluralize(len(n.Attachments), "attachment", "attachments"))
		for _, a := range n.Attachments {
			fmt.Fprintf(c.App.Writer, "  container %s interface %s: %s\n", cell(a.ContainerID), cell(a.IfName), strings.Join(a.IPs, ", "))
		}
		if !report.DryRun {
			fmt.Fprintf(c.App.Writer, "  released %d of %d", n.Released, len(n.Attachments))
			if n.Forgotten {
				fmt.Fprint(c.App.Writer, "; node forgotten")
			}
			fmt.Fprintln(c.App.Writer)
		}
	}
	switch {
	case len(report.Nodes) == 0:
		fmt.Fprintf(c.App.ErrWriter, "network %s: no node silent for %s\n", conf.Name, silentFor)
	case report.DryRun:
		fmt.Fprintf(c.App.ErrWriter, "nothing released: run again with --yes to release the above\n")
	}
	return nil
}
