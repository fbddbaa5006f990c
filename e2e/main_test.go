package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"

	// The tests build the binaries with go build, whose inputs go test's
	// cache cannot see. These imports make this test binary depend on the
	// plugin's library packages (ipam, hosts/hostsel and what they import:
	// store, config, core, the hosts), so a change there re-runs e2e
	// instead of replaying a cached pass. They cannot cover the main
	// packages frontend/cni and frontend/cli, which no package can
	// import: after changing only those, run go test -count=1 ./e2e. CI
	// runs on a clean clone with an empty test cache, so it always runs e2e.
	_ "github.com/etcd-cni/etcd-ipam/hosts/hostsel"
	_ "github.com/etcd-cni/etcd-ipam/ipam"

	"github.com/etcd-cni/etcd-ipam/internal/testbin"
)

// What every test run creates is marked with the process id, so that the
// next run can tell a crashed run's leftovers (whose process is gone) from
// a concurrent run's live resources.
const (
	pidLabel   = "org.etcd-cni.e2e.pid"
	namePrefix = "etcd-ipam-e2e-"
	// Images keep fixed tags: rebuilt from the same binaries they are
	// cache hits, and a concurrent run retagging them is harmless.
	etcdImage      = "etcd-ipam-e2e/etcd:latest"
	installerImage = "etcd-ipam-e2e/installer:latest"
)

// suite is what TestMain prepares once for every test: the binaries, built
// from this module, and the images built from them.
type suite struct {
	// binDir holds the static binaries: etcd (our plugin), etcd-ipam (the
	// CLI), bridge and loopback (CNI's reference plugins) and
	// etcd-server. It is the CNI_PATH the tests give runtimes.
	binDir string
	pool   *dockertest.Pool
	// err is why the suite could not be prepared; every test fails with it.
	err error
}

// The one suite of this test binary, set by TestMain before any test runs
// and read-only afterwards.
var theSuite suite

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	theSuite = prepare()
	os.Exit(testbin.Run(m))
}

// requireSuite returns the prepared suite, skips under -short, and fails
// the test when Docker or the builds are not available.
func requireSuite(t *testing.T) *suite {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end tests need Docker and root; skipped under -short")
	}
	if theSuite.err != nil {
		t.Fatalf("e2e setup: %v", theSuite.err)
	}
	return &theSuite
}

// prepare builds the binaries and images and sweeps a crashed run's
// leftovers. A cold CI machine spends most of this compiling etcd.
func prepare() suite {
	var s suite
	// Docker first: without it, compiling etcd would only delay the
	// failure by minutes.
	pool, err := dockertest.NewPool("")
	if err == nil {
		err = pool.Client.Ping()
	}
	if err != nil {
		s.err = fmt.Errorf("Docker is not available (the e2e tests need a running daemon; use -short to skip them): %w", err)
		return s
	}
	s.pool = pool
	sweep(pool)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// testbin builds them all static into one directory, which becomes
	// the CNI_PATH and the images' build context.
	for _, b := range []struct{ out, pkg string }{
		{"etcd", "github.com/etcd-cni/etcd-ipam/frontend/cni"},
		{"etcd-ipam", "github.com/etcd-cni/etcd-ipam/frontend/cli"},
		{"bridge", "github.com/containernetworking/plugins/plugins/main/bridge"},
		// containerd's CRI brings each pod's lo up with it.
		{"loopback", "github.com/containernetworking/plugins/plugins/main/loopback"},
		{"etcd-server", "go.etcd.io/etcd/server/v3"},
	} {
		path, err := testbin.Build(b.out, b.pkg)
		if err != nil {
			s.err = err
			return s
		}
		s.binDir = filepath.Dir(path)
	}
	built := time.Now()

	etcdDockerfile := "FROM scratch\nCOPY etcd /usr/local/bin/etcd\nENTRYPOINT [\"/usr/local/bin/etcd\"]\n"
	if err := buildImage(ctx, pool, etcdImage, map[string]string{
		"Dockerfile": "=" + etcdDockerfile,
		"etcd":       filepath.Join(s.binDir, "etcd-server"),
	}); err != nil {
		s.err = err
		return s
	}
	if err := buildImage(ctx, pool, installerImage, map[string]string{
		"Dockerfile":    filepath.Join("..", "images", "Dockerfile"),
		"bin/etcd":      filepath.Join(s.binDir, "etcd"),
		"bin/etcd-ipam": filepath.Join(s.binDir, "etcd-ipam"),
	}); err != nil {
		s.err = err
		return s
	}
	fmt.Fprintf(os.Stderr, "e2e: built binaries in %v, images in %v\n",
		built.Sub(start).Round(time.Second), time.Since(built).Round(time.Second))
	return s
}

