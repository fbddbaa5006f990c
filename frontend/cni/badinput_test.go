package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// TestBadInputGivesOneCNIError runs the plugin binary on malformed input:
// each case must exit non-zero, print exactly one CNI error object (and
// nothing else) on stdout with the expected code, and write nothing to etcd.
func TestBadInputGivesOneCNIError(t *testing.T) {
	srv := etcdtest.Start(t)
	good := func(ipam string) string {
		return `{"cniVersion": "1.0.0", "name": "bad", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() + `"}, ` + ipam + `}}`
	}
	ranges := `"ranges": [[{"subnet": "203.0.113.0/24"}]]`
	for _, tc := range []struct {
		name    string
		inv     invocation
		code    uint
		mention string
	}{
		{"empty stdin", invocation{Command: "ADD", ContainerID: "c", Config: ""}, 6, "empty"},
		{"broken JSON", invocation{Command: "ADD", ContainerID: "c", Config: `{"cniVersion": "1.0.0", "name": "bad" "ipam": {}}`}, 6, "line 1, column"},
		{"null", invocation{Command: "ADD", ContainerID: "c", Config: `null`}, 6, "JSON object"},
		{"unknown cniVersion", invocation{Command: "ADD", ContainerID: "c", Config: strings.Replace(good(ranges), "1.0.0", "9.9.9", 1)}, 1, "incompatible"},
		{"too old cniVersion", invocation{Command: "ADD", ContainerID: "c", Config: strings.Replace(good(ranges), "1.0.0", "0.2.0", 1)}, 1, "incompatible"},
		{"missing container ID", invocation{Command: "ADD", Config: good(ranges)}, 4, "CNI_CONTAINERID"},
		{"unknown command", invocation{Command: "FROB", ContainerID: "c", Config: good(ranges)}, 4, "FROB"},
		{"bad CNI_ARGS", invocation{Command: "ADD", ContainerID: "c", Config: good(ranges), Args: "NOPE"}, 4, "invalid pair"},
		{"unknown CNI_ARGS key", invocation{Command: "ADD", ContainerID: "c", Config: good(ranges), Args: "FOO=1"}, 4, "IgnoreUnknown"},
		{"no ranges", invocation{Command: "ADD", ContainerID: "c", Config: good(`"routes": []`)}, 7, "no IP ranges"},
		{"host bits set", invocation{Command: "ADD", ContainerID: "c", Config: good(`"ranges": [[{"subnet": "203.0.113.9/24"}]]`)}, 7, "range set 0, range 0"},
		{"subnet too small", invocation{Command: "ADD", ContainerID: "c", Config: good(`"ranges": [[{"subnet": "203.0.113.0/31"}]]`)}, 7, "too small"},
		{"rangeStart outside", invocation{Command: "ADD", ContainerID: "c", Config: good(`"ranges": [[{"subnet": "203.0.113.0/24", "rangeStart": "198.51.100.1"}]]`)}, 7, "rangeStart"},
		{"overlapping sets", invocation{Command: "ADD", ContainerID: "c", Config: good(`"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "203.0.113.0/25"}]]`)}, 7, "range set 0 overlaps with range set 1"},
		{"mixed families", invocation{Command: "ADD", ContainerID: "c", Config: good(`"ranges": [[{"subnet": "203.0.113.0/24"}, {"subnet": "2001:db8::/64"}]]`)}, 7, "mixed address families"},
		{"requested gateway", invocation{Command: "ADD", ContainerID: "c", Config: good(ranges), Args: "IP=203.0.113.1"}, 101, "gateway"},
		{"requested outside", invocation{Command: "ADD", ContainerID: "c", Config: good(ranges), Args: "IP=198.51.100.7"}, 101, "198.51.100.7"},
		{"unknown core", invocation{Command: "ADD", ContainerID: "c", Config: good(ranges + `, "core": "quantum"`)}, 7, "quantum"},
		{"DEL with broken ranges", invocation{Command: "DEL", ContainerID: "c", Config: good(`"ranges": [[{"subnet": "nonsense"}]]`)}, 7, "nonsense"},
		{"non-UTF-8 in a string", invocation{Command: "ADD", ContainerID: "c", Config: good(`"ranges": [[{"subnet": "203.0.113.0/24` + "\xff" + `"}]]`)}, 7, "range set 0"},
		{"10 MB config", invocation{Command: "ADD", ContainerID: "c", Config: good(`"padding": "` + strings.Repeat("x", 10<<20) + `", "ranges": [[{"subnet": "nonsense"}]]`)}, 7, "nonsense"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, tc.inv)
			if out.ExitCode == 0 {
				t.Fatalf("succeeded: %s", out.Stdout)
			}
			dec := json.NewDecoder(bytes.NewReader(out.Stdout))
			var e cniError
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("stdout is not a CNI error: %v: %q", err, out.Stdout)
			}
			if dec.More() || len(bytes.TrimSpace(out.Stdout[dec.InputOffset():])) != 0 {
				t.Errorf("stdout holds more than one JSON object: %q", out.Stdout)
			}
			if e.Code != tc.code || !strings.Contains(e.Msg+" "+e.Details, tc.mention) {
				t.Errorf("error %d %q (%s), want code %d mentioning %q", e.Code, e.Msg, e.Details, tc.code, tc.mention)
			}
			if strings.Contains(string(out.Stderr), "panic") {
				t.Errorf("stderr shows a panic: %s", out.Stderr)
			}
		})
	}
	resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/networks/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	// Only the requested-address failures reach etcd, and they may leave
	// nothing but round-robin positions (none, with one range set failing).
	keys, _ := srv.Client(t).Get(t.Context(), "/etcd-cni/networks/bad/ips/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if keys.Count != 0 {
		t.Errorf("bad input left %d address keys in etcd (total keys %d)", keys.Count, resp.Count)
	}
}
