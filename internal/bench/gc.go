package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// gc leaves Stale allocations of this node that the runtime no longer
// knows, then times one GC that keeps nothing.
func (r *runner) gc(ctx context.Context) error {
	name := r.network("gc")
	subnet := bigPool
	stale := allocatable(subnet)[:r.cfg.Stale]
	if err := fillEtcd(ctx, r.cli, name, node, stale, netip.Addr{}); err != nil {
		return err
	}
	if err := fillHostLocal(r.hlDir(), name, stale, netip.Addr{}); err != nil {
		return err
	}
	res := GCResult{Stale: len(stale)}
	s := sample{}
	for _, p := range []*Plugin{r.ours, r.hl} {
		e, err := p.mustRun(ctx, "GC", p.Conf(name, subnet.String(), `, "cni.dev/valid-attachments": []`), "", node)
		if err != nil {
			return err
		}
		s.add(p.Name+" GC", e)
		if p == r.ours {
			res.Ours = e.Elapsed
		} else {
			res.HostLoc = e.Elapsed
		}
	}
	// Both must really have collected everything.
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	left, err := r.cli.Get(tctx, "/etcd-cni/networks/"+name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	// What remains may only be the node's liveness record, which GC
	// writes.
	seen, err := r.cli.Get(tctx, "/etcd-cni/networks/"+name+"/seen/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	if left.Count != seen.Count {
		return fmt.Errorf("our GC left %d keys of %d stale allocations", left.Count-seen.Count, len(stale))
	}
	files, err := os.ReadDir(filepath.Join(r.hlDir(), name))
	if err != nil {
		return err
	}
	for _, f := range files {
		if a, err := netip.ParseAddr(f.Name()); err == nil {
			return fmt.Errorf("host-local's GC left %s (of %d stale allocations)", a, len(stale))
		}
	}
	res.PeakRSSKiB = s.peak
	r.rep.GC = res
	return nil
}
