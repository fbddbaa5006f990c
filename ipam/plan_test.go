package ipam

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// The spec's first example: two range sets, the first of two ranges with a
// gateway outside its range.
var specExample = [][]core.RangeSpec{
	{{Subnet: "10.10.0.0/16", RangeStart: "10.10.1.20", RangeEnd: "10.10.3.50", Gateway: "10.10.0.254"}, {Subnet: "172.16.5.0/24"}},
	{{Subnet: "3ffe:ffff:0:01ff::/64", RangeStart: "3ffe:ffff:0:01ff::0010", RangeEnd: "3ffe:ffff:0:01ff::0020"}},
}

// planSession is this package's test session on the node that plans.
func planSession(t *testing.T, srv *etcdtest.Server, name string, sets [][]core.RangeSpec) *Session {
	t.Helper()
	return openSession(t, testNetwork(srv, name, sets...), "plan-node")
}

func ipStrings(ips []store.AttachedAddr) string { return fmt.Sprint(addrs(ips)) }

// checkPlan plans n ADDs, runs them, and fails on the first ADD whose
// result differs from the plan, or whose failure the plan did not predict.
func checkPlan(t *testing.T, s *Session, prefix string, n int) Plan {
	t.Helper()
	c := ctx(t)
	plan, err := s.Plan(c, n)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	for k := 0; k < n; k++ {
		ips, err := s.Add(c, fmt.Sprintf("%s-%d", prefix, k), "eth0", nil)
		if k < len(plan.Adds) {
			if err != nil {
				t.Fatalf("ADD %d failed (%v); the plan said %s", k, err, ipStrings(plan.Adds[k].IPs))
			}
			if got, want := ipStrings(ips), ipStrings(plan.Adds[k].IPs); got != want {
				t.Fatalf("ADD %d got %s, the plan said %s", k, got, want)
			}
			if !slices.Equal(ips, plan.Adds[k].IPs) {
				t.Fatalf("ADD %d got %+v, the plan said %+v (gateway or range set differ)", k, ips, plan.Adds[k].IPs)
			}
			continue
		}
		if plan.Failure == nil || plan.Failure.Add != len(plan.Adds) {
			t.Fatalf("plan of %d ADDs has %d and failure %+v", n, len(plan.Adds), plan.Failure)
		}
		if cniCode(err) != CodeExhausted {
			t.Fatalf("ADD %d: got %v (%v), the plan said range set %d is exhausted", k, ips, err, plan.Failure.RangeSet)
		}
		break
	}
	return plan
}

func TestPlanMatchesAddsOnSpecExample(t *testing.T) {
	srv := etcdtest.Start(t)
	s := planSession(t, srv, "spec", specExample)
	plan := checkPlan(t, s, "a", 5)
	// The spec's rangeStart and rangeEnd are honoured from the first ADD.
	if got := plan.Adds[0].IPs[0].Address.String(); got != "10.10.1.20/16" {
		t.Errorf("first IPv4 address %s, want 10.10.1.20/16", got)
	}
	if got := plan.Adds[0].IPs[1].Address.String(); got != "3ffe:ffff:0:1ff::10/64" {
		t.Errorf("first IPv6 address %s, want 3ffe:ffff:0:1ff::10/64", got)
	}
	if plan.Usage[0].Capacity != 543 || plan.Usage[1].Capacity != 253 || plan.Usage[2].Capacity != 17 {
		t.Errorf("capacities %+v, want 543, 253 and 17", plan.Usage)
	}
	// The IPv6 set has 17 addresses: 5 taken, so 12 more succeed and the
	// 13th fails on range set 1.
	plan = checkPlan(t, s, "b", 14)
	if len(plan.Adds) != 12 || plan.Failure == nil || plan.Failure.RangeSet != 1 {
		t.Fatalf("plan after 5 ADDs: %d ADDs, failure %+v; want 12 and range set 1", len(plan.Adds), plan.Failure)
	}
	if plan.Usage[0].Used != 5 || plan.Usage[2].Used != 5 {
		t.Errorf("usage before the second plan %+v, want 5 used in ranges 0 and 2", plan.Usage)
	}
}

