package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// conf builds a network configuration with the given ipam body after
// "type" and "etcdConfig", and optional top-level members.
func conf(ipam, top string) string {
	return fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "net", %s "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://127.0.0.1:2379"}%s}}`, top, ipam)
}

// withEtcd builds a network configuration with one range set and the
// given body of etcdConfig.
func withEtcd(body string) string {
	return fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "net", "ipam": {"type": "etcd", "etcdConfig": {%s}, "ranges": [[{"subnet": "192.0.2.0/24"}]]}}`, body)
}

// kindOf returns the Kind of err, or 0 when err is not an *Error.
func kindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// expect reports what unless got equals want.
func expect[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// expectError reports unless err is an *Error of kind whose message or
// hint contain every mention.
func expectError(t *testing.T, what string, err error, kind Kind, mentions ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s: error %v (%T), want an *Error of kind %d", what, err, err, kind)
		return
	}
	if e.Kind != kind {
		t.Errorf("%s: kind %d (%s), want %d", what, e.Kind, e.Msg, kind)
	}
	for _, m := range mentions {
		if !strings.Contains(e.Msg+" "+e.Hint, m) {
			t.Errorf("%s: message %q (hint %q) does not mention %q", what, e.Msg, e.Hint, m)
		}
	}
}

// rangeSets renders range sets as "subnet start-end gw gateway" ranges,
// joined by ", " within a set and " | " between sets.
func rangeSets(n *Network) string {
	var sets []string
	for _, set := range n.RangeSets {
		var ranges []string
		for _, r := range set {
			ranges = append(ranges, fmt.Sprintf("%s %s-%s gw %s", r.Subnet, r.RangeStart, r.RangeEnd, r.Gateway))
		}
		sets = append(sets, strings.Join(ranges, ", "))
	}
	return strings.Join(sets, " | ")
}

// TestLoadEveryKey sets every key of the README's reference tables at once
// and checks that each lands where it belongs.
func TestLoadEveryKey(t *testing.T) {
	n, err := Load([]byte(`{
		"cniVersion": "1.1.0",
		"name": "every",
		"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}],
		"ipam": {
			"type": "etcd",
			"subnet": "192.0.2.0/24", "rangeStart": "192.0.2.10", "rangeEnd": "192.0.2.20", "gateway": "192.0.2.254",
			"ranges": [
				[{"subnet": "10.10.0.0/16", "rangeStart": "10.10.1.20", "rangeEnd": "10.10.3.50", "gateway": "10.10.0.254"}, {"subnet": "172.16.5.0/24", "exclude": ["172.16.5.30", "172.16.5.64/28"]}],
				[{"subnet": "3ffe:ffff:0:01ff::/64", "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020"}]
			],
			"routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1"}, {"dst": "3ffe:ffff:0:01ff::1/64"}],
			"resolvConf": "/etc/resolv.conf",
			"nodeName": "node-7",
			"core": "native",
			"cooldown": "30s",
			"etcdConfig": {
				"etcdURL": "https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379",
				"etcdCertFile": "/etc/cni/etcd/client.pem",
				"etcdKeyFile": "/etc/cni/etcd/client-key.pem",
				"etcdTrustedCAFileFile": "/etc/cni/etcd/ca.pem",
				"etcdUsername": "cni",
				"etcdPassword": "secret",
				"etcdTimeout": "3s"
			}
		}
	}`), "")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "cniVersion", n.CNIVersion, "1.1.0")
	expect(t, "name", n.Name, "every")
	expect(t, "range sets", rangeSets(n),
		"192.0.2.0/24 192.0.2.10-192.0.2.20 gw 192.0.2.254 | "+
			"10.10.0.0/16 10.10.1.20-10.10.3.50 gw 10.10.0.254, 172.16.5.0/24 - gw  | "+
			"3ffe:ffff:0:01ff::/64 3ffe:ffff:0:01ff::0010-3ffe:ffff:0:01ff::0020 gw ")
	expect(t, "exclude", strings.Join(n.RangeSets[1][1].Exclude, " "), "172.16.5.30 172.16.5.64/28")
	var routes []string
	for _, r := range n.Routes {
		routes = append(routes, r.String())
	}
	expect(t, "routes", strings.Join(routes, " "), "{Dst:{IP:0.0.0.0 Mask:00000000} GW:<nil> MTU:0 AdvMSS:0 Priority:0 Table:<nil> Scope:<nil>} "+
		"{Dst:{IP:192.168.0.0 Mask:ffff0000} GW:10.10.5.1 MTU:0 AdvMSS:0 Priority:0 Table:<nil> Scope:<nil>} "+
		"{Dst:{IP:3ffe:ffff:0:1ff::1 Mask:ffffffffffffffff0000000000000000} GW:<nil> MTU:0 AdvMSS:0 Priority:0 Table:<nil> Scope:<nil>}")
	expect(t, "resolvConf", n.ResolvConf, "/etc/resolv.conf")
	expect(t, "nodeName", n.NodeName, "node-7")
	expect(t, "core", n.Core, "native")
	expect(t, "cooldown", n.Cooldown, 30*time.Second)
	expect(t, "valid attachments", fmt.Sprint(n.ValidAttachments), "[{c1 eth0}]")
	expect(t, "requested", len(n.Requested), 0)
	e := n.Etcd
	expect(t, "endpoints", strings.Join(e.Endpoints, " "), "https://10.0.0.1:2379 https://10.0.0.2:2379 https://10.0.0.3:2379")
	expect(t, "secure", e.Secure(), true)
	expect(t, "etcdCertFile", e.CertFile, "/etc/cni/etcd/client.pem")
	expect(t, "etcdKeyFile", e.KeyFile, "/etc/cni/etcd/client-key.pem")
	expect(t, "etcdTrustedCAFileFile", e.CAFile, "/etc/cni/etcd/ca.pem")
	expect(t, "etcdUsername", e.Username, "cni")
	expect(t, "etcdPassword", e.Password, "secret")
	expect(t, "etcdTimeout", e.Timeout, 3*time.Second)
}

