package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/store"
)

// lsCommand lists a network's allocations, one per address, as etcd holds
// them.
func lsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list a network's allocations: address, container, interface, node, time",
		UsageText: "etcd-ipam ls --config FILE [--node NAME] [--container ID] [--json]",
		Description: "Lists every allocated address of the network in address order (IPv4\n" +
			"first), with the container ID, interface and node that hold it and when it\n" +
			"was allocated. --node and --container keep only the matching rows.\n\n" +
			"Example:\n\n" +
			"   etcd-ipam ls --config /etc/cni/net.d/10-examplenet.conflist --node node-a",
		Flags: append(networkFlags(),
			&cli.StringFlag{Name: flagNode, Usage: "list only the allocations of node `NAME`"},
			&cli.StringFlag{Name: "container", Usage: "list only the allocations of container `ID`"},
			jsonFlag(),
		),
		Action: runLs,
	}
}

// allocation is one row of ls; its JSON is stable.
type allocation struct {
	Address     string    `json:"address"`
	ContainerID string    `json:"containerID"`
	IfName      string    `json:"ifName"`
	Node        string    `json:"node"`
	RangeSet    int       `json:"rangeSet"`
	Created     time.Time `json:"created"`
}

func runLs(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	conf, s, err := openSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	all, err := s.Allocations(c.Context)
	if err != nil {
		return err
	}
	node, container := c.String(flagNode), c.String("container")
	slices.SortStableFunc(all, func(x, y store.StoredAllocation) int { return x.Addr.Compare(y.Addr) })
	rows := []allocation{}
	for _, a := range all {
		if (node != "" && a.Node != node) || (container != "" && a.ContainerID != container) {
			continue
		}
		rows = append(rows, allocation{Address: a.Addr.String(), ContainerID: a.ContainerID, IfName: a.IfName,
			Node: a.Node, RangeSet: a.RangeSet, Created: a.Created})
	}
	if c.Bool(flagJSON) {
		return writeJSON(c.App.Writer, rows)
	}
	printAllocations(c.App.Writer, rows)
	if len(rows) == 0 {
		fmt.Fprintf(c.App.ErrWriter, "network %s: no allocations match\n", conf.Name)
	}
	return nil
}

func printAllocations(w io.Writer, rows []allocation) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tCONTAINER\tIFNAME\tNODE\tCREATED")
	for _, r := range rows {
		created := "-"
		if !r.Created.IsZero() {
			created = r.Created.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Address, orDash(r.ContainerID), orDash(r.IfName), orDash(r.Node), created)
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// attachmentAddrs lists an attachment's addresses as text.
func attachmentAddrs(att store.StoredAttachment) []string {
	out := make([]string, len(att.IPs))
	for i, ip := range att.IPs {
		out[i] = ip.Address.String()
	}
	return out
}
