package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// TestGCAndReleaseRideOutLeaderChanges: the operator's gc and release go
// through ipam's deadline and retry policy, as the plugin's own GC and DEL
// do, so a leader election under them is ridden out instead of failing
// the command. The leader is stopped right before each command, and
// listed first in etcdURL, so that each command's first requests meet a
// dead endpoint and members that are electing a new leader.
func TestGCAndReleaseRideOutLeaderChanges(t *testing.T) {
	cluster := etcdtest.StartCluster(t, 5)
	leader, err := cluster.Leader()
	if err != nil {
		t.Fatal(err)
	}
	endpoints := cluster.Endpoints()
	ordered := append([]string{endpoints[leader]}, slices.Delete(slices.Clone(endpoints), leader, leader+1)...)
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "leadernet", "ipam": {"type": "etcd",
		"etcdConfig": {"etcdURL": %q}, "ranges": [[{"subnet": "198.51.100.0/24"}]]}}`, strings.Join(ordered, ","))
	path := writeConfig(t, conf)
	s := openTestSession(t, []byte(conf), "node-a")
	other := openTestSession(t, []byte(conf), "node-b")
	var held []string
	for _, id := range []string{"keep", "stale1", "stale2"} {
		held = append(held, add(t, s, id)[0])
	}
	// node-b's, so that node-a's gc leaves them to release.
	for _, id := range []string{"byaddr", "bycontainer"} {
		held = append(held, add(t, other, id)[0])
	}

	cluster.Stop(leader)
	gc := runCLI(t, strings.NewReader("keep eth0\n"), "gc", "--config", path, "--node", "node-a", "--keep", "-").ok(t)
	if !strings.Contains(gc.stdout, "node node-a: released 2 of 2") {
		t.Fatalf("gc across a leader change:\n%s", gc.stdout)
	}

	second, err := cluster.Leader()
	if err != nil {
		t.Fatal(err)
	}
	cluster.Stop(second)
	runCLI(t, nil, "release", "--config", path, "--yes", strings.TrimSuffix(held[3], "/24")).ok(t)
	runCLI(t, nil, "release", "--config", path, "--yes", "--container", "bycontainer").ok(t)

	var rows []allocation
	runCLI(t, nil, "ls", "--config", path, "--json").ok(t).decode(t, &rows)
	if len(rows) != 1 || rows[0].ContainerID != "keep" || rows[0].Address+"/24" != held[0] {
		t.Fatalf("after gc and release across two leader changes: %+v, want only keep's %s", rows, held[0])
	}
}