// TestLoadReadmeExamples loads the README's configuration examples as
// printed there.
func TestLoadReadmeExamples(t *testing.T) {
	for _, tc := range []struct {
		name, stdin, sets string
	}{
		{"two range sets over https", `{
  "cniVersion": "1.0.0",
  "name": "mynet",
  "type": "bridge",
  "bridge": "cni0",
  "ipam": {
    "type": "etcd",
    "etcdConfig": {
      "etcdURL": "https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379",
      "etcdCertFile": "/etc/cni/etcd/client.pem",
      "etcdKeyFile": "/etc/cni/etcd/client-key.pem",
      "etcdTrustedCAFileFile": "/etc/cni/etcd/ca.pem"
    },
    "ranges": [
      [
        { "subnet": "10.10.0.0/16", "rangeStart": "10.10.1.20", "rangeEnd": "10.10.3.50", "gateway": "10.10.0.254" },
        { "subnet": "172.16.5.0/24" }
      ],
      [
        { "subnet": "3ffe:ffff:0:01ff::/64", "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020" }
      ]
    ],
    "routes": [
      { "dst": "0.0.0.0/0" },
      { "dst": "192.168.0.0/16", "gw": "10.10.5.1" },
      { "dst": "3ffe:ffff:0:01ff::1/64" }
    ]
  }
}`, "10.10.0.0/16 10.10.1.20-10.10.3.50 gw 10.10.0.254, 172.16.5.0/24 - gw  | 3ffe:ffff:0:01ff::/64 3ffe:ffff:0:01ff::0010-3ffe:ffff:0:01ff::0020 gw "},
		{"deprecated top-level range", `{
  "cniVersion": "1.0.0",
  "name": "mynet6",
  "ipam": {
    "type": "etcd",
    "etcdConfig": { "etcdURL": "http://127.0.0.1:2379" },
    "subnet": "3ffe:ffff:0:01ff::/64",
    "rangeStart": "3ffe:ffff:0:01ff::0010",
    "rangeEnd": "3ffe:ffff:0:01ff::0020",
    "routes": [ { "dst": "3ffe:ffff:0:01ff::1/64" } ],
    "resolvConf": "/etc/resolv.conf"
  }
}`, "3ffe:ffff:0:01ff::/64 3ffe:ffff:0:01ff::0010-3ffe:ffff:0:01ff::0020 gw "},
		{"command-line example", `{ "cniVersion": "0.3.1", "name": "examplenet", "ipam": { "type": "etcd", "etcdConfig": { "etcdURL": "http://127.0.0.1:2379" }, "ranges": [ [{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8:1::/64"}] ] } }`,
			"203.0.113.0/24 - gw  | 2001:db8:1::/64 - gw "},
	} {
		n, err := Load([]byte(tc.stdin), "")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		expect(t, tc.name+": range sets", rangeSets(n), tc.sets)
	}
}

// TestLoadRangeSetOrder checks host-local's order of range sets:
// runtimeConfig.ipRanges, then the deprecated top-level range, then ranges.
func TestLoadRangeSetOrder(t *testing.T) {
	for _, tc := range []struct {
		name, ipam, top, want string
	}{
		{"ranges only", `, "ranges": [[{"subnet": "198.51.100.0/24"}], [{"subnet": "2001:db8::/64"}]]`, "",
			"198.51.100.0/24 - gw  | 2001:db8::/64 - gw "},
		{"top-level range only", `, "subnet": "192.0.2.0/24", "rangeStart": "192.0.2.5", "rangeEnd": "192.0.2.9", "gateway": "192.0.2.254"`, "",
			"192.0.2.0/24 192.0.2.5-192.0.2.9 gw 192.0.2.254"},
		{"top-level range before ranges", `, "ranges": [[{"subnet": "198.51.100.0/24"}]], "subnet": "192.0.2.0/24", "gateway": "192.0.2.254"`, "",
			"192.0.2.0/24 - gw 192.0.2.254 | 198.51.100.0/24 - gw "},
		{"ipRanges first", `, "subnet": "192.0.2.0/24", "ranges": [[{"subnet": "198.51.100.0/24"}]]`,
			`"runtimeConfig": {"ipRanges": [[{"subnet": "2001:db8::/64", "rangeStart": "2001:db8::10"}], [{"subnet": "203.0.113.0/24"}]]},`,
			"2001:db8::/64 2001:db8::10- gw  | 203.0.113.0/24 - gw  | 192.0.2.0/24 - gw  | 198.51.100.0/24 - gw "},
		{"ipRanges only", "", `"runtimeConfig": {"ipRanges": [[{"subnet": "203.0.113.0/24"}]]},`,
			"203.0.113.0/24 - gw "},
		{"top-level keys without subnet are ignored", `, "rangeStart": "192.0.2.5", "ranges": [[{"subnet": "198.51.100.0/24"}]]`, "",
			"198.51.100.0/24 - gw "},
		{"nothing (core rejects it later)", "", "", ""},
	} {
		n, err := Load([]byte(conf(tc.ipam, tc.top)), "")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		expect(t, tc.name, rangeSets(n), tc.want)
	}
}

