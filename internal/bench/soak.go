package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// The soak: months of container churn on a three-member cluster with
// auto-compaction on, to see whether etcd's database stays bounded.

// SoakConfig sizes a soak.
type SoakConfig struct {
	// Pairs is the number of ADD/DEL pairs after the fill.
	Pairs int
	// Fill is the number of containers ADDed first; the churn keeps that
	// many attached (each pair ADDs one and DELs the oldest).
	Fill int
	// Nodes is the number of concurrent sessions, each a node.
	Nodes int
	// Members is the size of the etcd cluster.
	Members int
	// CompactionMode and CompactionRetention are etcd's
	// --auto-compaction-mode and --auto-compaction-retention.
	CompactionMode, CompactionRetention string
	// MaxChurn bounds the churn's wall time; the pairs done by then are
	// reported.
	MaxChurn time.Duration
	// Sample is the number of sequential ADDs, then DELs, whose writes
	// are counted one by one.
	Sample int
	// Progress receives progress lines; nil for silence.
	Progress io.Writer
}

// SoakFull is the soak the README's table comes from.
func SoakFull() SoakConfig {
	return SoakConfig{Pairs: 100000, Fill: 10000, Nodes: 4, Members: 3,
		CompactionMode: "revision", CompactionRetention: "10000", MaxChurn: 20 * time.Minute, Sample: 200}
}

// SoakQuick is a scaled-down soak, for a first look.
func SoakQuick() SoakConfig {
	c := SoakFull()
	c.Pairs, c.Fill, c.Sample, c.MaxChurn = 2000, 1000, 50, 5*time.Minute
	return c
}

// soakPool is the soak's pool: room for the fill and every node's
// containers in flight.
const soakPool = "198.18.0.0/16"

// soakRun is one soak in progress.
type soakRun struct {
	cfg       SoakConfig
	cli       *clientv3.Client
	endpoints []string
	sessions  []*ipam.Session
	held      [][]string // per node, its attached containers, oldest first
	rep       *SoakReport
}

// RunSoak starts the cluster, fills the pool, churns, then compacts and
// defragments, reporting revisions and database sizes after each phase.
func RunSoak(ctx context.Context, cfg SoakConfig) (*SoakReport, error) {
	if cfg.Pairs < 1 || cfg.Fill < cfg.Nodes || cfg.Nodes < 1 || cfg.Members < 1 || cfg.Sample < 1 || cfg.MaxChurn <= 0 {
		return nil, fmt.Errorf("soak: sizes must be positive, with at least one container per node: %+v", cfg)
	}
	dir, err := os.MkdirTemp("", "etcd-ipam-soak-")
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	defer os.RemoveAll(dir)
	opts := devetcd.Options{AutoCompactionMode: cfg.CompactionMode, AutoCompactionRetention: cfg.CompactionRetention}
	cluster, err := devetcd.StartClusterWith(filepath.Join(dir, "etcd"), cfg.Members, opts)
	if err != nil {
		return nil, fmt.Errorf("soak: starting a %d-member cluster: %w", cfg.Members, err)
	}
	defer cluster.Close()
	r := &soakRun{cfg: cfg, endpoints: cluster.Endpoints(), rep: &SoakReport{Config: cfg}}
	r.cli, err = clientv3.New(clientv3.Config{Endpoints: r.endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("soak: connecting to the cluster: %w", err)
	}
	defer r.cli.Close()
	conf, err := config.Load([]byte(OursConf(strings.Join(r.endpoints, ","))("soak", soakPool, "")), "")
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	for i := range cfg.Nodes {
		s, err := ipam.Open(conf, ipam.Options{Core: native.New(), Node: fmt.Sprintf("soak-node-%d", i)})
		if err != nil {
			return nil, fmt.Errorf("soak: opening node %d's session: %w", i, err)
		}
		defer s.Close()
		r.sessions = append(r.sessions, s)
	}
	r.held = make([][]string, cfg.Nodes)

	steps := []struct {
		what string
		do   func(context.Context) error
	}{
		{fmt.Sprintf("filling %d containers from %d nodes", cfg.Fill, cfg.Nodes), r.fill},
		{fmt.Sprintf("counting the writes of %d ADDs and DELs", cfg.Sample), r.sample},
		{fmt.Sprintf("%d ADD/DEL pairs from %d nodes", cfg.Pairs, cfg.Nodes), r.churn},
		{"compacting to the current revision", r.compact},
		{"defragmenting every member", r.defragment},
	}
	for _, s := range steps {
		r.progress("%s", s.what)
		if err := s.do(ctx); err != nil {
			return nil, fmt.Errorf("soak: %s: %w", s.what, err)
		}
	}
	return r.rep, nil
}

func (r *soakRun) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench soak: "+format+"\n", args...)
	}
}

