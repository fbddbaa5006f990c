package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/hosts/wasm"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/ipam"
	"github.com/etcd-cni/etcd-ipam/store"
)

// The spec's first example's range sets: two ranges (one with its gateway
// outside the range) and a small IPv6 range of 17 addresses.
const specRanges = `[
	[{"subnet": "10.10.0.0/16", "rangeStart": "10.10.1.20", "rangeEnd": "10.10.3.50", "gateway": "10.10.0.254"}, {"subnet": "172.16.5.0/24"}],
	[{"subnet": "3ffe:ffff:0:01ff::/64", "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020"}]
]`

// testNet is a network on an embedded etcd with its configuration on disk.
type testNet struct {
	srv      *etcdtest.Server
	conf     []byte // the plugin configuration
	confPath string // the same network as a .conflist behind bridge
}

func newTestNet(t *testing.T, name, ranges string) *testNet {
	t.Helper()
	srv := etcdtest.Start(t)
	ipamConf := fmt.Sprintf(`{"type": "etcd", "etcdConfig": {"etcdURL": %q}, "ranges": %s}`, srv.Endpoint(), ranges)
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "type": "bridge", "ipam": %s}`, name, ipamConf)
	list := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
		{"type": "bridge", "bridge": "cni0", "ipam": %s},
		{"type": "portmap", "capabilities": {"portMappings": true}}
	]}`, name, ipamConf)
	path := filepath.Join(t.TempDir(), "10-"+name+".conflist")
	if err := os.WriteFile(path, []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testNet{srv: srv, conf: []byte(conf), confPath: path}
}

// session is the plugin's allocator on node, for the ADDs and DELs the
// commands are checked against.
func (n *testNet) session(t *testing.T, node string) *ipam.Session {
	t.Helper()
	return openTestSession(t, n.conf, node)
}

// openTestSession loads a plugin configuration and opens the plugin's
// allocator for node, closed when the test ends.
func openTestSession(tb testing.TB, conf []byte, node string) *ipam.Session {
	tb.Helper()
	loaded, err := config.Load(conf, "")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ipam.Open(loaded, ipam.Options{Core: native.New(), Node: node})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// writeConfig writes a configuration for --config, in a temporary file.
func writeConfig(tb testing.TB, conf string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "net.json")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func add(t *testing.T, s *ipam.Session, id string, requested ...netip.Addr) []string {
	t.Helper()
	ips, err := s.Add(testCtx(t), id, "eth0", requested)
	if err != nil {
		t.Fatalf("ADD %s: %v", id, err)
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.Address.String()
	}
	return out
}

// result is one run of etcd-ipam.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs etcd-ipam in-process with stdin.
func runCLI(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	var stdout, stderr strings.Builder
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code := runWithInput(testCtx(t), append([]string{"etcd-ipam"}, args...), stdin, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// ok fails unless r succeeded.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit status %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	return r
}

func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("output is not the documented JSON: %v\n%s", err, r.stdout)
	}
}

// failed checks the exit status and that stderr is one line naming what.
func (r result) failed(t *testing.T, code int, what string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	last := r.stderr[strings.LastIndex(strings.TrimSuffix(r.stderr, "\n"), "\n")+1:]
	if !strings.HasPrefix(last, "etcd-ipam: ") || !strings.Contains(last, what) {
		t.Fatalf("stderr %q: want a last line \"etcd-ipam: ...\" that mentions %q", r.stderr, what)
	}
}

// planThenAdd plans n ADDs with the CLI, makes them with the plugin's
// allocator on the plan's node, and fails on the first difference.
func planThenAdd(t *testing.T, n *testNet, s *ipam.Session, prefix string, count int) planReport {
	t.Helper()
	var plan planReport
	runCLI(t, nil, "plan", "--config", n.confPath, "--node", "node-a", "-n", fmt.Sprint(count), "--json").ok(t).decode(t, &plan)
	for k := 0; k < count; k++ {
		ips, err := s.Add(testCtx(t), fmt.Sprintf("%s-%d", prefix, k), "eth0", nil)
		if k == len(plan.Adds) {
			if err == nil || plan.Failure == nil {
				t.Fatalf("ADD %d: got %v, %v; the plan said %+v", k+1, ips, err, plan.Failure)
			}
			return plan
		}
		if err != nil {
			t.Fatalf("ADD %d failed (%v); the plan said %v", k+1, err, plan.Adds[k])
		}
		var got []string
		for _, ip := range ips {
			got = append(got, ip.Address.String())
		}
		if !slices.Equal(got, plan.Adds[k]) {
			t.Fatalf("ADD %d got %v; the plan said %v", k+1, got, plan.Adds[k])
		}
	}
	return plan
}