// TestLoadRequestedAddresses covers every source of requested addresses
// and their order: CNI_ARGS, args.cni.ips, runtimeConfig.ips.
func TestLoadRequestedAddresses(t *testing.T) {
	for _, tc := range []struct {
		name, args, top, want string
	}{
		{"none", "", "", "[]"},
		{"IP=", "IP=192.0.2.10", "", "[192.0.2.10]"},
		{"lowercase ip=", "ip=192.0.2.9", "", "[192.0.2.9]"},
		{"comma list with spaces", "IP=192.0.2.10, 192.0.2.11 ,2001:db8::5", "", "[192.0.2.10 192.0.2.11 2001:db8::5]"},
		{"CIDR form", "IP=192.0.2.10/24,2001:db8::5/64", "", "[192.0.2.10 2001:db8::5]"},
		{"IPv4-mapped IPv6", "IP=::ffff:192.0.2.10", "", "[192.0.2.10]"},
		{"last IP key counts", "IP=192.0.2.5;IP=192.0.2.6", "", "[192.0.2.6]"},
		{"empty IP requests nothing", "IP=", "", "[]"},
		{"empty ip after IP", "IP=192.0.2.5;ip=", "", "[]"},
		{"IgnoreUnknown=1 before unknown keys", "IgnoreUnknown=1;K8S_POD_NAME=p;K8S_POD_NAMESPACE=ns;IP=192.0.2.10", "", "[192.0.2.10]"},
		{"IgnoreUnknown after unknown keys", "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;IP=192.0.2.10;IgnoreUnknown=true", "", "[192.0.2.10]"},
		{"IgnoreUnknown=TRUE", "IgnoreUnknown=TRUE;X=1", "", "[]"},
		{"IgnoreUnknown=0 without unknown keys", "IgnoreUnknown=0;IP=192.0.2.10", "", "[192.0.2.10]"},
		{"args.cni.ips", "", `"args": {"cni": {"ips": ["192.0.2.20", "2001:db8::20/64"]}},`, "[192.0.2.20 2001:db8::20]"},
		{"runtimeConfig.ips", "", `"runtimeConfig": {"ips": ["2001:db8::30/64"]},`, "[2001:db8::30]"},
		{"CNI_ARGS, then args, then runtimeConfig", "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;IP=192.0.2.10, 192.0.2.11",
			`"args": {"cni": {"ips": ["192.0.2.20"]}}, "runtimeConfig": {"ips": ["2001:db8::30/64"]},`,
			"[192.0.2.10 192.0.2.11 192.0.2.20 2001:db8::30]"},
		{"args without cni", "", `"args": {"other": {"x": 1}},`, "[]"},
	} {
		n, err := Load([]byte(conf(`, "ranges": [[{"subnet": "192.0.2.0/24"}]]`, tc.top)), tc.args)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		expect(t, tc.name, fmt.Sprint(n.Requested), tc.want)
	}
}

// TestLoadRejectsRequestedAddresses: malformed CNI_ARGS are BadEnvironment (CNI
// code 4), a value that is not an address is Invalid (code 7).
func TestLoadRejectsRequestedAddresses(t *testing.T) {
	for _, tc := range []struct {
		name, args, top string
		kind            Kind
		mention         string
	}{
		{"pair without =", "IP", "", BadEnvironment, `invalid pair "IP"`},
		{"two = in a pair", "IP=192.0.2.1=2", "", BadEnvironment, "invalid pair"},
		{"trailing ;", "IP=192.0.2.1;", "", BadEnvironment, `invalid pair ""`},
		{"only ;", ";", "", BadEnvironment, "invalid pair"},
		{"pair without = despite IgnoreUnknown", "IgnoreUnknown=1;X", "", BadEnvironment, `invalid pair "X"`},
		{"unknown key", "FOO=bar", "", BadEnvironment, "IgnoreUnknown"},
		{"unknown key, IgnoreUnknown=0", "IgnoreUnknown=0;FOO=1", "", BadEnvironment, "FOO=1"},
		{"unknown key, IgnoreUnknown=false", "FOO=1;IgnoreUnknown=false", "", BadEnvironment, "FOO=1"},
		{"IgnoreUnknown not a boolean", "IgnoreUnknown=maybe;FOO=1", "", BadEnvironment, "IgnoreUnknown"},
		{"empty key", "=x", "", BadEnvironment, "unknown arguments"},
		{"key case matters", "Ip=192.0.2.1", "", BadEnvironment, "Ip=192.0.2.1"},
		{"IP not an address", "IP=300.1.1.1", "", Invalid, "300.1.1.1"},
		{"IP with a zone", "IP=fe80::1%eth0", "", Invalid, "zone"},
		{"IP CIDR not a CIDR", "IP=192.0.2.1/99", "", Invalid, "192.0.2.1/99"},
		{"args.cni.ips not an address", "", `"args": {"cni": {"ips": ["nope"]}},`, Invalid, "nope"},
		{"runtimeConfig.ips not an address", "", `"runtimeConfig": {"ips": ["1.2.3"]},`, Invalid, "1.2.3"},
	} {
		_, err := Load([]byte(conf(`, "ranges": [[{"subnet": "192.0.2.0/24"}]]`, tc.top)), tc.args)
		expectError(t, tc.name, err, tc.kind, tc.mention)
	}
}

