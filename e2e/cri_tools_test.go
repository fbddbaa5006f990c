package e2e

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/internal/gobuild"
	"github.com/etcd-cni/etcd-ipam/internal/testbin"
)

// criTools are the container runtime's binaries, built from the tools
// module (e2e/tools) and the host's runc and busybox.
type criTools struct {
	// Dir holds containerd, containerd-shim-runc-v2, ctr and crictl.
	Dir string
	// Runc is the OCI runtime the shim runs: Debian's runc, as containerd
	// packages use it.
	Runc string
	// Busybox is a static busybox, the test containers' one binary.
	Busybox string
	// Pause is the sandbox program, built from e2e/pause.
	Pause string
}

func (c criTools) path(name string) string { return filepath.Join(c.Dir, name) }

// toolPackages are what the tools module builds; each binary is named
// after its package's last path element.
var toolPackages = []string{
	"github.com/containerd/containerd/v2/cmd/containerd",
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
	"github.com/containerd/containerd/v2/cmd/ctr",
	"sigs.k8s.io/cri-tools/cmd/crictl",
}

// toolsBuildTimeout bounds a cold build of the tools: 6 minutes on this
// project's idle 2-core machine, 11 when other builds shared it.
const toolsBuildTimeout = 20 * time.Minute

var (
	criToolsOnce sync.Once
	criToolsVal  criTools
	criToolsErr  error
)

// requireCRITools returns the runtime's binaries, building them on the
// first call of the process (or taking them from the cache), and fails the
// test when they cannot be had. Only the CRI tests call it, so that
// other e2e runs do not pay for containerd's build.
func requireCRITools(t *testing.T) criTools {
	t.Helper()
	criToolsOnce.Do(func() { criToolsVal, criToolsErr = prepareCRITools() })
	if criToolsErr != nil {
		t.Fatalf("CRI e2e setup: %v", criToolsErr)
	}
	return criToolsVal
}

func prepareCRITools() (criTools, error) {
	var c criTools
	var err error
	// The host's packages first: a missing one is a one-line fix, found
	// before minutes of compiling.
	if c.Runc, err = exec.LookPath("runc"); err != nil {
		return c, errors.New("runc is not installed: apt-get install runc (containerd's shim runs it for every container)")
	}
	c.Busybox = "/bin/busybox"
	if err := checkStaticBusybox(c.Busybox); err != nil {
		return c, err
	}
	if c.Pause, err = testbin.Build("pause", "github.com/etcd-cni/etcd-ipam/e2e/pause"); err != nil {
		return c, err
	}
	c.Dir, err = buildCachedTools()
	return c, err
}

// checkStaticBusybox makes sure path is a static busybox, as Debian's
// busybox-static installs it: the test image has no libc, so a dynamically
// linked one would not start.
func checkStaticBusybox(path string) error {
	const fix = "apt-get install busybox-static (the CRI tests' container image is that one static binary)"
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %v; %s", path, err, fix)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; %s", path, fix)
		}
	}
	return nil
}

// buildCachedTools returns the directory holding the tools built from
// e2e/tools, building them only when the cache has no directory for this
// go.sum and Go version. The cache is $ETCD_IPAM_E2E_CACHE, or
// etcd-ipam-e2e in the user's cache directory. A build goes to a fresh
// directory that is renamed into place when complete, so that a run
// interrupted mid-build, or two runs building at once, never leave a
// partial directory that a later run would take as built.
func buildCachedTools() (string, error) {
	moduleDir, err := filepath.Abs("tools")
	if err != nil {
		return "", err
	}
	key := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(moduleDir, f))
		if err != nil {
			return "", fmt.Errorf("the tools module: %w", err)
		}
		fmt.Fprintf(key, "%s %d\n", f, len(data))
		key.Write(data)
	}
	fmt.Fprintf(key, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	cache := os.Getenv("ETCD_IPAM_E2E_CACHE")
	if cache == "" {
		userCache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory for the CRI tools (set ETCD_IPAM_E2E_CACHE): %w", err)
		}
		cache = filepath.Join(userCache, "etcd-ipam-e2e")
	}
	dir := filepath.Join(cache, "cri-tools-"+hex.EncodeToString(key.Sum(nil))[:16])
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cache, "building-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	fmt.Fprintf(os.Stderr, "e2e: building containerd and crictl into %s (once; a few minutes)\n", dir)
	ctx, cancel := context.WithTimeout(context.Background(), toolsBuildTimeout)
	defer cancel()
	// One go build for the four, so that the packages they share are
	// compiled once, in parallel across cores, rather than in turn.
	cmd := gobuild.Command(ctx, tmp+"/", toolPackages[0], toolPackages[1:]...)
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (gave up after %v)", err, toolsBuildTimeout)
		}
		return "", fmt.Errorf("go build in %s: %v\n%s", moduleDir, err, out)
	}
	for _, pkg := range toolPackages {
		if _, err := os.Stat(filepath.Join(tmp, path.Base(pkg))); err != nil {
			return "", fmt.Errorf("go build in %s: %w", moduleDir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		// A concurrent run may have finished first; its tools are as good.
		if _, statErr := os.Stat(dir); statErr == nil {
			return dir, nil
		}
		return "", err
	}
	fmt.Fprintf(os.Stderr, "e2e: built containerd and crictl in %v\n", time.Since(start).Round(time.Second))
	return dir, nil
}
