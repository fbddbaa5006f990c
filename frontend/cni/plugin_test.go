package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

var allVersions = []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// oldVersion reports a CNI version whose results carry ip4 and ip6
// instead of ips.
func oldVersion(v string) bool { return v < "0.3.0" }

// resultIP is a member of a result's ips.
type resultIP struct {
	Version string `json:"version"`
	Address string `json:"address"`
	Gateway string `json:"gateway"`
}

// oldIPConfig is an ip4 or ip6 member of a result before 0.3.0.
type oldIPConfig struct {
	IP      string `json:"ip"`
	Gateway string `json:"gateway"`
	Routes  []struct {
		Dst string `json:"dst"`
		GW  string `json:"gw"`
	} `json:"routes"`
}

// result is the subset of a CNI result the tests compare, for every
// version. parseResult moves the ip4 and ip6 members of an old result into
// IPs (with the version their member names) and Routes.
type result struct {
	CNIVersion string     `json:"cniVersion"`
	IPs        []resultIP `json:"ips"`
	Routes     []struct {
		Dst string `json:"dst"`
		GW  string `json:"gw"`
	} `json:"routes"`
	DNS struct {
		Nameservers []string `json:"nameservers"`
		Domain      string   `json:"domain"`
		Search      []string `json:"search"`
		Options     []string `json:"options"`
	} `json:"dns"`
	IP4 *oldIPConfig `json:"ip4"`
	IP6 *oldIPConfig `json:"ip6"`
}

func parseResult(t testing.TB, stdout []byte) result {
	t.Helper()
	var r result
	if err := json.Unmarshal(stdout, &r); err != nil {
		t.Fatalf("result is not JSON: %v: %s", err, stdout)
	}
	if len(r.IPs) > 0 && (r.IP4 != nil || r.IP6 != nil) {
		t.Fatalf("result holds both ips and ip4/ip6: %s", stdout)
	}
	for i, old := range []*oldIPConfig{r.IP4, r.IP6} {
		if old != nil {
			version := []string{"4", "6"}[i]
			r.IPs = append(r.IPs, resultIP{Version: version, Address: old.IP, Gateway: old.Gateway})
			r.Routes = append(r.Routes, old.Routes...)
		}
	}
	return r
}

// inResultOrder returns a summary as a result of version v lists it:
// before 0.3.0, ip4 comes before ip6 whatever the range sets' order.
func inResultOrder(v, summary string) string {
	if !oldVersion(v) || summary == "" {
		return summary
	}
	lines := strings.Split(summary, "; ")
	isIPv6 := func(line string) bool { return strings.Contains(strings.Fields(line)[0], ":") }
	slices.SortStableFunc(lines, func(a, b string) int {
		if isIPv6(a) == isIPv6(b) {
			return 0
		}
		if isIPv6(b) {
			return -1
		}
		return 1
	})
	return strings.Join(lines, "; ")
}

// resultMembers returns the names of a result's top-level members, sorted.
func resultMembers(t testing.TB, stdout []byte) []string {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal(stdout, &members); err != nil {
		t.Fatalf("result is not a JSON object: %v: %s", err, stdout)
	}
	return slices.Sorted(maps.Keys(members))
}

// summary renders a result's addresses as "address gw gateway" lines.
func (r result) summary() string {
	var lines []string
	for _, ip := range r.IPs {
		lines = append(lines, ip.Address+" gw "+ip.Gateway)
	}
	return strings.Join(lines, "; ")
}

// configForm is one way of writing a network configuration from the spec.
type configForm struct {
	name string
	// ipam is the body of "ipam" after "type" and "etcdConfig".
	ipam string
	// top is extra top-level JSON (runtimeConfig, args).
	top   string
	args  string
	first string // summary of the first ADD
	next  string // summary of the second ADD
	check func(t *testing.T, r result)
}

