package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/config"
)

// Where the installer image (images/Dockerfile) keeps the plugin, and where
// a DaemonSet mounts the node's CNI bin directory; the defaults make
// "etcd-ipam install" the image's whole entrypoint.
const (
	defaultInstallSource = "/opt/etcd-ipam/bin/etcd"
	defaultInstallDest   = "/host/opt/cni/bin"
	// The node's config.NodeNameFile, as the DaemonSet mounts its
	// directory.
	defaultNodeNameFile = "/host" + config.NodeNameFile
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
			"With --node-name it also records the node's name where the plugin reads it\n" +
			"(" + config.NodeNameFile + "). With --wait it then waits until stopped, as the\n" +
			"DaemonSet's container must.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "source", Value: defaultInstallSource, Usage: "the plugin binary to install, `FILE`"},
			&cli.StringFlag{Name: "dest", Value: defaultInstallDest, Usage: "the CNI bin directory, `DIR`; it must exist"},
			&cli.StringFlag{Name: "name", Value: "etcd", Usage: "the installed file's `NAME`, the network configuration's ipam \"type\""},
			&cli.BoolFlag{Name: "wait", Usage: "after installing, wait until stopped (SIGTERM or SIGINT): a DaemonSet's container must keep running"},
			&cli.StringFlag{Name: "node-name", Usage: "also record `NAME` as this node's name for the plugin (the DaemonSet passes the Kubernetes node name, so that allocations name the Node the pod reconciler knows)"},
			&cli.StringFlag{Name: "node-name-file", Value: defaultNodeNameFile, Usage: "where --node-name is recorded, `FILE`: the node's " + config.NodeNameFile + " as mounted; its directory must exist"},
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
	node := c.String("node-name")
	if node != "" {
		if err := config.CheckNodeName("--node-name", node); err != nil {
			return usageErrorf("%v", err)
		}
	}
	target, err := installFile(c.String("source"), c.String("dest"), name)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "installed %s as %s\n", c.String("source"), target)
	if node != "" {
		file := c.String("node-name-file")
		if _, err := replaceFile(filepath.Dir(file), filepath.Base(file), 0o644, func(w io.Writer) error {
			_, err := io.WriteString(w, node+"\n")
			return err
		}); err != nil {
			return fmt.Errorf("recording the node name: %w", err)
		}
		fmt.Fprintf(c.App.Writer, "recorded node name %s in %s\n", node, file)
	}
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
	return replaceFile(dest, name, 0o755, func(w io.Writer) error {
		if _, err := io.Copy(w, src); err != nil {
			return fmt.Errorf("copying %s: %w", source, err)
		}
		return nil
	})
}

// replaceFile writes dest/name through a temporary file in dest, synced,
// given mode and renamed into place, so that a reader (a runtime executing
// the plugin, the plugin reading the node name) sees the old file or the
// new one, never a part. It returns the path written.
func replaceFile(dest, name string, mode os.FileMode, write func(io.Writer) error) (target string, err error) {
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
	if err := write(tmp); err != nil {
		return "", fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return "", fmt.Errorf("setting the mode of %s: %w", tmp.Name(), err)
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
