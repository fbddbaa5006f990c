package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// conf builds a network configuration with the given ipam body after
// "type" and "etcdConfig", and optional top-level members.
func conf(ipam, top string) string {
	return fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "net", %s "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://127.0.0.1:2379"}%s}}`, top, ipam)
}

func codeOf(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestLoadOrdersRangeSetsLikeHostLocal(t *testing.T) {
	n, err := Load([]byte(conf(`, "subnet": "192.0.2.0/24", "gateway": "192.0.2.254", "ranges": [[{"subnet": "198.51.100.0/24"}]]`,
		`"runtimeConfig": {"ipRanges": [[{"subnet": "2001:db8::/64"}]]},`)), "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, set := range n.RangeSets {
		got = append(got, set[0].Subnet)
	}
	if strings.Join(got, " ") != "2001:db8::/64 192.0.2.0/24 198.51.100.0/24" {
		t.Errorf("range sets in order %v, want runtime ipRanges, top-level range, ranges", got)
	}
	if n.RangeSets[1][0].Gateway != "192.0.2.254" {
		t.Errorf("top-level gateway lost: %+v", n.RangeSets[1][0])
	}
}

func TestLoadRequestedAddresses(t *testing.T) {
	n, err := Load([]byte(conf(`, "ranges": [[{"subnet": "192.0.2.0/24"}]]`,
		`"args": {"cni": {"ips": ["192.0.2.20"]}}, "runtimeConfig": {"ips": ["2001:db8::30/64"]},`)),
		"IgnoreUnknown=1;K8S_POD_NAME=p;IP=192.0.2.10, 192.0.2.11")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{
		netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11"),
		netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("2001:db8::30"),
	}
	if fmt.Sprint(n.Requested) != fmt.Sprint(want) {
		t.Errorf("requested %v, want %v (CNI_ARGS, args, runtimeConfig)", n.Requested, want)
	}
	for args, want := range map[string]string{
		"ip=192.0.2.9":              "[192.0.2.9]",
		"IP=192.0.2.5;IP=192.0.2.6": "[192.0.2.6]", // the last key counts, as in host-local
		"IP=":                       "[]",          // requests nothing, as in host-local
		"IP=192.0.2.5;ip=":          "[]",
	} {
		n, err = Load([]byte(conf(`, "ranges": [[{"subnet": "192.0.2.0/24"}]]`, "")), args)
		if err != nil || fmt.Sprint(n.Requested) != want {
			t.Errorf("CNI_ARGS %q: requested %v (%v), want %s", args, n.Requested, err, want)
		}
	}
}

func TestLoadEtcdConfig(t *testing.T) {
	etcd := func(body string) string {
		return fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "net", "ipam": {"type": "etcd", "etcdConfig": {%s}, "ranges": [[{"subnet": "192.0.2.0/24"}]]}}`, body)
	}
	n, err := Load([]byte(etcd(`"etcdURL": "https://10.0.0.1:2379, https://10.0.0.2:2379", "etcdCertFile": "c", "etcdKeyFile": "k", "etcdTrustedCAFile": "ca", "etcdTimeout": "1500ms"`)), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Etcd.Endpoints) != 2 || n.Etcd.Endpoints[1] != "https://10.0.0.2:2379" || !n.Etcd.Secure() {
		t.Errorf("endpoints %v", n.Etcd.Endpoints)
	}
	if n.Etcd.CAFile != "ca" || n.Etcd.Timeout != 1500*time.Millisecond {
		t.Errorf("alias or timeout not applied: %+v", n.Etcd)
	}
	n, err = Load([]byte(etcd(`"etcdURL": "http://127.0.0.1:2379", "etcdCertFile": "/nonexistent"`)), "")
	if err != nil || n.Etcd.Timeout != DefaultTimeout || n.Etcd.Secure() {
		t.Errorf("plain http with stray TLS files: %+v %v", n, err)
	}
	for _, tc := range []struct {
		name, body, mention string
	}{
		{"no URL", `"etcdURL": ""`, "etcdURL"},
		{"only commas", `"etcdURL": " , "`, "etcdURL"},
		{"https without files", `"etcdURL": "https://10.0.0.1:2379"`, "etcdCertFile, etcdKeyFile, etcdTrustedCAFileFile are not set"},
		{"https without key", `"etcdURL": "https://10.0.0.1:2379", "etcdCertFile": "c", "etcdTrustedCAFileFile": "ca"`, "etcdKeyFile is not set"},
		{"CA and alias differ", `"etcdURL": "http://a:1", "etcdTrustedCAFileFile": "a", "etcdTrustedCAFile": "b"`, "differ"},
		{"user without password", `"etcdURL": "http://a:1", "etcdUsername": "u"`, "etcdPassword"},
		{"bad timeout", `"etcdURL": "http://a:1", "etcdTimeout": "soon"`, "etcdTimeout"},
		{"negative timeout", `"etcdURL": "http://a:1", "etcdTimeout": "-1s"`, "etcdTimeout"},
		{"bad scheme", `"etcdURL": "ftp://a:1"`, "not a URL"},
	} {
		_, err := Load([]byte(etcd(tc.body)), "")
		if codeOf(err) != types.ErrInvalidNetworkConfig || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: %v, want code 7 mentioning %q", tc.name, err, tc.mention)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct {
		name, stdin, args string
		code              uint
		mention           string
	}{
		{"empty", "", "", 6, "empty"},
		{"broken JSON", `{"name": "x", "ipam": {"type": "etcd" "ranges": []}}`, "", 6, "line 1, column"},
		{"second line", "{\n  \"name\": \"x\",\n  \"ipam\": {,}\n}", "", 6, "line 3"},
		{"array", `[1, 2]`, "", 6, "JSON object"},
		{"number", `42`, "", 6, "JSON object"},
		{"null", `null`, "", 6, "JSON object"},
		{"ranges of the wrong type", conf(`, "ranges": "192.0.2.0/24"`, ""), "", 6, "ranges"},
		{"subnet a number", conf(`, "ranges": [[{"subnet": 5}]]`, ""), "", 6, "subnet"},
		{"route dst not a CIDR", conf(`, "ranges": [[{"subnet": "192.0.2.0/24"}]], "routes": [{"dst": "nowhere"}]`, ""), "", 6, "nowhere"},
		{"no ipam", `{"cniVersion": "1.0.0", "name": "n"}`, "", 7, `"ipam"`},
		{"no name", `{"cniVersion": "1.0.0", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://a:1"}}}`, "", 7, `"name"`},
		{"no etcdConfig", `{"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "etcd"}}`, "", 7, "etcdConfig"},
		{"unknown core", conf(`, "core": "jit"`, ""), "", 7, `"core"`},
		{"bad requested ip in args", conf("", `"args": {"cni": {"ips": ["nope"]}},`), "", 7, "nope"},
		{"bad requested ip in CNI_ARGS", conf("", ""), "IP=300.1.1.1", 7, "300.1.1.1"},
		{"unknown CNI_ARGS key", conf("", ""), "FOO=bar", 4, "IgnoreUnknown"},
		{"CNI_ARGS pair without =", conf("", ""), "IP", 4, "invalid pair"},
		{"CNI_ARGS bad IgnoreUnknown", conf("", ""), "IgnoreUnknown=maybe;FOO=1", 4, "IgnoreUnknown"},
	} {
		_, err := Load([]byte(tc.stdin), tc.args)
		if codeOf(err) != tc.code || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: %v, want code %d mentioning %q", tc.name, err, tc.code, tc.mention)
		}
	}
}