func configForms(t *testing.T) []configForm {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("# test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\ndomain example.test\nsearch a.example.test b.example.test\noptions ndots:2 rotate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []configForm{
		{
			name:  "two range sets",
			ipam:  `"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8:1::/64"}]]`,
			first: "203.0.113.2/24 gw 203.0.113.1; 2001:db8:1::2/64 gw 2001:db8:1::1",
			next:  "203.0.113.3/24 gw 203.0.113.1; 2001:db8:1::3/64 gw 2001:db8:1::1",
		},
		{
			name: "ranges with start, end, gateway and routes",
			ipam: `"ranges": [
				[{"subnet": "198.51.100.0/24", "rangeStart": "198.51.100.20", "rangeEnd": "198.51.100.21", "gateway": "198.51.100.254"},
				 {"subnet": "203.0.113.0/24"}],
				[{"subnet": "2001:db8:1ff::/64", "rangeStart": "2001:db8:1ff::10", "rangeEnd": "2001:db8:1ff::20"}]],
				"routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.0.2.0/24", "gw": "198.51.100.1"}, {"dst": "2001:db8:1ff::1/64"}]`,
			first: "198.51.100.20/24 gw 198.51.100.254; 2001:db8:1ff::10/64 gw 2001:db8:1ff::1",
			next:  "198.51.100.21/24 gw 198.51.100.254; 2001:db8:1ff::11/64 gw 2001:db8:1ff::1",
			check: func(t *testing.T, r result) {
				got := fmt.Sprint(r.Routes)
				if got != "[{0.0.0.0/0 } {192.0.2.0/24 198.51.100.1} {2001:db8:1ff::1/64 }]" {
					t.Errorf("routes = %s", got)
				}
			},
		},
		{
			name: "deprecated top-level range with resolvConf",
			ipam: `"subnet": "2001:db8:1ff::/64", "rangeStart": "2001:db8:1ff::0010", "rangeEnd": "2001:db8:1ff::0020",
				"routes": [{"dst": "2001:db8:1ff::1/64"}], "resolvConf": "` + resolv + `"`,
			first: "2001:db8:1ff::10/64 gw 2001:db8:1ff::1",
			next:  "2001:db8:1ff::11/64 gw 2001:db8:1ff::1",
			check: func(t *testing.T, r result) {
				d := r.DNS
				if fmt.Sprintf("%v|%s|%v|%v", d.Nameservers, d.Domain, d.Search, d.Options) != "[192.0.2.53 2001:db8::53]|example.test|[a.example.test b.example.test]|[ndots:2 rotate]" {
					t.Errorf("dns = %+v", d)
				}
			},
		},
		{
			name:  "runtimeConfig ipRanges come first",
			ipam:  `"ranges": [[{"subnet": "198.51.100.0/24"}]]`,
			top:   `"runtimeConfig": {"ipRanges": [[{"subnet": "2001:db8:2::/64"}]]},`,
			first: "2001:db8:2::2/64 gw 2001:db8:2::1; 198.51.100.2/24 gw 198.51.100.1",
			next:  "2001:db8:2::3/64 gw 2001:db8:2::1; 198.51.100.3/24 gw 198.51.100.1",
		},
		{
			name:  "requested ip in CNI_ARGS",
			ipam:  `"ranges": [[{"subnet": "203.0.113.0/24"}]]`,
			args:  "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=x;IP=203.0.113.50",
			first: "203.0.113.50/24 gw 203.0.113.1",
			next:  "", // the same address cannot be requested twice
		},
		{
			name:  "requested ips in args and runtimeConfig",
			ipam:  `"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8:1::/64"}]]`,
			top:   `"args": {"cni": {"ips": ["2001:db8:1::99"]}}, "runtimeConfig": {"ips": ["203.0.113.99/24"]},`,
			first: "203.0.113.99/24 gw 203.0.113.1; 2001:db8:1::99/64 gw 2001:db8:1::1",
		},
	}
}

func networkConfig(version, name, endpoint string, f configForm) string {
	return fmt.Sprintf(`{"cniVersion": %q, "name": %q, %s "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": %q}, %s}}`,
		version, name, f.top, endpoint, f.ipam)
}

