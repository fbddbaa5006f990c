package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
)

// devEtcdCommand runs a single-node etcd on loopback, so that one can try the
// plugin without installing or configuring etcd.
func devEtcdCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev-etcd",
		Usage: "run a throwaway single-node etcd on 127.0.0.1 until interrupted",
		Description: "Starts an embedded etcd on random loopback ports and prints its endpoint and\n" +
			"the ipam \"etcdConfig\" to paste into a network config. It runs until\n" +
			"interrupted (Ctrl-C or SIGTERM), then stops etcd and removes its temporary\n" +
			"data directory. It is for development only: it syncs nothing to disk.",
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:  "data-dir",
				Usage: "keep etcd's data in `DIR` and leave it there on exit (default: a temporary directory, removed on exit)",
			},
		},
		Action: runDevEtcd,
	}
}

// runDevEtcd serves until the command's context is cancelled: by SIGINT or
// SIGTERM in the real binary, by the test that runs it.
func runDevEtcd(c *cli.Context) (err error) {
	if err := noArgs(c); err != nil {
		return err
	}
	dir := c.String("data-dir")
	fate := "kept on exit"
	if dir == "" {
		dir, err = os.MkdirTemp("", "etcd-ipam-dev-")
		if err != nil {
			return fmt.Errorf("creating a temporary data directory: %w", err)
		}
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
				err = fmt.Errorf("removing the temporary data directory: %w", rerr)
			}
		}()
		fate = "temporary, removed on exit"
	}

	srv, err := devetcd.Start(dir)
	if err != nil {
		return err
	}
	defer srv.Close()

	quoted, err := json.Marshal(srv.Endpoint())
	if err != nil {
		return fmt.Errorf("encoding the endpoint: %w", err)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "endpoint:   %s\n", srv.Endpoint())
	fmt.Fprintf(w, "etcdConfig: {\"etcdURL\": %s}\n", quoted)
	fmt.Fprintf(w, "data dir:   %s (%s)\n", dir, fate)
	fmt.Fprintln(w, "etcd is running; stop it with Ctrl-C.")

	<-c.Context.Done()
	fmt.Fprintln(w, "stopping etcd")
	return nil
}
