package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podmanInstallHint says how to get the podman this test drives: Debian
// bookworm's, version 4, the last with a CNI network backend. It pulls in
// conmon and an OCI runtime (crun, or the runc Docker already brought).
const podmanInstallHint = "apt-get install -y --no-install-recommends podman (Debian bookworm's podman 4; podman 5 has no CNI backend)"

// podmanTimeout bounds one podman command: loading a 3 MB image or
// starting a container takes a second or two.
const podmanTimeout = time.Minute

// requirePodman returns podman's path, or skips the test without a podman
// 4 unless ETCD_IPAM_REQUIRE_PODMAN=1 (as in CI), where a missing runtime
// must not pass as a skipped test.
func requirePodman(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("podman")
	msg := ""
	if err != nil {
		msg = fmt.Sprintf("podman is needed on PATH (%v); install it with %s", err, podmanInstallHint)
	} else {
		out, err := exec.Command(path, "--version").Output()
		switch {
		case err != nil:
			msg = fmt.Sprintf("%s --version: %v", path, err)
		case !strings.HasPrefix(string(out), "podman version 4."):
			msg = fmt.Sprintf("%s is %s; this test needs podman 4, whose CNI backend runs our plugin: %s", path, strings.TrimSpace(string(out)), podmanInstallHint)
		}
	}
	if msg == "" {
		return path
	}
	if os.Getenv("ETCD_IPAM_REQUIRE_PODMAN") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// podman is a podman that shares nothing with the host's: storage, state,
// configuration and CNI networks all live in one directory named after
// this process (see uniqueName), so that sweep finds a crashed run's. Two
// things podman 4 does not let one move are shared with the host: network
// namespaces under /run/netns and libcni's cache under /var/lib/cni.
type podman struct {
	path string
	dir  string
}

// podmanSuffix ends the name of a podman's directory.
const podmanSuffix = "-podman"

// newPodman writes the configuration of an isolated podman whose CNI
// plugins are the suite's binaries, and removes every container and the
// directory when the test ends.
func newPodman(t *testing.T, s *suite, path string) *podman {
	t.Helper()
	p := &podman{path: path, dir: filepath.Join(os.TempDir(), uniqueName(namePrefix, strings.TrimPrefix(podmanSuffix, "-")))}
	for _, d := range []string{"root", "runroot", "tmp", "cni", "home/.config/containers"} {
		if err := os.MkdirAll(filepath.Join(p.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if out, err := p.command(context.Background(), "rm", "--all", "--force", "--time", "0").CombinedOutput(); err != nil {
			t.Errorf("podman rm --all: %v: %s", err, out)
		}
		if err := os.RemoveAll(p.dir); err != nil {
			t.Errorf("removing podman's directory: %v", err)
		}
	})
	// The files podman reads are named by CONTAINERS_* variables, which
	// replace the host's files instead of adding to them. conmon runs the
	// cleanup after a container exits as a new podman process with only
	// conmon_env_vars in its environment: without CONTAINERS_CONF there,
	// it would tear the network down with the host's CNI plugins.
	env := fmt.Sprintf("[%q, %q, %q, %q]",
		"PATH="+os.Getenv("PATH"),
		"CONTAINERS_CONF="+p.file("containers.conf"),
		"CONTAINERS_STORAGE_CONF="+p.file("storage.conf"),
		"CONTAINERS_REGISTRIES_CONF="+p.file("registries.conf"))
	files := map[string]string{
		// Podman raises nofile and nproc to the kernel's maximum for
		// root, which fails where the test runs without
		// CAP_SYS_RESOURCE (in a container): small fixed limits work
		// everywhere.
		"containers.conf": "[containers]\n" +
			"default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n" +
			"[engine]\n" +
			"conmon_env_vars = " + env + "\n" +
			fmt.Sprintf("events_logfile_path = %q\n", p.file("events.log")) +
			"[network]\n" +
			fmt.Sprintf("cni_plugin_dirs = [%q]\n", s.binDir),
		// The same as the flags say (containers/storage wants both
		// roots in a file it reads). vfs works on any file system,
		// overlay not on every one; the image is one small layer.
		"storage.conf": fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", p.file("root"), p.file("runroot")),
		// No registry: images come from podman load.
		"registries.conf": "",
		// For podman load; root reads the policy under $HOME first.
		"home/.config/containers/policy.json": `{"default": [{"type": "insecureAcceptAnything"}]}`,
	}
	for name, content := range files {
		if err := os.WriteFile(p.file(name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// podmanAt is the podman whose directory is dir, for sweep.
func podmanAt(path, dir string) *podman { return &podman{path: path, dir: dir} }

func (p *podman) file(name string) string { return filepath.Join(p.dir, name) }

// command is podman with the isolated configuration, bounded by ctx.
func (p *podman) command(ctx context.Context, args ...string) *exec.Cmd {
	global := []string{
		"--root", p.file("root"),
		"--runroot", p.file("runroot"),
		"--tmpdir", p.file("tmp"),
		"--storage-driver", "vfs",
		"--network-backend", "cni",
		"--network-config-dir", p.file("cni"),
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}
	cmd := exec.CommandContext(ctx, p.path, append(global, args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + p.file("home"),
		// Where podman load unpacks an archive.
		"TMPDIR=" + p.file("tmp"),
		"CONTAINERS_CONF=" + p.file("containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + p.file("storage.conf"),
		"CONTAINERS_REGISTRIES_CONF=" + p.file("registries.conf"),
	}
	return cmd
}

// mustRun runs a podman command to its end and returns its stdout; it
// fails the test when podman fails.
func (p *podman) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), podmanTimeout)
	defer cancel()
	cmd := p.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.String()
}

// loadImage builds an image of the binary and loads it.
func (p *podman) loadImage(t *testing.T, tag, binary string) {
	t.Helper()
	archive := p.file("image.tar")
	img := imageSpec{Ref: tag, Entrypoint: []string{"/entrypoint"}, Files: map[string]string{"entrypoint": binary}}
	if err := writeDockerArchive(archive, img); err != nil {
		t.Fatal(err)
	}
	p.mustRun(t, "load", "--input", archive)
}

// addNetwork writes a CNI network list where podman looks for networks;
// name must be the conflist's name. It returns the file's path.
func (p *podman) addNetwork(t *testing.T, name, conflist string) string {
	t.Helper()
	path := filepath.Join(p.file("cni"), name+".conflist")
	if err := os.WriteFile(path, []byte(conflist), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// podmanContainer is a `podman run --rm -i IMAGE -wait` of the ifaddrs
// image in progress: the container runs until its standard input closes,
// then podman tears its network down and removes it.
type podmanContainer struct {
	Name string
	// ID is podman's container ID, the CNI_CONTAINERID of its
	// attachment.
	ID string
	// NetNS is the path of its network namespace.
	NetNS string
	// Addrs are eth0's addresses as the container saw them.
	Addrs []netip.Prefix

	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	stderr bytes.Buffer
	// exited is closed when podman run has returned, with waitErr set.
	exited  chan struct{}
	waitErr error
}

// startContainer runs the image on network as container name and waits
// until it has printed its addresses. A podman run that fails (as when a
// CNI plugin fails ADD) fails the test with podman's error.
func (p *podman) startContainer(t *testing.T, network, name, image string) *podmanContainer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*podmanTimeout)
	c := &podmanContainer{Name: name, cancel: cancel, exited: make(chan struct{})}
	c.cmd = p.command(ctx, "run", "--rm", "--interactive", "--pull", "never",
		"--network", network, "--name", name, image, "-wait")
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("podman run %s: %v", name, err)
	}
	// Stop it even if the test fails half way; stopping twice is
	// harmless.
	t.Cleanup(func() { _ = c.stop() })

	// The container's lines up to "end"; the channel is closed when its
	// output ends. Buffered beyond what ifaddrs prints, so that the
	// reader never waits for a test that has given up.
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sent := 0; sc.Scan(); sent++ {
			if sent < cap(lines) {
				lines <- sc.Text()
			}
		}
		close(lines)
		// Only now: Wait closes the pipe the scanner reads.
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	timeout := time.After(podmanTimeout)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				<-c.exited
				t.Fatalf("podman run %s ended before the container printed its addresses (%v):\n%s", name, c.waitErr, c.stderr.Bytes())
			}
			if line == "end" {
				c.ID, c.NetNS = p.inspect(t, name)
				return c
			}
			a, err := netip.ParsePrefix(line)
			if err != nil {
				t.Fatalf("container %s printed %q, want an address: %v", name, line, err)
			}
			c.Addrs = append(c.Addrs, a)
		case <-timeout:
			t.Fatalf("container %s printed no addresses within %v", name, podmanTimeout)
		}
	}
}

// inspect returns a container's ID and network namespace.
func (p *podman) inspect(t *testing.T, name string) (id, netns string) {
	t.Helper()
	out := p.mustRun(t, "inspect", "--format", "{{.Id}} {{.NetworkSettings.SandboxKey}}", name)
	id, netns, ok := strings.Cut(strings.TrimSpace(out), " ")
	if !ok || id == "" || netns == "" {
		t.Fatalf("podman inspect %s: %q, want its ID and network namespace", name, out)
	}
	return id, netns
}

// stop closes the container's input, so that it exits, and waits for
// podman run to return: by then podman has torn its network down (CNI
// DEL) and removed the container. It returns podman's error with what it
// printed. When podman hangs, it is killed.
func (c *podmanContainer) stop() error {
	_ = c.stdin.Close()
	defer c.cancel()
	select {
	case <-c.exited:
		if c.waitErr != nil {
			return fmt.Errorf("podman run %s: %w\n%s", c.Name, c.waitErr, c.stderr.Bytes())
		}
		return nil
	case <-time.After(podmanTimeout):
		return fmt.Errorf("podman run %s did not return within %v of closing its input", c.Name, podmanTimeout)
	}
}

// sweepPodman removes what the podman of a crashed run left: its
// containers (whose removal runs CNI DEL), its directory, and libcni's
// cache entries for its networks, which are named after the process too.
func sweepPodman() {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	path, lookErr := exec.LookPath("podman")
	for _, e := range entries {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), podmanSuffix) || !ownerGone(e.Name(), namePrefix) {
			continue
		}
		dir := filepath.Join(os.TempDir(), e.Name())
		if lookErr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), podmanTimeout)
			_ = podmanAt(path, dir).command(ctx, "rm", "--all", "--force", "--time", "0").Run()
			cancel()
		}
		_ = os.RemoveAll(dir)
	}
	const cniCache = "/var/lib/cni/results"
	if entries, err := os.ReadDir(cniCache); err == nil {
		for _, e := range entries {
			if ownerGone(e.Name(), namePrefix) {
				_ = os.Remove(filepath.Join(cniCache, e.Name()))
			}
		}
	}
}
