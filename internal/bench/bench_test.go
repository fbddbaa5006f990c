package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestTinyRunFillsTheTable runs every scenario at toy sizes and checks that
// the report holds what each scenario must have measured. It judges no
// timing: that is the harness's job on a real run.
func TestTinyRunFillsTheTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := Config{Ops: 3, Concurrency: []int{2, 3}, PerAllocator: 2, ScaleBits: 27, Holes: 2, Stale: 25}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Latency) != 2 {
		t.Fatalf("%d latency scenarios, want 2", len(rep.Latency))
	}
	for _, l := range rep.Latency {
		for name, s := range map[string]Stats{"etcd ADD": l.Ours.Add, "etcd DEL": l.Ours.Del, "host-local ADD": l.HostLoc.Add, "host-local DEL": l.HostLoc.Del} {
			if s.N != cfg.Ops || s.P50 <= 0 || s.P99 < s.P50 || s.Max < s.P99 {
				t.Errorf("%s %s: %+v, want %d ordered samples", l.Pool, name, s, cfg.Ops)
			}
		}
		if l.PeakRSSKiB["etcd"] <= 0 || l.PeakRSSKiB["host-local"] <= 0 {
			t.Errorf("%s: no peak RSS: %v", l.Pool, l.PeakRSSKiB)
		}
	}
	// Two concurrencies, each as separate nodes' processes, one node's
	// processes, goroutines and host-local.
	if len(rep.Contention) != 8 {
		t.Fatalf("%d contention results, want 8", len(rep.Contention))
	}
	for _, c := range rep.Contention {
		if c.Allocations != c.Allocators*cfg.PerAllocator {
			t.Errorf("%d %s: %d allocations, want %d", c.Allocators, c.Mode, c.Allocations, c.Allocators*cfg.PerAllocator)
		}
		// Every allocation writes at least once and reads its position.
		if c.Mode != "host-local" && (c.Writes < 1 || c.RoundTrips < 2 || c.RoundTrips < c.Writes) {
			t.Errorf("%d %s: %.2f round trips and %.2f writes per allocation", c.Allocators, c.Mode, c.RoundTrips, c.Writes)
		}
	}
	s := rep.Scale
	if s.Addresses != 29 || s.Ours.Last <= 0 || s.HostLoc.Last <= 0 || s.Ours.Churned <= 0 || s.HostLoc.Churned <= 0 || s.Ours.Full <= 0 || s.FullRoundTrips < 1 || s.Ours.PeakRSSKiB <= 0 {
		t.Errorf("scale: %+v", s)
	}
	if rep.GC.Stale != cfg.Stale || rep.GC.Ours <= 0 || rep.GC.HostLoc <= 0 {
		t.Errorf("GC: %+v", rep.GC)
	}
	// Two latency goals, two for each of our three contention kinds,
	// three for the scale scenario.
	if len(rep.Goals) != 2+3*2+3 {
		t.Errorf("%d goals judged, want 11: %+v", len(rep.Goals), rep.Goals)
	}
	var out bytes.Buffer
	if err := rep.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"empty /16", "90% of /20", "write txns/alloc", "198.19.128.0/27", "GC of 25 stale allocations", "Goals"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}