func TestPlanMatchesAddsOnDeprecatedSingleRange(t *testing.T) {
	srv := etcdtest.Start(t)
	s := planSession(t, srv, "spec-v6", [][]core.RangeSpec{{{Subnet: "3ffe:ffff:0:01ff::/64", RangeStart: "3ffe:ffff:0:01ff::0010", RangeEnd: "3ffe:ffff:0:01ff::0020"}}})
	checkPlan(t, s, "a", 20)
}

// TestPlanMatchesAddsAfterChurn releases and allocates at random, so that
// the round-robin position wraps over holes and across ranges and a gateway
// inside a range must be skipped, and after every round checks that a plan
// is what the ADDs then return.
func TestPlanMatchesAddsAfterChurn(t *testing.T) {
	srv := etcdtest.Start(t)
	s := planSession(t, srv, "churn", [][]core.RangeSpec{
		{{Subnet: "198.51.100.0/28", Gateway: "198.51.100.7"}, {Subnet: "203.0.113.0/29"}}, // 13 + 5
		{{Subnet: "2001:db8:9::/125"}}, // 6
	})
	rng := rand.New(rand.NewPCG(4, 2))
	c := ctx(t)
	live := map[string]bool{}
	for round := 0; round < 12; round++ {
		for op := 0; op < 8; op++ {
			id := fmt.Sprintf("c%d", rng.IntN(10))
			var err error
			if live[id] && rng.IntN(2) == 0 {
				err = s.Del(c, id, "eth0")
				delete(live, id)
			} else if _, err = s.Add(c, id, "eth0", nil); err == nil {
				live[id] = true
			}
			if err != nil && cniCode(err) != CodeExhausted {
				t.Fatalf("churn: %v", err)
			}
		}
		prefix := fmt.Sprintf("r%d", round)
		n := 1 + rng.IntN(4)
		plan := checkPlan(t, s, prefix, n)
		for k := range plan.Adds {
			if err := s.Del(c, fmt.Sprintf("%s-%d", prefix, k), "eth0"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestSimulateOfflineIsAnEmptyNetwork(t *testing.T) {
	srv := etcdtest.Start(t)
	s := planSession(t, srv, "offline", specExample)
	offline := Simulate(native.New(), s.RangeSets(), store.PlanState{}, 3)
	live := checkPlan(t, s, "a", 3)
	for k := range live.Adds {
		if ipStrings(offline.Adds[k].IPs) != ipStrings(live.Adds[k].IPs) {
			t.Errorf("offline ADD %d %s, live %s", k, ipStrings(offline.Adds[k].IPs), ipStrings(live.Adds[k].IPs))
		}
	}
}

// TestPlanNotesOtherNodesAllocating checks that a plan says when another
// node moved a position just now, the case in which ADDs spread out.
func TestPlanNotesOtherNodesAllocating(t *testing.T) {
	srv := etcdtest.Start(t)
	mine := planSession(t, srv, "racing", specExample)
	conf := &config.Network{CNIVersion: "1.1.0", Name: "racing", RangeSets: specExample,
		Etcd: config.Etcd{Endpoints: []string{srv.Endpoint()}, Timeout: 10 * time.Second}}
	other, err := Open(conf, Options{Core: native.New(), Node: "other-node"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Add(ctx(t), "theirs", "eth0", nil); err != nil {
		t.Fatal(err)
	}
	plan, err := mine.Plan(ctx(t), 1)
	if err != nil || !slices.Equal(plan.Racing, []int{0, 1}) {
		t.Fatalf("plan right after another node's ADD: racing %v, %v; want [0 1]", plan.Racing, err)
	}
	if plan, err := other.Plan(ctx(t), 1); err != nil || len(plan.Racing) != 0 {
		t.Fatalf("plan of the node that allocated: racing %v, %v; want none", plan.Racing, err)
	}
}
