package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/etcd-cni/etcd-ipam/internal/gobuild"
)

// Plugin is one IPAM plugin binary with the network configuration it is
// run with, so that ours and host-local are driven identically.
type Plugin struct {
	Name string
	Bin  string
	// Launcher is the execstat binary that runs and measures Bin.
	Launcher string
	// Conf renders the network configuration for a network name and
	// subnet; extra is spliced into the top level (GC's valid attachments).
	Conf func(network, subnet, extra string) string
}

// Exec is one finished plugin process.
type Exec struct {
	Elapsed   time.Duration // exec to exit, as a runtime waits for it
	MaxRSSKiB int64         // peak resident memory of the process
	ExitCode  int
	Stdout    []byte
	Stderr    []byte
}

// run executes the plugin once, as a runtime does: configuration on stdin,
// the command in the environment, the result on stdout. The launcher
// (execstat) starts it and measures it.
func (p *Plugin) run(ctx context.Context, command, conf, containerID, node string) (Exec, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return Exec{}, err
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, p.Launcher, p.Bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"CNI_COMMAND=" + command,
		"CNI_CONTAINERID=" + containerID,
		"CNI_IFNAME=eth0",
		"CNI_NETNS=/dev/null",
		"CNI_PATH=" + filepath.Dir(p.Bin),
		"ETCD_IPAM_NODE_NAME=" + node,
	}
	cmd.Stdin = bytes.NewReader([]byte(conf))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.ExtraFiles = []*os.File{w}
	err = cmd.Run()
	_ = w.Close()
	e := Exec{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err != nil {
		return e, fmt.Errorf("running %s %s: %w: %s", p.Name, command, err, stderr.Bytes())
	}
	report, err := io.ReadAll(r)
	if err != nil {
		return e, err
	}
	var ns int64
	if _, err := fmt.Sscanf(string(report), "%d %d %d", &ns, &e.MaxRSSKiB, &e.ExitCode); err != nil {
		return e, fmt.Errorf("running %s %s: the launcher reported %q: %v", p.Name, command, report, err)
	}
	e.Elapsed = time.Duration(ns)
	return e, nil
}

// mustRun is run for an operation that has to succeed for the numbers to
// mean anything.
func (p *Plugin) mustRun(ctx context.Context, command, conf, containerID, node string) (Exec, error) {
	e, err := p.run(ctx, command, conf, containerID, node)
	if err != nil {
		return e, err
	}
	if e.ExitCode != 0 {
		return e, fmt.Errorf("%s %s for %s failed (exit %d): %s%s", p.Name, command, containerID, e.ExitCode, e.Stdout, e.Stderr)
	}
	return e, nil
}

// Build compiles the packages (import paths) into dir with the go command,
// from the module the harness runs in, and returns the binaries' paths.
// Both plugins are built alike and static (see gobuild.Command).
func Build(ctx context.Context, dir string, pkgs ...string) ([]string, error) {
	var out []string
	for _, pkg := range pkgs {
		bin := filepath.Join(dir, filepath.Base(pkg))
		if msg, err := gobuild.Command(ctx, bin, pkg).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s (run the harness inside the etcd-ipam module): %v\n%s", pkg, err, msg)
		}
		out = append(out, bin)
	}
	return out, nil
}

// Packages the harness builds. host-local is the version go.mod requires,
// v1.10.0; the plugin binary is named etcd, as its type.
const (
	launcherPackage  = "github.com/etcd-cni/etcd-ipam/internal/bench/execstat"
	pluginPackage    = "github.com/etcd-cni/etcd-ipam/frontend/cni"
	hostLocalPackage = "github.com/containernetworking/plugins/plugins/ipam/host-local"
)

// OursConf is our plugin's configuration against endpoint.
func OursConf(endpoint string) func(network, subnet, extra string) string {
	return func(network, subnet, extra string) string {
		return fmt.Sprintf(`{"cniVersion": "1.1.0", "name": %q%s, "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": %q}, "ranges": [[{"subnet": %q}]]}}`,
			network, extra, endpoint, subnet)
	}
}

// HostLocalConf is host-local's configuration with its files under dataDir.
func HostLocalConf(dataDir string) func(network, subnet, extra string) string {
	return func(network, subnet, extra string) string {
		return fmt.Sprintf(`{"cniVersion": "1.1.0", "name": %q%s, "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]]}}`,
			network, extra, dataDir, subnet)
	}
}
