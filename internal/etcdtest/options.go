package etcdtest

import (
	"testing"

	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
)

// StartWith is Start with etcd settings of an operator's choosing, such as
// a tiny space quota, for tests of what the plugin does under them.
func StartWith(t testing.TB, opts devetcd.Options) *Server {
	t.Helper()
	d, err := devetcd.StartWith(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(d.Stop)
	return &Server{Server: d}
}
