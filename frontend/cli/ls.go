package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
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
		UsageText: "etcd-ipam ls --config FILE [--node NAME] [--container ID] [--pod NS/NAME] [--json]",
		Description: "Lists every allocated address of the network in address order (IPv4\n" +
			"first), with the container ID, interface, pod and node that hold it and when\n" +
			"it was allocated, and every held address (HOLD: sticky until when, cooling\n" +
			"until when after a release on a network with a cooldown, or an operator's\n" +
			"reservation, with its note), with the pod it is held for.\n" +
			"--node, --container and --pod keep only the matching rows.\n\n" +
			"Example:\n\n" +
			"   etcd-ipam ls --config /etc/cni/net.d/10-examplenet.conflist --node node-a",
		Flags: append(networkFlags(),
			&cli.StringFlag{Name: flagNode, Usage: "list only the allocations of node `NAME`"},
			&cli.StringFlag{Name: "container", Usage: "list only the allocations of container `ID`"},
			&cli.StringFlag{Name: "pod", Usage: "list only the allocations and holds of pod `NAMESPACE/NAME`"},
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
	// Pod is NAMESPACE/NAME: the attachment's pod, or whom a hold is for.
	Pod  string      `json:"pod,omitempty"`
	Hold *store.Hold `json:"hold,omitempty"`
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
	pod := ""
	if c.IsSet("pod") {
		ns, name, err := parsePod("--pod", c.String("pod"))
		if err != nil {
			return err
		}
		pod = ns + "/" + name
	}
	vacant, err := vacantReservations(c.Context, s, all)
	if err != nil {
		return err
	}
	all = append(all, vacant...)
	slices.SortStableFunc(all, func(x, y store.StoredAllocation) int { return x.Addr.Compare(y.Addr) })
	rows := []allocation{}
	for _, a := range all {
		if (node != "" && a.Node != node) || (container != "" && a.ContainerID != container) || (pod != "" && podOf(a.Allocation) != pod) {
			continue
		}
		rows = append(rows, allocation{Address: a.Addr.String(), ContainerID: a.ContainerID, IfName: a.IfName,
			Node: a.Node, RangeSet: a.RangeSet, Created: a.Created, Pod: podOf(a.Allocation), Hold: a.Hold})
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

// vacantReservations are the reservations whose address key is gone: the
// address was released while etcd's database was full, which leaves the
// reservation in its pod interface's held set only, until the pod's next
// ADD takes the address from it. They are shown as held, since they are
// (for the ADD of that pod).
func vacantReservations(ctx context.Context, s *session, all []store.StoredAllocation) ([]store.StoredAllocation, error) {
	sets, err := s.Holds(ctx)
	if err != nil {
		return nil, err
	}
	taken := make(map[netip.Addr]bool, len(all))
	for _, a := range all {
		taken[a.Addr] = true
	}
	var out []store.StoredAllocation
	for _, set := range sets {
		for _, h := range set.Addrs {
			if h.Hold.Kind == store.HoldReserved && !taken[h.Addr] {
				hold := h.Hold
				out = append(out, store.StoredAllocation{Addr: h.Addr, Allocation: store.Allocation{RangeSet: h.RangeSet, Hold: &hold}})
			}
		}
	}
	return out, nil
}

func printAllocations(w io.Writer, rows []allocation) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tCONTAINER\tIFNAME\tPOD\tNODE\tCREATED\tHOLD")
	for _, r := range rows {
		created := "-"
		if !r.Created.IsZero() {
			created = r.Created.UTC().Format(time.RFC3339)
		}
		ifName := r.IfName
		if r.Hold != nil && r.Hold.For != nil {
			ifName = r.Hold.For.IfName
			created = r.Hold.Since.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Address, cell(orDash(r.ContainerID)), cell(orDash(ifName)), cell(orDash(r.Pod)),
			cell(orDash(r.Node)), created, cell(holdText(r.Hold)))
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

// holdText says why an address is held, for ls: "sticky until TIME",
// "cooling until TIME" or "reserved" with the operator's note; "-" when it
// is not held.
func holdText(h *store.Hold) string {
	switch {
	case h == nil:
		return "-"
	case h.Kind == store.HoldSticky:
		return "sticky until " + h.Until.UTC().Format(time.RFC3339)
	case h.Kind == store.HoldCooling:
		return "cooling until " + h.Until.UTC().Format(time.RFC3339)
	case h.Note != "":
		return h.Kind + ": " + h.Note
	}
	return h.Kind
}
