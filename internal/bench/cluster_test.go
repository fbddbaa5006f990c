package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestTinyScaleRun runs the scale scenario at toy size on a real
// three-member cluster and checks that its counts add up and that no
// address was handed out twice. It judges no timing.
func TestTinyScaleRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := ClusterConfig{Nodes: []int{3}, PerNode: 2, Churn: 1, Members: 3}
	rep, err := RunCluster(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Crowds) != 2 || rep.Crowds[0].Kind != kindOurs || rep.Crowds[1].Kind != kindFloor {
		t.Fatalf("crowds %+v, want ours then the floor", rep.Crowds)
	}
	for _, c := range rep.Crowds {
		b, ch := c.Burst, c.Churned
		if b.Adds != 3*2 || b.Dels != 0 || ch.Adds != 3 || ch.Dels != 3 || b.Failures()+ch.Failures() != 0 {
			t.Errorf("%s: burst %d ADDs %d DELs, churn %d ADDs %d DELs, %d+%d failures (%s%s)", c.Kind,
				b.Adds, b.Dels, ch.Adds, ch.Dels, b.Failures(), ch.Failures(), b.FirstError, ch.FirstError)
		}
		if c.Live != 6 || c.Duplicates != 0 || c.Mismatches != 0 {
			t.Errorf("%s: %d live, %d duplicates, %d mismatches; want 6, 0, 0", c.Kind, c.Live, c.Duplicates, c.Mismatches)
		}
		for name, p := range map[string]PhaseResult{"burst": b, "churn": ch} {
			// Every ADD or DEL reads and writes at least once; the WAL
			// holds at least the keys written.
			if p.Writes < float64(p.Ops()) || p.RoundTrips < 2*float64(p.Ops()) || p.WALBytes < 100*float64(p.Ops()) {
				t.Errorf("%s %s: %.0f round trips, %.0f writes, %.0f WAL bytes for %d operations", c.Kind, name, p.RoundTrips, p.Writes, p.WALBytes, p.Ops())
			}
			if p.Add.N != p.Adds+p.FailedAdds || p.Add.P50 <= 0 || p.Add.P99 < p.Add.P50 || p.Add.Max < p.Add.P99 || p.Wall <= 0 {
				t.Errorf("%s %s: ADD latencies %+v over %v", c.Kind, name, p.Add, p.Wall)
			}
		}
		// The floor writes one transaction per operation (etcd may add a
		// proposal of its own, such as publishing the cluster version).
		if c.Kind == kindFloor && (b.Writes > float64(b.Ops()+2) || ch.Writes > float64(ch.Ops()+2)) {
			t.Errorf("floor: %.0f and %.0f writes for %d and %d operations", b.Writes, ch.Writes, b.Ops(), ch.Ops())
		}
	}
	if len(rep.Goals) != 8 {
		t.Errorf("%d goals judged, want 8: %+v", len(rep.Goals), rep.Goals)
	}
	var out bytes.Buffer
	if err := rep.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3-member cluster", "198.18.0.0/15", "floor", "WAL bytes/op", "Goals", "no duplicate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}