// TestLoadPodAsRuntimesSendIt: CNI_ARGS in the shapes real runtimes send
// are accepted on ADD whatever their pod keys hold, and the pod is kept as
// sent (NOTES 25). Whether it is an identity is store's rule, not the
// loader's: a lone name or a name with a slash is no error here.
func TestLoadPodAsRuntimesSendIt(t *testing.T) {
	const ranges = `, "ranges": [[{"subnet": "192.0.2.0/24"}]]`
	for _, tc := range []struct {
		name, args string
		want       *Pod
	}{
		{"containerd and CRI-O", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=5f1c",
			&Pod{Namespace: "shop", Name: "web-0", UID: "5f1c"}},
		{"Multus, IgnoreUnknown=true and its own keys", "IgnoreUnknown=true;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=5f1c;K8S_POD_NETWORK=extra;MAC=02:00:00:00:00:01",
			&Pod{Namespace: "shop", Name: "web-0", UID: "5f1c"}},
		{"podman: a container name alone", "IgnoreUnknown=1;K8S_POD_NAME=a", &Pod{Name: "a"}},
		{"a namespace alone", "K8S_POD_NAMESPACE=shop", &Pod{Namespace: "shop"}},
		{"a UID alone", "K8S_POD_UID=1234", &Pod{UID: "1234"}},
		{"empty values", "K8S_POD_NAMESPACE=;K8S_POD_NAME=;K8S_POD_UID=", nil},
		{"a key given twice: the last counts", "K8S_POD_NAMESPACE=a;K8S_POD_NAME=p;K8S_POD_NAMESPACE=b", &Pod{Namespace: "b", Name: "p"}},
		{"a name Kubernetes cannot have", "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=a/b", &Pod{Namespace: "ns", Name: "a/b"}},
		{"no pod keys", "IgnoreUnknown=1;FOO=bar", nil},
	} {
		n, err := Load([]byte(conf(ranges, "")), tc.args)
		if err != nil {
			t.Errorf("%s: CNI_ARGS %q: %v", tc.name, tc.args, err)
			continue
		}
		if diff := cmp.Diff(tc.want, n.Pod); diff != "" {
			t.Errorf("%s: pod (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestLoadNetworkIgnoresRequests: what DEL, CHECK, GC and STATUS load
// reads no CNI_ARGS and no requested addresses, so that what made an ADD
// fail (or anything else a runtime sends) cannot make them fail too.
func TestLoadNetworkIgnoresRequests(t *testing.T) {
	const ranges = `, "ranges": [[{"subnet": "192.0.2.0/24"}]]`
	top := `"args": {"cni": {"ips": ["nope"]}}, "runtimeConfig": {"ips": ["1.2.3"]},`
	if _, err := Load([]byte(conf(ranges, top)), ""); err == nil {
		t.Fatal("Load accepted requested addresses that are not addresses")
	}
	n, err := LoadNetwork([]byte(conf(ranges, top)))
	if err != nil {
		t.Fatalf("LoadNetwork: %v", err)
	}
	if n.Requested != nil || n.Pod != nil || n.Name == "" || len(n.RangeSets) != 1 {
		t.Fatalf("LoadNetwork read requests or lost the network: %+v", n)
	}
	// A configuration that is wrong is still wrong without requests.
	_, err = LoadNetwork([]byte(conf(`, "ranges": [[{"subnet": "192.0.2.0/24"}]], "sticky": "soon"`, "")))
	expectError(t, "LoadNetwork with a bad sticky", err, Invalid, "sticky")
}

// TestLoadEtcdConfig covers etcdConfig: endpoints, TLS files, the CA
// alias, credentials and the timeout.
func TestLoadEtcdConfig(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		check      func(e Etcd) string // "" when e is right
	}{
		{"several endpoints", `"etcdURL": "https://10.0.0.1:2379, https://10.0.0.2:2379,https://10.0.0.3:2379,", "etcdCertFile": "c", "etcdKeyFile": "k", "etcdTrustedCAFileFile": "ca"`,
			func(e Etcd) string {
				return wantString(strings.Join(e.Endpoints, " "), "https://10.0.0.1:2379 https://10.0.0.2:2379 https://10.0.0.3:2379") +
					wantString(fmt.Sprintln(e.Secure(), e.CertFile, e.KeyFile, e.CAFile), "true c k ca\n")
			}},
		{"host:port endpoints", `"etcdURL": "10.0.0.1:2379,10.0.0.2:2379"`,
			func(e Etcd) string {
				return wantString(fmt.Sprint(e.Endpoints, e.Secure()), "[10.0.0.1:2379 10.0.0.2:2379] false")
			}},
		{"http without TLS files", `"etcdURL": "http://127.0.0.1:2379"`,
			func(e Etcd) string { return wantString(fmt.Sprint(e.Secure(), e.Timeout), "false 8s") }},
		{"http with TLS files that do not exist", `"etcdURL": "http://127.0.0.1:2379", "etcdCertFile": "/nonexistent", "etcdKeyFile": "/nonexistent"`,
			func(e Etcd) string { return wantString(fmt.Sprint(e.Secure()), "false") }},
		{"alias etcdTrustedCAFile", `"etcdURL": "https://a:1", "etcdCertFile": "c", "etcdKeyFile": "k", "etcdTrustedCAFile": "ca"`,
			func(e Etcd) string { return wantString(e.CAFile, "ca") }},
		{"CA under both keys, equal", `"etcdURL": "https://a:1", "etcdCertFile": "c", "etcdKeyFile": "k", "etcdTrustedCAFileFile": "ca", "etcdTrustedCAFile": "ca"`,
			func(e Etcd) string { return wantString(e.CAFile, "ca") }},
		{"username and password", `"etcdURL": "http://a:1", "etcdUsername": "u", "etcdPassword": "p"`,
			func(e Etcd) string { return wantString(e.Username+"/"+e.Password, "u/p") }},
		{"timeout", `"etcdURL": "http://a:1", "etcdTimeout": "1500ms"`,
			func(e Etcd) string { return wantString(e.Timeout.String(), "1.5s") }},
		{"timeout in minutes", `"etcdURL": "http://a:1", "etcdTimeout": "1m"`,
			func(e Etcd) string { return wantString(e.Timeout.String(), "1m0s") }},
		{"default timeout", `"etcdURL": "http://a:1"`,
			func(e Etcd) string { return wantString(e.Timeout.String(), DefaultTimeout.String()) }},
	} {
		n, err := Load([]byte(withEtcd(tc.body)), "")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if msg := tc.check(n.Etcd); msg != "" {
			t.Errorf("%s: %s (%+v)", tc.name, msg, n.Etcd)
		}
	}
	expect(t, "DefaultTimeout", DefaultTimeout, 8*time.Second)
}

// wantString returns "" when got is want, and a complaint otherwise.
func wantString(got, want string) string {
	if got == want {
		return ""
	}
	return fmt.Sprintf("got %q, want %q; ", got, want)
}

func TestLoadRejectsEtcdConfig(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		mentions   []string
	}{
		{"no etcdURL", `"etcdCertFile": "c"`, []string{"etcdURL"}},
		{"empty etcdURL", `"etcdURL": ""`, []string{"etcdURL"}},
		{"only commas", `"etcdURL": " , "`, []string{"etcdURL"}},
		{"https without TLS files", `"etcdURL": "https://10.0.0.1:2379"`, []string{"etcdCertFile, etcdKeyFile, etcdTrustedCAFileFile are not set"}},
		{"https without key", `"etcdURL": "https://10.0.0.1:2379", "etcdCertFile": "c", "etcdTrustedCAFileFile": "ca"`, []string{"etcdKeyFile is not set"}},
		{"https without cert", `"etcdURL": "https://10.0.0.1:2379", "etcdKeyFile": "k", "etcdTrustedCAFile": "ca"`, []string{"etcdCertFile is not set"}},
		{"https without CA", `"etcdURL": "https://10.0.0.1:2379", "etcdCertFile": "c", "etcdKeyFile": "k"`, []string{"etcdTrustedCAFileFile is not set"}},
		{"one https endpoint among host:port", `"etcdURL": "10.0.0.1:2379,https://10.0.0.2:2379"`, []string{"etcdCertFile, etcdKeyFile, etcdTrustedCAFileFile"}},
		{"http and https mixed", `"etcdURL": "http://10.0.0.1:2379,https://10.0.0.2:2379", "etcdCertFile": "c", "etcdKeyFile": "k", "etcdTrustedCAFileFile": "ca"`, []string{"mixes", "http://10.0.0.1:2379", "https://10.0.0.2:2379"}},
		{"CA and alias differ", `"etcdURL": "http://a:1", "etcdTrustedCAFileFile": "a", "etcdTrustedCAFile": "b"`, []string{"differ", `"a"`, `"b"`}},
		{"username without password", `"etcdURL": "http://a:1", "etcdUsername": "u"`, []string{"etcdPassword"}},
		{"password without username", `"etcdURL": "http://a:1", "etcdPassword": "p"`, []string{"etcdUsername"}},
		{"timeout not a duration", `"etcdURL": "http://a:1", "etcdTimeout": "soon"`, []string{"etcdTimeout", `"soon"`}},
		{"timeout without unit", `"etcdURL": "http://a:1", "etcdTimeout": "10"`, []string{"etcdTimeout"}},
		{"negative timeout", `"etcdURL": "http://a:1", "etcdTimeout": "-1s"`, []string{"etcdTimeout"}},
		{"zero timeout", `"etcdURL": "http://a:1", "etcdTimeout": "0s"`, []string{"etcdTimeout"}},
		{"other scheme", `"etcdURL": "ftp://a:1"`, []string{"ftp://a:1", "not a URL"}},
		{"unix socket", `"etcdURL": "unix:///run/etcd.sock"`, []string{"not a URL"}},
		{"URL without host", `"etcdURL": "https://"`, []string{"not a URL"}},
		{"URL that does not parse", `"etcdURL": "http://[::1"`, []string{"not a URL"}},
	} {
		_, err := Load([]byte(withEtcd(tc.body)), "")
		expectError(t, tc.name, err, Invalid, tc.mentions...)
	}
}

func TestLoadCore(t *testing.T) {
	for _, tc := range []struct{ ipam, want string }{
		{"", "native"},
		{`, "core": ""`, "native"},
		{`, "core": "native"`, "native"},
		{`, "core": "wasm"`, "wasm"},
	} {
		n, err := Load([]byte(conf(tc.ipam, "")), "")
		if err != nil {
			t.Errorf("core %q: %v", tc.ipam, err)
			continue
		}
		expect(t, "core "+tc.ipam, n.Core, tc.want)
	}
	for _, core := range []string{"jit", "Native", "WASM", " native"} {
		_, err := Load([]byte(conf(`, "core": "`+core+`"`, "")), "")
		expectError(t, "core "+core, err, Invalid, `"core"`, core, `"native"`)
		if want := fmt.Sprintf(`ipam "core" is %q; use "native" (the default) or "wasm"`, core); err != nil && err.Error() != want {
			t.Errorf("core %q: message %q, want %q", core, err, want)
		}
	}
}

// routeColumn is where the second route starts in TestLoadRejects' "route
// dst not a CIDR" case.
var routeColumn = 1 + strings.Index(conf(`, "ranges": [[{"subnet": "192.0.2.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}, {"dst": "nowhere"}]`, ""), `{"dst": "nowhere"}`)

// TestLoadRejects covers configurations that are not JSON, not a JSON
// object, of the wrong types, or missing required members.
func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		kind        Kind
		mentions    []string
	}{
		{"empty", "", Undecodable, []string{"empty"}},
		{"only whitespace", " \n\t", Undecodable, []string{"not valid JSON"}},
		{"broken JSON", `{"name": "x", "ipam": {"type": "etcd" "ranges": []}}`, Undecodable, []string{"line 1, column 39", `near`, `"etcd" "ranges"`}},
		{"error on the third line", "{\n  \"name\": \"x\",\n  \"ipam\": {,}\n}", Undecodable, []string{"line 3, column 12"}},
		{"unterminated", `{"name": "x", "ipam": {`, Undecodable, []string{"line 1, column", "unexpected end"}},
		{"trailing garbage", `{"name": "x"} x`, Undecodable, []string{"line 1, column 15", "after top-level value"}},
		{"array", `[1, 2]`, Undecodable, []string{"JSON object"}},
		{"number", `42`, Undecodable, []string{"JSON object"}},
		{"string", `"conf"`, Undecodable, []string{"JSON object"}},
		{"null", `null`, Undecodable, []string{"JSON object"}},
		{"ranges a string", conf(`, "ranges": "x"`, ""), Undecodable, []string{"line 1, column", "ipam.ranges", `"ranges": "x"`}},
		{"range set not a list", conf(`, "ranges": [{"subnet": "192.0.2.0/24"}]`, ""), Undecodable, []string{"ipam.ranges", "line 1, column"}},
		{"subnet a number", conf(`, "ranges": [[{"subnet": 5}]]`, ""), Undecodable, []string{"ranges.subnet", "number", "line 1, column"}},
		{"top-level subnet a number", conf(`, "subnet": 24`, ""), Undecodable, []string{"ipam.subnet"}},
		{"route dst not a CIDR", conf(`, "ranges": [[{"subnet": "192.0.2.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}, {"dst": "nowhere"}]`, ""), Undecodable,
			[]string{`"routes"`, "nowhere", fmt.Sprintf("line 1, column %d", routeColumn), `{"dst": "n`}},
		{"route dst not a CIDR on line 3", "{\"cniVersion\": \"1.0.0\", \"name\": \"n\",\n \"ipam\": {\"type\": \"etcd\", \"etcdConfig\": {\"etcdURL\": \"http://a:1\"},\n  \"routes\": [{\"dst\": \"10.0.0.1\"}]}}", Undecodable,
			[]string{`"routes"`, "line 3, column 14", "10.0.0.1"}},
		{"route gw not an address", conf(`, "routes": [{"dst": "0.0.0.0/0", "gw": "router"}]`, ""), Undecodable, []string{`"routes"`, "router"}},
		{"route dst a number", conf(`, "routes": [{"dst": 5}]`, ""), Undecodable, []string{`"routes"`, "line 1, column"}},
		{"routes an object", conf(`, "routes": {"dst": "0.0.0.0/0"}`, ""), Undecodable, []string{"ipam.routes"}},
		{"name a number", `{"cniVersion": "1.0.0", "name": 5, "ipam": {}}`, Undecodable, []string{"name", "number"}},
		{"ipam a list", `{"cniVersion": "1.0.0", "name": "n", "ipam": []}`, Undecodable, []string{"ipam"}},
		{"etcdConfig a string", conf(`, "etcdConfig": "http://a:1"`, ""), Undecodable, []string{"etcdConfig"}},
		{"etcdURL a list", conf(`, "etcdConfig": {"etcdURL": ["http://a:1"]}`, ""), Undecodable, []string{"etcdURL"}},
		{"nodeName a number", conf(`, "nodeName": 7`, ""), Undecodable, []string{"nodeName"}},
		{"runtimeConfig.ips a number", conf("", `"runtimeConfig": {"ips": 5},`), Undecodable, []string{"runtimeConfig.ips"}},
		{"ipRanges a string", conf("", `"runtimeConfig": {"ipRanges": "x"},`), Undecodable, []string{"runtimeConfig.ipRanges"}},
		{"args.cni.ips a string", conf("", `"args": {"cni": {"ips": "192.0.2.1"}},`), Undecodable, []string{"args.cni.ips"}},
		{"valid-attachments a number", conf("", `"cni.dev/valid-attachments": 5,`), Undecodable, []string{"valid-attachments"}},
		{"no ipam", `{"cniVersion": "1.0.0", "name": "n"}`, Invalid, []string{`"ipam"`}},
		{"ipam null", `{"cniVersion": "1.0.0", "name": "n", "ipam": null}`, Invalid, []string{`"ipam"`}},
		{"no name", `{"cniVersion": "1.0.0", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://a:1"}}}`, Invalid, []string{`"name"`}},
		{"empty name", `{"cniVersion": "1.0.0", "name": "", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://a:1"}}}`, Invalid, []string{`"name"`}},
		{"no etcdConfig", `{"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "etcd"}}`, Invalid, []string{"etcdConfig"}},
		{"etcdConfig null", `{"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "etcd", "etcdConfig": null}}`, Invalid, []string{"etcdConfig"}},
	} {
		_, err := Load([]byte(tc.stdin), "")
		expectError(t, tc.name, err, tc.kind, tc.mentions...)
	}
}

