package store

import (
	"net/netip"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// TestReleasePrecedence: which hold each address of a released
// attachment becomes, in planRelease's one place: a reservation's address
// goes back to it; a pod identity on a sticky network gets sticky holds;
// else, with a cooldown, the rest cool; else it is freed. A damaged
// record is released plainly.
func TestReleasePrecedence(t *testing.T) {
	reserved := &Hold{For: &Identity{Namespace: "db", Name: "router-0", IfName: "eth0"}, Kind: HoldReserved}
	web := &PodRef{Namespace: "shop", Name: "web-0"}
	att := func(pod *PodRef, res *Hold, damaged bool) StoredAttachment {
		return StoredAttachment{Damaged: damaged, Attachment: Attachment{ContainerID: "c", IfName: "eth0", Pod: pod, IPs: []AttachedAddr{
			{Address: netip.MustParsePrefix("192.0.2.2/24"), Reserved: res},
			{Address: netip.MustParsePrefix("2001:db8::2/64"), RangeSet: 1},
		}}}
	}
	for _, tc := range []struct {
		name             string
		att              StoredAttachment
		sticky, cooldown time.Duration
		want             [2]string // kind of each address's hold, "" when freed
	}{
		{"plain, no policy", att(nil, nil, false), 0, 0, [2]string{"", ""}},
		{"plain, cooldown", att(nil, nil, false), 0, time.Minute, [2]string{HoldCooling, HoldCooling}},
		{"pod, sticky and cooldown", att(web, nil, false), time.Hour, time.Minute, [2]string{HoldSticky, HoldSticky}},
		{"pod, cooldown only", att(web, nil, false), 0, time.Minute, [2]string{HoldCooling, HoldCooling}},
		{"no identity, sticky and cooldown", att(nil, nil, false), time.Hour, time.Minute, [2]string{HoldCooling, HoldCooling}},
		{"reserved, sticky and cooldown", att(web, reserved, false), time.Hour, time.Minute, [2]string{HoldReserved, HoldCooling}},
		{"reserved, sticky", att(web, reserved, false), time.Hour, 0, [2]string{HoldReserved, ""}},
		{"damaged, cooldown", att(nil, nil, true), 0, time.Minute, [2]string{"", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := planRelease(tc.att, &ReleasePolicy{Sticky: tc.sticky, Cooldown: tc.cooldown, Now: time.Now()}, time.Time{}, time.Time{})
			for i, ip := range tc.att.IPs {
				h, ok := plan.holds[ip.Address.Addr()]
				if got := h.Hold.Kind; got != tc.want[i] || ok != (tc.want[i] != "") {
					t.Errorf("%s: hold %q (planned %v), want %q", ip.Address, got, ok, tc.want[i])
				}
				if ok && h.Hold.Kind == HoldCooling && h.Hold.For != nil {
					t.Errorf("%s cools for %v, want for nobody", ip.Address, h.Hold.For)
				}
			}
			if plan.sticky && plan.cooling {
				t.Error("a plan needs one lease kind at most, so that a DEL grants at most one lease")
			}
		})
	}
}

// TestCountCooling: one request per segment gives the count of cooling
// addresses and, sorted by the marks' values, the earliest end, whatever
// the order of the addresses and of the nodes' leases.
func TestCountCooling(t *testing.T) {
	srv := etcdtest.Start(t)
	n, err := Open(srv.Client(t), "counted")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i, a := range []string{"192.0.2.2", "192.0.2.3", "192.0.2.9", "192.0.2.20"} {
		reserve(t, n, a, a+"/24")
		// Later addresses from nodes whose leases end earlier.
		node := []string{"node-a", "node-b", "node-c", "node-d"}[i]
		cooldown := time.Duration(40-10*i) * time.Minute
		if _, err := n.Release(repairCtx(t), a, "eth0", &ReleasePolicy{Cooldown: cooldown, Now: now, Node: node}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		from, to string
		count    int64
		minutes  int
	}{
		{"192.0.2.1", "192.0.2.254", 4, 10},
		{"192.0.2.1", "192.0.2.9", 3, 20},
		{"192.0.2.1", "192.0.2.2", 1, 40},
		{"192.0.2.21", "192.0.2.254", 0, 0},
	} {
		seg := core.Segment{From: netip.MustParseAddr(tc.from), To: netip.MustParseAddr(tc.to)}
		c, err := n.CountCooling(repairCtx(t), []core.Segment{seg})
		if err != nil {
			t.Fatal(err)
		}
		if c.Count != tc.count {
			t.Errorf("%s-%s: %d cooling, want %d", tc.from, tc.to, c.Count, tc.count)
		}
		// A lease of a whole number of seconds and its slack: the end
		// is the cooldown plus an eighth.
		if tc.count > 0 {
			want := now.Add(time.Duration(tc.minutes) * time.Minute * 9 / 8)
			if d := c.FirstFree.Sub(want); d < -time.Second || d > time.Second {
				t.Errorf("%s-%s: first free at %v, want about %v", tc.from, tc.to, c.FirstFree, want)
			}
		} else if !c.FirstFree.IsZero() {
			t.Errorf("%s-%s: first free %v with none cooling", tc.from, tc.to, c.FirstFree)
		}
	}
}
