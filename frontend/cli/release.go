package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
)

// releaseCommand frees addresses by hand, for the repairs a runtime cannot
// do itself (a node that is gone, a container that never got its DEL).
func releaseCommand() *cli.Command {
	return &cli.Command{
		Name:  "release",
		Usage: "free addresses, or every address of a container, after confirmation",
		UsageText: "etcd-ipam release --config FILE [--yes] ADDRESS...\n" +
			"etcd-ipam release --config FILE [--yes] --container ID [--ifname NAME]",
		Description: "Shows who holds what is to be freed and asks for confirmation (unless\n" +
			"--yes), then frees it. An address is freed only if it still has the owner\n" +
			"that was shown: if it was released or handed to another container\n" +
			"meanwhile, it is left alone and the command fails.\n\n" +
			"Freeing one address of a container that holds several (dual stack) removes\n" +
			"it from the container's attachment too: CHECK then verifies, and DEL frees,\n" +
			"the addresses the container still holds; a repeated ADD returns only those.\n\n" +
			"Examples:\n\n" +
			"   etcd-ipam release --config /etc/cni/net.d/10-examplenet.conflist 203.0.113.7\n" +
			"   etcd-ipam release --config net.conflist --yes --container 3f2a9c --ifname eth0",
		Flags: append(networkFlags(),
			&cli.StringFlag{Name: "container", Usage: "free every address of container `ID`"},
			&cli.StringFlag{Name: "ifname", Usage: "with --container, only its interface `NAME`"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
		),
		Action: runRelease,
	}
}

func runRelease(c *cli.Context) error {
	container := c.String("container")
	switch {
	case container == "" && !c.Args().Present():
		return usageErrorf("release needs addresses or --container ID")
	case container != "" && c.Args().Present():
		return usageErrorf("give addresses or --container, not both")
	case c.String("ifname") != "" && container == "":
		return usageErrorf("--ifname goes with --container")
	case !c.Bool("yes") && c.String(flagConfig) == "-":
		return usageErrorf("the configuration comes from stdin, so the confirmation cannot: add --yes")
	}
	var addrs []store.StoredAllocation
	for _, arg := range c.Args().Slice() {
		a, err := core.ParseAddr(arg)
		if err != nil {
			return usageErrorf("%v", err)
		}
		addrs = append(addrs, store.StoredAllocation{Addr: a})
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

	if container != "" {
		atts, err := s.ContainerAttachments(ctx, container, c.String("ifname"))
		if err != nil {
			return err
		}
		if len(atts) == 0 {
			return fmt.Errorf("container %q holds no address in network %q", container, conf.Name)
		}
		for _, att := range atts {
			fmt.Fprintf(out, "%s held by container %s interface %s on node %s\n",
				strings.Join(attachmentAddrs(att), ", "), att.ContainerID, att.IfName, orDash(att.Node))
		}
		if err := confirm(c, fmt.Sprintf("release %d %s of network %s?", len(atts), pluralize(len(atts), "attachment", "attachments"), conf.Name)); err != nil {
			return err
		}
		// Each attachment is released only if unchanged since listed.
		released, err := s.FreeAttachments(ctx, atts)
		if err != nil {
			return err
		}
		if released < len(atts) {
			return fmt.Errorf("released %d of %d attachments; the others changed since they were listed and were left alone", released, len(atts))
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
		fmt.Fprintf(out, "%s held by container %s interface %s on node %s\n", held.Addr, orDash(held.ContainerID), orDash(held.IfName), orDash(held.Node))
	}
	if err := confirm(c, fmt.Sprintf("release %d %s of network %s?", len(addrs), pluralize(len(addrs), "address", "addresses"), conf.Name)); err != nil {
		return err
	}
	var changed []string
	for _, held := range addrs {
		if _, err := s.ReleaseAddress(ctx, held); err != nil {
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