func TestPlanAgreesWithThePlugin(t *testing.T) {
	n := newTestNet(t, "specnet", specRanges)
	s := n.session(t, "node-a")

	plan := planThenAdd(t, n, s, "a", 4)
	if want := []string{"10.10.1.20/16", "3ffe:ffff:0:1ff::10/64"}; !slices.Equal(plan.Adds[0], want) {
		t.Errorf("first planned ADD %v, want %v", plan.Adds[0], want)
	}
	if got := plan.Ranges[2]; got.Size != 17 || got.Used != 0 || got.FreeAfter != 13 {
		t.Errorf("IPv6 range before the ADDs: %+v, want size 17, used 0, 13 free after", got)
	}

	// Random churn: holes, a wrap of the round robin, then exhaustion of
	// the IPv6 set, which the plan must name.
	rng := rand.New(rand.NewPCG(9, 9))
	live := map[string]bool{}
	for round := 0; round < 6; round++ {
		for op := 0; op < 6; op++ {
			id := fmt.Sprintf("c%d", rng.IntN(8))
			if live[id] {
				if err := s.Del(testCtx(t), id, "eth0"); err != nil {
					t.Fatal(err)
				}
				delete(live, id)
			} else {
				add(t, s, id)
				live[id] = true
			}
		}
		planThenAdd(t, n, s, fmt.Sprintf("r%d", round), 1+rng.IntN(3))
	}
	plan = planThenAdd(t, n, s, "full", 20)
	if plan.Failure == nil || plan.Failure.RangeSet != 1 {
		t.Fatalf("plan of 20 more ADDs: failure %+v, want range set 1 exhausted", plan.Failure)
	}

	text := runCLI(t, nil, "plan", "--config", n.confPath, "-n", "2").ok(t).stdout
	for _, want := range []string{"ADD 1 and later would fail: range set 1 (3ffe:ffff:0:1ff::10-3ffe:ffff:0:1ff::20) has no free address", "FREE AFTER"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan output lacks %q:\n%s", want, text)
		}
	}
}

