package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/etcd-cni/etcd-ipam/hosts/wasm"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// A /29 whose .3 and .5 are excluded: .2, .4 and .6 can be handed out.
const holesRanges = `[[{"subnet": "192.0.2.0/29", "exclude": ["192.0.2.5", "192.0.2.3/32"]}]]`

// TestPlanAndUsageWithExclusions: plan predicts exactly the plugin's
// sequence over a range with exclusions, then its exhaustion, and usage
// shows the excluded addresses apart from size, used and free.
func TestPlanAndUsageWithExclusions(t *testing.T) {
	n := newTestNet(t, "holes", holesRanges)
	s := n.session(t, "node-a")

	var usage usageReport
	runCLI(t, nil, "usage", "--config", n.confPath, "--json").ok(t).decode(t, &usage)
	if r := usage.Ranges; len(r) != 1 || r[0].Size != 3 || r[0].Used != 0 || r[0].Free != 3 || r[0].Excluded != 2 {
		t.Fatalf("usage --json of the empty range: %+v, want size 3, free 3, excluded 2", r)
	}

	plan := planThenAdd(t, n, s, "c", 4)
	if want := [][]string{{"192.0.2.2/29"}, {"192.0.2.4/29"}, {"192.0.2.6/29"}}; fmt.Sprint(plan.Adds) != fmt.Sprint(want) {
		t.Fatalf("plan %v, want %v", plan.Adds, want)
	}
	if plan.Failure == nil || plan.Failure.RangeSet != 0 || plan.Ranges[0].FreeAfter != 0 || plan.Ranges[0].Excluded != 2 {
		t.Fatalf("plan failure %+v, ranges %+v: want range set 0 exhausted after 3 ADDs, 2 excluded", plan.Failure, plan.Ranges)
	}
	if _, err := s.Add(testCtx(t), "late", "eth0", nil); err == nil || ipam.AsCNIError(err).Code != ipam.CodeExhausted {
		t.Fatalf("ADD after the plan's last: %v, want code %d", err, ipam.CodeExhausted)
	}

	runCLI(t, nil, "usage", "--config", n.confPath, "--json").ok(t).decode(t, &usage)
	if r := usage.Ranges; len(r) != 1 || r[0].Size != 3 || r[0].Used != 3 || r[0].Free != 0 || r[0].Excluded != 2 || r[0].Percent != 100 {
		t.Fatalf("usage --json of the full range: %+v, want size 3, used 3, excluded 2, 100%%", r)
	}
	text := runCLI(t, nil, "usage", "--config", n.confPath).ok(t).stdout
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[1], "FREE  EXCLUDED") ||
		!slices.Equal(strings.Fields(lines[2])[len(strings.Fields(lines[2]))-5:], []string{"3", "0", "3", "0", "2"}) {
		t.Fatalf("usage chart lacks the EXCLUDED column:\n%s", text)
	}

	// The offline plan of the same configuration, on the wasm core too.
	t.Setenv(wasm.CacheDirEnv, t.TempDir())
	for _, c := range []string{"native", "wasm"} {
		var off planReport
		runCLI(t, nil, "plan", "--config", n.confPath, "--offline", "-n", "4", "--core", c, "--json").ok(t).decode(t, &off)
		if fmt.Sprint(off.Adds) != fmt.Sprint(plan.Adds) || off.Failure == nil || off.Ranges[0].Size != 3 || off.Ranges[0].Excluded != 2 {
			t.Errorf("offline plan on %s: %+v", c, off)
		}
	}
}

func TestValidateReportsBadExclusions(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd",
		"etcdConfig": {"etcdURL": "http://127.0.0.1:2379"},
		"ranges": [
			[{"subnet": "10.10.1.0/24", "exclude": ["10.10.1.30", "10.10.2.0/28"]}],
			[{"subnet": "10.10.3.0/24", "exclude": ["10.10.3.x"]}],
			[{"subnet": "10.10.4.0/30", "exclude": ["10.10.4.2"]}]
		]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var report validateReport
	r := runCLI(t, nil, "validate", "--config", bad, "--json")
	r.decode(t, &report)
	var got []string
	for _, p := range report.Problems {
		got = append(got, p.Message)
	}
	want := []string{
		`range set 0, range 0: exclude entry "10.10.2.0/28" is not inside subnet 10.10.1.0/24; list only addresses and CIDRs of this range's subnet, or move the entry to the range whose subnet holds it`,
		`range set 1, range 0: exclude entry "10.10.3.x" is not an address or CIDR; write an address such as "203.0.113.30" or a CIDR such as "203.0.113.16/28"`,
		`range set 2, range 0: every address of range 10.10.4.1-10.10.4.2 is excluded or the gateway, so it has none to hand out; remove entries from "exclude" or widen the range`,
	}
	if r.code != 1 || report.Valid || !slices.Equal(got, want) {
		t.Fatalf("validate --json: status %d, problems\n%s\nwant\n%s", r.code, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Setenv(wasm.CacheDirEnv, t.TempDir())
	if onWasm := runCLI(t, nil, "validate", "--config", bad, "--json", "--core", "wasm"); onWasm.stdout != r.stdout || onWasm.code != 1 {
		t.Fatalf("validate --core wasm: status %d\n%s\nnative:\n%s", onWasm.code, onWasm.stdout, r.stdout)
	}

	n := newTestNet(t, "holes", holesRanges)
	if out := runCLI(t, nil, "validate", "--config", n.confPath).ok(t).stdout; !strings.Contains(out, "valid") {
		t.Fatalf("validate of a good configuration with exclusions: %q", out)
	}
}
