package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/etcd-cni/etcd-ipam/frontend/exporter"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// lockedBuffer is a buffer the exporter writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runningExporter is `etcd-ipam exporter` running in-process.
type runningExporter struct {
	url    string // http://127.0.0.1:PORT/metrics
	addr   string // 127.0.0.1:PORT
	stderr *lockedBuffer
}

// startExporter runs the exporter with args on a free loopback port until
// the test ends, when it checks that the exporter stopped cleanly on its
// context (as on SIGINT or SIGTERM).
func startExporter(t *testing.T, args ...string) *runningExporter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	stderr := &lockedBuffer{}
	code := make(chan int, 1)
	go func() {
		args := append([]string{"etcd-ipam", "exporter", "--listen", "127.0.0.1:0"}, args...)
		code <- runWithInput(ctx, args, strings.NewReader(""), outW, stderr)
		_ = outW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if c := <-code; c != 0 {
			t.Errorf("the exporter exited with status %d on its context's end; stderr %q", c, stderr.String())
		}
	})
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("the exporter printed no address (%v); stderr %q", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	_, url, ok := strings.Cut(strings.TrimSpace(line), " on ")
	if !ok || !strings.HasPrefix(url, "http://") {
		t.Fatalf("the exporter's first line %q names no URL", line)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	return &runningExporter{url: url, addr: addr, stderr: stderr}
}

// scrape gets the exporter's metrics as Prometheus does, returning the
// HTTP status, the exposition and its parsed families.
func (e *runningExporter) scrape(t *testing.T) (int, string, map[string]*dto.MetricFamily) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(e.url)
	if err != nil {
		t.Fatalf("scraping %s: %v", e.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the scrape of %s: %v", e.url, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the scrape is not the text exposition format: %v\n%s", err, body)
	}
	return resp.StatusCode, string(body), families
}

// series returns a family's gauges by their labels, written as
// "network/range_set/range" (missing labels empty).
func series(families map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	f, ok := families[name]
	if !ok {
		return out
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out[labels["network"]+"/"+labels["range_set"]+"/"+labels["range"]] = m.GetGauge().GetValue()
	}
	return out
}

// nodeSeries returns a per-node family's gauges by "network/node".
func nodeSeries(families map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out[labels["network"]+"/"+labels["node"]] = m.GetGauge().GetValue()
	}
	return out
}

// expectedUsage is what the exporter must report of one network: the
// capacities that `etcd-ipam usage` computes and the allocations counted
// from what the plugin's ADDs returned.
type expectedUsage struct {
	capacity, allocated, excluded map[string]float64 // by "network/range_set/range"
}