// TestConfigCheckJSON: the check the plugin runs on stdin before anything else.
func TestConfigCheckJSON(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		kind        Kind
		mention     string
	}{
		{"object", `{"name": "n"}`, 0, ""},
		{"empty object", `{}`, 0, ""},
		{"object with spaces around", " \n{}\n ", 0, ""},
		{"non-UTF-8 inside a string", "{\"name\": \"n\xff\"}", 0, ""},
		{"empty", "", Undecodable, "empty"},
		{"broken", `{"a": }`, Undecodable, "line 1, column 7"},
		{"two objects", `{} {}`, Undecodable, "after top-level value"},
		{"array", `[]`, Undecodable, "JSON object"},
		{"number", `1`, Undecodable, "JSON object"},
		{"true", `true`, Undecodable, "JSON object"},
		{"null", `null`, Undecodable, "JSON object"},
		{"non-UTF-8 outside a string", "{\"a\": 1}\xff", Undecodable, "line 1, column"},
	} {
		err := CheckJSON([]byte(tc.stdin))
		if tc.kind == 0 {
			if err != nil {
				t.Errorf("%s: %v, want no error", tc.name, err)
			}
			continue
		}
		expectError(t, tc.name, err, tc.kind, tc.mention)
	}
}

// FuzzLoad feeds arbitrary configurations and CNI_ARGS: Load must never
// panic, every error must be an *Error of a kind a user can act on,
// and a configuration it accepts must be usable.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(conf(`, "ranges": [[{"subnet": "192.0.2.0/24"}]]`, "")), "IP=192.0.2.5")
	f.Add([]byte(conf(`, "subnet": "192.0.2.0/24", "routes": [{"dst": "0.0.0.0/0", "gw": "192.0.2.1"}]`,
		`"args": {"cni": {"ips": ["192.0.2.7"]}}, "runtimeConfig": {"ips": ["192.0.2.8/24"], "ipRanges": [[{"subnet": "2001:db8::/64"}]]},`)),
		"IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=x;ip=192.0.2.5,2001:db8::5")
	f.Add([]byte(`{"name": "x", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "https://a:1", "etcdTimeout": "2s"}}}`), "")
	f.Add([]byte(withEtcd(`"etcdURL": "https://a:1,https://b:2", "etcdCertFile": "c", "etcdKeyFile": "k", "etcdTrustedCAFile": "ca", "etcdUsername": "u", "etcdPassword": "p"`)), "IP=")
	f.Add([]byte(`{"ipam": {"subnet": 1}}`), "IgnoreUnknown=1;A=B")
	f.Add([]byte("{\n \"a\": [\n"), "IP;=")
	f.Add([]byte(`[]`), "")
	f.Add([]byte(conf(`, "cooldown": "999ms", "ranges": [[{"subnet": "192.0.2.0/24"}]]`, "")), "")
	f.Add([]byte(conf(`, "nodeName": "a\u202eb", "sticky": "2500001h", "ranges": [[{"subnet": "192.0.2.0/24"}]]`, "")), "")
	f.Fuzz(func(t *testing.T, stdin []byte, args string) {
		n, err := Load(stdin, args)
		if err != nil {
			switch kindOf(err) {
			case BadEnvironment, Undecodable, Invalid:
			default:
				t.Fatalf("Load error %v (%T) is not an *Error of a known kind", err, err)
			}
			return
		}
		if n == nil || n.Name == "" || len(n.Etcd.Endpoints) == 0 || n.Etcd.Timeout <= 0 || (n.Core != "native" && n.Core != "wasm") {
			t.Fatalf("Load accepted an unusable configuration: %+v", n)
		}
		for _, a := range n.Requested {
			if !a.IsValid() || a.Zone() != "" {
				t.Fatalf("Load accepted requested address %v", a)
			}
		}
		if n.NodeName != "" && CheckNodeName("nodeName", n.NodeName) != nil {
			t.Fatalf("Load accepted nodeName %q", n.NodeName)
		}
		if n.Sticky < 0 || n.Sticky > MaxLeaseDuration {
			t.Fatalf("Load accepted sticky %v", n.Sticky)
		}
		if n.Cooldown != 0 && (n.Cooldown < time.Second || n.Cooldown > MaxLeaseDuration) {
			t.Fatalf("Load accepted cooldown %v", n.Cooldown)
		}
	})
}

