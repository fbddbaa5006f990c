// Package bench measures the plugin the way users feel it: whole plugin
// processes, exec to result, against an embedded etcd on loopback, side by
// side with host-local v1.10.0 doing the same sequence in the same run. It
// backs "etcd-ipam bench". Timing goals are judged here and printed, never
// asserted in unit tests, because they depend on the machine.
package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// Config sizes a run.
type Config struct {
	// Ops is the number of ADD+DEL pairs per plugin in each latency scenario.
	Ops int
	// Concurrency lists the numbers of concurrent allocators; the goal is
	// judged at the largest.
	Concurrency []int
	// PerAllocator is the number of ADDs each concurrent allocator makes.
	PerAllocator int
	// ScaleBits is the prefix length of the pool filled completely (16).
	ScaleBits int
	// Holes is the number of last ADDs timed into the nearly full pool.
	Holes int
	// Stale is the number of stale allocations one GC collects.
	Stale int
	// Plugin and HostLocal are prebuilt binaries; built into a temporary
	// directory when empty.
	Plugin, HostLocal string
	// Progress receives one line per phase; nil for silence.
	Progress io.Writer
}

// Full is the configuration the README's table comes from.
func Full() Config {
	return Config{Ops: 200, Concurrency: []int{8, 32, 64}, PerAllocator: 4, ScaleBits: 16, Holes: 20, Stale: 10000}
}

// Quick is a scaled-down run of every scenario, for a first look.
func Quick() Config {
	return Config{Ops: 30, Concurrency: []int{8, 64}, PerAllocator: 1, ScaleBits: 20, Holes: 5, Stale: 1000}
}

// Subnets from 198.18.0.0/15, the block reserved for benchmarks (RFC 2544).
var (
	bigPool   = netip.MustParsePrefix("198.18.0.0/16")
	busyPool  = netip.MustParsePrefix("198.19.0.0/20")
	scalePool = func(bits int) netip.Prefix {
		return netip.PrefixFrom(netip.MustParseAddr("198.19.128.0"), bits).Masked()
	}
)

// node is the name of the single node of the sequential scenarios.
const node = "bench-node"

type runner struct {
	cfg      Config
	endpoint string
	cli      *clientv3.Client
	ours, hl *Plugin
	rep      *Report
	rng      *rand.Rand
	run      int // makes network names unique within the etcd
	hlData   string
}