// expectUsage runs `usage --json` for the capacities and sorts each
// address the test allocated into the range that holds it.
func expectUsage(t *testing.T, n *testNet, name string, s *ipam.Session, allocated []string, want *expectedUsage) {
	t.Helper()
	var report usageReport
	runCLI(t, nil, "usage", "--config", n.confPath, "--json").ok(t).decode(t, &report)
	sets := s.RangeSets()
	for _, r := range report.Ranges {
		key := fmt.Sprintf("%s/%d/%s", name, r.RangeSet, exporter.RangeText(sets[r.RangeSet][r.Range]))
		if want := fmt.Sprintf("%s/%d/%s-%s", name, r.RangeSet, r.RangeStart, r.RangeEnd); key != want {
			t.Fatalf("range label %q, but usage shows the range as %q", key, want)
		}
		want.capacity[key] = float64(r.Size)
		want.excluded[key] = float64(r.Excluded)
		want.allocated[key] = 0
	}
	for _, a := range allocated {
		addr := netip.MustParsePrefix(a).Addr()
		found := false
		for i, set := range sets {
			for _, r := range set {
				if addr.Compare(r.RangeStart) >= 0 && addr.Compare(r.RangeEnd) <= 0 {
					want.allocated[fmt.Sprintf("%s/%d/%s", name, i, exporter.RangeText(r))]++
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("ADD returned %s, which is in no range of %s", a, name)
		}
	}
}

// exporterNets are two networks on two etcd servers with real allocations,
// their configurations in one directory beside another plugin's.
type exporterNets struct {
	a, b *testNet
	dir  string
	want *expectedUsage
}

func newExporterNets(t *testing.T) *exporterNets {
	t.Helper()
	x := &exporterNets{
		a:    newTestNet(t, "net-a", specRanges),
		b:    newTestNet(t, "net-b", `[[{"subnet": "192.0.2.0/28", "exclude": ["192.0.2.8/30", "192.0.2.13"]}]]`),
		dir:  t.TempDir(),
		want: &expectedUsage{capacity: map[string]float64{}, allocated: map[string]float64{}, excluded: map[string]float64{}},
	}
	sa, sb := x.a.session(t, "node-a"), x.b.session(t, "node-b")
	var addrsA, addrsB []string
	for i := range 5 {
		addrsA = append(addrsA, add(t, sa, fmt.Sprintf("a%d", i))...)
	}
	for i := range 4 {
		addrsB = append(addrsB, add(t, sb, fmt.Sprintf("b%d", i))...)
	}
	// A released address is not counted.
	if err := sb.Del(testCtx(t), "b3", "eth0"); err != nil {
		t.Fatal(err)
	}
	addrsB = addrsB[:len(addrsB)-1]
	expectUsage(t, x.a, "net-a", sa, addrsA, x.want)
	expectUsage(t, x.b, "net-b", sb, addrsB, x.want)

	for _, n := range []*testNet{x.a, x.b} {
		data, err := os.ReadFile(n.confPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(x.dir, filepath.Base(n.confPath)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Another IPAM's network is skipped, and so is what is no configuration.
	writeFile(t, filepath.Join(x.dir, "20-other.conflist"),
		`{"cniVersion": "1.0.0", "name": "other", "plugins": [{"type": "bridge", "ipam": {"type": "host-local", "subnet": "10.9.0.0/16"}}]}`)
	writeFile(t, filepath.Join(x.dir, "README.txt"), "not a configuration")
	return x
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkGauges fails unless got has exactly want's series and values.
func checkGauges(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d series %v, want %d %v", what, len(got), got, len(want), want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s{%s} = %v (present %v), want %v", what, k, g, ok, v)
		}
	}
}

func TestExporterCountsRealAllocations(t *testing.T) {
	x := newExporterNets(t)
	e := startExporter(t, "--config", x.dir)

	code, body, families := e.scrape(t)
	if code != http.StatusOK {
		t.Fatalf("scrape status %d:\n%s", code, body)
	}
	checkGauges(t, "etcd_ipam_range_capacity_addresses", series(families, "etcd_ipam_range_capacity_addresses"), x.want.capacity)
	checkGauges(t, "etcd_ipam_range_allocated_addresses", series(families, "etcd_ipam_range_allocated_addresses"), x.want.allocated)
	checkGauges(t, "etcd_ipam_range_excluded_addresses", series(families, "etcd_ipam_range_excluded_addresses"), x.want.excluded)
	if got := x.want.excluded["net-b/0/192.0.2.1-192.0.2.14"]; got != 5 {
		t.Errorf("net-b's range excludes %v addresses, want 5 (the test's premise)", got)
	}
	checkGauges(t, "etcd_ipam_up", series(families, "etcd_ipam_up"), map[string]float64{"net-a//": 1, "net-b//": 1})
	if d := series(families, "etcd_ipam_scrape_duration_seconds"); len(d) != 2 || d["net-a//"] <= 0 || d["net-b//"] <= 0 {
		t.Errorf("etcd_ipam_scrape_duration_seconds = %v, want a positive duration per network", d)
	}
	for _, name := range []string{"etcd_ipam_up", "etcd_ipam_range_capacity_addresses", "etcd_ipam_range_allocated_addresses", "etcd_ipam_range_excluded_addresses", "etcd_ipam_scrape_duration_seconds"} {
		if f := families[name]; f == nil || f.GetHelp() == "" || f.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s: want a gauge with # HELP, got %v", name, f)
		}
	}
	// Per node, from the node index and the liveness records: node-a made
	// net-a's 5 dual-stack attachments, node-b net-b's 3 remaining.
	nodes := nodeSeries(families, "etcd_ipam_node_allocated_addresses")
	checkGauges(t, "etcd_ipam_node_allocated_addresses", nodes, map[string]float64{"net-a/node-a": 10, "net-b/node-b": 3})
	for key, age := range nodeSeries(families, "etcd_ipam_node_last_seen_age_seconds") {
		if _, ok := nodes[key]; !ok || age < 0 || age > 600 {
			t.Errorf("etcd_ipam_node_last_seen_age_seconds{%s} = %v, want a node just seen", key, age)
		}
	}
	for _, name := range []string{"etcd_ipam_node_allocated_addresses", "etcd_ipam_node_last_seen_age_seconds"} {
		if f := families[name]; f == nil || f.GetHelp() == "" || f.GetType() != dto.MetricType_GAUGE || len(f.GetMetric()) != 2 {
			t.Errorf("%s: want a gauge with # HELP and a series per node, got %v", name, f)
		}
	}
	if _, ok := families["go_goroutines"]; !ok {
		t.Error("no go_goroutines: the exporter's own runtime metrics are missing")
	}

	// Every scrape counts afresh: an ADD between two scrapes shows.
	s := x.b.session(t, "node-b")
	addr := netip.MustParsePrefix(add(t, s, "b-late")[0]).Addr()
	_, _, families = e.scrape(t)
	for key, v := range series(families, "etcd_ipam_range_allocated_addresses") {
		if strings.HasPrefix(key, "net-b/") && v != x.want.allocated[key]+1 {
			t.Errorf("after ADD of %s: %s allocated %v, want %v", addr, key, v, x.want.allocated[key]+1)
		}
	}
}

func TestExporterAnswersWhenEtcdDoesNot(t *testing.T) {
	x := newExporterNets(t)
	e := startExporter(t, "--config", x.a.confPath, "--config", x.b.confPath, "--scrape-timeout", "2s")
	if code, body, _ := e.scrape(t); code != http.StatusOK {
		t.Fatalf("scrape status %d before etcd stopped:\n%s", code, body)
	}

	x.b.srv.Stop()
	code, body, families := e.scrape(t)
	if code != http.StatusOK {
		t.Fatalf("scrape status %d with net-b's etcd stopped, want 200:\n%s", code, body)
	}
	checkGauges(t, "etcd_ipam_up", series(families, "etcd_ipam_up"), map[string]float64{"net-a//": 1, "net-b//": 0})
	for _, name := range []string{"etcd_ipam_range_capacity_addresses", "etcd_ipam_range_allocated_addresses"} {
		want := map[string]float64{}
		for k, v := range x.want.allocated {
			if strings.HasPrefix(k, "net-a/") {
				want[k] = v
			}
		}
		got := series(families, name)
		if len(got) != len(want) {
			t.Errorf("%s with net-b's etcd stopped: %v, want only net-a's %d ranges", name, got, len(want))
		}
	}
	if d := series(families, "etcd_ipam_scrape_duration_seconds"); len(d) != 2 {
		t.Errorf("etcd_ipam_scrape_duration_seconds = %v, want one per network, the failed one too", d)
	}
	if log := e.stderr.String(); !strings.Contains(log, `network "net-b": etcd_ipam_up is 0`) {
		t.Errorf("stderr %q: want a line saying net-b stopped answering", log)
	}
}

func TestExporterStartsWhileEtcdIsDown(t *testing.T) {
	n := newTestNet(t, "down", `[[{"subnet": "192.0.2.0/28"}]]`)
	n.srv.Stop()
	e := startExporter(t, "--config", n.confPath, "--scrape-timeout", "1s")
	code, body, families := e.scrape(t)
	if code != http.StatusOK {
		t.Fatalf("scrape status %d, want 200:\n%s", code, body)
	}
	checkGauges(t, "etcd_ipam_up", series(families, "etcd_ipam_up"), map[string]float64{"down//": 0})
}

func TestExporterMistakes(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	n := newTestNet(t, "mistakes", `[[{"subnet": "192.0.2.0/29"}]]`)
	noEtcd := t.TempDir()
	writeFile(t, filepath.Join(noEtcd, "10-bridge.conflist"),
		`{"cniVersion": "1.0.0", "name": "other", "plugins": [{"type": "bridge", "ipam": {"type": "host-local", "subnet": "10.9.0.0/16"}}]}`)
	writeFile(t, filepath.Join(noEtcd, "99-loopback.conf"), `{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}`)
	broken := t.TempDir()
	writeFile(t, filepath.Join(broken, "10-broken.conf"), `{"name": `)

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		mentions string
	}{
		{"listen address in use", []string{"--config", n.confPath, "--listen", busy.Addr().String()}, 1, busy.Addr().String() + " (--listen): bind: address already in use"},
		{"bad listen address", []string{"--config", n.confPath, "--listen", "256.0.0.1:1"}, 1, "cannot listen on 256.0.0.1:1"},
		{"directory without etcd network", []string{"--config", noEtcd, "--listen", "127.0.0.1:0"}, 1, "the directory " + noEtcd + ` has no network configuration (.conf, .conflist, .json) with "ipam": {"type": "etcd"}`},
		{"broken file in directory", []string{"--config", broken, "--listen", "127.0.0.1:0"}, 1, "10-broken.conf"},
		{"network twice", []string{"--config", n.confPath, "--config", n.confPath, "--listen", "127.0.0.1:0"}, 1, `network "mistakes" is configured twice`},
		{"file of another ipam", []string{"--config", filepath.Join(noEtcd, "10-bridge.conflist")}, 1, `no plugin with "ipam": {"type": "etcd"}`},
		{"missing path", []string{"--config", filepath.Join(noEtcd, "missing")}, 1, "missing"},
		{"no config", []string{"--listen", "127.0.0.1:0"}, 2, "at least one --config"},
		{"config from stdin", []string{"--config", "-"}, 2, "not stdin"},
		{"zero scrape timeout", []string{"--config", n.confPath, "--scrape-timeout", "0s"}, 2, "--scrape-timeout"},
		{"positional argument", []string{"--config", n.confPath, "extra"}, 2, "extra"},
		// A listen address without a port would serve on a random one,
		// which no Prometheus could be told; on every interface, too.
		{"empty listen address", []string{"--config", n.confPath, "--listen", ""}, 2, "--listen"},
		{"listen address without host or port", []string{"--config", n.confPath, "--listen", ":"}, 2, `--listen ":"`},
		{"listen address without port", []string{"--config", n.confPath, "--listen", "127.0.0.1"}, 2, "port"},
		{"listen address with an empty port", []string{"--config", n.confPath, "--listen", "127.0.0.1:"}, 2, "port"},
		{"listen on port 0 everywhere", []string{"--config", n.confPath, "--listen", ":0"}, 2, "port 0"},
		{"listen on port 0 of every IPv6 interface", []string{"--config", n.confPath, "--listen", "[::]:0"}, 2, "port 0"},
		{"listen on port 0 of a public address", []string{"--config", n.confPath, "--listen", "192.0.2.1:0"}, 2, "port 0"},
		{"scrape timeout of a nanosecond", []string{"--config", n.confPath, "--scrape-timeout", "1ns"}, 2, "at least 100ms"},
		{"scrape timeout just under 100 ms", []string{"--config", n.confPath, "--scrape-timeout", "99ms"}, 2, "at least 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"exporter"}, tc.args...)...)
			r.failed(t, tc.code, tc.mentions)
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q: want one line", r.stderr)
			}
		})
	}
}

