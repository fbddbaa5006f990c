package bench

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
)

// The scale scenario ("etcd-ipam bench scale"): many nodes at once against
// a three-member cluster, each node a session with its own client, beside
// the floor (cluster_nodes.go) at the same concurrency in the same run.

// ClusterConfig sizes a scale run.
type ClusterConfig struct {
	// Nodes lists the numbers of simulated nodes, one crowd each.
	Nodes []int
	// PerNode is the number of ADDs each node makes in the burst, one
	// after another, while every other node does the same.
	PerNode int
	// Churn is the number of DEL-then-ADD cycles each node makes after
	// the burst.
	Churn int
	// Members is the size of the etcd cluster (3).
	Members int
	// Progress receives one line per phase; nil for silence.
	Progress io.Writer
}

// ScaleDefaults is the configuration of the README's table: a run of
// a few minutes on 2 CPUs.
func ScaleDefaults() ClusterConfig {
	return ClusterConfig{Nodes: []int{100, 1000}, PerNode: 10, Churn: 5, Members: 3}
}

// clusterPool is the whole benchmark block (RFC 2544), so that the floor's
// disjoint slices fit and ours never nears a full pool.
var clusterPool = netip.MustParsePrefix("198.18.0.0/15")

// Allocator kinds of a crowd.
const (
	kindOurs  = "etcd-ipam"
	kindFloor = "floor"
)

// crowdTimeout bounds one crowd, whatever its size, so that a stuck
// cluster fails the run instead of hanging it.
const crowdTimeout = 10 * time.Minute

