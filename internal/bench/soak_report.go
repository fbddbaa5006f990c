package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// SoakReport is what a soak measured.
type SoakReport struct {
	Config SoakConfig
	// Pairs is the number of ADD/DEL pairs done (fewer than asked when
	// MaxChurn ran out); Failures the operations that failed.
	Pairs, Failures int
	FirstFailure    string
	FillTime        time.Duration
	ChurnTime       time.Duration
	DefragTime      time.Duration
	// Points are the revision and sizes after each phase, in order.
	Points []SoakPoint
	// PerAdd and PerDel are the writes of one ADD and one DEL.
	PerAdd, PerDel WriteCost
}

// SoakPoint is the cluster's state after one phase.
type SoakPoint struct {
	Phase    string
	Revision int64
	// CompactRevision is the revision history was last compacted to.
	CompactRevision int64
	// DBSize and InUse are each member's database file size and the part
	// of it in use, in member order.
	DBSize, InUse []int64
}

// WriteCost is what one operation writes, counted by etcd.
type WriteCost struct {
	Revisions, Puts, PutBytes, Deletes float64
}

// GoalRatio is the largest database after defragmentation over the
// largest after the first fill; the goal is at most 2.
func (r *SoakReport) GoalRatio() float64 {
	if len(r.Points) == 0 {
		return 0
	}
	first, last := r.Points[0], r.Points[len(r.Points)-1]
	return float64(slices.Max(last.DBSize)) / float64(max(1, slices.Max(first.DBSize)))
}

// Print writes the report as tables.
func (r *SoakReport) Print(w io.Writer) error {
	c := r.Config
	fmt.Fprintf(w, "Soak: %d of %d ADD/DEL pairs from %d nodes on a %d-member cluster, %d containers attached throughout,\n",
		r.Pairs, c.Pairs, c.Nodes, c.Members, c.Fill)
	fmt.Fprintf(w, "auto-compaction %s %s; fill %s, churn %s (%.0f pairs/s), defragmentation %s, %d failed operations\n",
		c.CompactionMode, c.CompactionRetention, r.FillTime.Round(time.Second), r.ChurnTime.Round(time.Second),
		float64(r.Pairs)/max(r.ChurnTime.Seconds(), 1e-9), r.DefragTime.Round(time.Millisecond), r.Failures)
	if r.FirstFailure != "" {
		fmt.Fprintf(w, "first failure: %s\n", r.FirstFailure)
	}
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\trevision\tcompacted to\tdatabase, each member\tin use, each member\tlargest / after fill")
	var first int64
	for i, p := range r.Points {
		if i == 0 {
			first = slices.Max(p.DBSize)
		}
		compacted := "-"
		if p.CompactRevision > 0 {
			compacted = fmt.Sprint(p.CompactRevision)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.2fx\n", p.Phase, p.Revision, compacted, sizes(p.DBSize), sizes(p.InUse),
			float64(slices.Max(p.DBSize))/float64(max(1, first)))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Writes per operation (counted by etcd)")
	tw = tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "op\trevisions\tkeys put\tbytes put (keys + values)\tkeys deleted")
	for _, o := range []struct {
		op string
		c  WriteCost
	}{{"ADD", r.PerAdd}, {"DEL", r.PerDel}} {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.0f\t%.2f\n", o.op, o.c.Revisions, o.c.Puts, o.c.PutBytes, o.c.Deletes)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	verdict := "met"
	if r.GoalRatio() > 2 {
		verdict = "NOT MET"
	}
	tw = tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "goal\tmeasured\tverdict")
	if len(r.Points) > 0 {
		fmt.Fprintf(tw, "after compaction and defragmentation the database is within 2x its size after the first fill\t%s vs %s = %.2fx\t%s\n",
			mib(slices.Max(r.Points[len(r.Points)-1].DBSize)), mib(slices.Max(r.Points[0].DBSize)), r.GoalRatio(), verdict)
	}
	return tw.Flush()
}

func mib(b int64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

// sizes lists byte counts in MiB, slash-separated.
func sizes(b []int64) string {
	s := make([]string, len(b))
	for i, v := range b {
		s[i] = fmt.Sprintf("%.2f", float64(v)/(1<<20))
	}
	return strings.Join(s, " / ") + " MiB"
}

// point records the revision and every member's database size.
func (r *soakRun) point(ctx context.Context, phase string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := r.mvcc(ctx)
	if err != nil {
		return err
	}
	p := SoakPoint{Phase: phase, CompactRevision: m.compactRevision}
	for _, ep := range r.endpoints {
		st, err := r.cli.Status(ctx, ep)
		if err != nil {
			return fmt.Errorf("status of %s: %w", ep, err)
		}
		p.Revision = max(p.Revision, st.Header.Revision)
		p.DBSize = append(p.DBSize, st.DbSize)
		p.InUse = append(p.InUse, st.DbSizeInUse)
	}
	r.rep.Points = append(r.rep.Points, p)
	r.progress("%s: revision %d, database %s", phase, p.Revision, sizes(p.DBSize))
	return nil
}

// mvccCounters are etcd's counts of what its store applied.
type mvccCounters struct {
	revision                int64
	compactRevision         int64
	puts, putBytes, deletes float64
}

// applied waits until every member has applied the same revision, so that
// counters summed over the members are whole, and returns it.
func (r *soakRun) applied(ctx context.Context) (int64, error) {
	for range 200 {
		revs := map[int64]bool{}
		var rev int64
		for _, ep := range r.endpoints {
			st, err := r.cli.Status(ctx, ep)
			if err != nil {
				return 0, fmt.Errorf("status of %s: %w", ep, err)
			}
			rev = st.Header.Revision
			revs[rev] = true
		}
		if len(revs) == 1 {
			return rev, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for the members to apply the same revision: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("the members did not apply the same revision within 200 tries")
}

// mvcc reads the store's counters from the first member's /metrics, and
// the revision from its status.
func (r *soakRun) mvcc(ctx context.Context) (mvccCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rev, err := r.applied(ctx)
	if err != nil {
		return mvccCounters{}, err
	}
	m := mvccCounters{revision: rev}
	err = eachSample(ctx, r.endpoints[0], func(name, _ string, v float64) {
		switch name {
		case "etcd_mvcc_put_total":
			m.puts = v
		case "etcd_mvcc_delete_total":
			m.deletes = v
		case "etcd_debugging_mvcc_total_put_size_in_bytes":
			m.putBytes = v
		case "etcd_debugging_mvcc_compact_revision":
			m.compactRevision = int64(v)
		}
	})
	if err != nil {
		return mvccCounters{}, err
	}
	return m, nil
}
