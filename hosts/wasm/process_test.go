package wasm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/internal/testbin"
)

func TestMain(m *testing.M) {
	os.Exit(testbin.Run(m))
}

// pluginBinary builds ./frontend/cni on first use only, once per test
// process: most tests here (and every fuzz worker) never run it.
func pluginBinary(tb testing.TB) string {
	tb.Helper()
	return testbin.Path(tb, "etcd", "github.com/etcd-cni/etcd-ipam/frontend/cni")
}

// call is one plugin invocation as a runtime makes it.
type call struct {
	Command, ContainerID, IfName, Args, Config string
}

type outcome struct {
	Stdout   []byte
	ExitCode int
}

func (o outcome) String() string { return fmt.Sprintf("exit %d: %s", o.ExitCode, o.Stdout) }

func runPlugin(tb testing.TB, c call) outcome {
	tb.Helper()
	cmd := exec.Command(pluginBinary(tb))
	cmd.Stdin = strings.NewReader(c.Config)
	ifName := c.IfName
	if ifName == "" {
		ifName = "eth0"
	}
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "CNI_COMMAND=" + c.Command, "CNI_CONTAINERID=" + c.ContainerID,
		"CNI_IFNAME=" + ifName, "CNI_NETNS=/dev/null", "CNI_PATH=" + filepath.Dir(cmd.Path),
		"ETCD_IPAM_NODE_NAME=test-node", "CNI_ARGS=" + c.Args,
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err := cmd.Run()
	out := outcome{Stdout: stdout.Bytes()}
	if exit, ok := err.(*exec.ExitError); ok {
		out.ExitCode = exit.ExitCode()
	} else if err != nil {
		tb.Fatal(err)
	}
	return out
}

// The spec's configurations, with the endpoint, the core and its cache
// directory filled in (%[1]s, %[2]s, %[3]s).
const (
	specCommandLine = `{ "cniVersion": "0.3.1", "name": "examplenet", "ipam": { "name": "myetcd-ipam", "type": "etcd", "core": %[2]q, "wasmCacheDir": %[3]q, "etcdConfig": { "etcdURL": %[1]q, "etcdCertFile": "/tmp/etcd.pem", "etcdKeyFile": "/tmp/etcd-key.pem", "etcdTrustedCAFileFile": "/tmp/ca.pem" }, "ranges": [ [{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8:1::/64"}]] } }`
	specRanges      = `{ "cniVersion": "1.1.0", "name": "spec-ranges", "ipam": { "name": "myetcd-ipam", "type": "etcd", "core": %[2]q, "wasmCacheDir": %[3]q,
		"etcdConfig": { "etcdURL": %[1]q },
		"ranges": [
			[ { "subnet": "10.10.0.0/16", "rangeStart": "10.10.1.20", "rangeEnd": "10.10.3.50", "gateway": "10.10.0.254" }, { "subnet": "172.16.5.0/24" } ],
			[ { "subnet": "3ffe:ffff:0:01ff::/64", "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020" } ]
		],
		"routes": [ { "dst": "0.0.0.0/0" }, { "dst": "192.168.0.0/16", "gw": "10.10.5.1" }, { "dst": "3ffe:ffff:0:01ff::1/64" } ] } }`
	specDeprecated = `{ "cniVersion": "1.1.0", "name": "spec-deprecated", "ipam": { "name": "myetcd-ipam", "type": "etcd", "core": %[2]q, "wasmCacheDir": %[3]q,
		"etcdConfig": { "etcdURL": %[1]q },
		"subnet": "3ffe:ffff:0:01ff::/64", "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020",
		"routes": [ { "dst": "3ffe:ffff:0:01ff::1/64" } ] } }`
	overlapping = `{ "cniVersion": "1.0.0", "name": "overlapping", "ipam": { "type": "etcd", "core": %[2]q, "wasmCacheDir": %[3]q,
		"etcdConfig": { "etcdURL": %[1]q }, "ranges": [ [{"subnet": "203.0.113.0/24"}], [{"subnet": "203.0.113.128/25"}] ] } }`
)

// script is the sequence of invocations both cores must answer byte for
// byte alike: the spec's examples, requested addresses (free, taken, the
// gateway, outside every range), exhausting a range, CHECK, DEL, GC and
// STATUS, and a configuration core rejects.
func script(endpoint, coreName, cacheDir string) []call {
	conf := func(tmpl string) string { return fmt.Sprintf(tmpl, endpoint, coreName, cacheDir) }
	cl, ranges, dep := conf(specCommandLine), conf(specRanges), conf(specDeprecated)
	calls := []call{
		{Command: "ADD", ContainerID: "example", IfName: "dummy0", Config: cl},
		{Command: "ADD", ContainerID: "example2", IfName: "dummy0", Config: cl},
		{Command: "ADD", ContainerID: "asks", Config: cl, Args: "IP=203.0.113.50"},
		{Command: "ADD", ContainerID: "asks-taken", Config: cl, Args: "IP=203.0.113.50"},
		{Command: "ADD", ContainerID: "asks-gateway", Config: cl, Args: "IP=203.0.113.1"},
		{Command: "ADD", ContainerID: "asks-outside", Config: cl, Args: "IP=192.0.2.7"},
		{Command: "DEL", ContainerID: "example", IfName: "dummy0", Config: cl},
		{Command: "ADD", ContainerID: "example3", IfName: "dummy0", Config: cl},
		{Command: "ADD", ContainerID: "ranges", Config: ranges},
		{Command: "ADD", ContainerID: "ranges", IfName: "eth1", Config: ranges},
		{Command: "CHECK", ContainerID: "ranges", IfName: "eth1", Config: ranges},
		{Command: "STATUS", Config: ranges},
		{Command: "ADD", ContainerID: "bad", Config: conf(overlapping)},
	}
	// rangeStart ::10 to rangeEnd ::20 holds 17 addresses; the 18th ADD
	// finds the range exhausted.
	for i := 0; i < 18; i++ {
		calls = append(calls, call{Command: "ADD", ContainerID: fmt.Sprintf("dep-%02d", i), Config: dep})
	}
	gc := strings.Replace(dep, `"name": "spec-deprecated",`,
		`"name": "spec-deprecated", "cni.dev/valid-attachments": [{"containerID": "dep-03", "ifname": "eth0"}],`, 1)
	return append(calls,
		call{Command: "GC", Config: gc},
		call{Command: "ADD", ContainerID: "dep-after-gc", Config: dep},
	)
}