// FuzzParseCNIArgs feeds arbitrary CNI_ARGS strings to the argument parser
// alone: it must never panic; what it accepts must be clean address
// candidates (trimmed, non-empty, without separators); and writing them
// back as one IP= pair must parse to the same list.
func FuzzParseCNIArgs(f *testing.F) {
	for _, seed := range []string{
		"", "IP=192.0.2.5", "ip=192.0.2.5,2001:db8::5", "IgnoreUnknown=1;K8S_POD_NAME=x;IP=192.0.2.7",
		"IP=", "IP;=", "IP==", "IgnoreUnknown=maybe", "IP=1;IP=2", " IP = 1 ", "IP=a,,b, ,c", ";;",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, args string) {
		parsed, err := parseCNIArgs(args)
		ips := parsed.ips
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error message")
			}
			return
		}
		for _, ip := range ips {
			if ip == "" || ip != strings.TrimSpace(ip) || strings.ContainsAny(ip, ",;=") {
				t.Fatalf("parseCNIArgs(%q) returned the unclean item %q", args, ip)
			}
		}
		if len(ips) == 0 {
			return
		}
		again, err := parseCNIArgs("IP=" + strings.Join(ips, ","))
		if err != nil || strings.Join(again.ips, ",") != strings.Join(ips, ",") {
			t.Fatalf("parseCNIArgs(%q) = %q, but writing that back parses to %q, %v", args, ips, again.ips, err)
		}
	})
}