// Run builds the plugins, starts etcd and runs every scenario.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Ops < 1 || cfg.PerAllocator < 1 || cfg.Holes < 1 || cfg.Stale < 1 || len(cfg.Concurrency) == 0 || cfg.ScaleBits < 16 || cfg.ScaleBits > 30 {
		return nil, fmt.Errorf("bench: sizes must be positive and the scaled pool between /16 and /30: %+v", cfg)
	}
	dir, err := os.MkdirTemp("", "etcd-ipam-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r := &runner{cfg: cfg, rep: &Report{}, rng: rand.New(rand.NewPCG(6, 6))}
	r.progress("building the plugin and host-local")
	bins, err := Build(ctx, dir, launcherPackage, pluginPackage, hostLocalPackage)
	if err != nil {
		return nil, err
	}
	launcher, oursBin, hlBin := bins[0], or(cfg.Plugin, bins[1]), or(cfg.HostLocal, bins[2])
	srv, err := devetcd.Start(filepath.Join(dir, "etcd-data"))
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	r.endpoint = srv.Endpoint()
	r.cli, err = clientv3.New(clientv3.Config{Endpoints: []string{r.endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer r.cli.Close()
	hlData := filepath.Join(dir, "host-local-data")
	r.hlData = hlData
	r.ours = &Plugin{Name: "etcd", Bin: oursBin, Launcher: launcher, Conf: OursConf(r.endpoint)}
	r.hl = &Plugin{Name: "host-local", Bin: hlBin, Launcher: launcher, Conf: HostLocalConf(hlData)}

	steps := []struct {
		what string
		do   func(context.Context) error
	}{
		{"latency on an empty /16", func(ctx context.Context) error { return r.latency(ctx, "empty /16", bigPool, 0) }},
		{"latency at 90% of a /20", func(ctx context.Context) error { return r.latency(ctx, "90% of /20", busyPool, 0.9) }},
		{"contention", r.contention},
		{"scale", r.scale},
		{"garbage collection", r.gc},
	}
	for _, s := range steps {
		r.progress(s.what)
		if err := s.do(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	r.rep.judge(cfg)
	return r.rep, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (r *runner) progress(phase string) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench: %s\n", phase)
	}
}

// network returns a fresh network name.
func (r *runner) network(what string) string {
	r.run++
	return fmt.Sprintf("bench-%s-%d", what, r.run)
}

// latency runs ADD then DEL of Ops containers, ours and host-local
// alternating, on a pool filled to fraction at random first. DEL after each
// ADD keeps the occupancy where it started.
func (r *runner) latency(ctx context.Context, label string, subnet netip.Prefix, fraction float64) error {
	name := r.network("latency")
	all := allocatable(subnet)
	var taken []netip.Addr
	if fraction > 0 {
		perm := slices.Clone(all)
		r.rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		taken = perm[:int(float64(len(perm))*fraction)]
		slices.SortFunc(taken, netip.Addr.Compare)
		if err := fillEtcd(ctx, r.cli, name, node, taken, netip.Addr{}); err != nil {
			return err
		}
		if err := fillHostLocal(r.hlDir(), name, taken, netip.Addr{}); err != nil {
			return err
		}
	}
	s := sample{}
	for i := 0; i < r.cfg.Ops; i++ {
		id := fmt.Sprintf("lat-%d", i)
		for _, p := range []*Plugin{r.ours, r.hl} {
			e, err := p.mustRun(ctx, "ADD", p.Conf(name, subnet.String(), ""), id, node)
			if err != nil {
				return err
			}
			s.add(p.Name+" ADD", e)
		}
		for _, p := range []*Plugin{r.ours, r.hl} {
			e, err := p.mustRun(ctx, "DEL", p.Conf(name, subnet.String(), ""), id, node)
			if err != nil {
				return err
			}
			s.add(p.Name+" DEL", e)
		}
	}
	r.rep.Latency = append(r.rep.Latency, LatencyResult{
		Pool:       label,
		Ours:       OpLatency{Add: s.stats("etcd ADD"), Del: s.stats("etcd DEL")},
		HostLoc:    OpLatency{Add: s.stats("host-local ADD"), Del: s.stats("host-local DEL")},
		PeakRSSKiB: s.peak,
	})
	return nil
}

// hlDir is host-local's data directory.
func (r *runner) hlDir() string { return r.hlData }

// contention runs n allocators at once on one empty /16, each making
// PerAllocator ADDs: as separate processes of our plugin (each a node of
// its own, as in a rollout), as goroutines with a session each in this
// process, and as host-local processes on one node for scale.
func (r *runner) contention(ctx context.Context) error {
	for _, n := range r.cfg.Concurrency {
		for _, mode := range []string{"processes", "goroutines", "host-local"} {
			res, err := r.crowd(ctx, n, mode)
			if err != nil {
				return fmt.Errorf("%d %s: %w", n, mode, err)
			}
			r.rep.Contention = append(r.rep.Contention, res)
		}
	}
	return nil
}

func (r *runner) crowd(ctx context.Context, n int, mode string) (ContentionResult, error) {
	name := r.network("crowd")
	subnet := bigPool
	var mu sync.Mutex
	var lat []time.Duration
	var failures int
	var firstErr error
	record := func(d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failures++
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		lat = append(lat, d)
	}
	before, err := Scrape(ctx, r.endpoint)
	if err != nil {
		return ContentionResult{}, err
	}
	var sessions []*ipam.Session
	if mode == "goroutines" {
		conf, err := config.Load([]byte(r.ours.Conf(name, subnet.String(), "")), "")
		if err != nil {
			return ContentionResult{}, err
		}
		for i := 0; i < n; i++ {
			s, err := ipam.Open(conf, ipam.Options{Core: native.New(), Node: fmt.Sprintf("node-%02d", i)})
			if err != nil {
				return ContentionResult{}, err
			}
			defer s.Close()
			sessions = append(sessions, s)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodeName := fmt.Sprintf("node-%02d", i)
			for k := 0; k < r.cfg.PerAllocator; k++ {
				id := fmt.Sprintf("crowd-%d-%d", i, k)
				switch mode {
				case "goroutines":
					t0 := time.Now()
					_, err := sessions[i].Add(ctx, id, "eth0", nil)
					record(time.Since(t0), err)
				case "processes":
					e, err := r.ours.mustRun(ctx, "ADD", r.ours.Conf(name, subnet.String(), ""), id, nodeName)
					record(e.Elapsed, err)
				default:
					e, err := r.hl.mustRun(ctx, "ADD", r.hl.Conf(name, subnet.String(), ""), id, node)
					record(e.Elapsed, err)
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	after, err := Scrape(ctx, r.endpoint)
	if err != nil {
		return ContentionResult{}, err
	}
	if failures > 0 {
		return ContentionResult{}, fmt.Errorf("%d of %d ADDs failed, first: %w", failures, n*r.cfg.PerAllocator, firstErr)
	}
	res := ContentionResult{Allocators: n, Mode: mode, Allocations: len(lat), Wall: wall, Latency: percentiles(lat)}
	if mode != "host-local" {
		d := after.Sub(before)
		res.RoundTrips = d.RoundTrips() / float64(len(lat))
		res.Writes = d.Writes / float64(len(lat))
		res.Counted = true
	}
	return res, nil
}

// scale fills a pool completely, directly rather than by 65,000 ADDs, in
// two states: as a sequential fill leaves it (all but the last Holes
// addresses taken, the position on the last taken one), and as churn
// leaves it (Holes addresses free at random, the position at a random
// address). It times the first ADDs into the same pool empty, the last
// Holes ADDs of each state, and an ADD into the full pool.
func (r *runner) scale(ctx context.Context) error {
	subnet := scalePool(r.cfg.ScaleBits)
	all := allocatable(subnet)
	if r.cfg.Holes >= len(all) {
		return fmt.Errorf("%d holes do not fit into %s", r.cfg.Holes, subnet)
	}
	sequential := r.network("scale-sequential")
	if err := r.fillBoth(ctx, sequential, all[:len(all)-r.cfg.Holes], all[len(all)-r.cfg.Holes-1]); err != nil {
		return err
	}
	holes := map[netip.Addr]bool{}
	for len(holes) < r.cfg.Holes {
		holes[all[r.rng.IntN(len(all))]] = true
	}
	var taken []netip.Addr
	for _, a := range all {
		if !holes[a] {
			taken = append(taken, a)
		}
	}
	churned := r.network("scale-churned")
	if err := r.fillBoth(ctx, churned, taken, all[r.rng.IntN(len(all))]); err != nil {
		return err
	}
	empty := r.network("scale-empty")
	s := sample{}
	for _, phase := range []struct{ label, network string }{{"first", empty}, {"last", sequential}, {"churned", churned}} {
		for i := 0; i < r.cfg.Holes; i++ {
			id := fmt.Sprintf("%s-%d", phase.label, i)
			for _, p := range []*Plugin{r.ours, r.hl} {
				e, err := p.mustRun(ctx, "ADD", p.Conf(phase.network, subnet.String(), ""), id, node)
				if err != nil {
					return err
				}
				s.add(p.Name+" "+phase.label, e)
			}
		}
	}
	res := ScaleResult{Pool: subnet.String(), Addresses: len(all)}
	for _, p := range []*Plugin{r.ours, r.hl} {
		before, err := Scrape(ctx, r.endpoint)
		if err != nil {
			return err
		}
		e, err := p.run(ctx, "ADD", p.Conf(sequential, subnet.String(), ""), "one-too-many", node)
		if err != nil {
			return err
		}
		after, err := Scrape(ctx, r.endpoint)
		if err != nil {
			return err
		}
		if e.ExitCode == 0 {
			return fmt.Errorf("%s handed out an address from a full pool: %s", p.Name, e.Stdout)
		}
		s.add(p.Name+" full", e)
		if p == r.ours {
			res.Ours.Full = e.Elapsed
			res.FullRoundTrips = after.Sub(before).RoundTrips()
			res.FullWrites = after.Sub(before).Writes
		} else {
			res.HostLoc.Full = e.Elapsed
		}
	}
	for _, c := range []struct {
		cost *FillCost
		name string
	}{{&res.Ours, "etcd"}, {&res.HostLoc, "host-local"}} {
		c.cost.First = s.stats(c.name + " first").P50
		c.cost.Last, c.cost.LastMax = s.stats(c.name+" last").P50, s.stats(c.name+" last").Max
		c.cost.Churned, c.cost.ChurnedMax = s.stats(c.name+" churned").P50, s.stats(c.name+" churned").Max
		c.cost.PeakRSSKiB = s.peak[c.name]
	}
	r.rep.Scale = res
	return nil
}

// fillBoth gives network the same taken addresses and position in etcd
// and in host-local's files.
func (r *runner) fillBoth(ctx context.Context, network string, taken []netip.Addr, position netip.Addr) error {
	if err := fillEtcd(ctx, r.cli, network, node, taken, position); err != nil {
		return err
	}
	return fillHostLocal(r.hlDir(), network, taken, position)
}

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
	if left.Count != 0 {
		return fmt.Errorf("our GC left %d keys of %d stale allocations", left.Count, len(stale))
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
