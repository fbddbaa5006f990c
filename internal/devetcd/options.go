package devetcd

import (
	"fmt"

	"go.etcd.io/etcd/server/v3/embed"
)

// Options are the etcd settings an operator chooses and the plugin has to
// live with: history compaction and the backend's space quota. The zero
// value is etcd's defaults (no auto-compaction, a 2 GiB quota), which is
// what Start and StartCluster use.
type Options struct {
	// AutoCompactionMode is "revision" or "periodic" (etcd's
	// --auto-compaction-mode); empty leaves auto-compaction off.
	AutoCompactionMode string
	// AutoCompactionRetention is etcd's --auto-compaction-retention: a
	// number of revisions in revision mode, a duration ("1m") or hours in
	// periodic mode.
	AutoCompactionRetention string
	// QuotaBackendBytes is etcd's --quota-backend-bytes: 0 is etcd's
	// default (2 GiB), negative disables the quota.
	QuotaBackendBytes int64
}

// apply sets o on cfg.
func (o Options) apply(cfg *embed.Config) error {
	if o.AutoCompactionMode != "" {
		if o.AutoCompactionMode != embed.CompactorModeRevision && o.AutoCompactionMode != embed.CompactorModePeriodic {
			return fmt.Errorf("auto-compaction mode %q: want %q or %q", o.AutoCompactionMode, embed.CompactorModeRevision, embed.CompactorModePeriodic)
		}
		cfg.AutoCompactionMode = o.AutoCompactionMode
		cfg.AutoCompactionRetention = o.AutoCompactionRetention
	}
	cfg.QuotaBackendBytes = o.QuotaBackendBytes
	return nil
}

// StartWith is Start with opts applied.
func StartWith(dir string, opts Options) (*Server, error) {
	return start(dir, nil, opts)
}

// StartClusterWith is StartCluster with opts applied to every member.
func StartClusterWith(dir string, n int, opts Options) (*Cluster, error) {
	return startCluster(dir, n, opts)
}
