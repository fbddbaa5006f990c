package main

import (
	"strings"
	"testing"
)

// TestCoolingAddressesInTheCLI: on a network with a cooldown, usage
// counts a DELed container's address as used and cooling, ls shows it
// cooling until when, and release of the cooling address frees it at
// once (the operator's way to end a cooldown early).
func TestCoolingAddressesInTheCLI(t *testing.T) {
	// The cooldown rides in after the ranges of newTestNet's ipam.
	n := newTestNet(t, "coolcli", `[[{"subnet": "192.0.2.0/29"}]], "cooldown": "1h"`)
	s := n.session(t, "node-a")
	addr := add(t, s, "c1")[0]
	add(t, s, "c2")
	if err := s.Del(testCtx(t), "c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	var report usageReport
	runCLI(t, nil, "usage", "--config", n.confPath, "--json").ok(t).decode(t, &report)
	if r := report.Ranges[0]; r.Used != 2 || r.Cooling != 1 || r.Held != 0 || r.Free != r.Size-2 {
		t.Fatalf("usage after a DEL: %+v, want 2 used of which 1 cooling", r)
	}
	if out := runCLI(t, nil, "usage", "--config", n.confPath).ok(t).stdout; !strings.Contains(out, "COOLING") {
		t.Fatalf("usage shows no COOLING column:\n%s", out)
	}
	// 192.0.2.2 to .6: fill the rest; plan then predicts no ADD and says
	// why.
	for _, id := range []string{"c3", "c4", "c5"} {
		add(t, s, id)
	}
	var plan planReport
	runCLI(t, nil, "plan", "--config", n.confPath, "--json").ok(t).decode(t, &plan)
	if len(plan.Adds) != 0 || plan.Failure == nil || !strings.Contains(plan.Failure.Message, "1 address is cooling down") || plan.Ranges[0].Cooling != 1 {
		t.Fatalf("plan of a pool whose only address left cools: %+v", plan)
	}
	for _, id := range []string{"c3", "c4", "c5"} {
		if err := s.Del(testCtx(t), id, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	ip := strings.TrimSuffix(addr, "/29")
	if out := runCLI(t, nil, "ls", "--config", n.confPath).ok(t).stdout; !strings.Contains(out, "cooling until ") || !strings.Contains(out, ip) {
		t.Fatalf("ls does not show %s cooling:\n%s", ip, out)
	}
	out := runCLI(t, nil, "release", "--config", n.confPath, "--yes", ip).ok(t).stdout
	if !strings.Contains(out, "cooling down after its release until") {
		t.Fatalf("release of a cooling address does not say it cools:\n%s", out)
	}
	runCLI(t, nil, "usage", "--config", n.confPath, "--json").ok(t).decode(t, &report)
	if r := report.Ranges[0]; r.Used != 4 || r.Cooling != 3 {
		t.Fatalf("usage after releasing the cooling address: %+v, want 4 used (c2 and 3 cooling)", r)
	}
}