// buildImage builds tag from a context of files: each key is a path in the
// context, each value a file on disk, or "=" followed by the content. No
// registry is reachable, so every image is FROM scratch.
func buildImage(ctx context.Context, pool *dockertest.Pool, tag string, files map[string]string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, src := range files {
		var data []byte
		if content, ok := strings.CutPrefix(src, "="); ok {
			data = []byte(content)
		} else {
			var err error
			if data, err = os.ReadFile(src); err != nil {
				return fmt.Errorf("building %s: %w", tag, err)
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return fmt.Errorf("building %s: %w", tag, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("building %s: %w", tag, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	var out bytes.Buffer
	err := pool.Client.BuildImage(dc.BuildImageOptions{
		Name:           tag,
		InputStream:    &buf,
		OutputStream:   &out,
		RmTmpContainer: true,
		Labels:         map[string]string{"org.etcd-cni.e2e": "image"},
		Context:        ctx,
	})
	if err != nil {
		return fmt.Errorf("docker build %s: %w\n%s", tag, err, out.Bytes())
	}
	return nil
}

// processGone reports whether the run that labelled something with pid
// has ended: no process has that id any more, or it is this process, which
// sweeps before it creates anything (ids repeat across fresh containers).
func processGone(pid int) bool {
	return pid == os.Getpid() || pid > 0 && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// ownerGone reports whether a name made by uniqueName belongs to a
// process that no longer runs.
func ownerGone(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	pidText, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	return err == nil && processGone(pid)
}

// sweep removes what a crashed earlier run left: containers and networks
// labelled with a dead process id, network namespaces, bridges and
// iptables rules named after one, and the CRI tests' containerd
// instances.
func sweep(pool *dockertest.Pool) {
	// First, while the etcd they release into may still run.
	sweepPodman()
	sweepCRI()
	containers, err := pool.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {pidLabel}}})
	if err == nil {
		for _, c := range containers {
			if pid, err := strconv.Atoi(c.Labels[pidLabel]); err == nil && processGone(pid) {
				_ = pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: c.ID, Force: true, RemoveVolumes: true})
			}
		}
	}
	networks, err := pool.Client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {pidLabel: true}})
	if err == nil {
		for _, n := range networks {
			if pid, err := strconv.Atoi(n.Labels[pidLabel]); err == nil && processGone(pid) {
				_ = pool.Client.RemoveNetwork(n.ID)
			}
		}
	}
	if entries, err := os.ReadDir("/var/run/netns"); err == nil {
		for _, e := range entries {
			if ownerGone(e.Name(), netnsPrefix) {
				_ = exec.Command("ip", "netns", "delete", e.Name()).Run()
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "type", "bridge").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 {
				continue
			}
			name := strings.TrimSuffix(strings.Split(fields[1], "@")[0], ":")
			if ownerGone(name, bridgePrefix) {
				_ = exec.Command("ip", "link", "delete", name).Run()
				allowBridgeForwarding(name, false)
			}
		}
	}
}

// uniqueName is prefix, this process's id and what, so that sweep can
// recognise it; what must be unique within the run.
func uniqueName(prefix, what string) string {
	return fmt.Sprintf("%s%d-%s", prefix, os.Getpid(), what)
}

// labels mark a container or network as this run's.
func labels() map[string]string {
	return map[string]string{pidLabel: strconv.Itoa(os.Getpid())}
}
