package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/store"
)

// releaseCommand frees addresses by hand, for the repairs a runtime cannot
// do itself (a node that is gone, a container that never got its DEL).
func releaseCommand() *cli.Command {
	return &cli.Command{
		Name:  "release",
		Usage: "free addresses, or every address of a container, after confirmation",
		UsageText: "etcd-ipam release --config FILE [--yes] ADDRESS...\n" +
			"etcd-ipam release --config FILE [--yes] --container ID [--ifname NAME]\n" +
			"etcd-ipam release --config FILE [--yes] --pod NAMESPACE/NAME",
		Description: "Shows who holds what is to be freed and asks for confirmation (unless\n" +
			"--yes), then frees it. An address is freed only if it still has the owner\n" +
			"that was shown: if it was released or handed to another container\n" +
			"meanwhile, it is left alone and the command fails.\n\n" +
			"Freeing one address of a container that holds several (dual stack) removes\n" +
			"it from the container's attachment too: CHECK then verifies, and DEL frees,\n" +
			"the addresses the container still holds; a repeated ADD returns only those.\n\n" +
			"A held address (sticky, or reserved with etcd-ipam reserve) is freed like\n" +
			"any other, and leaves its pod's held set. Addresses a container took from a\n" +
			"reservation go back to it when the container is released; --pod frees a\n" +
			"pod's attachments and everything held for it, reservations included.\n\n" +
			"On a network with ipam \"cooldown\", a released address that goes back to\n" +
			"nobody cools, as after DEL: no other pod gets it until the cooldown has\n" +
			"passed. Releasing a cooling address (ls shows \"cooling until\") frees it at\n" +
			"once: the operator's way to end a cooldown early.\n\n" +
			"Examples:\n\n" +
			"   etcd-ipam release --config /etc/cni/net.d/10-examplenet.conflist 203.0.113.7\n" +
			"   etcd-ipam release --config net.conflist --yes --container 3f2a9c --ifname eth0",
		Flags: append(networkFlags(),
			&cli.StringFlag{Name: "container", Usage: "free every address of container `ID`"},
			&cli.StringFlag{Name: "ifname", Usage: "with --container, only its interface `NAME`"},
			&cli.StringFlag{Name: "pod", Usage: "free every attachment and hold of pod `NAMESPACE/NAME`"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
		),
		Action: runRelease,
	}
}

func runRelease(c *cli.Context) error {
	container, pod := c.String("container"), c.String("pod")
	given := 0
	for _, g := range []bool{container != "", pod != "", c.Args().Present()} {
		if g {
			given++
		}
	}
	switch {
	case given == 0:
		return usageErrorf("release needs addresses, --container ID or --pod NAMESPACE/NAME")
	case given > 1:
		return usageErrorf("give addresses, --container or --pod, only one of them")
	case c.String("ifname") != "" && container == "":
		return usageErrorf("--ifname goes with --container")
	case !c.Bool("yes") && c.String(flagConfig) == "-":
		return usageErrorf("the configuration comes from stdin, so the confirmation cannot: add --yes")
	}
	parsed, err := addrArgs(c.Args().Slice())
	if err != nil {
		return err
	}
	var addrs []store.StoredAllocation
	for _, a := range parsed {
		addrs = append(addrs, store.StoredAllocation{Addr: a})
	}
	var podNS, podName string
	if pod != "" {
		var err error
		if podNS, podName, err = parsePod("--pod", pod); err != nil {
			return err
		}
	}
	conf, s, err := openSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	// Each read and each write has its own etcd timeout: the
	// confirmation in between waits for a person, not for etcd.
	ctx := c.Context
	out := c.App.Writer
	if pod != "" {
		return releasePod(c, conf.Name, s, podNS, podName)
	}

	if container != "" {
		atts, err := s.ContainerAttachments(ctx, container, c.String("ifname"))
		if err != nil {
			return err
		}
		if len(atts) == 0 {
			return fmt.Errorf("container %q holds no address in network %q", container, conf.Name)
		}
		printAttachments(out, atts)
		if err := confirm(c, fmt.Sprintf("release %d %s of network %s?", len(atts), pluralize(len(atts), "attachment", "attachments"), conf.Name)); err != nil {
			return err
		}
		released, err := freeListed(ctx, s, atts)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "released %d %s\n", released, pluralize(released, "attachment", "attachments"))
		return nil
	}

	for i, a := range addrs {
		held, err := s.LookupAddress(ctx, a.Addr)
		if err != nil {
			return err
		}
		if held == nil {
			return fmt.Errorf("%s is not allocated in network %q; nothing was released", a.Addr, conf.Name)
		}
		addrs[i] = *held
		fmt.Fprintf(out, "%s %s\n", held.Addr, escaped(store.DescribeOwner(held.Allocation)))
	}
	if err := confirm(c, fmt.Sprintf("release %d %s of network %s?", len(addrs), pluralize(len(addrs), "address", "addresses"), conf.Name)); err != nil {
		return err
	}
	var changed []string
	for _, held := range addrs {
		var err error
		if held.ContainerID == "" && held.Hold != nil {
			err = s.ReleaseHold(ctx, held)
		} else {
			_, err = s.ReleaseAddress(ctx, held)
		}
		if err != nil {
			if errors.Is(err, store.ErrOwnerChanged) {
				changed = append(changed, held.Addr.String())
				continue
			}
			return err
		}
		fmt.Fprintf(out, "released %s\n", held.Addr)
	}
	if len(changed) > 0 {
		return fmt.Errorf("%s changed owner after it was shown and was not released", strings.Join(changed, ", "))
	}
	return nil
}

