package kubetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/etcd-cni/etcd-ipam/internal/gobuild"
)

// Version is the Kubernetes release of the API server tests run; the tools
// module internal/kubetest/apiserver pins it.
const Version = "v1.37.2"

const (
	// BinaryEnv names a prebuilt kube-apiserver to use instead of building
	// one, for machines that have it already.
	BinaryEnv = "ETCD_IPAM_KUBE_APISERVER"
	// CacheEnv names the directory of the build cache, shared with the e2e
	// tests; without it the cache is os.UserCacheDir()/etcd-ipam-e2e.
	CacheEnv = "ETCD_IPAM_E2E_CACHE"

	// toolsDir is the tools module, relative to the main module's root.
	toolsDir = "internal/kubetest/apiserver"
	// apiserverPackage is the main package built from it.
	apiserverPackage = "k8s.io/kubernetes/cmd/kube-apiserver"
	// buildTimeout bounds one build, and the wait for another process's:
	// a cold build takes 8 to 16 minutes on two cores.
	buildTimeout = 30 * time.Minute
)

// versionFlags stamps the release into the binary as Kubernetes' own build
// does: unstamped, the server reports v0.0.0-master, which clients fail to
// parse.
var versionFlags = func() string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(Version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	var b strings.Builder
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		fmt.Fprintf(&b, " -X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s", pkg, Version, pkg, major, pkg, minor)
	}
	return "-ldflags=" + strings.TrimSpace(b.String())
}()

// binary finds or builds the kube-apiserver once per test process.
var binary = sync.OnceValues(findOrBuild)

// Binary returns the path of the kube-apiserver that Start runs: $BinaryEnv
// if set, else the one in the build cache, built there first if it is
// missing. The cache entry is keyed by the tools module's go.mod and go.sum
// and by `go version`, so a change of any of them builds afresh; a build
// writes a temporary file and renames it, under a file lock, so concurrent
// test processes build it once and never run a partial binary. The first
// build takes minutes: run such a test with go test's -timeout 40m.
func Binary() (string, error) { return binary() }

func findOrBuild() (string, error) {
	if path := os.Getenv(BinaryEnv); path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("kubetest: $%s: %w", BinaryEnv, err)
		}
		return path, nil
	}
	tools, err := toolsModule()
	if err != nil {
		return "", err
	}
	key, err := cacheKey(tools)
	if err != nil {
		return "", err
	}
	root, err := cacheRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "kube-apiserver-"+Version+"-"+key)
	path := filepath.Join(dir, "kube-apiserver")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("kubetest: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	unlock, err := lock(ctx, filepath.Join(dir, "lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have built it while this one waited.
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Fprintf(os.Stderr, "kubetest: building kube-apiserver %s into %s (a first build takes 8 to 16 minutes)\n", Version, dir)
	start := time.Now()
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	defer os.Remove(tmp)
	var out bytes.Buffer
	cmd := gobuild.CommandWithFlags(ctx, tmp, []string{versionFlags}, apiserverPackage)
	cmd.Dir = tools
	cmd.Env = append(cmd.Env, "GOWORK=off")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %v", ctx.Err(), buildTimeout)
		}
		return "", fmt.Errorf("kubetest: go build %s in %s: %v\n%s", apiserverPackage, tools, err, out.Bytes())
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("kubetest: %w", err)
	}
	fmt.Fprintf(os.Stderr, "kubetest: built kube-apiserver in %v\n", time.Since(start).Round(time.Second))
	return path, nil
}

// toolsModule returns the tools module's directory, found from the main
// module's root, wherever in the module the test runs.
func toolsModule() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("kubetest: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("kubetest: not run inside the etcd-ipam module")
	}
	dir := filepath.Join(filepath.Dir(gomod), toolsDir)
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("kubetest: the tools module: %w", err)
	}
	return dir, nil
}

// cacheKey hashes what decides the binary: the tools module's requirements,
// the Go toolchain and the stamped version.
func cacheKey(tools string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(tools, name))
		if err != nil {
			return "", fmt.Errorf("kubetest: %w", err)
		}
		h.Write(data)
	}
	goVersion, err := exec.Command("go", "version").Output()
	if err != nil {
		return "", fmt.Errorf("kubetest: go version: %w", err)
	}
	h.Write(goVersion)
	h.Write([]byte(versionFlags))
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func cacheRoot() (string, error) {
	if dir := os.Getenv(CacheEnv); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kubetest: no cache directory (set $%s): %w", CacheEnv, err)
	}
	return filepath.Join(dir, "etcd-ipam-e2e"), nil
}

// lock takes an exclusive flock on name, polling so that the wait ends with
// ctx; the returned function releases it.
func lock(ctx context.Context, name string) (func(), error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("kubetest: locking %s: %w", name, err)
		}
		if !waiting {
			waiting = true
			fmt.Fprintf(os.Stderr, "kubetest: waiting for another process's build of kube-apiserver (%s)\n", name)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("kubetest: waiting for %s: %w", name, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
