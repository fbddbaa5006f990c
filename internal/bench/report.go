package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Stats summarises the latencies of one kind of operation.
type Stats struct {
	N             int
	P50, P99, Max time.Duration
}

func percentiles(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration { // nearest rank
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Stats{N: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}

// sample collects process runs by label and the peak memory per plugin.
type sample struct {
	runs map[string][]time.Duration
	peak map[string]int64
}

func (s *sample) add(label string, e Exec) {
	if s.runs == nil {
		s.runs, s.peak = map[string][]time.Duration{}, map[string]int64{}
	}
	s.runs[label] = append(s.runs[label], e.Elapsed)
	plugin, _, _ := strings.Cut(label, " ")
	s.peak[plugin] = max(s.peak[plugin], e.MaxRSSKiB)
}

func (s *sample) stats(label string) Stats { return percentiles(s.runs[label]) }

// OpLatency is one plugin's ADD and DEL latencies.
type OpLatency struct{ Add, Del Stats }

// LatencyResult is one sequential scenario.
type LatencyResult struct {
	Pool          string
	Ours, HostLoc OpLatency
	PeakRSSKiB    map[string]int64 // by plugin
}

// ContentionResult is one crowd of concurrent allocators.
type ContentionResult struct {
	Allocators  int
	Mode        string // processes, one-node, goroutines (ours) or host-local
	Allocations int
	Wall        time.Duration
	Latency     Stats
	// RoundTrips and Writes per allocation, from etcd's metrics (ours).
	RoundTrips, Writes float64
	Counted            bool
}

// AllocsPerSecond is the crowd's throughput.
func (c ContentionResult) AllocsPerSecond() float64 {
	return float64(c.Allocations) / c.Wall.Seconds()
}

// FillCost is one plugin's cost of filling a pool: p50 (and slowest) of
// the first ADDs, of the last ADDs of a sequential fill and of ADDs taking
// the last addresses scattered by churn; an ADD into the full pool.
type FillCost struct {
	First, Last, LastMax, Churned, ChurnedMax, Full time.Duration
	PeakRSSKiB                                      int64
}

// ScaleResult is the pool filled completely.
type ScaleResult struct {
	Pool          string
	Addresses     int
	Ours, HostLoc FillCost
	// FullRoundTrips and FullWrites are what our ADD into the full pool
	// asked of etcd.
	FullRoundTrips, FullWrites float64
}

// GCResult is one GC of Stale allocations.
type GCResult struct {
	Stale         int
	Ours, HostLoc time.Duration
	PeakRSSKiB    map[string]int64 // by plugin
}

// Goal is one of the goals and whether this run met it.
type Goal struct {
	What, Measured string
	Met            bool
}

// Report is everything one run measured.
type Report struct {
	Latency    []LatencyResult
	Contention []ContentionResult
	Scale      ScaleResult
	GC         GCResult
	Goals      []Goal
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// judge checks the goals against the numbers.
func (r *Report) judge(cfg Config) {
	goal := func(what string, met bool, format string, args ...any) {
		r.Goals = append(r.Goals, Goal{What: what, Measured: fmt.Sprintf(format, args...), Met: met})
	}
	for _, l := range r.Latency {
		limit := 1.0
		if strings.HasPrefix(l.Pool, "90%") {
			limit = 0.7
		}
		q := ratio(l.Ours.Add.P50, l.HostLoc.Add.P50)
		goal(fmt.Sprintf("ADD p50 on %s <= %.1fx host-local's", l.Pool, limit), q <= limit,
			"%s vs %s = %.2fx", ms(l.Ours.Add.P50), ms(l.HostLoc.Add.P50), q)
	}
	top := slices.Max(cfg.Concurrency)
	for _, c := range r.Contention {
		if c.Allocators != top || !c.Counted {
			continue
		}
		// One node's burst is held to a tighter bound: its ADDs take
		// turns (the plugin's per-node lock), so none should need a
		// second write.
		limit := 1.5
		if c.Mode == "one-node" {
			limit = 1.1
		}
		goal(fmt.Sprintf("%d concurrent %s: <= %.1f write txns per allocation", top, c.Mode, limit), c.Writes <= limit, "%.2f", c.Writes)
		goal(fmt.Sprintf("%d concurrent %s: no ADD slower than 1 s", top, c.Mode), c.Latency.Max <= time.Second, "slowest %s", ms(c.Latency.Max))
	}
	s := r.Scale
	q := ratio(s.Ours.Last, s.Ours.First)
	goal(fmt.Sprintf("last ADDs filling %s <= 2x the first", s.Pool), q <= 2, "p50 %s vs %s = %.2fx", ms(s.Ours.Last), ms(s.Ours.First), q)
	// An uncontended ADD reads once and writes once; a full pool may add
	// one round trip, the count that shows it is full.
	goal("a full pool is reported in one round trip (beyond an ADD's own read and write)", s.FullRoundTrips <= 3,
		"%.0f round trips, %.0f writes", s.FullRoundTrips, s.FullWrites)
	qr := float64(s.Ours.PeakRSSKiB) / float64(max(1, s.HostLoc.PeakRSSKiB))
	goal(fmt.Sprintf("peak RSS filling %s <= 2x host-local's", s.Pool), qr <= 2, "%d KiB vs %d KiB = %.2fx", s.Ours.PeakRSSKiB, s.HostLoc.PeakRSSKiB, qr)
}

// Print writes the report as aligned tables, one per scenario.
func (r *Report) Print(w io.Writer) error {
	var tw *tabwriter.Writer
	section := func(title, header string) {
		if tw != nil {
			_ = tw.Flush()
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, title)
		tw = tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
		fmt.Fprintln(tw, header)
	}
	section("Whole-process latency, sequential (ADD then DEL per container)",
		"pool\top\tetcd p50 / p99\thost-local p50 / p99\tetcd/host-local p50\tpeak RSS etcd / host-local")
	for _, l := range r.Latency {
		for _, op := range []struct {
			name   string
			o, ref Stats
		}{{"ADD", l.Ours.Add, l.HostLoc.Add}, {"DEL", l.Ours.Del, l.HostLoc.Del}} {
			fmt.Fprintf(tw, "%s\t%s\t%s / %s\t%s / %s\t%.2fx\t%d / %d KiB\n", l.Pool, op.name, ms(op.o.P50), ms(op.o.P99),
				ms(op.ref.P50), ms(op.ref.P99), ratio(op.o.P50, op.ref.P50), l.PeakRSSKiB["etcd"], l.PeakRSSKiB["host-local"])
		}
	}
	section("Concurrent allocators on one empty /16 (etcd processes and goroutines: each allocator a node; one-node and host-local: all on one node)",
		"allocators\tkind\tADDs\tallocs/s\tp99\tslowest\tround trips/alloc\twrite txns/alloc")
	for _, c := range r.Contention {
		rt, wr := "-", "-"
		if c.Counted {
			rt, wr = fmt.Sprintf("%.2f", c.RoundTrips), fmt.Sprintf("%.2f", c.Writes)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\n", c.Allocators, c.Mode, c.Allocations, c.AllocsPerSecond(), ms(c.Latency.P99), ms(c.Latency.Max), rt, wr)
	}
	s := r.Scale
	section(fmt.Sprintf("Filling %s (%d addresses) completely", s.Pool, s.Addresses), "\tetcd\thost-local")
	fmt.Fprintf(tw, "first ADDs (empty pool), p50\t%s\t%s\n", ms(s.Ours.First), ms(s.HostLoc.First))
	fmt.Fprintf(tw, "last ADDs of a sequential fill, p50 (slowest)\t%s (%s)\t%s (%s)\n", ms(s.Ours.Last), ms(s.Ours.LastMax), ms(s.HostLoc.Last), ms(s.HostLoc.LastMax))
	fmt.Fprintf(tw, "  last / first\t%.2fx\t%.2fx\n", ratio(s.Ours.Last, s.Ours.First), ratio(s.HostLoc.Last, s.HostLoc.First))
	fmt.Fprintf(tw, "last ADDs after churn (free addresses scattered), p50 (slowest)\t%s (%s)\t%s (%s)\n", ms(s.Ours.Churned), ms(s.Ours.ChurnedMax), ms(s.HostLoc.Churned), ms(s.HostLoc.ChurnedMax))
	fmt.Fprintf(tw, "  churned last / first\t%.2fx\t%.2fx\n", ratio(s.Ours.Churned, s.Ours.First), ratio(s.HostLoc.Churned, s.HostLoc.First))
	fmt.Fprintf(tw, "ADD into the full pool\t%s (%.0f round trips, %.0f writes)\t%s\n", ms(s.Ours.Full), s.FullRoundTrips, s.FullWrites, ms(s.HostLoc.Full))
	fmt.Fprintf(tw, "peak RSS of a plugin process\t%d KiB\t%d KiB\n", s.Ours.PeakRSSKiB, s.HostLoc.PeakRSSKiB)
	section("Garbage collection", "\tetcd\thost-local")
	fmt.Fprintf(tw, "GC of %d stale allocations\t%s\t%s\n", r.GC.Stale, ms(r.GC.Ours), ms(r.GC.HostLoc))
	fmt.Fprintf(tw, "peak RSS of the GC process\t%d KiB\t%d KiB\n", r.GC.PeakRSSKiB["etcd"], r.GC.PeakRSSKiB["host-local"])
	section("Goals", "goal\tmeasured\tverdict")
	printGoals(tw, r.Goals)
	return tw.Flush()
}

// printGoals writes one row per goal, with its verdict, to a table whose
// header is already written.
func printGoals(w io.Writer, goals []Goal) {
	for _, g := range goals {
		verdict := "met"
		if !g.Met {
			verdict = "NOT MET"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", g.What, g.Measured, verdict)
	}
}
