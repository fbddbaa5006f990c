package reconciler

import (
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/store"
)

func TestDecide(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	grace := 15 * time.Minute
	pod := &store.PodRef{Namespace: "shop", Name: "web-0", UID: "u1"}
	alive := Observation{Pod: Present, PodUID: "u1", Node: Present}
	gone := Observation{Pod: Absent, Node: Present}
	replaced := Observation{Pod: Present, PodUID: "u2", Node: Present}
	terminal := Observation{Pod: Present, PodUID: "u1", PodTerminal: true, Node: Present}
	nodeGone := Observation{Pod: Present, PodUID: "u1", Node: Absent}
	live := func(o Observation) Observation { o.Live = true; return o }
	long := now.Add(-grace)
	short := now.Add(-grace + time.Second)
	for _, tc := range []struct {
		name   string
		pod    *store.PodRef
		obs    Observation
		since  time.Time
		want   Verdict
		reason Reason
		wantAt time.Time // Since in the decision, when leaked
	}{
		{"no pod at all (plain CNI)", nil, gone, long, Untouchable, "", time.Time{}},
		{"a lone name (podman)", &store.PodRef{Name: "web-0"}, gone, long, Untouchable, "", time.Time{}},
		{"no UID", &store.PodRef{Namespace: "shop", Name: "web-0"}, live(gone), long, Untouchable, "", time.Time{}},
		{"no UID, node gone", &store.PodRef{Namespace: "shop", Name: "web-0"}, live(nodeGone), long, Untouchable, "", time.Time{}},
		{"alive", pod, alive, time.Time{}, Keep, "", time.Time{}},
		{"alive again after a leak was timed", pod, live(alive), long, Keep, "", time.Time{}},
		{"pod read failed", pod, Observation{Pod: Unknown, Node: Present}, long, Undecided, "", long},
		{"node read failed", pod, Observation{Pod: Absent, Node: Unknown, Live: true}, long, Undecided, "", long},
		{"both failed, nothing timed", pod, Observation{Live: true}, time.Time{}, Undecided, "", time.Time{}},
		{"gone, first seen now", pod, gone, time.Time{}, Wait, PodGone, now},
		{"gone, a second short of grace", pod, live(gone), short, Wait, PodGone, short},
		{"gone for grace, cached", pod, gone, long, Confirm, PodGone, long},
		{"gone for grace, live", pod, live(gone), long, Release, PodGone, long},
		{"replaced, first seen", pod, replaced, time.Time{}, Wait, PodReplaced, now},
		{"replaced for grace, live", pod, live(replaced), long, Release, PodReplaced, long},
		{"terminal for grace, cached", pod, terminal, long, Confirm, PodTerminal, long},
		{"terminal for grace, live", pod, live(terminal), long, Release, PodTerminal, long},
		{"node gone, cached: re-read", pod, nodeGone, time.Time{}, Confirm, NodeGone, now},
		{"node gone, live: at once", pod, live(nodeGone), time.Time{}, Release, NodeGone, now},
		{"node gone, pod read failed: the node decides", pod, Observation{Pod: Unknown, Node: Absent, Live: true}, time.Time{}, Release, NodeGone, now},
		{"since in the future (clock step) counts from now", pod, live(gone), now.Add(time.Hour), Wait, PodGone, now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(store.Attachment{ContainerID: "c", IfName: "eth0", Node: "n1", Pod: tc.pod}, tc.obs, tc.since, now, grace)
			if d.Verdict != tc.want || d.Reason != tc.reason || !d.Since.Equal(tc.wantAt) {
				t.Errorf("Decide = %v %q since %v, want %v %q since %v", d.Verdict, d.Reason, d.Since, tc.want, tc.reason, tc.wantAt)
			}
		})
	}
}

// TestDecideDue checks when a leak becomes due: a pod leak one grace after
// it began, a missing node at once.
func TestDecideDue(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	att := store.Attachment{Pod: &store.PodRef{Namespace: "a", Name: "b", UID: "u"}}
	d := Decide(att, Observation{Pod: Absent, Node: Present}, time.Time{}, now, time.Minute)
	if !d.Due.Equal(now.Add(time.Minute)) {
		t.Errorf("pod leak due %v, want %v", d.Due, now.Add(time.Minute))
	}
	d = Decide(att, Observation{Pod: Present, PodUID: "u", Node: Absent}, time.Time{}, now, time.Minute)
	if !d.Due.Equal(now) {
		t.Errorf("node leak due %v, want now", d.Due)
	}
}
