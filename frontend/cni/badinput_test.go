package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// oneCNIError checks that stdout is exactly one CNI error object, valid
// UTF-8 and of a sane size, with nothing before or after it, and returns it.
func oneCNIError(t *testing.T, stdout []byte) cniError {
	t.Helper()
	if !utf8.Valid(stdout) {
		t.Errorf("stdout is not valid UTF-8: %q", stdout)
	}
	if len(stdout) > 64<<10 {
		t.Errorf("stdout holds %d bytes; an error message should not echo its input", len(stdout))
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(stdout, &members); err != nil {
		t.Fatalf("stdout is not one JSON object (%v): %q", err, stdout)
	}
	for k := range members {
		switch k {
		case "cniVersion", "code", "msg", "details":
		default:
			t.Errorf("error object has member %q; CNI errors have cniVersion, code, msg, details", k)
		}
	}
	var e cniError
	dec := json.NewDecoder(bytes.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("stdout is not a CNI error (%v): %q", err, stdout)
	}
	if rest := bytes.TrimSpace(stdout[dec.InputOffset():]); len(rest) != 0 {
		t.Errorf("stdout holds more after the error object: %q", rest)
	}
	if e.CNIVersion == "" || e.Msg == "" {
		t.Errorf("error object lacks cniVersion or msg: %+v", e)
	}
	return e
}

// TestBadInputGivesOneCNIError runs the plugin binary on malformed input:
// each case must exit with status 1, print exactly one CNI error object
// (and nothing else) with the expected code, and write nothing to etcd.
func TestBadInputGivesOneCNIError(t *testing.T) {
	srv := etcdtest.Start(t)
	etcd := srv.Client(t)
	config := func(version, name, ipam string) string {
		return `{"cniVersion": "` + version + `", "name": "` + name + `", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() + `"}, ` + ipam + `}}`
	}
	good := func(ipam string) string { return config("1.0.0", "bad", ipam) }
	ranges := `"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8:1::/64"}]]`
	twoIPv4 := `"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "198.51.100.0/24"}]]`
	padding := strings.Repeat("x", 10<<20)
	add := func(conf string) invocation { return invocation{Command: "ADD", ContainerID: "c", Config: conf} }
	withArgs := func(inv invocation, args string) invocation { inv.Args = args; return inv }
	withEnv := func(inv invocation, env ...string) invocation { inv.Env = env; return inv }

	// These cases may move round-robin positions (last-reserved keys) but
	// write nothing else: as in host-local, an ADD that fails on a
	// requested address after other range sets allocated keeps their
	// advanced positions (docs/DESIGN.md).
	movesPositions := map[string]bool{
		"requested gateway of the second set":       true,
		"requested address in no range set":         true,
		"two requested addresses for one range set": true,
	}
	for _, tc := range []struct {
		name     string
		inv      invocation
		code     uint
		mentions []string
	}{
		{"empty stdin", add(""), 6, []string{"empty"}},
		{"only whitespace", add(" \n"), 6, []string{"not valid JSON"}},
		{"broken JSON", add(`{"cniVersion": "1.0.0", "name": "bad" "ipam": {}}`), 6, []string{"line 1, column 39"}},
		{"broken JSON on line 2", add("{\"cniVersion\": \"1.0.0\",\n \"name\": \"bad\",, \"ipam\": {}}"), 6, []string{"line 2, column 16"}},
		{"null", add(`null`), 6, []string{"JSON object"}},
		{"array", add(`[{"cniVersion": "1.0.0"}]`), 6, []string{"JSON object"}},
		{"wrong type", add(good(`"ranges": "203.0.113.0/24"`)), 6, []string{"ranges"}},
		{"unknown cniVersion", add(config("9.9.9", "bad", ranges)), 1, []string{"incompatible"}},
		{"cniVersion before 0.1.0", add(config("0.0.1", "bad", ranges)), 1, []string{"incompatible"}},
		// Results before 0.3.0 hold one address per family (host-local refuses these too).
		{"two IPv4 range sets in 0.2.0", add(config("0.2.0", "bad", twoIPv4)), 7, []string{"cniVersion 0.2.0", "range sets 0, 1", `"0.3.0" or later`}},
		{"two IPv4 range sets in 0.1.0 on DEL", invocation{Command: "DEL", ContainerID: "c", Config: config("0.1.0", "bad", twoIPv4)}, 7, []string{"cniVersion 0.1.0", `"0.3.0" or later`}},
		{"two IPv4 range sets without cniVersion", add(strings.Replace(good(twoIPv4), `"cniVersion": "1.0.0", `, "", 1)), 7, []string{"without cniVersion", "0.1.0", `"0.3.0" or later`}},
		{"two IPv6 range sets in 0.2.0 from runtimeConfig", add(config("0.2.0", "bad", ranges+`}, "runtimeConfig": {"ipRanges": [[{"subnet": "2001:db8:2::/64"}]]}, "y": {"z": 1`)), 7, []string{"IPv6 range sets (range sets 0, 2)"}},
		{"CHECK in 0.2.0", invocation{Command: "CHECK", ContainerID: "c", Config: config("0.2.0", "bad", ranges)}, 1, []string{"CHECK"}},
		{"GC in 0.1.0", invocation{Command: "GC", Config: config("0.1.0", "bad", ranges)}, 1, []string{"GC"}},
		{"GC in 1.0.0", invocation{Command: "GC", Config: config("1.0.0", "bad", ranges)}, 1, []string{"GC"}},
		{"STATUS in 0.2.0", invocation{Command: "STATUS", Config: config("0.2.0", "bad", ranges)}, 1, []string{"STATUS"}},
		{"missing CNI_CONTAINERID", invocation{Command: "ADD", Config: good(ranges)}, 4, []string{"CNI_CONTAINERID"}},
		{"missing CNI_CONTAINERID on DEL", invocation{Command: "DEL", Config: good(ranges)}, 4, []string{"CNI_CONTAINERID"}},
		{"missing CNI_IFNAME", withEnv(add(good(ranges)), "CNI_IFNAME="), 4, []string{"CNI_IFNAME"}},
		{"missing CNI_NETNS on ADD", withEnv(add(good(ranges)), "CNI_NETNS="), 4, []string{"CNI_NETNS"}},
		{"missing CNI_PATH", withEnv(add(good(ranges)), "CNI_PATH="), 4, []string{"CNI_PATH"}},
		{"container ID with a space", invocation{Command: "ADD", ContainerID: "a b", Config: good(ranges)}, 4, []string{"containerID"}},
		{"interface name with a slash", invocation{Command: "ADD", ContainerID: "c", IfName: "eth0/x", Config: good(ranges)}, 4, []string{"interface name"}},
		{"unknown command", invocation{Command: "FROB", ContainerID: "c", Config: good(ranges)}, 4, []string{"FROB"}},
		{"CNI_ARGS pair without =", withArgs(add(good(ranges)), "NOPE"), 4, []string{"invalid pair"}},
		{"CNI_ARGS unknown key", withArgs(add(good(ranges)), "FOO=1"), 4, []string{"IgnoreUnknown"}},
		{"CNI_ARGS bad IgnoreUnknown", withArgs(add(good(ranges)), "IgnoreUnknown=perhaps;FOO=1"), 4, []string{"IgnoreUnknown"}},
		{"CNI_ARGS IP not an address", withArgs(add(good(ranges)), "IP=203.0.113.300"), 7, []string{"203.0.113.300"}},
		{"no ranges", add(good(`"routes": []`)), 7, []string{"no IP ranges"}},
		{"host bits set", add(good(`"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "198.51.100.9/24"}]]`)), 7, []string{"range set 1", "198.51.100.9/24"}},
		{"a /31", add(good(`"ranges": [[{"subnet": "203.0.113.0/31"}]]`)), 7, []string{"range set 0", "too small"}},
		{"a /127", add(good(`"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8::/127"}]]`)), 7, []string{"range set 1", "too small"}},
		{"rangeStart outside the subnet", add(good(`"ranges": [[{"subnet": "203.0.113.0/24", "rangeStart": "198.51.100.1"}]]`)), 7, []string{"range set 0", "rangeStart"}},
		{"rangeEnd before rangeStart", add(good(`"ranges": [[{"subnet": "203.0.113.0/24", "rangeStart": "203.0.113.50", "rangeEnd": "203.0.113.10"}]]`)), 7, []string{"range set 0", "rangeEnd"}},
		{"overlapping range sets", add(good(`"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "203.0.113.0/25"}]]`)), 7, []string{"range set 0 overlaps with range set 1"}},
		{"mixed families in a range set", add(good(`"ranges": [[{"subnet": "2001:db8::/64"}], [{"subnet": "203.0.113.0/24"}, {"subnet": "2001:db8:1::/64"}]]`)), 7, []string{"range set 1", "mixed address families"}},
		{"deprecated range invalid", add(good(`"subnet": "203.0.113.0/33"`)), 7, []string{"range set 0", "203.0.113.0/33"}},
		{"requested gateway", withArgs(add(good(ranges)), "IP=203.0.113.1"), 101, []string{"203.0.113.1", "gateway"}},
		{"requested gateway of the second set", withArgs(add(good(ranges)), "IP=203.0.113.9,2001:db8:1::1"), 101, []string{"2001:db8:1::1", "gateway"}},
		{"requested address in no range set", withArgs(add(good(ranges)), "IP=198.51.100.7"), 101, []string{"198.51.100.7"}},
		{"unknown core", add(good(ranges + `, "core": "quantum"`)), 7, []string{"quantum"}},
		{"DEL with broken ranges", invocation{Command: "DEL", ContainerID: "c", Config: good(`"ranges": [[{"subnet": "nonsense"}]]`)}, 7, []string{"nonsense"}},
		{"non-UTF-8 in a subnet", add(good(`"ranges": [[{"subnet": "203.0.113.0/24` + "\xff\xfe" + `"}]]`)), 7, []string{"range set 0"}},
		{"non-UTF-8 in the network name", add(config("1.0.0", "bad\xff", ranges)), 7, []string{"network name"}},
		{"non-UTF-8 in CNI_ARGS", withArgs(add(good(ranges)), "IP=203.0.113.7\xff"), 7, []string{"203.0.113.7"}},
		{"10 MB config with invalid ranges", add(good(`"padding": "` + padding + `", "ranges": [[{"subnet": "nonsense"}]]`)), 7, []string{"nonsense"}},
		{"no ipam object", add(`{"cniVersion": "1.0.0", "name": "bad"}`), 7, []string{`"ipam"`}},
		{"no network name", add(`{"cniVersion": "1.0.0", "ipam": {"type": "etcd"}}`), 7, []string{"network name"}},
		{"cniVersion not a string", add(`{"cniVersion": 1, "name": "bad", "ipam": {}}`), 6, []string{"cniVersion"}},
		{"no etcdConfig", add(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", ` + ranges + `}}`), 7, []string{"etcdConfig"}},
		{"empty etcdURL", add(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": " , "}, ` + ranges + `}}`), 7, []string{"etcdURL is empty"}},
		{"etcdURL mixes schemes", add(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://127.0.0.1:1,https://127.0.0.1:2"}, ` + ranges + `}}`), 7, []string{"mixes"}},
		{"etcdURL with another scheme", add(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "ftp://127.0.0.1:2379"}, ` + ranges + `}}`), 7, []string{"ftp://127.0.0.1:2379"}},
		{"etcdTimeout not a duration", add(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() + `", "etcdTimeout": "ten"}, ` + ranges + `}}`), 7, []string{"etcdTimeout", "10s"}},
		{"etcdTimeout negative", add(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() + `", "etcdTimeout": "-1s"}, ` + ranges + `}}`), 7, []string{"etcdTimeout"}},
		{"etcdUsername without password", add(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() + `", "etcdUsername": "u"}, ` + ranges + `}}`), 7, []string{"etcdPassword"}},
		{"contradictory CA keys", add(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() + `", "etcdTrustedCAFileFile": "/a.pem", "etcdTrustedCAFile": "/b.pem"}, ` + ranges + `}}`), 7, []string{"differ"}},
		{"etcdConfig of the wrong type", add(`{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", "etcdConfig": "http://127.0.0.1:2379", ` + ranges + `}}`), 6, []string{"etcdConfig"}},
		{"unknown logLevel", add(good(ranges + `, "logLevel": "loud"`)), 7, []string{"logLevel", "debug"}},
		{"sticky longer than etcd's longest lease", add(good(ranges + `, "sticky": "2500001h"`)), 7, []string{`"sticky"`, "2500000h"}},
		{"sticky that overflows a lease TTL", invocation{Command: "DEL", ContainerID: "c", Config: good(ranges + `, "sticky": "2562047h47m16.854775807s"`)}, 7, []string{`"sticky"`, "2500000h"}},
		{"nodeName with a newline", add(good(ranges + `, "nodeName": "a\nb"`)), 7, []string{`"nodeName"`, "U+000A"}},
		{"nodeName with a bidi override", add(good(ranges + `, "nodeName": "\u202eevil"`)), 7, []string{`"nodeName"`, "U+202E"}},
		{"nodeName longer than a Kubernetes node name", add(good(ranges + `, "nodeName": "` + strings.Repeat("n", 254) + `"`)), 7, []string{`"nodeName"`, "253"}},
		{"node name from the environment with an escape", withEnv(add(good(ranges)), "ETCD_IPAM_NODE_NAME=node\x1b[2J"), 7, []string{"ETCD_IPAM_NODE_NAME", "U+001B"}},
		{"node name from the environment on DEL", withEnv(invocation{Command: "DEL", ContainerID: "c", Config: good(ranges)}, "ETCD_IPAM_NODE_NAME=a\u202eb"), 7, []string{"ETCD_IPAM_NODE_NAME", "U+202E"}},
		{"relative logFile", add(good(ranges + `, "logFile": "ipam.log"`)), 7, []string{"logFile", "absolute"}},
		{"range set not a list", add(good(`"ranges": [{"subnet": "203.0.113.0/24"}]`)), 6, []string{"ranges"}},
		{"rangeStart not an address", add(good(`"ranges": [[{"subnet": "203.0.113.0/24", "rangeStart": "start"}]]`)), 7, []string{"range set 0", "start"}},
		{"route dst not a CIDR", add(good(ranges + `, "routes": [{"dst": "everywhere"}]`)), 6, []string{"everywhere"}},
		{"resolvConf missing", add(good(ranges + `, "resolvConf": "/nonexistent/resolv.conf"`)), 7, []string{"resolvConf"}},
		{"CNI_ARGS IPv6 not an address", withArgs(add(good(ranges)), "IP=2001:db8:1::zz"), 7, []string{"2001:db8:1::zz"}},
		{"two requested addresses for one range set", withArgs(add(good(ranges)), "IP=203.0.113.5,203.0.113.6"), 101, []string{"203.0.113.6"}},
		{"runtimeConfig ips not addresses", add(good(ranges + `, "x": 1}, "runtimeConfig": {"ips": ["here"]}, "y": {"z": 1`)), 7, []string{"here"}},
		{"args.cni.ips of the wrong type", add(good(ranges + `}, "args": {"cni": {"ips": "203.0.113.5"}}, "y": {"z": 1`)), 6, []string{"args"}},
		{"overlong CNI_CONTAINERID", invocation{Command: "ADD", ContainerID: strings.Repeat("c", 2000), Config: good(ranges)}, 4, []string{"CNI_CONTAINERID", "limit"}},
		{"lowercase command", invocation{Command: "add", ContainerID: "c", Config: good(ranges)}, 4, []string{"add"}},
		{"CHECK before 0.4.0", invocation{Command: "CHECK", ContainerID: "c", Config: config("0.3.1", "bad", ranges)}, 1, []string{"CHECK"}},
		{"network name with a slash", add(config("1.0.0", "bad/net", ranges)), 7, []string{"network name"}},
		{"10 MB config, broken at the end", add(good(`"padding": "` + padding + `", ` + ranges)[:len(good(`"padding": "`+padding+`", `+ranges))-1]), 6, []string{"line 1", "unexpected end"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, tc.inv)
			if out.ExitCode != 1 {
				t.Errorf("exit status %d, want 1; stdout %.300q", out.ExitCode, out.Stdout)
			}
			e := oneCNIError(t, out.Stdout)
			t.Logf("cniVersion %q, code %d: %s (%s)", e.CNIVersion, e.Code, e.Msg, e.Details)
			if e.Code != tc.code {
				t.Errorf("code %d (%s; %s), want %d", e.Code, e.Msg, e.Details, tc.code)
			}
			// The error speaks the configuration's version; CNI reads a
			// configuration without one as 0.1.0.
			var conf struct {
				CNIVersion *string `json:"cniVersion"`
			}
			if json.Unmarshal([]byte(tc.inv.Config), &conf) == nil && strings.HasPrefix(tc.inv.Config, "{") {
				want := "0.1.0"
				if conf.CNIVersion != nil {
					want = *conf.CNIVersion
				}
				if slices.Contains(supportedVersions.SupportedVersions(), want) && e.CNIVersion != want {
					t.Errorf("error in cniVersion %q, want %q", e.CNIVersion, want)
				}
			}
			for _, m := range tc.mentions {
				if !strings.Contains(e.Msg+" "+e.Details, m) {
					t.Errorf("error %q (details %q) does not mention %q", e.Msg, e.Details, m)
				}
			}
			if strings.Contains(string(out.Stderr), "panic") {
				t.Errorf("stderr shows a panic: %s", out.Stderr)
			}
			resp, err := etcd.Get(t.Context(), "/etcd-cni/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range resp.Kvs {
				if !movesPositions[tc.name] || !strings.HasPrefix(string(kv.Key), "/etcd-cni/networks/bad/last-reserved/") {
					t.Errorf("bad input wrote %s", kv.Key)
				}
			}
			// Start the next case clean even if this one wrote.
			if _, err := etcd.Delete(t.Context(), "/etcd-cni/", clientv3.WithPrefix()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBadInputWithoutCommand: with CNI_COMMAND unset or empty the plugin
// does what every plugin built on CNI's skel does: it prints what it is to
// stderr and exits 0, with nothing on stdout and nothing written.
func TestBadInputWithoutCommand(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := `{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() + `"}, "ranges": [[{"subnet": "203.0.113.0/24"}]]}}`
	out := run(t, invocation{Command: "", ContainerID: "c", Config: conf})
	if out.ExitCode != 0 || len(out.Stdout) != 0 || !strings.Contains(string(out.Stderr), "CNI protocol versions supported") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0, nothing, the plugin's description", out.ExitCode, out.Stdout, out.Stderr)
	}
	resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Errorf("an invocation without CNI_COMMAND wrote %d keys", resp.Count)
	}
}

// TestBadInputHugeValidConfig: a 10 MB configuration that is otherwise
// right is served like any other (unknown members are ignored, as in
// host-local), and the padding never reaches etcd.
func TestBadInputHugeValidConfig(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := `{"cniVersion": "1.0.0", "name": "huge", "padding": "` + strings.Repeat("x", 10<<20) + `", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` +
		srv.Endpoint() + `"}, "padding": "` + strings.Repeat("y", 1<<20) + `", "ranges": [[{"subnet": "203.0.113.0/24"}]]}}`
	r := parseResult(t, mustSucceed(t, invocation{Command: "ADD", ContainerID: "c", Config: conf}))
	if got := r.summary(); got != "203.0.113.2/24 gw 203.0.113.1" {
		t.Errorf("ADD = %s", got)
	}
	resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if len(kv.Value) > 1024 {
			t.Errorf("%s holds %d bytes", kv.Key, len(kv.Value))
		}
	}
	mustSucceed(t, invocation{Command: "DEL", ContainerID: "c", Config: conf})
}
