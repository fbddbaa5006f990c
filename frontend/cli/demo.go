package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/urfave/cli/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
	"github.com/etcd-cni/etcd-ipam/internal/gobuild"
	"github.com/etcd-cni/etcd-ipam/store"
)

const (
	// modulePath identifies this project's go.mod when the demo looks for
	// the source tree to build the plugin from.
	modulePath = "github.com/etcd-cni/etcd-ipam"

	// pluginPackage is the plugin's main package, relative to the module root.
	pluginPackage = "./frontend/cni"

	// pluginName is the file name of the built plugin: the ipam "type"
	// that a runtime looks up in CNI_PATH.
	pluginName = "etcd"

	// pluginTimeout bounds one plugin call, so that a hung plugin fails the
	// demo instead of hanging it.
	pluginTimeout = time.Minute

	// etcdTimeout bounds the demo's own reads of etcd.
	etcdTimeout = 5 * time.Second
)

// demoConfTemplate is the CNI spec's example of an IPAM config with two
// range sets (one IPv4, one IPv6); %s is the JSON-quoted etcd URL.
const demoConfTemplate = `{"cniVersion":"1.0.0","name":"examplenet","ipam":{"type":"etcd","etcdConfig":{"etcdURL":%s},"ranges":[[{"subnet":"203.0.113.0/24"}],[{"subnet":"2001:db8:1::/64"}]],"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0"}]}}`

// demoCommand shows the plugin at work end to end, as a container runtime
// would drive it, against a throwaway etcd; it is the README's quick start.
func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the plugin's ADD and DEL for a few containers against a throwaway etcd and show what it stores",
		Description: "Starts an embedded etcd on loopback, builds the plugin from " + pluginPackage + "\n" +
			"(run it inside the source tree, or pass --plugin), calls it as a container\n" +
			"runtime would (ADD for each container, then DEL), and prints each CNI result\n" +
			"and the keys under " + store.Root + " after the ADDs and after the DELs.",
		Flags: []cli.Flag{
			&cli.IntFlag{
				Name:  "containers",
				Value: 3,
				Usage: "how many containers (demo-1 ... demo-`N`) to add and delete",
			},
			&cli.StringFlag{
				Name:  "plugin",
				Usage: "use the plugin binary at `PATH` instead of building " + pluginPackage,
			},
		},
		Action: runDemo,
	}
}

// runDemo carries out the demo; every resource it makes lives in one
// temporary directory, removed on the way out.
func runDemo(c *cli.Context) (err error) {
	if err := noArgs(c); err != nil {
		return err
	}
	n := c.Int("containers")
	if n < 1 {
		return usageErrorf("--containers must be at least 1, got %d", n)
	}
	ctx := c.Context
	out, errOut := c.App.Writer, c.App.ErrWriter

	tmp, err := os.MkdirTemp("", "etcd-ipam-demo-")
	if err != nil {
		return fmt.Errorf("creating a temporary directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = fmt.Errorf("removing the temporary directory: %w", rerr)
		}
	}()

	// Building first: it is the likeliest step to fail, and etcd need not
	// run meanwhile.
	plugin, err := demoPlugin(ctx, c.String("plugin"), tmp, out, errOut)
	if err != nil {
		return err
	}

	srv, err := devetcd.Start(filepath.Join(tmp, "etcd-data"))
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(out, "embedded etcd is running at %s\n", srv.Endpoint())

	etcd, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{srv.Endpoint()},
		DialTimeout: etcdTimeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return fmt.Errorf("connecting to the embedded etcd at %s: %w", srv.Endpoint(), err)
	}
	defer etcd.Close()

	quoted, err := json.Marshal(srv.Endpoint())
	if err != nil {
		return fmt.Errorf("encoding the etcd URL: %w", err)
	}
	conf := []byte(fmt.Sprintf(demoConfTemplate, quoted))
	// Shown as sent: compact, exactly the bytes of every plugin's stdin.
	heading(out, "network config (stdin of every plugin call)")
	fmt.Fprintf(out, "%s\n", conf)

	containers := make([]string, n)
	for i := range containers {
		containers[i] = "demo-" + strconv.Itoa(i+1)
	}
	call := pluginCall{plugin: plugin, cniPath: tmp, conf: conf, errOut: errOut}

	for _, id := range containers {
		result, err := call.run(ctx, "ADD", id)
		if err != nil {
			return err
		}
		heading(out, fmt.Sprintf("ADD %s %s: CNI result", id, ifName))
		writeIndented(out, result)
	}
	if err := dumpKeys(ctx, etcd, out, "after ADD"); err != nil {
		return err
	}

	heading(out, "DEL")
	for _, id := range containers {
		if _, err := call.run(ctx, "DEL", id); err != nil {
			return err
		}
		fmt.Fprintf(out, "DEL %s %s: ok\n", id, ifName)
	}
	if err := dumpKeys(ctx, etcd, out, "after DEL (only round-robin state and the node's liveness record should remain)"); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nstopping etcd and removing", tmp)
	return nil
}

