package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

// nodesCommand shows each node's liveness and how much it holds, so that
// an operator sees which nodes went silent while holding addresses.
func nodesCommand() *cli.Command {
	return &cli.Command{
		Name:      "nodes",
		Usage:     "list the nodes of a network: last seen, by which command, addresses held",
		UsageText: "etcd-ipam nodes --config FILE [--json]",
		Description: "Lists every node the plugin has seen on the network, the longest silent\n" +
			"first: when it was last seen and by which CNI command (ADD, DEL, CHECK, GC or\n" +
			"STATUS; recorded at most once a minute), and how many addresses it holds.\n" +
			"It reads the liveness records and one count per node, never the allocations.\n" +
			"A node whose runtime calls neither STATUS nor GC is seen only when it adds or\n" +
			"deletes a container; see etcd-ipam reclaim for freeing a dead node's addresses.",
		Flags:  append(networkFlags(), jsonFlag()),
		Action: runNodes,
	}
}

// nodeRow is one row of nodes; its JSON is stable.
type nodeRow struct {
	Node      string    `json:"node"`
	LastSeen  time.Time `json:"lastSeen"`
	By        string    `json:"by"`
	Silent    string    `json:"silentFor"`
	Addresses int64     `json:"addresses"`
}

func runNodes(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	conf, s, err := openSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	nodes, err := s.Nodes(c.Context)
	if err != nil {
		return err
	}
	now := time.Now()
	rows := []nodeRow{}
	for _, n := range nodes {
		rows = append(rows, nodeRow{Node: n.Node, LastSeen: n.At, By: n.By, Silent: silence(now, n.At), Addresses: n.Addresses})
	}
	if c.Bool(flagJSON) {
		return writeJSON(c.App.Writer, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(c.App.ErrWriter, "network %s: no node has been seen\n", conf.Name)
		return nil
	}
	printNodes(c.App.Writer, rows)
	return nil
}

func printNodes(w io.Writer, rows []nodeRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tLAST SEEN\tSILENT FOR\tBY\tADDRESSES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", cell(r.Node), r.LastSeen.UTC().Format(time.RFC3339), r.Silent, cell(orDash(r.By)), r.Addresses)
	}
	_ = tw.Flush()
}

// silence is how long ago at was, to the second.
func silence(now, at time.Time) string {
	if at.IsZero() {
		return "-"
	}
	return now.Sub(at).Truncate(time.Second).String()
}