// RunCluster starts the cluster and runs, for each number of nodes, our
// crowd and the floor's, then judges the goals.
func RunCluster(ctx context.Context, cfg ClusterConfig) (*ClusterReport, error) {
	if len(cfg.Nodes) == 0 || cfg.PerNode < 1 || cfg.Churn < 0 || cfg.Members < 1 {
		return nil, fmt.Errorf("bench scale: nodes, ADDs per node and members must be positive, churn not negative: %+v", cfg)
	}
	pool := allocatable(clusterPool)
	for _, n := range cfg.Nodes {
		if n < 1 || n*(cfg.PerNode+cfg.Churn) > len(pool) {
			return nil, fmt.Errorf("bench scale: %d nodes of %d ADDs each do not fit into %s (%d addresses)",
				n, cfg.PerNode+cfg.Churn, clusterPool, len(pool))
		}
	}
	dir, err := os.MkdirTemp("", "etcd-ipam-bench-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	progress(cfg.Progress, fmt.Sprintf("starting a %d-member etcd cluster", cfg.Members))
	cluster, err := devetcd.StartCluster(filepath.Join(dir, "etcd"), cfg.Members)
	if err != nil {
		return nil, err
	}
	defer cluster.Close()
	rep := &ClusterReport{Members: cfg.Members, Pool: clusterPool.String()}
	for round, n := range cfg.Nodes {
		for _, kind := range []string{kindOurs, kindFloor} {
			progress(cfg.Progress, fmt.Sprintf("%d nodes, %s: burst of %d ADDs each, then %d DEL+ADD cycles each", n, kind, cfg.PerNode, cfg.Churn))
			res, err := runCrowd(ctx, cluster, cfg, fmt.Sprintf("scale-%s-%d-%d", kind, n, round), kind, n, pool)
			if err != nil {
				return nil, fmt.Errorf("%d nodes, %s: %w", n, kind, err)
			}
			rep.Crowds = append(rep.Crowds, res)
		}
	}
	rep.judge()
	return rep, nil
}

func progress(w io.Writer, phase string) {
	if w != nil {
		fmt.Fprintf(w, "bench scale: %s\n", phase)
	}
}

// nodeLog is what one simulated node saw; each node writes only its own.
type nodeLog struct {
	// adds and dels are latencies of every ADD and DEL, failed or not.
	adds, dels             []time.Duration
	failedAdds, failedDels int
	firstErr               error
	live                   []string              // its containers, oldest first
	held                   map[string]netip.Addr // address of each live container
	uncertain              []string              // containers whose ADD or DEL failed
}

// fail records a failed operation; count is failedAdds or failedDels.
func (l *nodeLog) fail(count *int, id string, err error) {
	*count++
	l.uncertain = append(l.uncertain, id)
	if l.firstErr == nil {
		l.firstErr = err
	}
}

// runCrowd runs n nodes of one kind on a network of its own (name), so
// that crowds never see each other's keys.
func runCrowd(ctx context.Context, cluster *devetcd.Cluster, cfg ClusterConfig, name, kind string, n int, pool []netip.Addr) (CrowdResult, error) {
	ctx, cancel := context.WithTimeout(ctx, crowdTimeout)
	defer cancel()
	conf, err := config.Load([]byte(OursConf(strings.Join(cluster.Endpoints(), ","))(name, clusterPool.String(), "")), "")
	if err != nil {
		return CrowdResult{}, err
	}
	per := cfg.PerNode + cfg.Churn
	nodes := make([]simNode, 0, n)
	defer func() {
		for _, s := range nodes {
			_ = s.close()
		}
	}()
	for i := 0; i < n; i++ {
		nodeName := fmt.Sprintf("node-%04d", i)
		var s simNode
		if kind == kindOurs {
			s, err = openOurs(conf, nodeName)
		} else {
			s, err = openFloor(conf, nodeName, clusterPool, pool[i*per:(i+1)*per])
		}
		if err != nil {
			return CrowdResult{}, err
		}
		nodes = append(nodes, s)
	}
	if err := each(n, func(i int) error { return nodes[i].warm(ctx) }); err != nil {
		return CrowdResult{}, fmt.Errorf("warming up: %w", err)
	}
	logs := make([]nodeLog, n)
	for i := range logs {
		logs[i].held = map[string]netip.Addr{}
	}
	res := CrowdResult{Kind: kind, Nodes: n, PerNode: cfg.PerNode, Churn: cfg.Churn}
	res.Burst, err = phase(ctx, cluster, n, func(i int) {
		l := &logs[i]
		for k := 0; k < cfg.PerNode; k++ {
			addOne(ctx, conf.Etcd.Timeout, nodes[i], l, fmt.Sprintf("%s-%04d-%d", kind, i, k))
		}
	}, logs)
	if err != nil {
		return CrowdResult{}, fmt.Errorf("burst: %w", err)
	}
	res.Churned, err = phase(ctx, cluster, n, func(i int) {
		l := &logs[i]
		for c := 0; c < cfg.Churn && len(l.live) > 0; c++ {
			id := l.live[0]
			opCtx, cancel := context.WithTimeout(ctx, conf.Etcd.Timeout)
			t0 := time.Now()
			err := nodes[i].del(opCtx, id)
			cancel()
			l.live = l.live[1:]
			delete(l.held, id)
			l.dels = append(l.dels, time.Since(t0))
			if err != nil {
				l.fail(&l.failedDels, id, err)
			}
			addOne(ctx, conf.Etcd.Timeout, nodes[i], l, fmt.Sprintf("%s-%04d-churn-%d", kind, i, c))
		}
	}, logs)
	if err != nil {
		return CrowdResult{}, fmt.Errorf("churn: %w", err)
	}
	if err := res.verify(ctx, conf, logs); err != nil {
		return CrowdResult{}, err
	}
	return res, nil
}

// addOne makes one timed ADD and records its outcome. The ADD gets the
// plugin's own deadline (etcdTimeout), as one invocation would: a session
// keeps a deadline it is given instead of applying its own.
func addOne(ctx context.Context, timeout time.Duration, s simNode, l *nodeLog, id string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	a, err := s.add(ctx, id)
	// A failed ADD counts in the latencies too: a runtime waited for it,
	// and leaving out the ADDs that ran into the deadline would flatter
	// the tail exactly when it is worst.
	l.adds = append(l.adds, time.Since(t0))
	if err != nil {
		l.fail(&l.failedAdds, id, err)
		return
	}
	l.live = append(l.live, id)
	l.held[id] = a
}

// phase releases every node's work at the same moment and measures it:
// latencies and failures from the nodes' logs (only what this phase
// added), requests, writes and WAL bytes from the members' metrics.
func phase(ctx context.Context, cluster *devetcd.Cluster, n int, work func(i int), logs []nodeLog) (PhaseResult, error) {
	type mark struct{ adds, dels, failedAdds, failedDels int }
	marks := make([]mark, n)
	for i, l := range logs {
		marks[i] = mark{len(l.adds), len(l.dels), l.failedAdds, l.failedDels}
	}
	before, leader, err := scrapeCluster(ctx, cluster)
	if err != nil {
		return PhaseResult{}, err
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			work(i)
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	after, leaderAfter, err := scrapeCluster(ctx, cluster)
	if err != nil {
		return PhaseResult{}, err
	}
	p := PhaseResult{Wall: wall, LeaderChanged: leader != leaderAfter}
	var adds, dels []time.Duration
	for i, l := range logs {
		adds = append(adds, l.adds[marks[i].adds:]...)
		dels = append(dels, l.dels[marks[i].dels:]...)
		fa, fd := l.failedAdds-marks[i].failedAdds, l.failedDels-marks[i].failedDels
		p.FailedAdds += fa
		p.FailedDels += fd
		if p.FirstError == "" && fa+fd > 0 {
			p.FirstError = l.firstErr.Error()
		}
	}
	// Only ADDs and DELs that succeeded count as work done.
	p.Adds, p.Dels = len(adds)-p.FailedAdds, len(dels)-p.FailedDels
	p.Add, p.Del = percentiles(adds), percentiles(dels)
	d := after.Sub(before)
	p.RoundTrips, p.Writes, p.WALBytes = d.RoundTrips(), d.Writes, d.WALBytes
	return p, nil
}

// scrapeCluster reads the counters of the cluster. Its members run in this
// process and register their metrics in the one process-wide registry, so
// any member's /metrics already sums what all of them did: requests
// served, WAL bytes appended (every member appends every write to its
// own log). The applied-proposals gauge is set by each member to its own
// applied index, equal on all once they caught up. The leader is asked,
// as it has applied every committed write.
func scrapeCluster(ctx context.Context, cluster *devetcd.Cluster) (Counters, int, error) {
	leader, err := cluster.Leader()
	if err != nil {
		return Counters{}, 0, err
	}
	ep := cluster.Endpoints()[leader]
	c, err := Scrape(ctx, ep)
	if err != nil {
		return Counters{}, 0, fmt.Errorf("member %s: %w", ep, err)
	}
	return c, leader, nil
}

// each runs f for 0..n-1 at once and returns the first error.
func each(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
