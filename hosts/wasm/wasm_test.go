package wasm

import (
	"testing"

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
