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
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
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

// hlDir is host-local's data directory.
func (r *runner) hlDir() string { return r.hlData }
