package native_test

import (
	"testing"

	"github.com/etcd-cni/etcd-ipam/hosts/hoststest"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
)

// TestVectors holds the native host to the shared table that hosts/wasm
// must also pass.
func TestVectors(t *testing.T) { hoststest.Run(t, native.New()) }
