package main

import (
	"strings"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// sessionAt is the plugin's allocator on node with a clock offset from
// now: a node that went silent long ago.
func (n *testNet) sessionAt(t *testing.T, node string, offset time.Duration) *ipam.Session {
	t.Helper()
	loaded, err := config.Load(n.conf, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ipam.Open(loaded, ipam.Options{Core: native.New(), Node: node, Now: func() time.Time { return time.Now().Add(offset) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestNodesAndReclaim: three nodes, one silent for two hours. nodes shows
// it first; reclaim reports it and releases nothing without --yes, and with
// --yes releases exactly its allocations and forgets it.
func TestNodesAndReclaim(t *testing.T) {
	n := newTestNet(t, "nodesnet", `[[{"subnet": "192.0.2.0/24"}], [{"subnet": "2001:db8:6::/64"}]]`)
	add(t, n.session(t, "node-a"), "a1")
	add(t, n.sessionAt(t, "node-b", -3*time.Minute), "b1")
	silent := n.sessionAt(t, "node-c", -2*time.Hour)
	add(t, silent, "c1")
	add(t, silent, "c2")

	var rows []nodeRow
	runCLI(t, nil, "nodes", "--config", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 3 || rows[0].Node != "node-c" || rows[0].Addresses != 4 || rows[0].By != "ADD" ||
		rows[1].Node != "node-b" || rows[2].Node != "node-a" || rows[2].Addresses != 2 {
		t.Fatalf("nodes --json: %+v; want node-c (4 addresses) first, then node-b, node-a", rows)
	}
	text := runCLI(t, nil, "nodes", "--config", n.confPath).ok(t).stdout
	if lines := strings.Split(strings.TrimSpace(text), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "NODE") ||
		!strings.HasPrefix(lines[1], "node-c") || !strings.Contains(lines[1], "2h0m") {
		t.Fatalf("nodes:\n%s", text)
	}

	var report reclaimReport
	runCLI(t, nil, "reclaim", "--config", n.confPath, "--silent-for", "1h", "--json").ok(t).decode(t, &report)
	if !report.DryRun || len(report.Nodes) != 1 || report.Nodes[0].Node != "node-c" || len(report.Nodes[0].Attachments) != 2 || report.Nodes[0].Released != 0 {
		t.Fatalf("reclaim without --yes: %+v", report)
	}
	var allocs []allocation
	runCLI(t, nil, "ls", "--config", n.confPath, "--json").ok(t).decode(t, &allocs)
	if len(allocs) != 8 {
		t.Fatalf("reclaim without --yes left %d allocations, want all 8", len(allocs))
	}

	runCLI(t, nil, "reclaim", "--config", n.confPath, "--silent-for", "1h", "--yes", "--json").ok(t).decode(t, &report)
	if report.DryRun || len(report.Nodes) != 1 || report.Nodes[0].Released != 2 || !report.Nodes[0].Forgotten {
		t.Fatalf("reclaim --yes: %+v", report)
	}
	runCLI(t, nil, "ls", "--config", n.confPath, "--json").ok(t).decode(t, &allocs)
	for _, a := range allocs {
		if a.Node == "node-c" {
			t.Fatalf("node-c's %s survived reclaim", a.Address)
		}
	}
	if len(allocs) != 4 {
		t.Fatalf("%d allocations after reclaim, want node-a's and node-b's 4", len(allocs))
	}
	runCLI(t, nil, "nodes", "--config", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 2 {
		t.Fatalf("nodes after reclaim: %+v; want node-c forgotten", rows)
	}
	// Nobody else is silent for 10 minutes: a second reclaim finds nothing.
	r := runCLI(t, nil, "reclaim", "--config", n.confPath, "--silent-for", "10m", "--yes").ok(t)
	if !strings.Contains(r.stderr, "no node silent for 10m0s") {
		t.Fatalf("second reclaim: %+v", r)
	}
}

func TestReclaimRefusesBadSilences(t *testing.T) {
	n := newTestNet(t, "silences", `[[{"subnet": "192.0.2.0/24"}]]`)
	for _, tc := range []struct {
		args []string
		what string
	}{
		{nil, "needs --silent-for"},
		{[]string{"--silent-for", "5m"}, "shorter than 10m0s"},
		{[]string{"--silent-for", "0s"}, "shorter than 10m0s"},
		{[]string{"--silent-for", "-1h"}, "shorter than 10m0s"},
		{[]string{"--silent-for", "a day"}, "silent-for"},
	} {
		args := append([]string{"reclaim", "--config", n.confPath}, tc.args...)
		runCLI(t, nil, args...).failed(t, exitUsage, tc.what)
	}
}