// TestNodeNameMustBePrintable: a node name is stored and shown by the CLI;
// one a terminal would obey (a newline, an escape, a bidi override) or
// longer than a Kubernetes node name can be is a configuration error,
// wherever it comes from: ipam "nodeName", ETCD_IPAM_NODE_NAME or
// (checked the same way) the host name.
func TestNodeNameMustBePrintable(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == NodeNameEnv {
				return v
			}
			return ""
		}
	}
	const ranges = `, "ranges": [[{"subnet": "192.0.2.0/24"}]]`
	for _, tc := range []struct{ name, mention string }{
		{`a\nb`, "U+000A"},
		{`\u202eevil`, "U+202E"},
		{`node\u001b[2J`, "U+001B"},
		{`zero\u200bwidth`, "U+200B"},
		{strings.Repeat("n", 254), "253"},
	} {
		_, err := Load([]byte(conf(ranges+`, "nodeName": "`+tc.name+`"`, "")), "")
		expectError(t, "nodeName "+tc.name, err, Invalid, `"nodeName"`, tc.mention)
		var decoded string
		if err := json.Unmarshal([]byte(`"`+tc.name+`"`), &decoded); err != nil {
			t.Fatal(err)
		}
		_, err = (&Network{}).Node(env(decoded))
		expectError(t, NodeNameEnv+" "+tc.name, err, Invalid, NodeNameEnv, tc.mention)
	}
	for _, name := range []string{"node-a", "ip-10-0-0-1.eu-west-1.compute.internal", "nœud-é", strings.Repeat("n", 253)} {
		n, err := Load([]byte(conf(ranges+`, "nodeName": "`+name+`"`, "")), "")
		if err != nil {
			t.Fatalf("nodeName %q: %v", name, err)
		}
		if got, err := n.Node(env("")); got != name || err != nil {
			t.Fatalf("nodeName %q: Node() = %q, %v", name, got, err)
		}
		if got, err := (&Network{}).Node(env(name)); got != name || err != nil {
			t.Fatalf("%s %q: Node() = %q, %v", NodeNameEnv, name, got, err)
		}
	}
}

