package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/internal/testbin"
)

// TestPlanAgreesWithThePluginBinary plans with etcd-ipam and then runs
// the real plugin binary, as a runtime would, on the spec's second example
// (the deprecated single range): every ADD returns the planned addresses,
// and the ADD after the pool is full fails as the plan says.
func TestPlanAgreesWithThePluginBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin with go build; skipped with -short")
	}
	dir := t.TempDir()
	plugin := testbin.Path(t, pluginName, modulePath+"/frontend/cni")
	srv := etcdtest.Start(t)
	conf := fmt.Sprintf(`{"cniVersion": "0.3.1", "name": "specv6", "ipam": {"name": "myetcd-ipam", "type": "etcd",
		"etcdConfig": {"etcdURL": %q},
		"subnet": "3ffe:ffff:0:01ff::/64", "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020",
		"routes": [{"dst": "3ffe:ffff:0:01ff::1/64"}]}}`, srv.Endpoint())
	path := filepath.Join(dir, "specv6.json")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cniAdd := func(id string) ([]string, string) {
		cmd := exec.CommandContext(testCtx(t), plugin)
		cmd.Stdin = strings.NewReader(conf)
		cmd.Env = append(os.Environ(), "CNI_COMMAND=ADD", "CNI_CONTAINERID="+id, "CNI_NETNS=/dev/null",
			"CNI_IFNAME=eth0", "CNI_PATH="+dir, "ETCD_IPAM_NODE_NAME=node-a")
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		if err := cmd.Run(); err != nil {
			return nil, stdout.String()
		}
		var result struct {
			IPs []struct {
				Address string `json:"address"`
			} `json:"ips"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &result); err != nil {
			t.Fatalf("ADD %s: %v in %s", id, err, stdout.String())
		}
		var ips []string
		for _, ip := range result.IPs {
			ips = append(ips, ip.Address)
		}
		return ips, ""
	}
	cniAdd("first") // some state to plan from
	var plan planReport
	runCLI(t, nil, "plan", "--config", path, "--node", "node-a", "-n", "20", "--json").ok(t).decode(t, &plan)
	if len(plan.Adds) != 16 || plan.Failure == nil {
		t.Fatalf("plan: %d ADDs, failure %+v; want 16 (17 addresses, one taken) and then a failure", len(plan.Adds), plan.Failure)
	}
	for k, want := range plan.Adds {
		got, failure := cniAdd(fmt.Sprintf("c%d", k))
		if !slices.Equal(got, want) {
			t.Fatalf("plugin ADD %d returned %v (%s); the plan said %v", k+1, got, failure, want)
		}
	}
	if got, failure := cniAdd("one-too-many"); got != nil || !strings.Contains(failure, `"code": 100`) && !strings.Contains(failure, `"code":100`) {
		t.Fatalf("ADD after the planned ones: %v, %s; want code 100", got, failure)
	}
}