// TestPluginCoresAgree runs the script through the plugin binary once per
// core, each against its own fresh etcd, and requires byte-identical
// stdout and exit status at every step.
func TestPluginCoresAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	cacheDir := t.TempDir()
	outcomes := map[string][]outcome{}
	var steps []call
	for _, coreName := range []string{"native", "wasm"} {
		srv := etcdtest.Start(t)
		steps = script(srv.Endpoint(), coreName, cacheDir)
		for _, c := range steps {
			outcomes[coreName] = append(outcomes[coreName], runPlugin(t, c))
		}
	}
	for i, c := range steps {
		n, w := outcomes["native"][i], outcomes["wasm"][i]
		if n.ExitCode != w.ExitCode || !bytes.Equal(n.Stdout, w.Stdout) {
			t.Errorf("step %d, %s %s %s: native %s\nwasm %s", i, c.Command, c.ContainerID, c.Args, n, w)
		}
	}
	// The agreement must be about real answers: the spec's example result,
	// and failures where the script expects them.
	first := string(outcomes["wasm"][0].Stdout)
	for _, want := range []string{`"address": "203.0.113.2/24"`, `"gateway": "203.0.113.1"`, `"address": "2001:db8:1::2/64"`} {
		if !strings.Contains(first, want) {
			t.Errorf("first ADD with core wasm lacks %s:\n%s", want, first)
		}
	}
	for i, c := range steps {
		wantFail := strings.HasPrefix(c.ContainerID, "asks-") || c.ContainerID == "bad" || c.ContainerID == "dep-17"
		if failed := outcomes["wasm"][i].ExitCode != 0; failed != wantFail {
			t.Errorf("step %d (%s %s %s): failed=%v, want %v: %s", i, c.Command, c.ContainerID, c.Args, failed, wantFail, outcomes["wasm"][i])
		}
	}
	var files int
	_ = filepath.WalkDir(cacheDir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Errorf("the plugin with core wasm wrote no compiled code to wasmCacheDir %s", cacheDir)
	}
}

// TestPluginRejectsBadCoreSettings checks the two configuration errors
// this host adds: an unknown core and a relative cache directory.
func TestPluginRejectsBadCoreSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	for name, conf := range map[string]string{
		"unknown core":       fmt.Sprintf(specCommandLine, "http://127.0.0.1:1", "WASM", ""),
		"relative cache dir": fmt.Sprintf(specCommandLine, "http://127.0.0.1:1", "wasm", "cache/wasm"),
	} {
		out := runPlugin(t, call{Command: "ADD", ContainerID: "x", Config: conf})
		if out.ExitCode == 0 || !strings.Contains(string(out.Stdout), `"code": 7`) {
			t.Errorf("%s: %s; want CNI error code 7", name, out)
		}
	}
}

// TestPluginConcurrentColdStart runs several plugin processes at once on an
// empty cache directory, as a rollout does on a fresh node: they all compile
// and store the module at the same time, and every ADD must succeed with a
// distinct address, leaving a cache that later processes load.
func TestPluginConcurrentColdStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	srv := etcdtest.Start(t)
	cacheDir := filepath.Join(t.TempDir(), "cold")
	conf := fmt.Sprintf(specCommandLine, srv.Endpoint(), "wasm", cacheDir)
	const n = 4
	outs := make([]outcome, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i] = runPlugin(t, call{Command: "ADD", ContainerID: fmt.Sprintf("cold-%d", i), Config: conf})
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, out := range outs {
		if out.ExitCode != 0 {
			t.Fatalf("ADD %d: %s", i, out)
		}
		first := strings.SplitN(string(out.Stdout), `"address": "`, 2)
		if len(first) != 2 {
			t.Fatalf("ADD %d returned no address: %s", i, out)
		}
		addr := strings.SplitN(first[1], `"`, 2)[0]
		if seen[addr] {
			t.Errorf("address %s handed out twice", addr)
		}
		seen[addr] = true
	}
	if out := runPlugin(t, call{Command: "ADD", ContainerID: "after", Config: conf}); out.ExitCode != 0 {
		t.Errorf("ADD after the cold start: %s", out)
	}
	leftovers, _ := filepath.Glob(filepath.Join(cacheDir, "*", "*.tmp"))
	if len(leftovers) != 0 {
		t.Errorf("half-written cache files left behind: %v", leftovers)
	}
}