// TestNodeOrder: ipam "nodeName" wins over ETCD_IPAM_NODE_NAME, which wins
// over the node name file the installer writes, which wins over the host
// name; the plugin and the CLI all ask Network.Node.
func TestNodeOrder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "node-name")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	blank := filepath.Join(dir, "blank")
	if err := os.WriteFile(blank, []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(name, file string) func(string) string {
		return func(k string) string {
			switch k {
			case NodeNameEnv:
				return name
			case NodeNameFileEnv:
				return file
			}
			return ""
		}
	}
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name here: %v", err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		key, env, file, want string
	}{
		{"from-config", "from-env", file, "from-config"},
		{"", "from-env", file, "from-env"},
		{"", "", file, "from-file"},
		{"", "", blank, host},
		{"", "", missing, host},
	} {
		n := &Network{NodeName: tc.key}
		if got, err := n.Node(env(tc.env, tc.file)); err != nil || got != tc.want {
			t.Errorf("nodeName %q, env %q, file %s: Node() = %q, %v; want %q", tc.key, tc.env, tc.file, got, err, tc.want)
		}
	}
	// A file that is there but cannot be read, or names what no node can
	// be, is an error naming it, not a silent fall back to the host name.
	for _, bad := range []string{dir, writeFile(t, dir, "control", "a\x1b[2Jb")} {
		_, err := (&Network{}).Node(env("", bad))
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("node name file %s: %v, want an error naming it", bad, err)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPodIdentityAndSticky covers what the address policy reads: the pod
// identity Kubernetes runtimes pass in CNI_ARGS (known keys, without
// IgnoreUnknown) and ipam "sticky".
func TestPodIdentityAndSticky(t *testing.T) {
	const ranges = `, "ranges": [[{"subnet": "192.0.2.0/24"}]]`
	n, err := Load([]byte(conf(ranges+`, "sticky": "24h"`, "")),
		"K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_UID=5f1c;K8S_POD_INFRA_CONTAINER_ID=abc;IP=192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if n.Pod == nil || *n.Pod != (Pod{Namespace: "shop", Name: "web-0", UID: "5f1c"}) || n.Sticky != 24*time.Hour || len(n.Requested) != 1 {
		t.Fatalf("pod %+v, sticky %v, requested %v", n.Pod, n.Sticky, n.Requested)
	}
	if n, err := Load([]byte(conf(ranges, "")), "IgnoreUnknown=1"); err != nil || n.Pod != nil || n.Sticky != 0 {
		t.Fatalf("without pod or sticky: %+v, %v", n, err)
	}
	for _, tc := range []struct{ sticky, mention string }{
		{`"tomorrow"`, "not a duration"},
		{`"0s"`, "at least 1s"},
		{`"-5m"`, "at least 1s"},
		{`"500ms"`, "at least 1s"},
		// etcd cannot grant a lease this long: every DEL would fail.
		{`"2500001h"`, "at most 2500000h"},
		{`"2562047h47m16.854775807s"`, "at most 2500000h"},
	} {
		_, err := Load([]byte(conf(ranges+`, "sticky": `+tc.sticky, "")), "")
		expectError(t, "sticky "+tc.sticky, err, Invalid, tc.mention)
	}
	if n, err := Load([]byte(conf(ranges+`, "sticky": "2500000h"`, "")), ""); err != nil || n.Sticky != MaxLeaseDuration {
		t.Fatalf("sticky as long as etcd's longest lease: %v, %v", n, err)
	}
}

// TestCooldown covers ipam "cooldown": a lease duration, bounded as
// sticky's is, each error naming the key and what to write instead.
func TestCooldown(t *testing.T) {
	const ranges = `, "ranges": [[{"subnet": "192.0.2.0/24"}]]`
	n, err := Load([]byte(conf(ranges+`, "cooldown": "30s", "sticky": "1h"`, "")), "")
	if err != nil || n.Cooldown != 30*time.Second || n.Sticky != time.Hour {
		t.Fatalf("cooldown 30s with sticky 1h: %+v, %v", n, err)
	}
	if n, err := Load([]byte(conf(ranges, "")), ""); err != nil || n.Cooldown != 0 {
		t.Fatalf("without cooldown: %+v, %v", n, err)
	}
	for _, tc := range []struct{ cooldown, mention string }{
		{`"a while"`, `ipam "cooldown" is "a while", not a duration`},
		{`"0s"`, "at least 1s (leave \"cooldown\" out"},
		{`"900ms"`, "at least 1s"},
		{`"-1m"`, "at least 1s"},
		{`"2500001h"`, "at most 2500000h"},
	} {
		_, err := Load([]byte(conf(ranges+`, "cooldown": `+tc.cooldown, "")), "")
		expectError(t, "cooldown "+tc.cooldown, err, Invalid, tc.mention)
	}
	if n, err := Load([]byte(conf(ranges+`, "cooldown": "2500000h"`, "")), ""); err != nil || n.Cooldown != MaxLeaseDuration {
		t.Fatalf("cooldown as long as etcd's longest lease: %v, %v", n, err)
	}
}