// TestEveryConfigFormAndVersion runs ADD, CHECK, a repeated ADD, GC, STATUS
// and DEL through the plugin binary for each configuration form of the
// spec and each CNI version.
func TestEveryConfigFormAndVersion(t *testing.T) {
	srv := etcdtest.Start(t)
	for fi, form := range configForms(t) {
		for _, v := range allVersions {
			t.Run(fmt.Sprintf("%s/%s", form.name, v), func(t *testing.T) {
				name := fmt.Sprintf("net%d-%s", fi, strings.ReplaceAll(v, ".", ""))
				conf := networkConfig(v, name, srv.Endpoint(), form)
				add := invocation{Command: "ADD", ContainerID: "c1", Config: conf, Args: form.args}
				out := mustSucceed(t, add)
				r := parseResult(t, out)
				if r.CNIVersion != v {
					t.Errorf("result cniVersion %q, want %q", r.CNIVersion, v)
				}
				first, next := inResultOrder(v, form.first), inResultOrder(v, form.next)
				if got := r.summary(); got != first {
					t.Fatalf("ADD = %s, want %s", got, first)
				}
				if members := resultMembers(t, out); oldVersion(v) && !slices.Equal(members, []string{"cniVersion", "dns", "ip4", "ip6"}) &&
					!slices.Equal(members, []string{"cniVersion", "dns", "ip4"}) && !slices.Equal(members, []string{"cniVersion", "dns", "ip6"}) {
					t.Errorf("a %s result has members %v; want cniVersion, dns and ip4 or ip6 or both", v, members)
				}
				for _, ip := range r.IPs {
					wantVersion := ""
					if v < "1.0.0" {
						wantVersion = "4"
						if strings.Contains(ip.Address, ":") {
							wantVersion = "6"
						}
					}
					if ip.Version != wantVersion {
						t.Errorf("ip %s has version %q, want %q", ip.Address, ip.Version, wantVersion)
					}
				}
				if form.check != nil {
					form.check(t, r)
				}
				// A repeated ADD returns the same addresses.
				if again := parseResult(t, mustSucceed(t, add)); again.summary() != first {
					t.Errorf("repeated ADD = %s, want %s", again.summary(), first)
				}
				if next != "" {
					second := parseResult(t, mustSucceed(t, invocation{Command: "ADD", ContainerID: "c2", Config: conf, Args: form.args}))
					if got := second.summary(); got != next {
						t.Errorf("second ADD = %s, want %s", got, next)
					}
				}
				if v >= "0.4.0" {
					mustSucceed(t, invocation{Command: "CHECK", ContainerID: "c1", Config: conf, Args: form.args})
					mustFail(t, invocation{Command: "CHECK", ContainerID: "nobody", Config: conf}, 3)
				}
				if v >= "1.1.0" {
					mustSucceed(t, invocation{Command: "STATUS", Config: conf})
					gcConf := strings.Replace(conf, `"name":`, `"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}], "name":`, 1)
					mustSucceed(t, invocation{Command: "GC", Config: gcConf})
					mustSucceed(t, invocation{Command: "CHECK", ContainerID: "c1", Config: conf})
					if form.next != "" {
						mustFail(t, invocation{Command: "CHECK", ContainerID: "c2", Config: conf}, 3)
					}
				}
				mustSucceed(t, invocation{Command: "DEL", ContainerID: "c1", Config: conf, Args: form.args})
				mustSucceed(t, invocation{Command: "DEL", ContainerID: "c1", Config: conf, Args: form.args}) // idempotent
				mustSucceed(t, invocation{Command: "DEL", ContainerID: "c2", Config: conf})
				if v >= "0.4.0" {
					mustFail(t, invocation{Command: "CHECK", ContainerID: "c1", Config: conf}, 3)
				}
				c := srv.Client(t)
				resp, err := c.Get(t.Context(), "/etcd-cni/networks/"+name+"/ips/", clientv3.WithPrefix())
				if err != nil {
					t.Fatal(err)
				}
				if len(resp.Kvs) != 0 {
					t.Errorf("after DEL, %d address keys remain", len(resp.Kvs))
				}
			})
		}
	}
}