func TestPlanOfflineNeedsNoEtcd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "net.json")
	conf := `{"cniVersion": "1.0.0", "name": "off", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://127.0.0.1:1"},
		"ranges": [[{"subnet": "192.0.2.0/24", "gateway": "192.0.2.3"}]]}}`
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var plan planReport
	runCLI(t, nil, "plan", "--config", path, "--offline", "-n", "3", "--json").ok(t).decode(t, &plan)
	want := [][]string{{"192.0.2.1/24"}, {"192.0.2.2/24"}, {"192.0.2.4/24"}} // the gateway is skipped
	if !plan.Offline || fmt.Sprint(plan.Adds) != fmt.Sprint(want) || plan.Ranges[0].Size != 253 {
		t.Fatalf("offline plan %+v, want adds %v and size 253", plan, want)
	}
	// The same through stdin and the configuration read by a runtime.
	text := runCLI(t, strings.NewReader(conf), "plan", "--config", "-", "--offline").ok(t).stdout
	if !strings.Contains(text, "192.0.2.1/24") || !strings.Contains(text, "empty pool") {
		t.Fatalf("offline plan from stdin:\n%s", text)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd",
		"ranges": [[{"subnet": "192.0.2.0/24"}, {"subnet": "198.51.100.0/33"}], [{"subnet": "203.0.113.0/24", "rangeStart": "192.0.2.9"}]]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, "validate", "--config", bad)
	r.failed(t, 1, "3 problems")
	for _, want := range []string{`no "etcdConfig"`, "range set 0, range 1: subnet", "range set 1, range 0: rangeStart 192.0.2.9"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("validate output lacks %q:\n%s", want, r.stdout)
		}
	}
	var report validateReport
	r = runCLI(t, nil, "validate", "--config", bad, "--json")
	r.decode(t, &report)
	if r.code != 1 || report.Valid || len(report.Problems) != 3 || report.Problems[2].RangeSet == nil || *report.Problems[2].RangeSet != 1 || *report.Problems[2].Range != 0 {
		t.Fatalf("validate --json: status %d, %+v", r.code, report)
	}

	// The WebAssembly core finds the same problems.
	t.Setenv(wasm.CacheDirEnv, t.TempDir())
	if onWasm := runCLI(t, nil, "validate", "--config", bad, "--json", "--core", "wasm"); onWasm.stdout != r.stdout || onWasm.code != 1 {
		t.Fatalf("validate --core wasm: status %d\n%s\nnative:\n%s", onWasm.code, onWasm.stdout, r.stdout)
	}
	runCLI(t, nil, "validate", "--config", bad, "--core", "gpu").failed(t, 2, "gpu")

	// --endpoints supplies the missing etcdConfig; the ranges stay wrong.
	r = runCLI(t, nil, "validate", "--config", bad, "--endpoints", "http://127.0.0.1:2379")
	r.failed(t, 1, "2 problems")

	n := newTestNet(t, "goodnet", specRanges)
	if out := runCLI(t, nil, "validate", "--config", n.confPath).ok(t).stdout; !strings.Contains(out, "network goodnet") || !strings.Contains(out, "valid") {
		t.Fatalf("validate of a good .conflist: %q", out)
	}
}

func TestLsAndUsage(t *testing.T) {
	n := newTestNet(t, "lsnet", `[[{"subnet": "192.0.2.0/29"}], [{"subnet": "2001:db8:5::/125"}]]`)
	a, b := n.session(t, "node-a"), n.session(t, "node-b")
	add(t, a, "c1")
	add(t, a, "c2")
	add(t, b, "c3")

	var rows []allocation
	runCLI(t, nil, "ls", "--config", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 6 || rows[0].Address != "192.0.2.2" || rows[0].ContainerID != "c1" || rows[0].IfName != "eth0" ||
		rows[0].Node != "node-a" || rows[0].Created.IsZero() || rows[5].Address != "2001:db8:5::4" || rows[5].RangeSet != 1 {
		t.Fatalf("ls --json: %+v", rows)
	}
	runCLI(t, nil, "ls", "--config", n.confPath, "--node", "node-b", "--json").ok(t).decode(t, &rows)
	if len(rows) != 2 || rows[0].ContainerID != "c3" || rows[1].ContainerID != "c3" {
		t.Fatalf("ls --node node-b: %+v", rows)
	}
	text := runCLI(t, nil, "ls", "--config", n.confPath, "--container", "c2").ok(t).stdout
	if lines := strings.Split(strings.TrimSpace(text), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "ADDRESS") ||
		!strings.Contains(lines[1], "192.0.2.3") || !strings.Contains(lines[1], "node-a") || !strings.Contains(lines[2], "2001:db8:5::3") {
		t.Fatalf("ls --container c2:\n%s", text)
	}

	var usage usageReport
	runCLI(t, nil, "usage", "--config", n.confPath, "--json").ok(t).decode(t, &usage)
	if len(usage.Ranges) != 2 || usage.Ranges[0].Size != 5 || usage.Ranges[0].Used != 3 || usage.Ranges[0].Free != 2 || usage.Ranges[0].Percent != 60 ||
		usage.Ranges[1].Size != 6 || usage.Ranges[1].Used != 3 {
		t.Fatalf("usage --json: %+v", usage)
	}
	text = runCLI(t, nil, "usage", "--config", n.confPath).ok(t).stdout
	if !strings.Contains(text, "[##################............]  60.0%") || !strings.Contains(text, "192.0.2.1-192.0.2.6") {
		t.Fatalf("usage chart:\n%s", text)
	}
}

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		used, size uint64
		want       int
	}{{0, 10, 0}, {1, 1 << 40, 1}, {5, 10, 15}, {999, 1000, 29}, {10, 10, 30}} {
		percent := float64(tc.used) / float64(tc.size) * 100
		if got := strings.Count(bar(tc.used, tc.size, percent), "#"); got != tc.want {
			t.Errorf("bar(%d of %d) has %d #, want %d", tc.used, tc.size, got, tc.want)
		}
	}
}

