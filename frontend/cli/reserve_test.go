package main

import (
	"strings"
	"testing"

	"github.com/etcd-cni/etcd-ipam/store"
)

// TestReserveLsAndReleasePod: reservations through the CLI, shown by ls
// with their pod and note, taken by the pod's ADD, refused when taken (the
// holder named), and ended by release --pod together with the pod's
// attachments.
func TestReserveLsAndReleasePod(t *testing.T) {
	n := newTestNet(t, "resnet", `[[{"subnet": "192.0.2.0/29"}], [{"subnet": "2001:db8:7::/125"}]]`)
	s := n.session(t, "node-a")

	var report reserveReport
	runCLI(t, nil, "reserve", "--config", n.confPath, "192.0.2.5", "2001:db8:7::5", "--for", "shop/db-0", "--note", "primary", "--json").ok(t).decode(t, &report)
	if report.For != "shop/db-0/eth0" || len(report.Addresses) != 2 || report.Addresses[1].RangeSet != 1 {
		t.Fatalf("reserve --json: %+v", report)
	}
	runCLI(t, nil, "reserve", "--config", n.confPath, "192.0.2.6", "--note", "router").ok(t)

	var usage usageReport
	runCLI(t, nil, "usage", "--config", n.confPath, "--json").ok(t).decode(t, &usage)
	if len(usage.Ranges) != 2 || usage.Ranges[0].Held != 2 || usage.Ranges[0].Used != 2 || usage.Ranges[1].Held != 1 {
		t.Fatalf("usage after three reservations: %+v", usage.Ranges)
	}
	var rows []allocation
	runCLI(t, nil, "ls", "--config", n.confPath, "--pod", "shop/db-0", "--json").ok(t).decode(t, &rows)
	if len(rows) != 2 || rows[0].Pod != "shop/db-0" || rows[0].Hold == nil || rows[0].Hold.Kind != store.HoldReserved || rows[0].Hold.Note != "primary" || rows[0].ContainerID != "" {
		t.Fatalf("ls --pod shop/db-0: %+v", rows)
	}
	text := runCLI(t, nil, "ls", "--config", n.confPath).ok(t).stdout
	if !strings.Contains(text, "POD") || !strings.Contains(text, "reserved: router") || !strings.Contains(text, "reserved: primary") {
		t.Fatalf("ls:\n%s", text)
	}

	// The pod's ADD takes its reservation.
	ips, err := s.AddPod(testCtx(t), "db-c1", "eth0", nil, &store.PodRef{Namespace: "shop", Name: "db-0"})
	if err != nil || len(ips) != 2 || ips[0].Address.String() != "192.0.2.5/29" || ips[1].Address.String() != "2001:db8:7::5/125" {
		t.Fatalf("db-0's ADD: %v, %v", ips, err)
	}
	runCLI(t, nil, "usage", "--config", n.confPath, "--json").ok(t).decode(t, &usage)
	if usage.Ranges[0].Held != 1 || usage.Ranges[0].Used != 2 {
		t.Fatalf("usage with db-0 attached: %+v; its reservation is attached, not held", usage.Ranges)
	}
	// Reserving what the pod has is refused, naming it.
	runCLI(t, nil, "reserve", "--config", n.confPath, "192.0.2.5").failed(t, 1, "container db-c1")
	// Bad input.
	runCLI(t, nil, "reserve", "--config", n.confPath, "192.0.2.4", "--for", "db-0").failed(t, exitUsage, "NAMESPACE/NAME")
	runCLI(t, nil, "reserve", "--config", n.confPath, "192.0.2.3", "192.0.2.4", "--for", "shop/web-0").failed(t, 1, "same range set")
	runCLI(t, nil, "reserve", "--config", n.confPath, "198.51.100.7").failed(t, 1, "no range")
	runCLI(t, nil, "reserve", "--config", n.confPath).failed(t, exitUsage, "addresses")
	runCLI(t, nil, "ls", "--config", n.confPath, "--pod", "shop").failed(t, exitUsage, "NAMESPACE/NAME")
	// Only what Kubernetes could name is an identity (NOTES 25): what no
	// pod can be is a usage error, never a key of its own.
	for _, bad := range []struct{ pod, mentions string }{
		{"shop/x/..", "interface name"},
		{"../..", "pod namespace"},
		{"sh op/x y", "pod namespace"},
		{"shop/x y", "pod name"},
		{"Shop/db-0", "pod namespace"},
		{"shop/db-0/sixteen-bytes-ab", "interface name"},
	} {
		runCLI(t, nil, "reserve", "--config", n.confPath, "192.0.2.4", "--for", bad.pod).failed(t, exitUsage, bad.mentions)
		runCLI(t, nil, "ls", "--config", n.confPath, "--pod", bad.pod).failed(t, exitUsage, "--pod")
		runCLI(t, nil, "release", "--config", n.confPath, "--yes", "--pod", bad.pod).failed(t, exitUsage, "--pod")
	}

	r := runCLI(t, nil, "release", "--config", n.confPath, "--yes", "--pod", "shop/db-0").ok(t)
	if !strings.Contains(r.stdout, "released 1 attachment and 2 held addresses of pod shop/db-0") {
		t.Fatalf("release --pod: %q", r.stdout)
	}
	runCLI(t, nil, "ls", "--config", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 1 || rows[0].Address != "192.0.2.6" {
		t.Fatalf("after release --pod: %+v; want only the reservation for nobody", rows)
	}
	// A reservation for nobody is released by address, and is then free.
	runCLI(t, nil, "release", "--config", n.confPath, "--yes", "192.0.2.6").ok(t)
	runCLI(t, nil, "ls", "--config", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 0 {
		t.Fatalf("after releasing everything: %+v", rows)
	}
}

// TestReserveIsSafeToRepeat: the same reserve twice (an operator's
// script, a retry) succeeds the second time and says that it already
// holds, with the first one's note.
func TestReserveIsSafeToRepeat(t *testing.T) {
	n := newTestNet(t, "resagain", `[[{"subnet": "203.0.113.0/28"}]]`)
	args := []string{"reserve", "--config", n.confPath, "--for", "db/router-0", "203.0.113.7", "--note", "static"}
	if out := runCLI(t, nil, args...).ok(t).stdout; !strings.Contains(out, "reserved 203.0.113.7") {
		t.Fatalf("first reserve: %q", out)
	}
	if out := runCLI(t, nil, args...).ok(t).stdout; !strings.Contains(out, "203.0.113.7 in network resagain already reserved for pod interface db/router-0/eth0 since") {
		t.Fatalf("second reserve: %q, want it to say it already holds", out)
	}
	var report reserveReport
	runCLI(t, nil, append(args, "--json")...).ok(t).decode(t, &report)
	if !report.Already || report.Since == nil || report.Note != "static" || len(report.Addresses) != 1 {
		t.Fatalf("reserve --json again: %+v", report)
	}
}
