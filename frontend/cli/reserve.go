package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/store"
)

// reserveCommand holds addresses permanently: a pod's static addresses, or
// addresses no ADD may hand out.
func reserveCommand() *cli.Command {
	return &cli.Command{
		Name:      "reserve",
		Usage:     "hold addresses for a pod interface (a static address) or for nobody",
		UsageText: "etcd-ipam reserve --config FILE ADDRESS... [--for NAMESPACE/NAME[/IFNAME]] [--note TEXT] [--json]",
		Description: "Holds each ADDRESS permanently. With --for, the pod interface (its\n" +
			"Kubernetes namespace and name, as the runtime passes them in CNI_ARGS, and\n" +
			"the interface, eth0 unless given) gets these addresses at every ADD, on any\n" +
			"node, and its DEL gives them back to the reservation; one address per range\n" +
			"set. Without --for, no ADD hands them out. Reserving is one conditional write:\n" +
			"an address that is taken is refused, naming who has it, and nothing is\n" +
			"reserved. The same reservation again is not an error: it says that it\n" +
			"already holds. etcd-ipam ls shows reservations; etcd-ipam release ADDRESS\n" +
			"(or --pod) ends them.\n\n" +
			"Examples:\n\n" +
			"   etcd-ipam reserve --config net.conflist 203.0.113.10 2001:db8:1::10 --for shop/db-0 --note primary\n" +
			"   etcd-ipam reserve --config net.conflist 203.0.113.99 --note \"printer, static\"",
		Flags: append(networkFlags(),
			&cli.StringFlag{Name: "for", Usage: "hold for pod interface `NAMESPACE/NAME[/IFNAME]` (default interface eth0)"},
			&cli.StringFlag{Name: "note", Usage: "the operator's `TEXT`, shown by ls"},
			jsonFlag(),
		),
		Action: runReserve,
	}
}

// reserveReport is the output of reserve --json.
type reserveReport struct {
	Network   string            `json:"network"`
	For       string            `json:"for,omitempty"`
	Note      string            `json:"note,omitempty"`
	Addresses []reservedAddress `json:"addresses"`
	// Already: this reservation existed (made at Since); reserve wrote
	// nothing.
	Already bool       `json:"already,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
}

type reservedAddress struct {
	Address  string `json:"address"`
	RangeSet int    `json:"rangeSet"`
}

func runReserve(c *cli.Context) error {
	addrs, err := addrArgs(c.Args().Slice())
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return usageErrorf("reserve needs the addresses to hold")
	}
	note := c.String("note")
	if err := config.CheckPrintable("--note", note); err != nil {
		return usageErrorf("%v", err)
	}
	report := reserveReport{Note: note, Addresses: []reservedAddress{}}
	var identity *store.Identity
	if c.IsSet("for") {
		if identity, err = parseIdentity("--for", c.String("for")); err != nil {
			return err
		}
	}
	conf, s, err := openSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	report.Network = conf.Name
	done, err := s.Reserve(c.Context, addrs, identity, report.Note)
	if err != nil {
		return err
	}
	if identity != nil {
		report.For = identity.String()
	}
	if done.Already {
		report.Already, report.Note = true, done.Note
		since := done.Since.UTC()
		report.Since = &since
	}
	for _, h := range done.Held {
		report.Addresses = append(report.Addresses, reservedAddress{Address: h.Addr.String(), RangeSet: h.RangeSet})
	}
	if c.Bool(flagJSON) {
		return writeJSON(c.App.Writer, report)
	}
	whom := "nobody (never handed out)"
	if identity != nil {
		whom = "pod interface " + identity.String()
	}
	var text []string
	for _, a := range report.Addresses {
		text = append(text, a.Address)
	}
	if report.Already {
		fmt.Fprintf(c.App.Writer, "%s in network %s already reserved for %s since %s; nothing changed\n", strings.Join(text, ", "), conf.Name, whom, report.Since.Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(c.App.Writer, "reserved %s in network %s for %s\n", strings.Join(text, ", "), conf.Name, whom)
	return nil
}
