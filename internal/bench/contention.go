package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// The contention scenarios: many allocators at once on one network.

// contention runs n allocators at once on one empty /16, each making
// PerAllocator ADDs: as separate processes of our plugin (each a node of
// its own, as in a rollout), as processes of our plugin on one node (a
// node starting many pods at once), as goroutines with a session each in
// this process, and as host-local processes on one node for scale.
func (r *runner) contention(ctx context.Context) error {
	for _, n := range r.cfg.Concurrency {
		for _, mode := range []string{"processes", "one-node", "goroutines", "host-local"} {
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
				case "one-node":
					e, err := r.ours.mustRun(ctx, "ADD", r.ours.Conf(name, subnet.String(), ""), id, node)
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
