package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestTinySoak runs the soak at toy sizes and checks what it must have
// measured: every pair done, the phases' revisions in order, compaction to
// the last revision, and the writes etcd counted per ADD and DEL. It judges
// neither time nor the size goal, which depend on the machine and scale.
func TestTinySoak(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := SoakConfig{Pairs: 41, Fill: 20, Nodes: 2, Members: 3, CompactionMode: "revision", CompactionRetention: "1000",
		MaxChurn: 4 * time.Minute, Sample: 5}
	rep, err := RunSoak(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pairs != cfg.Pairs || rep.Failures != 0 {
		t.Errorf("%d pairs done and %d failures (%s), want %d and none", rep.Pairs, rep.Failures, rep.FirstFailure, cfg.Pairs)
	}
	if len(rep.Points) != 4 {
		t.Fatalf("%d points, want 4: %+v", len(rep.Points), rep.Points)
	}
	fill, churned, compacted := rep.Points[0], rep.Points[1], rep.Points[2]
	// Each pair is one ADD and one DEL, a revision each.
	if min := fill.Revision + 2*int64(cfg.Pairs+cfg.Sample); churned.Revision < min {
		t.Errorf("revision %d after the churn, want at least %d", churned.Revision, min)
	}
	if compacted.CompactRevision != compacted.Revision {
		t.Errorf("compacted to %d, want the current revision %d", compacted.CompactRevision, compacted.Revision)
	}
	for _, p := range rep.Points {
		if len(p.DBSize) != cfg.Members || len(p.InUse) != cfg.Members || p.DBSize[0] <= 0 {
			t.Errorf("%s: sizes %v and %v, want one per member", p.Phase, p.DBSize, p.InUse)
		}
	}
	// An ADD of one range set puts its attachment, address, node index
	// key and position; a DEL deletes the attachment, the address and
	// the index key. The liveness records, at most one a minute per node,
	// do not show in a soak this short.
	if a := rep.PerAdd; a.Revisions != 1 || a.Puts != 4 || a.PutBytes <= 0 || a.Deletes != 0 {
		t.Errorf("per ADD %+v, want 1 revision, 4 puts, no delete", a)
	}
	if d := rep.PerDel; d.Revisions != 1 || d.Puts != 0 || d.Deletes != 3 {
		t.Errorf("per DEL %+v, want 1 revision, 3 deletes, no put", d)
	}
	var out bytes.Buffer
	if err := rep.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"after the first fill", "after defragmentation", "Writes per operation", "within 2x"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}
