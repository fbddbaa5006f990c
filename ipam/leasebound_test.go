package ipam

import (
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/lease"

	"github.com/etcd-cni/etcd-ipam/config"
)

// TestMaxLeaseDurationIsEtcds: config bounds "sticky" by etcd's longest
// lease, which the plugin does not link. The check lives here, among the
// tests that run etcd's server anyway, so that the configuration's fuzz
// targets are not built with etcd's server.
func TestMaxLeaseDurationIsEtcds(t *testing.T) {
	if config.MaxLeaseDuration != lease.MaxLeaseTTL*time.Second {
		t.Fatalf("config.MaxLeaseDuration is %v; etcd's lease.MaxLeaseTTL is %d s", config.MaxLeaseDuration, lease.MaxLeaseTTL)
	}
}
