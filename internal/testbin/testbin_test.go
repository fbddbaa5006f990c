package testbin

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	os.Exit(Run(m))
}

// execstat is the smallest main package of the module.
const execstat = "github.com/etcd-cni/etcd-ipam/internal/bench/execstat"

// TestBuildsOnceAndRuns checks that a binary is built on the first call,
// that later calls reuse it instead of building again, and that it runs.
func TestBuildsOnceAndRuns(t *testing.T) {
	first := Path(t, "execstat", execstat)
	info, err := os.Stat(first)
	if err != nil || info.Mode()&0o111 == 0 {
		t.Fatalf("built %s: %v, mode %v; want an executable", first, err, info)
	}
	if second := Path(t, "execstat", execstat); second != first {
		t.Fatalf("second build at %s, want the first one, %s", second, first)
	}
	again, err := os.Stat(first)
	if err != nil || !again.ModTime().Equal(info.ModTime()) {
		t.Fatalf("the binary was rebuilt or removed by the second call: %v", err)
	}
	// Without arguments execstat prints its usage and exits non-zero.
	out, _ := exec.Command(first).CombinedOutput()
	if !strings.Contains(string(out), "usage: execstat") {
		t.Fatalf("running %s without arguments printed %q, want its usage", first, out)
	}
}

// TestOneNameOnePackage checks that a name already built from one package
// is not silently handed out for another.
func TestOneNameOnePackage(t *testing.T) {
	Path(t, "execstat", execstat)
	if path, err := Build("execstat", "github.com/etcd-cni/etcd-ipam/frontend/cni"); err == nil {
		t.Fatalf("Build of another package under the name execstat returned %s, want an error", path)
	}
}

// TestBuildErrorCarriesGoOutput checks that a failed build says why.
func TestBuildErrorCarriesGoOutput(t *testing.T) {
	_, err := Build("missing", "github.com/etcd-cni/etcd-ipam/no/such/package")
	if err == nil || !strings.Contains(err.Error(), "no/such/package") {
		t.Fatalf("Build of a missing package: %v, want an error naming it", err)
	}
}