// prometheusInstallHint says how to get the Prometheus server this test
// scrapes with.
const prometheusInstallHint = "apt-get install -y --no-install-recommends prometheus (Debian's package gives prometheus and promtool)"

// requirePrometheus returns the paths of prometheus and promtool, or skips
// the test without them unless ETCD_IPAM_REQUIRE_PROMETHEUS=1 (as in CI),
// where a missing server must not pass as a skipped test.
func requirePrometheus(t *testing.T) (server, promtool string) {
	t.Helper()
	server, err1 := exec.LookPath("prometheus")
	promtool, err2 := exec.LookPath("promtool")
	if err1 == nil && err2 == nil {
		return server, promtool
	}
	msg := fmt.Sprintf("prometheus and promtool are needed on PATH (%v, %v); install them with %s", err1, err2, prometheusInstallHint)
	if os.Getenv("ETCD_IPAM_REQUIRE_PROMETHEUS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return "", ""
}

// freeLoopbackAddr returns a loopback address with a port free a moment
// ago, for a child process that must be told its port.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// promQueryResponse is the part of Prometheus's /api/v1/query answer the
// test reads.
type promQueryResponse struct {
	Status string `json:"status"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"` // [time, "value"]
		} `json:"result"`
	} `json:"data"`
}

// TestExporterScrapedByPrometheus has a real Prometheus server scrape the
// exporter and checks what its query API then answers, and has promtool
// lint the exposition.
func TestExporterScrapedByPrometheus(t *testing.T) {
	server, promtool := requirePrometheus(t)
	x := newExporterNets(t)
	e := startExporter(t, "--config", x.dir)

	// promtool's lint: names, units, HELP, types.
	_, body, _ := e.scrape(t)
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = strings.NewReader(body)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}

	dir := t.TempDir()
	promAddr := freeLoopbackAddr(t)
	conf := filepath.Join(dir, "prometheus.yml")
	writeFile(t, conf, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: etcd-ipam
    static_configs:
      - targets: [%q]
`, e.addr))
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(server, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	// Registered after t.TempDir's cleanup, so it runs first: the server
	// has stopped writing before its directory goes.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	query := "http://" + promAddr + "/api/v1/query?query=etcd_ipam_range_allocated_addresses"
	client := &http.Client{Timeout: 5 * time.Second}
	var got map[string]float64
	const attempts = 120 // at 250 ms: 30 s for Prometheus to start and scrape
	for i := 0; i < attempts && len(got) < len(x.want.allocated); i++ {
		time.Sleep(250 * time.Millisecond)
		got = queryGauges(client, query)
	}
	if len(got) < len(x.want.allocated) {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("Prometheus had %d series of etcd_ipam_range_allocated_addresses after %d queries, want %d; its log:\n%s",
			len(got), attempts, len(x.want.allocated), log)
	}
	checkGauges(t, "Prometheus's etcd_ipam_range_allocated_addresses", got, x.want.allocated)
}

// queryGauges asks Prometheus's query API for the instant values of a
// query, keyed as series keys them; nil while Prometheus is not ready.
func queryGauges(client *http.Client, url string) map[string]float64 {
	resp, err := client.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var r promQueryResponse
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil || r.Status != "success" {
		return nil
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		text, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil
		}
		out[s.Metric["network"]+"/"+s.Metric["range_set"]+"/"+s.Metric["range"]] = v
	}
	return out
}

// TestREADMEAlertRulesAreValid has promtool check the README's example
// alert rules, so that an operator can paste them as they are.
func TestREADMEAlertRulesAreValid(t *testing.T) {
	_, promtool := requirePrometheus(t)
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, metrics, ok := strings.Cut(string(readme), "\n## Metrics\n")
	if !ok {
		t.Fatal(`README.md has no "## Metrics" section`)
	}
	metrics, _, _ = strings.Cut(metrics, "\n## ")
	_, rules, ok := strings.Cut(metrics, "```yaml\n")
	if !ok {
		t.Fatal("README.md's Metrics section has no YAML block of alert rules")
	}
	rules, _, _ = strings.Cut(rules, "```")
	path := filepath.Join(t.TempDir(), "rules.yml")
	writeFile(t, path, rules)
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the README's rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS: 2 rules found") {
		t.Fatalf("promtool check rules: %s; want the README's two rules", out)
	}
}
