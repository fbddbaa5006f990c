package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// criDirPrefix starts the directory of each containerd the tests run, in
// /tmp, followed by the test process's id (see sweepCRI). It is short
// because the directory holds unix sockets: containerd refuses a shim
// socket directory longer than 42 bytes, and the kernel any socket path
// longer than 107.
const criDirPrefix = "eicri-"

// criSnapshotter unpacks the images: overlayfs, as on a real node (the
// tests' directory is on the host's file system, not on an overlay).
const criSnapshotter = "overlayfs"

// criNetwork is the one CNI network of a node: CNI's bridge plugin with
// our IPAM, as a conflist in the runtime's conf_dir.
type criNetwork struct {
	Name string
	// Subnet is the network's one range, from a documentation range;
	// the bridge takes its first address as the pods' gateway.
	Subnet string
	// Sticky is ipam "sticky", if any.
	Sticky string
	// EtcdTimeout is ipam's etcdTimeout: generous where etcd is up and
	// the node busy starting pods, short where the test freezes etcd
	// and waits for the plugin to give up.
	EtcdTimeout time.Duration
}

// criNode is one Kubernetes node's container runtime as kubelet sees it: a
// containerd of its own with the CRI plugin, driven through crictl.
// Everything it has lives in Dir: its root and state, socket, runc's
// root, the network namespaces of its pods, the CNI configuration and the
// plugin's log.
type criNode struct {
	t     *testing.T
	tools criTools
	// Name is the node's name, ipam "nodeName".
	Name     string
	Dir      string
	Sock     string
	Conflist string
	// Bridge is the bridge device the bridge plugin creates.
	Bridge string
	// PluginLog is ipam "logFile".
	PluginLog string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// crictlTimeout bounds one crictl call: both its requests' deadline
// (crictl's --timeout) and the process (10 s more). Starting a pod under
// load takes seconds; a minute means something hangs.
const crictlTimeout = time.Minute

// startCRINode starts a containerd with network net on etcd at endpoint,
// imports the test images and returns when the CRI answers. The node's
// name is ipam "nodeName", and its last letter, unique in the package,
// names the bridge (see newBridgeName). Its cleanup
// removes every pod left, stops containerd and removes what it left
// behind.
func startCRINode(t *testing.T, s *suite, tools criTools, name, endpoint string, net criNetwork) *criNode {
	t.Helper()
	requireRoot(t)
	dir, err := os.MkdirTemp("/tmp", fmt.Sprintf("%s%d-", criDirPrefix, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	n := &criNode{
		t: t, tools: tools, Name: name, Dir: dir,
		Sock:      filepath.Join(dir, "containerd.sock"),
		Conflist:  filepath.Join(dir, "net.d", "10-"+net.Name+".conflist"),
		PluginLog: filepath.Join(dir, "plugin.log"),
	}
	// t.Cleanup runs last in, first out: containerd stops, then its
	// directory goes, then the bridge, and last it is checked that
	// nothing is left. Each is registered before what it cleans up
	// exists, so that it runs even when the start fails half way.
	t.Cleanup(func() { n.checkGone(net) })
	n.Bridge = newBridgeName(t, name[len(name)-1:])
	t.Cleanup(func() {
		if err := removeCRIDir(dir); err != nil {
			t.Errorf("cleaning up %s: %v", dir, err)
		}
	})
	for _, sub := range []string{"net.d", "tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(n.Conflist, n.conflist(net, endpoint), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(n.containerdConfig(s.binDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	// crictl reads /etc/crictl.yaml unless given a file: its own, which
	// also lets a person debugging a failed run reach this containerd
	// with crictl --config DIR/crictl.yaml.
	crictlYAML := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: %d\npull-image-on-create: false\n",
		n.Sock, n.Sock, int(crictlTimeout.Seconds()))
	if err := os.WriteFile(filepath.Join(dir, "crictl.yaml"), []byte(crictlYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	n.start()
	n.importImages()
	return n
}

// conflist is the node's network: bridge, with the pods' gateway on the
// bridge and no masquerading (so no iptables rule), and our IPAM.
// cniVersion 1.1.0 makes containerd call STATUS.
func (n *criNode) conflist(net criNetwork, endpoint string) []byte {
	ipam := map[string]any{
		"type":     "etcd",
		"nodeName": n.Name,
		"logFile":  n.PluginLog,
		"etcdConfig": map[string]any{
			"etcdURL":     endpoint,
			"etcdTimeout": net.EtcdTimeout.String(),
		},
		"ranges": [][]map[string]string{{{"subnet": net.Subnet}}},
	}
	if net.Sticky != "" {
		ipam["sticky"] = net.Sticky
	}
	data, err := json.MarshalIndent(map[string]any{
		"cniVersion": "1.1.0",
		"name":       net.Name,
		"plugins": []any{map[string]any{
			"type":      "bridge",
			"bridge":    n.Bridge,
			"isGateway": true,
			"ipMasq":    false,
			"ipam":      ipam,
		}},
	}, "", "  ")
	if err != nil {
		n.t.Fatal(err)
	}
	return data
}

// containerdConfig is containerd 2.4's configuration (version 4, as
// "containerd config default" writes it) with every path in the node's
// directory, nothing listening but its unix sockets and the CRI's
// streaming server on loopback, and the plugins that would touch shared
// host paths (NRI's socket in /var/run/nri) off.
func (n *criNode) containerdConfig(cniBinDir string) string {
	d := n.Dir
	return fmt.Sprintf(`version = 4
root = %[1]q
state = %[2]q
temp = %[3]q
imports = []
disabled_plugins = [
  'io.containerd.nri.v1.nri',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.erofs',
  'io.containerd.image-verifier.v1.bindir',
]

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = %[4]q
  [plugins.'io.containerd.server.v1.ttrpc']
    address = %[5]q
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = %[6]q
  [plugins.'io.containerd.internal.v1.opt']
    path = %[7]q
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = %[13]q
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = %[8]q
  [plugins.'io.containerd.cri.v1.runtime']
    # runc cannot lower a process's oom_score_adj on this kind of machine
    # (a sandbox then fails: "can't get final child's PID from pipe: EOF").
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = %[9]q
          Root = %[10]q
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [%[11]q]
      conf_dir = %[12]q
      max_conf_num = 1
`,
		filepath.Join(d, "root"), filepath.Join(d, "state"), filepath.Join(d, "tmp"),
		n.Sock, n.Sock+".ttrpc", filepath.Join(d, "s"), filepath.Join(d, "opt"),
		pauseImageRef, n.tools.Runc, filepath.Join(d, "runc"),
		cniBinDir, filepath.Dir(n.Conflist), criSnapshotter)
}

// start runs containerd and waits until its CRI answers.
func (n *criNode) start() {
	t := n.t
	t.Helper()
	logFile, err := os.Create(filepath.Join(n.Dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	n.cmd = exec.Command(n.tools.path("containerd"), "--config", filepath.Join(n.Dir, "config.toml"))
	// The shim is found on PATH, runc by its full path; the plugins
	// inherit this environment.
	n.cmd.Env = []string{"PATH=" + n.tools.Dir + ":/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR=" + filepath.Join(n.Dir, "tmp")}
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	n.exited = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(n.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := n.crictlTimeout(5*time.Second, "version")
		if err == nil {
			return
		}
		select {
		case <-n.exited:
			t.Fatalf("containerd exited at start (%v); its log:\n%s", n.cmd.ProcessState, n.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd's CRI did not answer within 30 s: %v; its log:\n%s", err, n.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// importImages packs the pause and busybox images and imports them into
// the CRI's namespace, where the CRI finds the sandbox image without
// pulling it.
func (n *criNode) importImages() {
	t := n.t
	t.Helper()
	for _, img := range []imageSpec{
		{Ref: pauseImageRef, Entrypoint: []string{"/pause"}, Files: map[string]string{"pause": n.tools.Pause}},
		{Ref: busyboxImageRef, Entrypoint: []string{"/bin/busybox"}, Files: map[string]string{"bin/busybox": n.tools.Busybox}},
	} {
		archive := filepath.Join(n.Dir, "tmp", "image.tar")
		if err := writeDockerArchive(archive, img); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, n.tools.path("ctr"), "--address", n.Sock, "--namespace", "k8s.io",
			"images", "import", "--snapshotter", criSnapshotter, archive).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("ctr images import %s: %v: %s", img.Ref, err, out)
		}
		_ = os.Remove(archive)
	}
}

// crictl runs crictl against the node and returns its stdout; an error
// carries its stderr.
func (n *criNode) crictl(args ...string) (string, error) {
	return n.crictlTimeout(crictlTimeout, args...)
}

func (n *criNode) crictlTimeout(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	endpoint := "unix://" + n.Sock
	cmd := exec.CommandContext(ctx, n.tools.path("crictl"), append([]string{
		"--config", filepath.Join(n.Dir, "crictl.yaml"),
		"--runtime-endpoint", endpoint, "--image-endpoint", endpoint,
		"--timeout", timeout.String(),
	}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return stdout.String(), fmt.Errorf("crictl %s: still running after %v", strings.Join(args, " "), timeout+10*time.Second)
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// mustCrictl is crictl that fails the test on error.
func (n *criNode) mustCrictl(args ...string) string {
	n.t.Helper()
	out, err := n.crictl(args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// podSpec is the part of a CRI PodSandboxConfig the tests vary.
type podSpec struct {
	Namespace, Name, UID string
	Attempt              int
}

// runPod starts a pod sandbox with crictl runp, as kubelet's
// RunPodSandbox, and returns its id.
func (n *criNode) runPod(p podSpec) (string, error) {
	file, err := n.writePodConfig(p)
	if err != nil {
		return "", err
	}
	out, err := n.crictl("runp", file)
	return strings.TrimSpace(out), err
}

// writePodConfig writes p as crictl's pod config file and returns its
// path; crictl create needs it again.
func (n *criNode) writePodConfig(p podSpec) (string, error) {
	data, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"name": p.Name, "namespace": p.Namespace, "uid": p.UID, "attempt": p.Attempt,
		},
		"hostname":      p.Name,
		"log_directory": filepath.Join(n.Dir, "logs", p.UID),
		"linux":         map[string]any{},
	})
	if err != nil {
		return "", err
	}
	file := filepath.Join(n.Dir, "pod-"+p.UID+".json")
	return file, os.WriteFile(file, data, 0o600)
}

// podIP is the pod's address as the CRI reports it (crictl inspectp).
func (n *criNode) podIP(id string) string {
	n.t.Helper()
	var inspect struct {
		Status struct {
			Network struct {
				IP string `json:"ip"`
			} `json:"network"`
		} `json:"status"`
	}
	out := n.mustCrictl("inspectp", "--output", "json", id)
	if err := json.Unmarshal([]byte(out), &inspect); err != nil {
		n.t.Fatalf("crictl inspectp %s: %v: %s", id, err, out)
	}
	return inspect.Status.Network.IP
}

// startBusybox creates and starts a container running busybox sleep in
// pod id (created from spec p) and returns its id.
func (n *criNode) startBusybox(podID string, p podSpec) string {
	n.t.Helper()
	podFile, err := n.writePodConfig(p)
	if err != nil {
		n.t.Fatal(err)
	}
	data, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"name": "box"},
		"image":    map[string]any{"image": busyboxImageRef},
		"command":  []string{"/bin/busybox", "sleep", "3600"},
		"log_path": "box.log",
		"linux":    map[string]any{},
	})
	if err != nil {
		n.t.Fatal(err)
	}
	file := filepath.Join(n.Dir, "box-"+p.UID+".json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		n.t.Fatal(err)
	}
	id := n.mustCrictl("create", podID, file, podFile)
	n.mustCrictl("start", id)
	return id
}

// networkReady is the NetworkReady condition of crictl info, which makes
// containerd call the network's STATUS.
func (n *criNode) networkReady() (ready bool, message string, err error) {
	out, err := n.crictl("info")
	if err != nil {
		return false, "", err
	}
	var info struct {
		Status struct {
			Conditions []struct {
				Type    string `json:"type"`
				Status  bool   `json:"status"`
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return false, "", fmt.Errorf("crictl info: %v: %s", err, out)
	}
	for _, c := range info.Status.Conditions {
		if c.Type == "NetworkReady" {
			return c.Status, c.Message, nil
		}
	}
	return false, "", fmt.Errorf("crictl info has no NetworkReady condition: %s", out)
}

// pods lists the ids of the node's pod sandboxes.
func (n *criNode) pods() []string {
	n.t.Helper()
	return strings.Fields(n.mustCrictl("pods", "--quiet"))
}

// netnsCount is how many network namespaces containerd holds for pods;
// they are mounted under its state directory.
func (n *criNode) netnsCount() int {
	entries, err := os.ReadDir(filepath.Join(n.Dir, "state", "io.containerd.grpc.v1.cri", "netns"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		n.t.Fatal(err)
	}
	return len(entries)
}

// bridgePorts is how many veths the bridge has.
func (n *criNode) bridgePorts() int {
	n.t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "master", n.Bridge).CombinedOutput()
	if err != nil {
		if exec.Command("ip", "link", "show", n.Bridge).Run() != nil {
			return 0 // no bridge yet, so no ports
		}
		n.t.Fatalf("ip link show master %s: %v: %s", n.Bridge, err, out)
	}
	ports := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) != "" {
			ports++
		}
	}
	return ports
}

// pluginLog is what the plugin logged, one line per entry.
func (n *criNode) pluginLog() []string {
	n.t.Helper()
	data, err := os.ReadFile(n.PluginLog)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		n.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// logTail is the end of containerd's log, for failure messages.
func (n *criNode) logTail() string {
	data, _ := os.ReadFile(filepath.Join(n.Dir, "containerd.log"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// stop removes the pods a failed test left, so that the plugin's DEL
// runs and the shims exit, then stops containerd with SIGTERM, as its
// service manager would.
func (n *criNode) stop() {
	t := n.t
	select {
	case <-n.exited:
		t.Errorf("containerd exited before the test ended (%v); its log:\n%s", n.cmd.ProcessState, n.logTail())
		return
	default:
	}
	if ids, err := n.crictl("pods", "--quiet"); err == nil {
		for _, id := range strings.Fields(ids) {
			if _, err := n.crictl("rmp", "--force", id); err != nil {
				t.Errorf("removing pod %s at cleanup: %v", id, err)
			}
		}
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
		t.Errorf("containerd did not stop within 15 s of SIGTERM; killed")
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// checkGone fails the test if anything of the node outlived its
// cleanup: its directory, a mount or process using it, the bridge, or an
// iptables rule naming the bridge or the network's subnet.
func (n *criNode) checkGone(net criNetwork) {
	t := n.t
	if _, err := os.Stat(n.Dir); err == nil {
		t.Errorf("%s is left", n.Dir)
	}
	if m := mountsUnder(n.Dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if pids := processesUsing(n.Dir); len(pids) != 0 {
		t.Errorf("processes left: %v", pids)
	}
	if exec.Command("ip", "link", "show", n.Bridge).Run() == nil {
		t.Errorf("bridge %s is left", n.Bridge)
	}
	out, err := exec.Command("iptables-save").CombinedOutput()
	if err != nil {
		t.Errorf("iptables-save: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, n.Bridge) || strings.Contains(line, net.Subnet) {
			t.Errorf("iptables rule left: %s", line)
		}
	}
}

// sweepCRI removes what a crashed run's containerd left: the directories
// named by criDirPrefix whose process is gone, with their processes and
// mounts (see removeCRIDir).
func sweepCRI() {
	entries, err := os.ReadDir("/tmp")
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && ownerGone(e.Name(), criDirPrefix) {
			_ = removeCRIDir(filepath.Join("/tmp", e.Name()))
		}
	}
}

// removeCRIDir removes a containerd's directory and what still uses it:
// the containers runc knows in it (force-deleted, which kills them), the
// processes started from it (containerd, its shims), and the mounts under
// it (container root filesystems, /dev/shm of pods, network namespaces),
// deepest first. After a clean stop there are none of these, and this only
// removes files.
func removeCRIDir(dir string) error {
	runc, err := exec.LookPath("runc")
	if err == nil {
		roots, _ := filepath.Glob(filepath.Join(dir, "runc", "*"))
		for _, root := range roots {
			out, err := exec.Command(runc, "--root", root, "list", "--quiet").Output()
			if err != nil {
				continue
			}
			for _, id := range strings.Fields(string(out)) {
				_ = exec.Command(runc, "--root", root, "delete", "--force", id).Run()
			}
		}
	}
	killProcessesUsing(dir)
	var errs []error
	for _, m := range mountsUnder(dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killProcessesUsing kills every process whose command line names dir:
// a containerd started with its configuration, and the shims, which are
// given its socket.
func killProcessesUsing(dir string) {
	for _, pid := range processesUsing(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processesUsing lists the processes whose command line names dir.
func processesUsing(dir string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cmdline, []byte(dir+"/")) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		// mountinfo escapes spaces and the like as octal; our paths
		// have none.
		if mp := fields[4]; strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}
