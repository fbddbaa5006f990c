package wasm

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// BenchmarkCall measures one call of each core operation on each host, with
// the inputs an ADD on the spec's command-line example passes.
func BenchmarkCall(b *testing.B) {
	specs := [][]core.RangeSpec{{{Subnet: "203.0.113.0/24"}}, {{Subnet: "2001:db8:1::/64"}}}
	sets, err := core.CanonicalizeRangeSets(specs)
	if err != nil {
		b.Fatal(err)
	}
	set := sets[0]
	last := netip.MustParseAddr("203.0.113.40")
	order := set.SearchOrder(last)
	taken := make([]netip.Addr, 32)
	for i := range taken {
		taken[i] = netip.AddrFrom4([4]byte{203, 0, 113, byte(41 + i)})
	}
	requested := []netip.Addr{netip.MustParseAddr("203.0.113.77")}
	// An ADD's steps: the first (the guesses), the one after a win (done),
	// and the one after the guesses were lost (the observed candidates).
	req := core.Request{Sets: sets, Node: "node-a", ContainerID: "c1", Positions: []core.Position{{Addr: last}, {}}}
	won := []core.Answer{{Committed: true}}
	lost := []core.Answer{{Lost: []netip.Addr{taken[0]}, Observed: [][]core.Observation{
		{{Segment: order[0], Taken: taken, Complete: true}}, {{Segment: sets[1].SearchOrder(netip.Addr{})[0], Complete: true}},
	}}}
	ops := []struct {
		name string
		call func(hosts.Core)
	}{
		{"CanonicalizeRangeSets", func(c hosts.Core) { _, _ = c.CanonicalizeRangeSets(specs) }},
		{"ValidateRangeSets", func(c hosts.Core) { c.ValidateRangeSets(specs) }},
		{"Step/first", func(c hosts.Core) { c.Step(req, nil) }},
		{"Step/won", func(c hosts.Core) { c.Step(req, won) }},
		{"Step/lost", func(c hosts.Core) { c.Step(req, lost) }},
		{"CheckRequested", func(c hosts.Core) { _, _ = c.CheckRequested(set, requested[0]) }},
		{"Capacities", func(c hosts.Core) { c.Capacities(sets) }},
	}
	w := newHost(b, "")
	for _, op := range ops {
		for _, h := range []struct {
			name string
			core hosts.Core
		}{{"native", native.New()}, {"wasm", w}} {
			b.Run(op.name+"/host="+h.name, func(b *testing.B) {
				for b.Loop() {
					op.call(h.core)
				}
			})
		}
	}
}

// BenchmarkNew measures starting a host in a process: compiling the module
// (cold cache), loading it from disk (warm) and instantiating it.
func BenchmarkNew(b *testing.B) {
	b.Run("cache=cold", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			h, err := New(Options{CacheDir: filepath.Join(b.TempDir(), fmt.Sprint(i))})
			if err != nil {
				b.Fatal(err)
			}
			_ = h.Close()
		}
	})
	b.Run("cache=warm", func(b *testing.B) {
		dir := b.TempDir()
		_ = newHost(b, dir)
		for b.Loop() {
			h, err := New(Options{CacheDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			_ = h.Close()
		}
	})
}

// BenchmarkProcessADD measures what a container runtime waits for: one
// plugin process doing an ADD on the spec's command-line example against a
// local etcd, with core native and with core wasm from a warm and from a
// cold compilation cache. Each ADD is followed, untimed, by its DEL, so
// every iteration allocates from the same state. Besides the mean (ns/op)
// it reports the median (median-ms), the figure the README quotes.
func BenchmarkProcessADD(b *testing.B) {
	srv := etcdtest.Start(b)
	cases := []struct{ name, core, cache string }{
		{"core=native", "native", "warm"},
		{"core=wasm/cache=warm", "wasm", "warm"},
		{"core=wasm/cache=cold", "wasm", "cold"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			warmDir := b.TempDir()
			conf := func(dir string) string { return fmt.Sprintf(specCommandLine, srv.Endpoint(), c.core, dir) }
			// One untimed ADD builds the plugin and warms etcd, the page
			// cache and (for "warm") the compilation cache.
			warmUp := call{Command: "ADD", ContainerID: "warm-up", IfName: "dummy0", Config: conf(warmDir)}
			if out := runPlugin(b, warmUp); out.ExitCode != 0 {
				b.Fatal(out)
			}
			warmUp.Command = "DEL"
			runPlugin(b, warmUp)
			var times []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dir := warmDir
				if c.cache == "cold" {
					b.StopTimer()
					dir = filepath.Join(b.TempDir(), fmt.Sprint(i))
					b.StartTimer()
				}
				add := call{Command: "ADD", ContainerID: fmt.Sprintf("bench-%d", i), IfName: "dummy0", Config: conf(dir)}
				start := time.Now()
				out := runPlugin(b, add)
				times = append(times, time.Since(start))
				b.StopTimer()
				if out.ExitCode != 0 || !strings.Contains(string(out.Stdout), "203.0.113.") {
					b.Fatal(out)
				}
				add.Command = "DEL"
				if out := runPlugin(b, add); out.ExitCode != 0 {
					b.Fatal(out)
				}
				b.StartTimer()
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2])/float64(time.Millisecond), "median-ms")
		})
	}
}

// BenchmarkProcessADDRatio alternates native and warm-cache wasm ADDs in
// one loop, so that both see the same machine load, and reports both
// medians and their ratio (the README's goal is at most 3).
func BenchmarkProcessADDRatio(b *testing.B) {
	srv := etcdtest.Start(b)
	dir := b.TempDir()
	conf := func(coreName string) string { return fmt.Sprintf(specCommandLine, srv.Endpoint(), coreName, dir) }
	run := func(coreName, id string) time.Duration {
		add := call{Command: "ADD", ContainerID: id, IfName: "dummy0", Config: conf(coreName)}
		start := time.Now()
		out := runPlugin(b, add)
		elapsed := time.Since(start)
		if out.ExitCode != 0 {
			b.Fatal(out)
		}
		add.Command = "DEL"
		if out := runPlugin(b, add); out.ExitCode != 0 {
			b.Fatal(out)
		}
		return elapsed
	}
	run("native", "warm-up")
	run("wasm", "warm-up")
	var nativeTimes, wasmTimes []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		nativeTimes = append(nativeTimes, run("native", fmt.Sprintf("n-%d", i)))
		wasmTimes = append(wasmTimes, run("wasm", fmt.Sprintf("w-%d", i)))
	}
	b.StopTimer()
	slices.Sort(nativeTimes)
	slices.Sort(wasmTimes)
	n, w := nativeTimes[len(nativeTimes)/2], wasmTimes[len(wasmTimes)/2]
	b.ReportMetric(float64(n)/float64(time.Millisecond), "native-median-ms")
	b.ReportMetric(float64(w)/float64(time.Millisecond), "wasm-median-ms")
	b.ReportMetric(float64(w)/float64(n), "wasm/native")
}