// releasePod frees a pod's attachments (found by listing the network's:
// an operator's tool may read it all) and then everything held for it,
// reservations included.
func releasePod(c *cli.Context, network string, s *session, namespace, name string) error {
	ctx, out := c.Context, c.App.Writer
	isPod := func(p *store.PodRef) bool { return p != nil && p.Namespace == namespace && p.Name == name }
	all, err := s.Attachments(ctx)
	if err != nil {
		return err
	}
	var atts []store.StoredAttachment
	for _, att := range all {
		if isPod(att.Pod) {
			atts = append(atts, att)
		}
	}
	printAttachments(out, atts)
	held, err := podHolds(ctx, s, namespace, name)
	if err != nil {
		return err
	}
	for _, h := range held {
		fmt.Fprintf(out, "%s %s\n", h.Addr, escaped(store.DescribeOwner(h.Allocation)))
	}
	if len(atts) == 0 && len(held) == 0 {
		return fmt.Errorf("pod %s/%s holds no address in network %q", namespace, name, network)
	}
	if err := confirm(c, fmt.Sprintf("release everything of pod %s/%s in network %s?", namespace, name, network)); err != nil {
		return err
	}
	released, err := freeListed(ctx, s, atts)
	if err != nil {
		return err
	}
	// Read again: the attachments' reserved addresses went back to
	// their reservation.
	if held, err = podHolds(ctx, s, namespace, name); err != nil {
		return err
	}
	for _, h := range held {
		if err := s.ReleaseHold(ctx, h); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "released %d %s and %d held %s of pod %s/%s\n", released, pluralize(released, "attachment", "attachments"),
		len(held), pluralize(len(held), "address", "addresses"), namespace, name)
	return nil
}

// printAttachments shows attachments about to be released.
func printAttachments(out io.Writer, atts []store.StoredAttachment) {
	for _, att := range atts {
		fmt.Fprintf(out, "%s held by container %s interface %s on node %s\n",
			strings.Join(attachmentAddrs(att), ", "), cell(att.ContainerID), cell(att.IfName), cell(orDash(att.Node)))
	}
}

// freeListed frees attachments as listed, each only if unchanged since,
// and fails when some changed and were left alone.
func freeListed(ctx context.Context, s *session, atts []store.StoredAttachment) (int, error) {
	released, err := s.FreeAttachments(ctx, atts)
	if err != nil {
		return released, err
	}
	if released < len(atts) {
		return released, fmt.Errorf("released %d of %d attachments; the others changed since they were listed and were left alone", released, len(atts))
	}
	return released, nil
}

// podHolds reads the addresses held for a pod, each as its key holds it.
func podHolds(ctx context.Context, s *session, namespace, name string) ([]store.StoredAllocation, error) {
	sets, err := s.Holds(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.StoredAllocation
	for _, set := range sets {
		if set.For.Namespace != namespace || set.For.Name != name {
			continue
		}
		for _, h := range set.Addrs {
			a, err := s.LookupAddress(ctx, h.Addr)
			if err != nil {
				return nil, err
			}
			if a == nil && h.Hold.Kind == store.HoldReserved {
				// A reservation whose address was released while
				// etcd was full: its held set entry is all there is
				// (no key: revision 0).
				hold := h.Hold
				a = &store.StoredAllocation{Addr: h.Addr, Allocation: store.Allocation{RangeSet: h.RangeSet, Hold: &hold}}
			}
			if a != nil && a.ContainerID == "" && a.Hold != nil && a.Hold.For != nil && *a.Hold.For == set.For {
				out = append(out, *a)
			}
		}
	}
	return out, nil
}

// confirm asks question on stderr and reads the answer from stdin; only
// y or yes goes ahead. --yes answers for the user.
func confirm(c *cli.Context, question string) error {
	if c.Bool("yes") {
		return nil
	}
	fmt.Fprintf(c.App.ErrWriter, "%s [y/N] ", question)
	in := stdin(c)
	answer, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("reading the confirmation: %w", err)
	}
	if f, ok := in.(*os.File); !ok || !isTerminal(f) {
		// Nobody typed the newline that ends the prompt's line.
		fmt.Fprintln(c.App.ErrWriter)
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed; nothing was released (answer y, or pass --yes)")
}
