package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/internal/testbin"
)

// This file holds a differential test: random sequences of ADD, DEL and
// CHECK run against this plugin and against the reference host-local
// plugin (built from the containernetworking/plugins version in go.mod),
// and every answer must agree.

// paritySeedEnv fixes the test's random seed, to replay a logged failure.
const paritySeedEnv = "PARITY_SEED"

const (
	paritySequences = 8  // random sequences per configuration (more: raise locally)
	parityOps       = 50 // operations per sequence, before the final DELs
)

// parityVersions are rotated across a configuration's sequences; there
// are at least as many sequences as versions, so each sees them all.
// Before 0.3.0 results are ip4/ip6 objects, compared field for field too.
var parityVersions = []string{"0.1.0", "0.2.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// hostLocalPath builds host-local from the module version that go.mod
// requires, once per test binary, next to the plugin under test.
func hostLocalPath(t testing.TB) string {
	t.Helper()
	return testbin.Path(t, "host-local", "github.com/containernetworking/plugins/plugins/ipam/host-local")
}

// parityRange is one range of a configuration, written as in the JSON
// (empty fields are left out, so that both plugins apply their defaults).
type parityRange struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart,omitempty"`
	RangeEnd   string `json:"rangeEnd,omitempty"`
	Gateway    string `json:"gateway,omitempty"`
}

// parityNet is one network configuration of the test.
type parityNet struct {
	name string
	// top is the deprecated single range at the top of "ipam", if any.
	top    *parityRange
	ranges [][]parityRange
	// extra is more JSON inside "ipam" (routes, resolvConf), with a
	// trailing comma.
	extra string
	// outside are addresses in no range of the network.
	outside []string
}