// fill ADDs cfg.Fill containers, spread over the nodes, all at once.
func (r *soakRun) fill(ctx context.Context) error {
	start := time.Now()
	err := r.eachNode(func(i int) error {
		for k := i; k < r.cfg.Fill; k += r.cfg.Nodes {
			id := runtimeID(0, i, k)
			if _, err := r.sessions[i].Add(ctx, id, "eth0", nil); err != nil {
				return fmt.Errorf("ADD %s: %w", id, err)
			}
			r.held[i] = append(r.held[i], id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.rep.FillTime = time.Since(start)
	return r.point(ctx, "after the first fill")
}

// sample counts, from etcd's own metrics, the keys and bytes that one
// node's sequential ADDs write, then those of their DELs.
func (r *soakRun) sample(ctx context.Context) error {
	ids := make([]string, r.cfg.Sample)
	for i := range ids {
		ids[i] = runtimeID(1, 0, i)
	}
	s := r.sessions[0]
	var err error
	r.rep.PerAdd, err = r.measure(ctx, len(ids), func(id string) error { _, err := s.Add(ctx, id, "eth0", nil); return err }, ids)
	if err != nil {
		return err
	}
	r.rep.PerDel, err = r.measure(ctx, len(ids), func(id string) error { return s.Del(ctx, id, "eth0") }, ids)
	return err
}

// measure runs op on every id and returns the writes per op.
func (r *soakRun) measure(ctx context.Context, n int, op func(string) error, ids []string) (WriteCost, error) {
	before, err := r.mvcc(ctx)
	if err != nil {
		return WriteCost{}, err
	}
	for _, id := range ids {
		if err := op(id); err != nil {
			return WriteCost{}, fmt.Errorf("container %s: %w", id, err)
		}
	}
	after, err := r.mvcc(ctx)
	if err != nil {
		return WriteCost{}, err
	}
	// The members of this in-process cluster share one metrics registry,
	// so each write is counted once per member.
	per := float64(n * r.cfg.Members)
	return WriteCost{
		Revisions: float64(after.revision-before.revision) / float64(n),
		Puts:      (after.puts - before.puts) / per,
		PutBytes:  (after.putBytes - before.putBytes) / per,
		Deletes:   (after.deletes - before.deletes) / per,
	}, nil
}

// churn runs the pairs from every node at once, each pair an ADD of a new
// container and a DEL of the node's oldest, until all are done or
// cfg.MaxChurn has passed.
func (r *soakRun) churn(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.MaxChurn)
	defer cancel()
	var done, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		failed.Add(1)
		if firstErr == nil {
			firstErr = err
		}
	}
	start := time.Now()
	stopProgress := r.churnProgress(&done, start)
	err := r.eachNode(func(i int) error {
		n := r.cfg.Pairs / r.cfg.Nodes
		if i < r.cfg.Pairs%r.cfg.Nodes {
			n++
		}
		for k := 0; k < n && ctx.Err() == nil; k++ {
			if failed.Load() > maxSoakFailures {
				mu.Lock()
				defer mu.Unlock()
				return fmt.Errorf("more than %d failures, first: %w", maxSoakFailures, firstErr)
			}
			id := runtimeID(2, i, k)
			if _, err := r.sessions[i].Add(ctx, id, "eth0", nil); err != nil {
				// The operation in flight when MaxChurn runs out did not fail.
				if ctx.Err() == nil {
					fail(fmt.Errorf("ADD %s: %w", id, err))
				}
				continue
			}
			oldest := r.held[i][0]
			r.held[i] = append(r.held[i][1:], id)
			if err := r.sessions[i].Del(ctx, oldest, "eth0"); err != nil {
				// Kept, to be deleted again when its turn comes back.
				r.held[i] = append(r.held[i], oldest)
				if ctx.Err() == nil {
					fail(fmt.Errorf("DEL %s: %w", oldest, err))
				}
				continue
			}
			done.Add(1)
		}
		return nil
	})
	stopProgress()
	if err != nil {
		return err
	}
	r.rep.Pairs, r.rep.Failures, r.rep.ChurnTime = int(done.Load()), int(failed.Load()), time.Since(start)
	if firstErr != nil {
		r.rep.FirstFailure = firstErr.Error()
	}
	return r.point(context.WithoutCancel(ctx), "after the churn (auto-compaction on)")
}

// runtimeID is a container ID as long as the 64 hex digits runtimes use,
// so that keys and records have their real size: phase, node, number.
func runtimeID(phase, node, n int) string {
	return fmt.Sprintf("%08x%08x%048x", phase, node, n)
}

// maxSoakFailures ends a churn that fails this often: something is wrong.
const maxSoakFailures = 100

// churnProgress reports the pairs done every 30 s until stopped.
func (r *soakRun) churnProgress(done *atomic.Int64, start time.Time) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				d := done.Load()
				r.progress("%d of %d pairs, %.0f pairs/s", d, r.cfg.Pairs, float64(d)/time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// eachNode runs f for every node at once and returns the first error,
// naming its node.
func (r *soakRun) eachNode(f func(i int) error) error {
	return each(r.cfg.Nodes, func(i int) error {
		if err := f(i); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		return nil
	})
}

// compact compacts the history up to the current revision and waits until
// the backend has dropped it (etcdctl compact --physical).
func (r *soakRun) compact(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	st, err := r.cli.Status(ctx, r.endpoints[0])
	if err != nil {
		return fmt.Errorf("status of %s: %w", r.endpoints[0], err)
	}
	if _, err := r.cli.Compact(ctx, st.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		return fmt.Errorf("compacting to revision %d: %w", st.Header.Revision, err)
	}
	// The physical wait covers the member that served the request; the
	// report reads the first member's counters, which a loaded machine
	// may apply a moment later.
	for {
		m, err := r.mvcc(ctx)
		if err != nil {
			return err
		}
		if m.compactRevision >= st.Header.Revision {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to compact to revision %d: %w", r.endpoints[0], st.Header.Revision, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return r.point(ctx, "after compaction")
}

// defragment defragments each member in turn, as etcdctl defrag --cluster
// does: a member blocks its clients while it rewrites its file.
func (r *soakRun) defragment(ctx context.Context) error {
	start := time.Now()
	for _, ep := range r.endpoints {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		_, err := r.cli.Defragment(dctx, ep)
		cancel()
		if err != nil {
			return fmt.Errorf("defragmenting %s: %w", ep, err)
		}
	}
	r.rep.DefragTime = time.Since(start)
	return r.point(ctx, "after defragmentation")
}
