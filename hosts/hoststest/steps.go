package hoststest

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
)

// Summary renders an action in one line, so that step vectors and the
// fuzz target can say what differs: its kind and the facts it carries.
func Summary(act core.Action) string {
	switch {
	case act.Read != nil:
		return fmt.Sprintf("read %v requested %v", act.Read.Searches, act.Read.Requested)
	case act.Count != nil:
		return fmt.Sprintf("count set %d: %d segments from %v", act.Count.RangeSet, len(act.Count.Segments), act.Count.Segments[0])
	case act.Offer != nil:
		var cands []string
		for _, c := range act.Offer.Candidates {
			cands = append(cands, addrsOf(c))
		}
		return fmt.Sprintf("offer %s held %v", strings.Join(cands, " | "), act.Offer.Held)
	case act.Advance != nil:
		return "advance " + addrsOf(act.Advance.Positions)
	case act.Wait != nil:
		return fmt.Sprintf("wait %d ns", act.Wait.Nanos)
	case act.Done != nil:
		return "done " + addrsOf(act.Done.Addrs)
	case act.Fail != nil:
		f := act.Fail
		return fmt.Sprintf("fail kind %d set %d addr %v addrs %v rounds %d %s", f.Kind, f.RangeSet, f.Addr, f.Addrs, f.Rounds, f.Reason)
	}
	return "no action"
}

func addrsOf(as []core.Assigned) string {
	var out []string
	for _, a := range as {
		out = append(out, a.Address.String())
	}
	return strings.Join(out, " ")
}

// stepVector is a vector of one Step: the request, the answers so far and
// the action's summary.
func stepVector(name string, req core.Request, answers []core.Answer, want string) Vector {
	return Vector{
		Name: "step/" + name,
		Call: func(c hosts.Core) any { return Summary(c.Step(req, answers)) },
		Want: want,
	}
}