func TestLoadAcceptsCoreChoices(t *testing.T) {
	for in, want := range map[string]string{"": "native", `, "core": "native"`: "native", `, "core": "wasm"`: "wasm"} {
		n, err := Load([]byte(conf(in, "")), "")
		if err != nil || n.Core != want {
			t.Errorf("core %q: %v %v, want %s", in, n, err, want)
		}
	}
}

// FuzzLoad feeds arbitrary configurations and CNI_ARGS: Load must never
// panic, and every error must be a CNI error with a code a user can act on.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(conf(`, "ranges": [[{"subnet": "192.0.2.0/24"}]]`, "")), "IP=192.0.2.5")
	f.Add([]byte(`{"name": "x", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "https://a:1"}}}`), "")
	f.Add([]byte(`{"ipam": {"subnet": 1}}`), "IgnoreUnknown=1;A=B")
	f.Fuzz(func(t *testing.T, stdin []byte, args string) {
		_, err := Load(stdin, args)
		if err == nil {
			return
		}
		switch codeOf(err) {
		case types.ErrInvalidEnvironmentVariables, types.ErrDecodingFailure, types.ErrInvalidNetworkConfig:
		default:
			t.Fatalf("Load error %v has no CNI code 4, 6 or 7", err)
		}
	})
}
