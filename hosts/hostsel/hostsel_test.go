package hostsel

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/hosts/hoststest"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/hosts/wasm"
)

// noEnv is an environment with nothing set.
func noEnv(string) string { return "" }

// TestOpen checks that each name starts the host it names, that the host
// answers the shared vectors, and that Close releases it.
func TestOpen(t *testing.T) {
	for _, name := range append([]string{""}, hosts.CoreNames()...) {
		t.Run("name="+name, func(t *testing.T) {
			c, closer, err := Open(name, filepath.Join(t.TempDir(), "cache"), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			switch name {
			case hosts.Wasm:
				if _, ok := c.(*wasm.Host); !ok {
					t.Errorf("Open(%q) = %T, want *wasm.Host", name, c)
				}
			default:
				if _, ok := c.(native.Host); !ok {
					t.Errorf("Open(%q) = %T, want native.Host", name, c)
				}
			}
			hoststest.Run(t, c)
			if err := closer.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestOpenDefaultCacheDir checks that without a cacheDir the wasm host
// keeps its compiled code where wasm.DefaultCacheDir says, read through
// the getenv given, so that frontends need not know the default.
func TestOpenDefaultCacheDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "default")
	env := func(k string) string {
		if k == wasm.CacheDirEnv {
			return dir
		}
		return ""
	}
	_, closer, err := Open(hosts.Wasm, "", env)
	if err != nil {
		t.Fatal(err)
	}
	if err := closer.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Errorf("the default cache directory %s holds %d entries (%v), want the compiled core", dir, len(entries), err)
	}
}

// TestOpenUnknown checks that a misspelt name is an error that names the
// accepted ones.
func TestOpenUnknown(t *testing.T) {
	_, _, err := Open("WASM", "", noEnv)
	var unknown *hosts.UnknownCoreError
	if !errors.As(err, &unknown) || unknown.Name != "WASM" {
		t.Fatalf("Open(WASM) error = %v, want *hosts.UnknownCoreError", err)
	}
	if got, want := err.Error(), `core "WASM" is unknown; use "native" or "wasm"`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
