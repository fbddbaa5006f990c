package wasm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/wasm/internal/sources"

	"github.com/etcd-cni/etcd-ipam/hosts/hoststest"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
)

// newHost starts a host with its own cache directory and closes it with
// the test.
func newHost(t testing.TB, dir string) *Host {
	t.Helper()
	h, err := New(Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// TestVectors holds the WebAssembly host to the table native passes.
func TestVectors(t *testing.T) { hoststest.Run(t, newHost(t, "")) }

// TestVectorsAgree compares the two hosts call by call, so that a vector
// whose expectation is wrong still cannot hide a disagreement.
func TestVectorsAgree(t *testing.T) {
	w, n := newHost(t, ""), native.New()
	for _, v := range hoststest.Vectors() {
		if got, want := v.Call(w), v.Call(n); !hoststest.Same(got, want) {
			t.Errorf("%s: wasm %s, native %s", v.Name, hoststest.Describe(got), hoststest.Describe(want))
		}
	}
}

// TestModuleIsFresh fails when core/, the guest or the encoding changed
// since core.wasm was generated, or when core.wasm was edited by hand, so
// that the embedded module can never drift from the native core.
func TestModuleIsFresh(t *testing.T) {
	root, err := sources.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	digest, err := sources.Digest(root)
	if err != nil {
		t.Fatal(err)
	}
	if digest != moduleSourcesDigest {
		t.Errorf("core.wasm is stale: its sources changed since it was built (digest %s, recorded %s); run `go generate ./hosts/wasm` and commit the result",
			digest, moduleSourcesDigest)
	}
	sum := sha256.Sum256(module)
	if got := hex.EncodeToString(sum[:]); got != moduleDigest {
		t.Errorf("core.wasm is not the module that was generated (sha256 %s, recorded %s); run `go generate ./hosts/wasm`", got, moduleDigest)
	}
}

// TestGuestLinksNoFmt keeps fmt and reflect (and with them os and time) out
// of the guest: they made the module a third larger, and wazero validates
// all of it on every plugin start.
func TestGuestLinksNoFmt(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./guest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "fmt" || pkg == "reflect" {
			t.Errorf("the guest links %s; build core's messages with strconv and concatenation", pkg)
		}
	}
}

// TestTrapDiscardsInstance checks that a panic in the guest reaches the
// caller as a panic, as the same input panics natively, and that the next
// call runs in a fresh instance with correct answers.
func TestTrapDiscardsInstance(t *testing.T) {
	h := newHost(t, "")
	// Another node's fresh position sends the search to a spot of the
	// set, and an empty set has none.
	bad := core.Request{Sets: []core.RangeSet{{}}, Positions: []core.Position{{Node: "node-b", At: 1}}, Now: 1}
	nativePanic := panics(func() { native.New().Step(bad, nil) })
	wasmPanic := panics(func() { h.Step(bad, nil) })
	if nativePanic == nil || wasmPanic == nil {
		t.Fatalf("Step spreading over an empty set: native panic %v, wasm panic %v; want both to panic", nativePanic, wasmPanic)
	}
	if msg := fmt.Sprint(wasmPanic); !strings.Contains(msg, "integer divide by zero") {
		t.Errorf("wasm panic %q does not carry the guest's message", msg)
	}
	set := hoststest.Set(core.RangeSpec{Subnet: "203.0.113.0/24"})
	req := core.Request{Sets: []core.RangeSet{set}, Node: "node-a", Positions: []core.Position{{Node: "node-b", At: 1}}, Now: 1}
	if got, want := h.Step(req, nil), core.Step(req, nil); !hoststest.Same(got, want) {
		t.Errorf("after the trap Step = %s, want %s", hoststest.Summary(got), hoststest.Summary(want))
	}
}

func panics(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// TestCacheDir checks that compiled code lands in the configured directory
// and that a second host loads it, and that a directory that cannot be
// created falls back to memory instead of failing.
func TestCacheDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "cache")
	first := newHost(t, dir)
	if first.CacheDir() != dir {
		t.Fatalf("CacheDir() = %q, want %q", first.CacheDir(), dir)
	}
	var files int
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Fatalf("no compiled code was written under %s", dir)
	}
	second := newHost(t, dir)
	hoststest.Run(t, second)

	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fallback := newHost(t, filepath.Join(blocker, "cache")) // a path under a regular file
	if fallback.CacheDir() != "" {
		t.Errorf("CacheDir() = %q under a regular file, want the in-memory cache", fallback.CacheDir())
	}
	hoststest.Run(t, fallback)
}

// TestConcurrentCalls checks that calls from many goroutines are serialized
// into the one instance and each gets its own answer.
func TestConcurrentCalls(t *testing.T) {
	h := newHost(t, "")
	set := hoststest.Set(core.RangeSpec{Subnet: "198.51.100.0/24"})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				// Racing another node: each container starts elsewhere.
				req := core.Request{Sets: []core.RangeSet{set}, Node: "node-a", ContainerID: fmt.Sprint(g*1000 + i),
					Positions: []core.Position{{Node: "node-b", At: 1}}, Now: 1}
				if got, want := h.Step(req, nil), core.Step(req, nil); !hoststest.Same(got, want) {
					t.Errorf("Step(%s) = %s, want %s", req.ContainerID, hoststest.Summary(got), hoststest.Summary(want))
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// TestClosedHostPanics checks that a call after Close fails loudly rather
// than touching a closed runtime.
func TestClosedHostPanics(t *testing.T) {
	h, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if p := panics(func() { h.Capacities(nil) }); p == nil {
		t.Error("a call after Close did not panic")
	}
}

// TestDefaultCacheDir checks the order: the environment variable, then
// /var/cache for root, else the user's cache directory.
func TestDefaultCacheDir(t *testing.T) {
	env := map[string]string{CacheDirEnv: "/srv/wasm-cache"}
	if got := DefaultCacheDir(func(k string) string { return env[k] }); got != "/srv/wasm-cache" {
		t.Errorf("with %s set: %q", CacheDirEnv, got)
	}
	got := DefaultCacheDir(func(string) string { return "" })
	switch {
	case os.Geteuid() == 0:
		if got != "/var/cache/etcd-ipam/wasm" {
			t.Errorf("as root: %q, want /var/cache/etcd-ipam/wasm", got)
		}
	default:
		if user, err := os.UserCacheDir(); err == nil && got != filepath.Join(user, "etcd-ipam", "wasm") {
			t.Errorf("as a user: %q, want under %s", got, user)
		}
	}
}