func TestReleaseOneAddressOfDualStack(t *testing.T) {
	n := newTestNet(t, "relnet", `[[{"subnet": "192.0.2.0/29"}], [{"subnet": "2001:db8:5::/125"}]]`)
	s := n.session(t, "node-a")
	add(t, s, "c1")

	// Not confirmed: nothing happens.
	r := runCLI(t, strings.NewReader("n\n"), "release", "--config", n.confPath, "192.0.2.2")
	r.failed(t, 1, "not confirmed")
	if !strings.Contains(r.stdout, "192.0.2.2 held by container c1 interface eth0 on node node-a") || !strings.Contains(r.stderr, "[y/N]") {
		t.Fatalf("release did not show what it would free and ask: %+v", r)
	}
	if err := s.Check(testCtx(t), "c1", "eth0"); err != nil {
		t.Fatalf("CHECK after a refused release: %v", err)
	}

	runCLI(t, strings.NewReader("y\n"), "release", "--config", n.confPath, "192.0.2.2").ok(t)
	atts, err := s.ContainerAttachments(testCtx(t), "c1", "eth0")
	if err != nil || len(atts) != 1 || len(atts[0].IPs) != 1 || atts[0].IPs[0].Address.String() != "2001:db8:5::2/125" {
		t.Fatalf("attachment after releasing its IPv4 address: %+v, %v", atts, err)
	}
	// CHECK verifies what the container still holds; a repeated ADD
	// returns it; the released address goes to the next container.
	if err := s.Check(testCtx(t), "c1", "eth0"); err != nil {
		t.Fatalf("CHECK after releasing one address: %v", err)
	}
	if got := add(t, s, "c1"); !slices.Equal(got, []string{"2001:db8:5::2/125"}) {
		t.Fatalf("repeated ADD returned %v", got)
	}
	if err := s.Del(testCtx(t), "c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	var rows []allocation
	runCLI(t, nil, "ls", "--config", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 0 {
		t.Fatalf("after DEL: %+v", rows)
	}

	runCLI(t, nil, "release", "--config", n.confPath, "--yes", "192.0.2.5").failed(t, 1, "not allocated")
	runCLI(t, nil, "release", "--config", n.confPath, "--yes", "192.0.2.300").failed(t, 2, "192.0.2.300")
	runCLI(t, nil, "release", "--config", n.confPath).failed(t, 2, "addresses, --container ID or --pod")
}

// hookReader runs hook at the first read, then reads answer: the moment
// between showing an owner and the user's confirmation.
type hookReader struct {
	hook   func()
	answer io.Reader
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.hook != nil {
		h.hook()
		h.hook = nil
	}
	return h.answer.Read(p)
}

func TestReleaseRefusesWhenTheOwnerChanged(t *testing.T) {
	n := newTestNet(t, "ownernet", `[[{"subnet": "192.0.2.0/29"}]]`)
	s := n.session(t, "node-a")
	add(t, s, "c1")
	add(t, s, "keep")
	// While the operator reads the prompt, c1 goes and c2 gets its address.
	reader := &hookReader{answer: strings.NewReader("y\n"), hook: func() {
		if err := s.Del(testCtx(t), "c1", "eth0"); err != nil {
			t.Error(err)
		}
		add(t, s, "c2", netip.MustParseAddr("192.0.2.2"))
	}}
	r := runCLI(t, reader, "release", "--config", n.confPath, "192.0.2.2", "192.0.2.3")
	r.failed(t, 1, "192.0.2.2 changed owner")
	if err := s.Check(testCtx(t), "c2", "eth0"); err != nil {
		t.Fatalf("the new owner lost its address: %v", err)
	}
	held, err := s.LookupAddress(testCtx(t), netip.MustParseAddr("192.0.2.3"))
	if err != nil || held != nil {
		t.Fatalf("the unchanged address was not released: %+v, %v", held, err)
	}
}

func TestReleaseContainer(t *testing.T) {
	n := newTestNet(t, "ctrnet", `[[{"subnet": "192.0.2.0/29"}], [{"subnet": "2001:db8:5::/125"}]]`)
	s := n.session(t, "node-a")
	add(t, s, "c1")
	if _, err := s.Add(testCtx(t), "c1", "net1", nil); err != nil {
		t.Fatal(err)
	}
	add(t, s, "c2")
	r := runCLI(t, nil, "release", "--config", n.confPath, "--yes", "--container", "c1", "--ifname", "net1").ok(t)
	if !strings.Contains(r.stdout, "released 1 attachment") {
		t.Fatalf("release --container --ifname: %q", r.stdout)
	}
	runCLI(t, nil, "release", "--config", n.confPath, "--yes", "--container", "c1").ok(t)
	var rows []allocation
	runCLI(t, nil, "ls", "--config", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 2 || rows[0].ContainerID != "c2" || rows[1].ContainerID != "c2" {
		t.Fatalf("after releasing c1: %+v", rows)
	}
	runCLI(t, nil, "release", "--config", n.confPath, "--yes", "--container", "c1").failed(t, 1, "holds no address")
}

func TestGC(t *testing.T) {
	n := newTestNet(t, "gcnet", `[[{"subnet": "198.51.100.0/24"}]]`)
	a, b := n.session(t, "node-a"), n.session(t, "node-b")
	for _, id := range []string{"c1", "c2", "c3"} {
		add(t, a, id)
	}
	add(t, b, "other")

	keep := "# containers the runtime knows\nc1 eth0\n\n"
	var report gcReport
	runCLI(t, strings.NewReader(keep), "gc", "--config", n.confPath, "--node", "node-a", "--keep", "-", "--dry-run", "--json").ok(t).decode(t, &report)
	if !report.DryRun || report.Released != 0 || len(report.Stale) != 2 || report.Stale[0].ContainerID != "c2" || report.Stale[1].ContainerID != "c3" {
		t.Fatalf("gc --dry-run: %+v", report)
	}
	var rows []allocation
	runCLI(t, nil, "ls", "--config", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 4 {
		t.Fatalf("gc --dry-run released something: %+v", rows)
	}

	keepFile := filepath.Join(t.TempDir(), "keep.json")
	if err := os.WriteFile(keepFile, []byte(`{"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runCLI(t, nil, "gc", "--config", n.confPath, "--node", "node-a", "--keep", keepFile).ok(t).stdout
	if !strings.Contains(out, "released container c2 interface eth0: 198.51.100.3/24") || !strings.Contains(out, "node node-a: released 2 of 2") {
		t.Fatalf("gc output:\n%s", out)
	}
	runCLI(t, nil, "ls", "--config", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 2 || rows[0].ContainerID != "c1" || rows[1].ContainerID != "other" {
		t.Fatalf("after gc: %+v", rows)
	}

	runCLI(t, nil, "gc", "--config", n.confPath).failed(t, 2, "--keep")
	runCLI(t, strings.NewReader("c1\n"), "gc", "--config", n.confPath, "--keep", "-").failed(t, 1, "line 1")
}

// TestGCManyAttachments releases more attachments than one transaction
// carries.
func TestGCManyAttachments(t *testing.T) {
	n := newTestNet(t, "gcmany", `[[{"subnet": "198.51.100.0/24"}]]`)
	s := n.session(t, "node-a")
	for i := 0; i < store.ReleaseBatch*2+5; i++ {
		add(t, s, fmt.Sprintf("c%03d", i))
	}
	var report gcReport
	runCLI(t, nil, "gc", "--config", n.confPath, "--node", "node-a", "--keep", "/dev/null", "--json").ok(t).decode(t, &report)
	if report.Released != store.ReleaseBatch*2+5 {
		t.Fatalf("released %d of %d", report.Released, store.ReleaseBatch*2+5)
	}
}

func TestEtcdSettingsFromFlagsAndEnvironment(t *testing.T) {
	n := newTestNet(t, "flagnet", `[[{"subnet": "192.0.2.0/29"}]]`)
	add(t, n.session(t, "node-a"), "c1")
	// A configuration pointing at no etcd, with a short timeout.
	path := filepath.Join(t.TempDir(), "net.json")
	if err := os.WriteFile(path, []byte(`{"cniVersion": "1.0.0", "name": "flagnet", "ipam": {"type": "etcd",
		"etcdConfig": {"etcdURL": "http://127.0.0.1:1", "etcdTimeout": "300ms"}, "ranges": [[{"subnet": "192.0.2.0/29"}]]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	runCLI(t, nil, "ls", "--config", path).failed(t, 1, "etcd")
	if out := runCLI(t, nil, "ls", "--config", path, "--endpoints", n.srv.Endpoint()).ok(t).stdout; !strings.Contains(out, "192.0.2.2") {
		t.Fatalf("ls with --endpoints: %q", out)
	}
	t.Setenv("ETCD_IPAM_ENDPOINTS", n.srv.Endpoint())
	if out := runCLI(t, nil, "ls", "--config", path).ok(t).stdout; !strings.Contains(out, "192.0.2.2") {
		t.Fatalf("ls with ETCD_IPAM_ENDPOINTS: %q", out)
	}
	// https without the files is the loader's error, named.
	runCLI(t, nil, "ls", "--config", path, "--endpoints", "https://127.0.0.1:1").failed(t, 1, "etcdCertFile")
}

func TestCommandLineMistakes(t *testing.T) {
	n := newTestNet(t, "usagenet", `[[{"subnet": "192.0.2.0/29"}]]`)
	for _, tc := range []struct {
		args []string
		code int
		what string
	}{
		{[]string{"plan"}, 2, "--config"},
		{[]string{"plan", "--config", n.confPath, "-n", "0"}, 2, "--count"},
		{[]string{"plan", "--config", n.confPath, "--core", "gpu"}, 2, "gpu"},
		{[]string{"ls", "--config", n.confPath, "extra"}, 2, "extra"},
		{[]string{"usage", "--config", n.confPath, "--bogus"}, 2, "bogus"},
		{[]string{"release", "--config", "-", "192.0.2.2"}, 2, "--yes"},
		{[]string{"completion", "fish"}, 2, "fish"},
		{[]string{"ls", "--config", "/nonexistent/net.conflist"}, 1, "/nonexistent/net.conflist"},
		{[]string{"usage", "--config", "/dev/null"}, 1, "/dev/null is empty"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			runCLI(t, nil, tc.args...).failed(t, tc.code, tc.what)
		})
	}
	for _, cmd := range []string{"plan", "validate", "ls", "usage", "release", "gc", "exporter", "completion"} {
		out := runCLI(t, nil, cmd, "--help").ok(t).stdout
		if !strings.Contains(out, "Example") || !strings.Contains(out, "etcd-ipam "+cmd) {
			t.Errorf("%s --help has no example:\n%s", cmd, out)
		}
	}
}

func TestCompletion(t *testing.T) {
	script := runCLI(t, nil, "completion", "bash").ok(t).stdout
	if !strings.Contains(script, "complete -o bashdefault -o default -F _etcd_ipam_complete etcd-ipam") {
		t.Fatalf("bash script:\n%s", script)
	}
	// The library reads os.Args to tell flag from command completion.
	args := os.Args
	t.Cleanup(func() { os.Args = args })
	os.Args = []string{"etcd-ipam", "--generate-bash-completion"}
	words := strings.Fields(runCLI(t, nil, "--generate-bash-completion").ok(t).stdout)
	for _, cmd := range []string{"plan", "validate", "ls", "usage", "release", "gc", "exporter", "demo", "dev-etcd"} {
		if !slices.Contains(words, cmd) {
			t.Errorf("completion candidates %v lack %s", words, cmd)
		}
	}
	os.Args = []string{"etcd-ipam", "gc", "--dry", "--generate-bash-completion"}
	words = strings.Fields(runCLI(t, nil, "gc", "--dry", "--generate-bash-completion").ok(t).stdout)
	if !slices.Equal(words, []string{"--dry-run"}) {
		t.Errorf("completion of gc --dry: %v, want --dry-run", words)
	}
}

func TestProgressIsQuietUnlessATerminal(t *testing.T) {
	var buf strings.Builder
	p := newProgress(&buf, "releasing", 3)
	p.Add(3)
	p.Finish()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q := newProgress(f, "releasing", 3)
	q.Add(3)
	q.Finish()
	if info, _ := f.Stat(); buf.Len() != 0 || info.Size() != 0 {
		t.Fatalf("progress wrote %q to a buffer and %d bytes to a file", buf.String(), info.Size())
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !isTerminal(tty) {
			t.Errorf("/dev/tty is not taken for a terminal")
		}
	}
}

// TestCoreWasmPlansAsNative runs plan on the WebAssembly core and checks
// that it answers as the native one, on a network with holes.
func TestCoreWasmPlansAsNative(t *testing.T) {
	t.Setenv(wasm.CacheDirEnv, t.TempDir())
	n := newTestNet(t, "wasmnet", specRanges)
	s := n.session(t, "node-a")
	for i := 0; i < 6; i++ {
		add(t, s, fmt.Sprintf("c%d", i))
	}
	if err := s.Del(testCtx(t), "c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	args := []string{"plan", "--config", n.confPath, "--node", "node-a", "-n", "14", "--json", "--core"}
	native := runCLI(t, nil, append(args, "native")...).ok(t).stdout
	onWasm := runCLI(t, nil, append(args, "wasm")...).ok(t).stdout
	var plan planReport
	runCLI(t, nil, append(args, "wasm")...).ok(t).decode(t, &plan)
	if native != onWasm || plan.Failure == nil || len(plan.Adds) != 12 {
		t.Fatalf("plans differ or do not reach exhaustion after 12 ADDs:\nnative %s\nwasm   %s", native, onWasm)
	}
}

// TestReleaseWaitsForThePersonNotForEtcd confirms after longer than the
// etcd timeout: the release still gets a whole timeout of its own.
func TestReleaseWaitsForThePersonNotForEtcd(t *testing.T) {
	n := newTestNet(t, "slownet", `[[{"subnet": "192.0.2.0/29"}]]`)
	add(t, n.session(t, "node-a"), "c1")
	path := filepath.Join(t.TempDir(), "net.json")
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "slownet", "ipam": {"type": "etcd",
		"etcdConfig": {"etcdURL": %q, "etcdTimeout": "300ms"}, "ranges": [[{"subnet": "192.0.2.0/29"}]]}}`, n.srv.Endpoint())
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	slow := &hookReader{answer: strings.NewReader("yes\n"), hook: func() { time.Sleep(500 * time.Millisecond) }}
	runCLI(t, slow, "release", "--config", path, "192.0.2.2").ok(t)
	slow = &hookReader{answer: strings.NewReader("y\n"), hook: func() { time.Sleep(500 * time.Millisecond) }}
	runCLI(t, slow, "release", "--config", path, "--container", "nobody").failed(t, 1, "holds no address")
}

// BenchmarkGC times gc releasing 2000 stale attachments (32 transactions
// of store.ReleaseBatch), the operation that shows a progress counter.
func BenchmarkGC(b *testing.B) {
	const stale = 2000
	srv := etcdtest.Start(b)
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "gcbench", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": %q},
		"ranges": [[{"subnet": "2001:db8:ff::/116"}]]}}`, srv.Endpoint())
	path := writeConfig(b, conf)
	s := openTestSession(b, []byte(conf), "node-a")
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for k := 0; k < stale; k++ {
			if _, err := s.Add(ctx, fmt.Sprintf("c%d", k), "eth0", nil); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		var stdout, stderr strings.Builder
		if code := runWithInput(ctx, []string{"etcd-ipam", "gc", "--config", path, "--node", "node-a", "--keep", "/dev/null"},
			strings.NewReader(""), &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), fmt.Sprintf("released %d of %d", stale, stale)) {
			b.Fatalf("gc: status %d, %s %s", code, stdout.String(), stderr.String())
		}
	}
}
