package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// Where the installer image (images/Dockerfile) keeps the plugin, and where
// a DaemonSet mounts the node's CNI bin directory; the defaults make
// "etcd-ipam install" the image's whole entrypoint.
const (
	defaultInstallSource = "/opt/etcd-ipam/bin/etcd"
	defaultInstallDest   = "/host/opt/cni/bin"
)

// installCommand copies the plugin into a CNI bin directory. A runtime may
// execute the plugin at any moment, so the copy must never be seen half
// written: it goes to a temporary file in the same directory and is renamed
// over the old one, which a running plugin keeps executing undisturbed.
func installCommand() *cli.Command {
	return &cli.Command{
		Name:  "install",
		Usage: "copy the plugin into a CNI bin directory atomically",
		Description: "Copies the plugin binary to DEST/NAME by writing a temporary file in DEST,\n" +
			"syncing it, making it executable (0755) and renaming it into place, so a\n" +
			"runtime never executes a partly written plugin. It is the entrypoint of\n" +
			"the installer image, which mounts the node's /opt/cni/bin at /host/opt/cni/bin.\n" +
			"With --wait it then waits until stopped, as the DaemonSet's container must.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "source", Value: defaultInstallSource, Usage: "the plugin binary to install, `FILE`"},
			&cli.StringFlag{Name: "dest", Value: defaultInstallDest, Usage: "the CNI bin directory, `DIR`; it must exist"},
			&cli.StringFlag{Name: "name", Value: "etcd", Usage: "the installed file's `NAME`, the network configuration's ipam \"type\""},
			&cli.BoolFlag{Name: "wait", Usage: "after installing, wait until stopped (SIGTERM or SIGINT): a DaemonSet's container must keep running"},
		},
		Action: runInstall,
	}
}

func runInstall(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	name := c.String("name")
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return usageErrorf("--name %q must be a plain file name", name)
	}
	target, err := installFile(c.String("source"), c.String("dest"), name)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "installed %s as %s\n", c.String("source"), target)
	if c.Bool("wait") {
		// The image is FROM scratch: no shell, no sleep. Stopping the
		// container cancels the context (see main).
		<-c.Context.Done()
	}
	return nil
}

// installFile copies source to dest/name through a temporary file renamed
// into place, and returns the installed path. On failure the temporary file
// is removed and any previous dest/name is left as it was.
func installFile(source, dest, name string) (target string, err error) {
	src, err := os.Open(source)
	if err != nil {
		return "", fmt.Errorf("opening the plugin to install: %w", err)
	}
	defer src.Close()
	if info, err := src.Stat(); err != nil {
		return "", fmt.Errorf("reading %s: %w", source, err)
	} else if !info.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", source)
	}
	if info, err := os.Stat(dest); err != nil {
		return "", fmt.Errorf("the CNI bin directory: %w", err)
	} else if !info.IsDir() {
		return "", fmt.Errorf("the CNI bin directory %s is not a directory", dest)
	}

	// A dot name keeps the temporary file out of the way of a runtime
	// looking for plugins; the same directory makes the rename atomic.
	tmp, err := os.CreateTemp(dest, "."+name+".installing-*")
	if err != nil {
		return "", fmt.Errorf("creating a temporary file in %s: %w", dest, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, src); err != nil {
		return "", fmt.Errorf("copying %s to %s: %w", source, tmp.Name(), err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return "", fmt.Errorf("making %s executable: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	target = filepath.Join(dest, name)
	if err := os.Rename(tmp.Name(), target); err != nil {
		return "", fmt.Errorf("renaming %s to %s: %w", tmp.Name(), target, err)
	}
	// The rename is durable only once the directory is synced; a node that
	// loses power right after install must not come back without a plugin.
	if err := syncDir(dest); err != nil {
		return "", err
	}
	return target, nil
}

// syncDir fsyncs a directory so that a rename inside it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening %s to sync it: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
