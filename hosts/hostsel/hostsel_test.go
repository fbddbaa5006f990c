package hostsel

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/hosts/hoststest"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/hosts/wasm"
)

// TestOpen checks that each name starts the host it names, that the host
// answers the shared vectors, and that Close releases it.
func TestOpen(t *testing.T) {
	for _, name := range append([]string{""}, hosts.CoreNames()...) {
		t.Run("name="+name, func(t *testing.T) {
			c, closer, err := Open(name, filepath.Join(t.TempDir(), "cache"))
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

// TestOpenUnknown checks that a misspelt name is an error that names the
// accepted ones.
func TestOpenUnknown(t *testing.T) {
	_, _, err := Open("WASM", "")
	var unknown *hosts.UnknownCoreError
	if !errors.As(err, &unknown) || unknown.Name != "WASM" {
		t.Fatalf("Open(WASM) error = %v, want *hosts.UnknownCoreError", err)
	}
	if got, want := err.Error(), `core "WASM" is unknown; use "native" or "wasm"`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