// config renders the network configuration for one plugin; backend is the
// plugin's own part of "ipam" (type and where it keeps state).
func (n parityNet) config(version, name, backend string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"cniVersion": %q, "name": %q, "ipam": {%s, %s`, version, name, backend, n.extra)
	if n.top != nil {
		j, _ := json.Marshal(n.top)
		b.Write(j[1 : len(j)-1]) // the fields without the braces
		b.WriteString(", ")
	}
	j, _ := json.Marshal(n.ranges)
	fmt.Fprintf(&b, `"ranges": %s}}`, j)
	return b.String()
}

// parityModelRange is a range with host-local's defaults filled in, which
// the generator uses to pick requested addresses.
type parityModelRange struct {
	subnet     netip.Prefix
	start, end netip.Addr
	gateway    netip.Addr
}

func (r parityRange) model(t testing.TB) parityModelRange {
	t.Helper()
	p := netip.MustParsePrefix(r.Subnet)
	m := parityModelRange{subnet: p, start: p.Addr().Next(), gateway: p.Addr().Next()}
	// The last address of the subnet, less the broadcast for IPv4.
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	m.end, _ = netip.AddrFromSlice(b)
	if p.Addr().Is4() {
		m.end = m.end.Prev()
	}
	if r.RangeStart != "" {
		m.start = netip.MustParseAddr(r.RangeStart)
	}
	if r.RangeEnd != "" {
		m.end = netip.MustParseAddr(r.RangeEnd)
	}
	if r.Gateway != "" {
		m.gateway = netip.MustParseAddr(r.Gateway)
	}
	return m
}

// modelSets returns the range sets in host-local's order.
func (n parityNet) modelSets(t testing.TB) [][]parityModelRange {
	var sets [][]parityModelRange
	if n.top != nil {
		sets = append(sets, []parityModelRange{n.top.model(t)})
	}
	for _, set := range n.ranges {
		var ms []parityModelRange
		for _, r := range set {
			ms = append(ms, r.model(t))
		}
		sets = append(sets, ms)
	}
	return sets
}

func parityNets(t testing.TB) []parityNet {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("# parity\nnameserver 192.0.2.53\nnameserver 2001:db8::53\ndomain parity.example\nsearch a.parity.example b.parity.example\noptions ndots:3 rotate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []parityNet{
		{
			// 5 addresses: exhaustion and wrap-around come quickly.
			name:    "ipv4-small-pool",
			ranges:  [][]parityRange{{{Subnet: "192.0.2.0/29"}}},
			outside: []string{"192.0.2.0", "192.0.2.7", "192.0.2.8", "198.51.100.3", "2001:db8::3"},
		},
		{
			// The IPv6 set (5 addresses) runs out before the IPv4 set (7),
			// so ADDs fail after the first set has reserved.
			name: "ipv4-ipv6-two-range-sets",
			ranges: [][]parityRange{
				{{Subnet: "198.51.100.0/28", RangeEnd: "198.51.100.8"}},
				{{Subnet: "2001:db8:1::/64", RangeStart: "2001:db8:1::10", RangeEnd: "2001:db8:1::14"}},
			},
			outside: []string{"198.51.100.9", "198.51.100.15", "2001:db8:1::f", "2001:db8:1::15", "2001:db8:ff::10", "203.0.113.9"},
		},
		{
			// Two ranges in one set, gateways inside the ranges.
			name: "two-ranges-custom-start-end-gateway",
			ranges: [][]parityRange{
				{
					{Subnet: "203.0.113.0/24", RangeStart: "203.0.113.10", RangeEnd: "203.0.113.14", Gateway: "203.0.113.12"},
					{Subnet: "198.51.100.16/29"},
				},
				{{Subnet: "2001:db8:2::/64", RangeStart: "2001:db8:2::100", RangeEnd: "2001:db8:2::10b", Gateway: "2001:db8:2::105"}},
			},
			outside: []string{"203.0.113.9", "203.0.113.15", "203.0.113.1", "198.51.100.16", "198.51.100.23", "198.51.100.24", "2001:db8:2::ff", "2001:db8:2::10c", "2001:db8:2::1"},
		},
		{
			// The deprecated top-level range comes before "ranges".
			name:    "deprecated-top-level-range",
			top:     &parityRange{Subnet: "192.0.2.16/28", RangeStart: "192.0.2.19", RangeEnd: "192.0.2.24"},
			ranges:  [][]parityRange{{{Subnet: "2001:db8:3::/125"}}},
			outside: []string{"192.0.2.18", "192.0.2.25", "192.0.2.31", "2001:db8:3::8", "2001:db8:3::", "10.20.30.40"},
		},
		{
			name: "routes-and-resolvconf",
			extra: `"routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.0.2.0/24", "gw": "198.51.100.33"},
				{"dst": "::/0"}, {"dst": "2001:db8:9::1/48", "gw": "2001:db8:4::1"}],
				"resolvConf": "` + resolv + `", `,
			ranges: [][]parityRange{
				{{Subnet: "198.51.100.32/28", RangeStart: "198.51.100.40"}},
				{{Subnet: "2001:db8:4::/124"}},
			},
			outside: []string{"198.51.100.39", "198.51.100.47", "198.51.100.33", "2001:db8:4::10", "192.0.2.1"},
		},
	}
}

// parityAttachment names what an ADD allocates for.
type parityAttachment struct{ id, ifName string }

// parityStep is one compared operation and both plugins' answers.
type parityStep struct {
	inv       invocation
	note      string
	ours, ref outcome
}

func (s parityStep) String() string {
	args := ""
	if s.inv.Args != "" {
		args = " CNI_ARGS=" + s.inv.Args
	}
	note := ""
	if s.note != "" {
		note = " (" + s.note + ")"
	}
	return fmt.Sprintf("%s %s/%s%s%s\n      etcd:       %s\n      host-local: %s",
		s.inv.Command, s.inv.ContainerID, s.inv.IfName, args, note, brief(s.ours), brief(s.ref))
}

// brief renders an outcome on one line.
func brief(o outcome) string {
	var compact bytes.Buffer
	text := bytes.TrimSpace(o.Stdout)
	if json.Compact(&compact, text) == nil {
		text = compact.Bytes()
	}
	if o.ExitCode == 0 {
		if len(text) == 0 {
			return "ok"
		}
		return "ok " + string(text)
	}
	return fmt.Sprintf("exit %d %s", o.ExitCode, text)
}

// sameOutcome compares two answers: exit status, and on success the
// parsed JSON on stdout (error messages and codes may differ).
func sameOutcome(a, b outcome) (bool, string) {
	if (a.ExitCode == 0) != (b.ExitCode == 0) {
		return false, "one plugin succeeded and the other failed"
	}
	if a.ExitCode != 0 {
		return true, ""
	}
	ta, tb := bytes.TrimSpace(a.Stdout), bytes.TrimSpace(b.Stdout)
	if len(ta) == 0 || len(tb) == 0 {
		if len(ta) != len(tb) {
			return false, "one plugin printed a result and the other printed nothing"
		}
		return true, ""
	}
	var va, vb any
	if err := json.Unmarshal(ta, &va); err != nil {
		return false, "etcd's stdout is not JSON: " + err.Error()
	}
	if err := json.Unmarshal(tb, &vb); err != nil {
		return false, "host-local's stdout is not JSON: " + err.Error()
	}
	if !reflect.DeepEqual(va, vb) {
		return false, "the results differ"
	}
	return true, ""
}

// resultAddrs returns the addresses of a result.
func resultAddrs(t testing.TB, stdout []byte) []netip.Addr {
	t.Helper()
	var addrs []netip.Addr
	for _, ip := range parseResult(t, stdout).IPs {
		p, err := netip.ParsePrefix(ip.Address)
		if err != nil {
			t.Fatalf("result address %q: %v", ip.Address, err)
		}
		addrs = append(addrs, p.Addr())
	}
	return addrs
}

// paritySeq is one random sequence against both plugins.
type paritySeq struct {
	t         *testing.T
	rng       *rand.Rand
	net       parityNet
	sets      [][]parityModelRange
	version   string
	ours, ref string // the two network configurations
	seed      uint64
	label     string
	compared  *atomic.Int64
	history   []parityStep
	held      map[parityAttachment][]netip.Addr
	known     []parityAttachment // every attachment used so far
	nextID    int
	opCounter map[string]int
}

// do runs inv against both plugins and fails the test, with everything
// needed to reproduce it, when their answers differ.
func (s *paritySeq) do(inv invocation, note string) parityStep {
	s.t.Helper()
	if inv.IfName == "" {
		inv.IfName = "eth0"
	}
	oursInv, refInv := inv, inv
	oursInv.Config, refInv.Config = s.ours, s.ref
	step := parityStep{inv: inv, note: note}
	step.ours = runBinary(s.t, pluginPath, oursInv)
	step.ref = runBinary(s.t, hostLocalPath(s.t), refInv)
	s.history = append(s.history, step)
	s.compared.Add(1)
	s.opCounter[inv.Command]++
	if ok, why := sameOutcome(step.ours, step.ref); !ok {
		s.fail(why)
	}
	return step
}

func (s *paritySeq) fail(why string) {
	s.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "MISMATCH at operation %d of %s: %s\n", len(s.history), s.label, why)
	fmt.Fprintf(&b, "seed %d (replay: %s=%d go test ./frontend/cni -run 'TestParityWithHostLocal/%s' -count=1 -v)\n",
		s.seed, paritySeedEnv, s.seed, s.net.name)
	fmt.Fprintf(&b, "etcd config:       %s\nhost-local config: %s\n", s.ours, s.ref)
	b.WriteString("history:\n")
	for i, h := range s.history {
		fmt.Fprintf(&b, "  %3d %s\n", i+1, h)
	}
	last := s.history[len(s.history)-1]
	fmt.Fprintf(&b, "last operation, etcd (exit %d):\n%s\nstderr: %s\n", last.ours.ExitCode, last.ours.Stdout, last.ours.Stderr)
	fmt.Fprintf(&b, "last operation, host-local (exit %d):\n%s\nstderr: %s", last.ref.ExitCode, last.ref.Stdout, last.ref.Stderr)
	s.t.Fatal(b.String())
}

func (s *paritySeq) canCheck() bool { return s.version >= "0.4.0" }

// heldList returns the attachments holding addresses, in a stable order.
func (s *paritySeq) heldList() []parityAttachment {
	var out []parityAttachment
	for _, a := range s.known {
		if _, ok := s.held[a]; ok {
			out = append(out, a)
		}
	}
	return out
}

// freeAttachment returns an attachment that holds no addresses: mostly a
// new container, sometimes one seen before, sometimes a second interface.
func (s *paritySeq) freeAttachment() parityAttachment {
	if s.rng.IntN(10) < 3 {
		var old []parityAttachment
		for _, a := range s.known {
			if _, ok := s.held[a]; !ok {
				old = append(old, a)
			}
		}
		if len(old) > 0 {
			return old[s.rng.IntN(len(old))]
		}
	}
	ifName := "eth0"
	if s.rng.IntN(8) == 0 {
		ifName = "net1"
		// Sometimes a second interface of a container that holds addresses.
		if held := s.heldList(); len(held) > 0 && s.rng.IntN(2) == 0 {
			if a := (parityAttachment{held[s.rng.IntN(len(held))].id, ifName}); s.held[a] == nil {
				if !slices.Contains(s.known, a) {
					s.known = append(s.known, a)
				}
				return a
			}
		}
	}
	s.nextID++
	a := parityAttachment{id: fmt.Sprintf("ctr-%02d", s.nextID), ifName: ifName}
	s.known = append(s.known, a)
	return a
}

// anyAttachment returns a holder, a former or never-held attachment, or an
// unknown one.
func (s *paritySeq) anyAttachment() (parityAttachment, string) {
	held := s.heldList()
	switch r := s.rng.IntN(10); {
	case r < 6 && len(held) > 0:
		return held[s.rng.IntN(len(held))], "holder"
	case r < 8 && len(s.known) > 0:
		a := s.known[s.rng.IntN(len(s.known))]
		if _, ok := s.held[a]; ok {
			return a, "holder"
		}
		return a, "not holding"
	default:
		return parityAttachment{id: fmt.Sprintf("unknown-%d", s.rng.IntN(1000)), ifName: "eth0"}, "unknown"
	}
}

// requestedAddr picks an address for CNI_ARGS IP= (the spelling host-local
// knows) and says what it is.
func (s *paritySeq) requestedAddr() (string, string) {
	var heldAddrs []netip.Addr
	for _, a := range s.heldList() {
		heldAddrs = append(heldAddrs, s.held[a]...)
	}
	var free, gateways []netip.Addr
	bits := map[netip.Addr]int{}
	for _, set := range s.sets {
		for _, r := range set {
			gateways = append(gateways, r.gateway)
			bits[r.gateway] = r.subnet.Bits()
			for a := r.start; a.IsValid() && !r.end.Less(a); a = a.Next() {
				bits[a] = r.subnet.Bits()
				if a != r.gateway && !slices.Contains(heldAddrs, a) {
					free = append(free, a)
				}
			}
		}
	}
	var addr netip.Addr
	var kind string
	switch k := s.rng.IntN(8); {
	case k < 3 && len(free) > 0:
		addr, kind = free[s.rng.IntN(len(free))], "free"
	case k < 5 && len(heldAddrs) > 0:
		addr, kind = heldAddrs[s.rng.IntN(len(heldAddrs))], "taken"
	case k < 6:
		addr, kind = gateways[s.rng.IntN(len(gateways))], "gateway"
	default:
		addr, kind = netip.MustParseAddr(s.net.outside[s.rng.IntN(len(s.net.outside))]), "outside all ranges"
	}
	text := addr.String()
	switch s.rng.IntN(6) {
	case 0: // with a prefix length, which both plugins ignore
		b, ok := bits[addr]
		if !ok {
			b = addr.BitLen() - 4
		}
		text += "/" + strconv.Itoa(b)
	case 1:
		if addr.Is4() {
			text = "::ffff:" + text
		}
	}
	return text, kind
}

// step generates and compares one random operation.
func (s *paritySeq) step() {
	s.t.Helper()
	r := s.rng.IntN(100)
	switch {
	case r < 40: // ADD
		a := s.freeAttachment()
		st := s.do(invocation{Command: "ADD", ContainerID: a.id, IfName: a.ifName}, "")
		if st.ours.ExitCode == 0 {
			s.held[a] = resultAddrs(s.t, st.ours.Stdout)
		}
	case r < 60: // ADD with a requested address
		a := s.freeAttachment()
		addr, kind := s.requestedAddr()
		st := s.do(invocation{Command: "ADD", ContainerID: a.id, IfName: a.ifName, Args: "IP=" + addr}, "requested "+kind)
		if st.ours.ExitCode == 0 {
			s.held[a] = resultAddrs(s.t, st.ours.Stdout)
		}
	case r < 85 || !s.canCheck(): // DEL
		a, kind := s.anyAttachment()
		st := s.do(invocation{Command: "DEL", ContainerID: a.id, IfName: a.ifName}, kind)
		if st.ours.ExitCode == 0 {
			delete(s.held, a)
		}
	default: // CHECK
		a, kind := s.anyAttachment()
		s.do(invocation{Command: "CHECK", ContainerID: a.id, IfName: a.ifName}, kind)
	}
}

// TestParityWithHostLocal runs random operation sequences against this
// plugin and host-local and requires the same answers: the same success or
// failure and, on success, the same result.
func TestParityWithHostLocal(t *testing.T) {
	hostLocalPath(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(paritySeedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", paritySeedEnv, v, err)
		}
	}
	t.Logf("seed %d (set %s=%d to replay)", seed, paritySeedEnv, seed)
	srv := etcdtest.Start(t)
	start := time.Now()
	var compared atomic.Int64
	var mu sync.Mutex
	counts := map[string]int{}

	t.Run("repeated ADD returns the held addresses", func(t *testing.T) {
		// The one allowed difference: host-local refuses a second ADD for an
		// attachment that holds addresses, this plugin returns them.
		n := parityNets(t)[1]
		for _, v := range []string{"0.3.1", "1.0.0"} {
			name := "parity-repeat-" + strings.ReplaceAll(v, ".", "")
			s := &paritySeq{
				t: t, net: n, version: v, seed: seed, label: "repeated ADD " + v, compared: &compared,
				ours: n.config(v, name, fmt.Sprintf(`"type": "etcd", "etcdConfig": {"etcdURL": %q}`, srv.Endpoint())),
				ref:  n.config(v, name, fmt.Sprintf(`"type": "host-local", "dataDir": %q`, t.TempDir())),
				held: map[parityAttachment][]netip.Addr{}, opCounter: map[string]int{},
			}
			first := s.do(invocation{Command: "ADD", ContainerID: "twice"}, "")
			if first.ours.ExitCode != 0 {
				t.Fatalf("first ADD failed: %s", brief(first.ours))
			}
			inv := invocation{Command: "ADD", ContainerID: "twice", IfName: "eth0"}
			inv.Config = s.ref
			ref := runBinary(t, hostLocalPath(t), inv)
			if ref.ExitCode == 0 || !strings.Contains(string(ref.Stdout), "duplicate allocation") {
				t.Errorf("%s: host-local's repeated ADD: %s; want a duplicate allocation error", v, brief(ref))
			}
			inv.Config = s.ours
			ours := runBinary(t, pluginPath, inv)
			if same, why := sameOutcome(first.ours, ours); !same || ours.ExitCode != 0 {
				t.Errorf("%s: repeated ADD = %s, want the first ADD's result %s (%s)", v, brief(ours), brief(first.ours), why)
			}
			// Neither plugin moved its round-robin position.
			s.do(invocation{Command: "ADD", ContainerID: "after"}, "")
			s.do(invocation{Command: "DEL", ContainerID: "twice"}, "")
			s.do(invocation{Command: "ADD", ContainerID: "twice"}, "")
		}
	})

	for ni, n := range parityNets(t) {
		t.Run(n.name, func(t *testing.T) {
			t.Parallel()
			for seq := range paritySequences {
				v := parityVersions[(ni+seq)%len(parityVersions)]
				name := fmt.Sprintf("parity-%d-%d", ni, seq)
				s := &paritySeq{
					t: t, net: n, sets: n.modelSets(t), version: v, seed: seed, compared: &compared,
					rng:   rand.New(rand.NewPCG(seed, uint64(ni)<<32|uint64(seq))),
					label: fmt.Sprintf("configuration %q sequence %d (cniVersion %s)", n.name, seq, v),
					ours:  n.config(v, name, fmt.Sprintf(`"type": "etcd", "etcdConfig": {"etcdURL": %q}`, srv.Endpoint())),
					ref:   n.config(v, name, fmt.Sprintf(`"type": "host-local", "dataDir": %q`, t.TempDir())),
					held:  map[parityAttachment][]netip.Addr{}, opCounter: map[string]int{},
				}
				for range parityOps {
					s.step()
				}
				// Release what is left; the DELs are compared too.
				for _, a := range s.heldList() {
					s.do(invocation{Command: "DEL", ContainerID: a.id, IfName: a.ifName}, "cleanup")
					delete(s.held, a)
				}
				mu.Lock()
				for k, c := range s.opCounter {
					counts[k] += c
				}
				for _, h := range s.history {
					if h.inv.Command == "ADD" {
						if h.ours.ExitCode == 0 {
							counts["ADD ok"]++
						} else {
							counts["ADD failed"]++
						}
					}
				}
				mu.Unlock()
			}
		})
	}
	t.Cleanup(func() {
		t.Logf("compared %d operations in %s: %v", compared.Load(), time.Since(start).Round(time.Millisecond), counts)
	})
}

// TestParityOldVersionsOneRangeSetPerFamily: before CNI 0.3.0 a result
// holds one ip4 and one ip6, so host-local refuses a network with two
// range sets of one family, on ADD and DEL, before it stores anything.
// This plugin must refuse exactly then, say why and what to change, and
// leave nothing in etcd; one range set of each family must work.
func TestParityOldVersionsOneRangeSetPerFamily(t *testing.T) {
	hostLocalPath(t)
	srv := etcdtest.Start(t)
	etcd := srv.Client(t)
	var compared atomic.Int64
	for ci, tc := range []struct {
		name string
		// top is top-level JSON (runtimeConfig), ipam the ranges part of
		// "ipam".
		top, ipam string
		tooMany   bool // two range sets of one family
	}{
		{"one IPv4 and one IPv6 range set", "",
			`"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8:1::/64"}]]`, false},
		{"two IPv4 ranges in one range set", "",
			`"ranges": [[{"subnet": "203.0.113.0/28"}, {"subnet": "198.51.100.0/28"}], [{"subnet": "2001:db8:1::/64"}]]`, false},
		{"two IPv4 range sets", "",
			`"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "198.51.100.0/24"}]]`, true},
		{"two IPv6 range sets and an IPv4 one", "",
			`"ranges": [[{"subnet": "2001:db8:1::/64"}], [{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8:2::/64"}]]`, true},
		{"deprecated top-level range and an IPv4 range set", "",
			`"subnet": "192.0.2.0/24", "ranges": [[{"subnet": "203.0.113.0/24"}]]`, true},
		{"runtimeConfig ipRanges and an IPv6 range set", `"runtimeConfig": {"ipRanges": [[{"subnet": "2001:db8:2::/64"}]]},`,
			`"ranges": [[{"subnet": "2001:db8:1::/64"}]]`, true},
	} {
		// "" is a configuration without cniVersion: 0.1.0 to CNI.
		for vi, v := range []string{"", "0.1.0", "0.2.0", "0.3.0"} {
			t.Run(fmt.Sprintf("%s/%q", tc.name, v), func(t *testing.T) {
				name := fmt.Sprintf("old-%d-%d", ci, vi)
				conf := func(backend string) string {
					version := ""
					if v != "" {
						version = fmt.Sprintf(`"cniVersion": %q, `, v)
					}
					return fmt.Sprintf(`{%s"name": %q, %s "ipam": {%s, %s}}`, version, name, tc.top, backend, tc.ipam)
				}
				dataDir := t.TempDir()
				s := &paritySeq{
					t: t, version: v, label: tc.name + " " + v, compared: &compared,
					ours: conf(fmt.Sprintf(`"type": "etcd", "etcdConfig": {"etcdURL": %q}`, srv.Endpoint())),
					ref:  conf(fmt.Sprintf(`"type": "host-local", "dataDir": %q`, dataDir)),
					held: map[parityAttachment][]netip.Addr{}, opCounter: map[string]int{},
				}
				refused := tc.tooMany && v != "0.3.0"
				for _, cmd := range []string{"ADD", "DEL"} {
					st := s.do(invocation{Command: cmd, ContainerID: "c1"}, "")
					if (st.ref.ExitCode != 0) != refused {
						t.Fatalf("host-local %s: %s; want refused=%v", cmd, brief(st.ref), refused)
					}
					if !refused {
						continue
					}
					e := oneCNIError(t, st.ours.Stdout)
					version := "cniVersion " + v
					if v == "" {
						version = "without cniVersion"
					}
					if e.Code != 7 || !strings.Contains(e.Msg, version) || !strings.Contains(e.Msg, "range sets") ||
						!strings.Contains(e.Details, `"0.3.0" or later`) || !strings.Contains(e.Details, "one range set per address family") {
						t.Errorf("%s: code %d, %q (%q); want code 7 naming %q, the range sets, and what to change", cmd, e.Code, e.Msg, e.Details, version)
					}
				}
				if refused {
					resp, err := etcd.Get(t.Context(), "/etcd-cni/networks/"+name+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
					if err != nil {
						t.Fatal(err)
					}
					for _, kv := range resp.Kvs {
						t.Errorf("a refused configuration wrote %s", kv.Key)
					}
					if entries, err := os.ReadDir(dataDir); err != nil || len(entries) != 0 {
						t.Errorf("host-local's data dir holds %d entries (%v); host-local refuses before storing", len(entries), err)
					}
				}
			})
		}
	}
}