// demoPlugin returns the plugin binary to run: flagPath if given, else one
// freshly built from the source tree around the working directory into dir.
func demoPlugin(ctx context.Context, flagPath, dir string, out, errOut io.Writer) (string, error) {
	if flagPath != "" {
		abs, err := filepath.Abs(flagPath)
		if err != nil {
			return "", fmt.Errorf("resolving --plugin %s: %w", flagPath, err)
		}
		info, err := os.Stat(abs)
		if err != nil {
			return "", fmt.Errorf("plugin binary given by --plugin: %w", err)
		}
		if info.IsDir() {
			return "", fmt.Errorf("plugin binary given by --plugin %s is a directory", abs)
		}
		return abs, nil
	}

	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the working directory: %w", err)
	}
	root, err := findModuleRoot(wd)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, pluginName)
	fmt.Fprintf(out, "building the plugin: go build -o %s %s (in %s)\n", bin, pluginPackage, root)
	cmd := gobuild.Command(ctx, bin, pluginPackage)
	cmd.Dir = root
	output, err := cmd.CombinedOutput()
	if err != nil {
		errOut.Write(output)
		return "", fmt.Errorf("building the plugin with \"go build %s\" in %s failed (pass --plugin to use a built one): %w", pluginPackage, root, err)
	}
	return bin, nil
}

// findModuleRoot walks up from dir to the directory whose go.mod declares
// this project's module, which "go build ./frontend/cni" must run in.
func findModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for d := dir; ; {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		switch {
		case err == nil:
			if mod := moduleOf(data); mod != modulePath {
				return "", fmt.Errorf("the nearest go.mod, in %s, is of module %q, not %s: run the demo inside the etcd-ipam source tree or pass --plugin", d, mod, modulePath)
			}
			return d, nil
		case !errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("reading go.mod: %w", err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod in %s or any parent, so the plugin cannot be built: run the demo inside the etcd-ipam source tree or pass --plugin", dir)
		}
		d = parent
	}
}

// moduleOf returns the module path declared in a go.mod file's contents.
func moduleOf(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			if p, err := strconv.Unquote(fields[1]); err == nil {
				return p
			}
			return fields[1]
		}
	}
	return ""
}

// ifName is the interface name of every demo container.
const ifName = "eth0"

// pluginCall holds what is the same in every plugin invocation of the demo.
type pluginCall struct {
	plugin  string
	cniPath string
	conf    []byte
	// errOut receives the plugin's output when it fails.
	errOut io.Writer
}

// run execs the plugin once, the way a container runtime does: the network
// config on stdin, the CNI_* variables in the environment. It returns the
// plugin's stdout. When the plugin fails, its stdout (a CNI error) and
// stderr are written to errOut and the error sums them up.
func (p pluginCall) run(ctx context.Context, command, containerID string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, pluginTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.plugin)
	cmd.Stdin = bytes.NewReader(p.conf)
	cmd.Env = append(withoutCNIVars(os.Environ()),
		"CNI_COMMAND="+command,
		"CNI_CONTAINERID="+containerID,
		"CNI_NETNS=/dev/null",
		"CNI_IFNAME="+ifName,
		"CNI_PATH="+p.cniPath,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	fmt.Fprintf(p.errOut, "plugin %s for %s failed\n--- plugin stdout ---\n%s\n--- plugin stderr ---\n%s\n---\n",
		command, containerID, strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
	var cniErr types.Error
	if jerr := json.Unmarshal(stdout.Bytes(), &cniErr); jerr == nil && cniErr.Msg != "" {
		msg := cniErr.Msg
		if cniErr.Details != "" {
			msg += " (" + cniErr.Details + ")"
		}
		return nil, fmt.Errorf("plugin %s for container %s failed with CNI error %d: %s", command, containerID, cniErr.Code, msg)
	}
	return nil, fmt.Errorf("plugin %s for container %s failed: %w", command, containerID, err)
}

// withoutCNIVars drops CNI_* variables from env, so that the caller's own
// environment cannot leak into (or contradict) the demo's invocations.
func withoutCNIVars(env []string) []string {
	kept := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CNI_") {
			kept = append(kept, kv)
		}
	}
	return kept
}

// dumpKeys prints every key under store.Root the way
// "etcdctl get --prefix /etcd-cni/networks/" does: a key line, then a value
// line.
func dumpKeys(ctx context.Context, etcd *clientv3.Client, out io.Writer, when string) error {
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	resp, err := etcd.Get(ctx, store.Root, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("listing the keys under %s: %w", store.Root, err)
	}
	heading(out, fmt.Sprintf("keys %s: etcdctl get --prefix %s", when, store.Root))
	if len(resp.Kvs) == 0 {
		fmt.Fprintln(out, "(none)")
	}
	for _, kv := range resp.Kvs {
		fmt.Fprintf(out, "%s\n%s\n", kv.Key, kv.Value)
	}
	return nil
}

// heading starts a section of the demo's output.
func heading(out io.Writer, title string) {
	fmt.Fprintf(out, "\n== %s ==\n", title)
}

// writeIndented pretty-prints JSON, or writes data unchanged if it is not
// JSON, so that an odd plugin output is still shown.
func writeIndented(out io.Writer, data []byte) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(data), "", "  "); err != nil {
		out.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			fmt.Fprintln(out)
		}
		return
	}
	buf.WriteByte('\n')
	buf.WriteTo(out)
}