// stepVectors follow ADDs through the allocator's conversation: a lone
// allocator's guesses, a win, guesses lost and the observed alternatives,
// a full pool known from one count, a requested address taken, a held
// address in its set's place, another node's fresh position, another
// node's position moved meanwhile on a fresh network (read by the lost
// write), and the jittered wait after a race lost from a read.
func stepVectors() []Vector {
	v4 := Set(core.RangeSpec{Subnet: "203.0.113.0/24"})
	small := Set(core.RangeSpec{Subnet: "203.0.113.0/24", RangeStart: "203.0.113.10", RangeEnd: "203.0.113.11"})
	v6 := Set(core.RangeSpec{Subnet: "2001:db8::/64"})
	lone := core.Request{Sets: []core.RangeSet{v4}, Node: "node-a", ContainerID: "c1", Positions: make([]core.Position, 1), Now: 1e18}
	whole := core.Segment{Range: 0, From: addr("203.0.113.1"), To: addr("203.0.113.254")}
	var taken []netip.Addr
	for a := addr("203.0.113.1"); a.Compare(addr("203.0.113.9")) <= 0; a = a.Next() {
		taken = append(taken, a)
	}
	guessesLost := core.Answer{Lost: []netip.Addr{addr("203.0.113.2")}, Observed: [][]core.Observation{{{Segment: whole, Taken: taken, Complete: true}}}}
	full := make([]netip.Addr, 32) // a read's limit: the rest is unknown
	for i, a := 0, addr("203.0.113.1"); i < len(full); i, a = i+1, a.Next() {
		full[i] = a
	}
	dual := core.Request{Sets: []core.RangeSet{v4, v6}, Node: "node-a", ContainerID: "c2", Positions: make([]core.Position, 2)}
	requested := core.Request{Sets: []core.RangeSet{v4}, Requested: []netip.Addr{addr("203.0.113.77")}, Node: "node-a", ContainerID: "c3"}
	held := core.Request{Sets: []core.RangeSet{v4, v6}, Held: []core.Held{{Addr: addr("2001:db8::99"), RangeSet: 1}}, Node: "node-a", ContainerID: "c4"}
	racing := lone
	racing.Positions = []core.Position{{Addr: addr("203.0.113.40"), Node: "node-b", At: lone.Now - 1e9}}
	freshRace := guessesLost
	freshRace.Positions = []core.Position{{Addr: addr("203.0.113.9"), Node: "node-b", At: lone.Now - 1e6}}
	return []Vector{
		stepVector("lone-guesses", lone, nil,
			"offer 203.0.113.2/24 | 203.0.113.3/24 | 203.0.113.4/24 | 203.0.113.5/24 | 203.0.113.6/24 | 203.0.113.7/24 | 203.0.113.8/24 | 203.0.113.9/24 held []"),
		stepVector("won-is-done", lone, []core.Answer{{Committed: true, Won: 3}}, "done 203.0.113.5/24"),
		stepVector("guesses-lost-observed", lone, []core.Answer{guessesLost},
			"offer 203.0.113.10/24 | 203.0.113.11/24 | 203.0.113.12/24 | 203.0.113.13/24 | 203.0.113.14/24 | 203.0.113.15/24 | 203.0.113.16/24 | 203.0.113.17/24 held []"),
		stepVector("incomplete-read-counts", lone, []core.Answer{{Lost: []netip.Addr{addr("203.0.113.2")}, Observed: [][]core.Observation{{{Segment: whole, Taken: full}}}}},
			"count set 0: 119 segments from {0 203.0.113.33 203.0.113.33}"),
		stepVector("small-pool-exhausted", core.Request{Sets: []core.RangeSet{small}, Positions: make([]core.Position, 1)},
			[]core.Answer{{Lost: []netip.Addr{addr("203.0.113.10")}, Observed: [][]core.Observation{{{Segment: core.Segment{From: addr("203.0.113.10"), To: addr("203.0.113.11")}, Taken: []netip.Addr{addr("203.0.113.10"), addr("203.0.113.11")}, Complete: true}}}}},
			"fail kind 1 set 0 addr invalid IP addrs [] rounds 0 "),
		stepVector("dual-stack-pairs", dual, nil,
			"offer 203.0.113.2/24 2001:db8::2/64 | 203.0.113.2/24 2001:db8::3/64 | 203.0.113.3/24 2001:db8::2/64 | 203.0.113.3/24 2001:db8::3/64 held []"),
		stepVector("requested-read", requested, nil, "read [[]] requested [203.0.113.77]"),
		stepVector("requested-taken", requested, []core.Answer{{Observed: [][]core.Observation{nil}, Taken: []bool{true}}},
			"fail kind 3 set 0 addr 203.0.113.77 addrs [] rounds 0 "),
		stepVector("held-takes-its-place", held, []core.Answer{{Observed: [][]core.Observation{{{Segment: whole, Complete: true}}, nil}}},
			"offer 203.0.113.2/24 2001:db8::99/64 | 203.0.113.3/24 2001:db8::99/64 held [{2001:db8::99 1}]"),
		stepVector("fresh-race-spreads", lone, []core.Answer{freshRace},
			"offer 203.0.113.54/24 | 203.0.113.55/24 | 203.0.113.56/24 | 203.0.113.57/24 | 203.0.113.58/24 | 203.0.113.59/24 | 203.0.113.60/24 | 203.0.113.61/24 held []"),
		stepVector("race-lost-from-read-waits", lone, []core.Answer{guessesLost, {Lost: []netip.Addr{addr("203.0.113.10")}}}, "wait 5589293 ns"),
		stepVector("racing-spreads", racing, nil,
			"offer 203.0.113.151/24 | 203.0.113.152/24 | 203.0.113.153/24 | 203.0.113.154/24 | 203.0.113.155/24 | 203.0.113.156/24 | 203.0.113.157/24 | 203.0.113.158/24 held []"),
	}
}
