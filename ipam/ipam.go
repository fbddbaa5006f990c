// Package ipam carries out the plugin's operations (ADD, DEL, CHECK, GC,
// STATUS) by combining the allocation core, which decides, with the etcd
// store, which persists. It knows nothing of stdin, stdout or environment
// variables, so that the CNI plugin and the etcd-ipam CLI share it.
package ipam

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/store"
)

// Session is one network's allocator, connected to etcd.
type Session struct {
	core    hosts.Core
	cli     *clientv3.Client
	net     *store.Network
	name    string
	node    string
	sets    []core.RangeSet
	timeout time.Duration
	now     func() time.Time
}

// Options are the parts of a Session that do not come from the network
// configuration.
type Options struct {
	// Core runs the allocation logic (hosts/native or hosts/wasm).
	Core hosts.Core
	// Node names this host in every allocation it makes.
	Node string
	// Now is the clock used to stamp allocations; time.Now when nil.
	Now func() time.Time
	// DialOptions are passed to the etcd client (instrumentation).
	DialOptions []grpc.DialOption
}

// Open validates the network's range sets and connects to etcd. Close the
// session when done.
func Open(conf *config.Network, opts Options) (*Session, error) {
	sets, err := opts.Core.CanonicalizeRangeSets(conf.RangeSets)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("invalid ipam configuration of network %q: %v", conf.Name, err), "")
	}
	if opts.Node == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "the node name is empty; set ipam \"nodeName\" or ETCD_IPAM_NODE_NAME", "")
	}
	cli, err := store.Dial(conf.Etcd, opts.DialOptions...)
	if err != nil {
		// Dial waits for etcd only to log in (etcdUsername): a timeout
		// there is etcd being unreachable, anything else is the
		// configuration (unreadable TLS files, bad credentials).
		if isTransient(err) || isAccessDenied(err) {
			return nil, AsCNIError(err)
		}
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	net, err := store.Open(cli, conf.Name)
	if err != nil {
		_ = cli.Close()
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Session{
		core: opts.Core, cli: cli, net: net, name: conf.Name, node: opts.Node,
		sets: sets, timeout: conf.Etcd.Timeout, now: now,
	}, nil
}

// Close disconnects from etcd.
func (s *Session) Close() error { return s.cli.Close() }

// RangeSets returns the canonical range sets.
func (s *Session) RangeSets() []core.RangeSet { return s.sets }

// Store returns the network's etcd state.
func (s *Session) Store() *store.Network { return s.net }

// Context returns a context bounded by the configured etcd timeout: every
// operation of one invocation shares this deadline.
func (s *Session) Context(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.timeout)
}

// bound gives ctx the session's timeout unless it already has a deadline,
// so that no etcd call made by a Session can wait forever.
//
// Every request also requires the member it reaches to have a leader: a
// member cut off from the rest of the cluster then refuses at once, and
// the retry (see settle) goes to another endpoint, instead of the request
// waiting out the whole timeout on a member that cannot commit.
func (s *Session) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = clientv3.WithRequireLeader(ctx)
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return s.Context(ctx)
}

// Retries of an operation that failed transiently (an etcd member without
// a leader, a leader election, a dropped connection): each waits longer,
// and none starts unless its wait ends before the deadline. An attempt may
// use half of the time left, and at least minAttemptTime, so that one
// request stuck on a member that lost its cluster leaves time for a retry
// on another.
const (
	settleAttempts  = 6
	settleFirstWait = 20 * time.Millisecond
	minAttemptTime  = time.Second
)

// settle runs op, and runs it again while it fails transiently and the
// deadline leaves room, so that an invocation rides out what a runtime's
// own retry would otherwise have to: etcd's client sends each attempt to
// the next endpoint. op must be safe to repeat; ADD and DEL are, because
// each starts by reading what an earlier attempt may have committed, and
// an abandoned write can still only commit if nothing else created the
// attachment first.
func settle(ctx context.Context, op func(context.Context) error) error {
	wait := settleFirstWait
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, attemptTime(ctx))
		err := op(attemptCtx)
		cancel()
		if err == nil || attempt == settleAttempts || !isTransient(err) || errors.Is(err, errContention) || ctx.Err() != nil {
			return err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		wait *= 2
	}
}

// attemptTime is how long one attempt of settle may take: half of what is
// left of ctx's deadline, but at least minAttemptTime (or all that is left).
func attemptTime(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return minAttemptTime
	}
	left := time.Until(deadline)
	return min(left, max(left/2, minAttemptTime))
}

// maxAttempts bounds how often an ADD retries after losing a race for an
// address to another allocator.
const maxAttempts = 16

// Widths of the candidate chains an ADD hands to one reserving transaction
// (store.ReserveFirst): guessedCandidates addresses in search order before
// anything is read, observedCandidates free ones after a read. A wider
// chain absorbs more allocators racing from the same position in one
// round trip, at the cost of a larger transaction.
const (
	guessedCandidates  = 8
	observedCandidates = 8
)

// Add reserves one address from every range set for (containerID, ifName),
// or returns the addresses it already holds. Errors are *types.Error.
func (s *Session) Add(ctx context.Context, containerID, ifName string, requested []netip.Addr) ([]store.AttachedAddr, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var ips []store.AttachedAddr
	err := settle(ctx, func(ctx context.Context) (err error) {
		ips, err = s.add(ctx, containerID, ifName, requested)
		return err
	})
	if err != nil {
		return nil, AsCNIError(err)
	}
	return ips, nil
}

// add is one read (the attachment and the round-robin positions) and,
// usually, one write. The write offers a chain of candidates in search
// order, the first free one wins (store.ReserveFirst): before anything else
// is read, the next addresses after each set's position, guessed free;
// when all of those are taken, the same transaction reads the search
// segments, and the next write offers the free addresses they show. A lone
// allocator therefore always gets host-local's address, the first free one
// in search order, in two round trips when one of the guesses is free.
func (s *Session) add(ctx context.Context, containerID, ifName string, requested []netip.Addr) ([]store.AttachedAddr, error) {
	snap, err := s.net.Snapshot(ctx, containerID, ifName, len(s.sets))
	if err != nil {
		return nil, err
	}
	if snap.Attachment != nil {
		return snap.Attachment.IPs, nil
	}
	perSet, unmatched := s.core.AssignRequested(s.sets, requested)
	guessable := len(unmatched) == 0
	for _, r := range perSet {
		guessable = guessable && !r.IsValid()
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	// observed is nil until a read has shown the searches' taken
	// addresses; races counts the attempts lost to other allocators.
	var observed [][]core.Observation
	races := 0
	for attempt := 0; attempt < maxAttempts; attempt++ {
		searches := s.searches(s.searchStarts(snap.LastReserved, containerID, races, now), perSet)
		var candidates [][]store.AttachedAddr
		if observed == nil && guessable {
			candidates = s.guess(searches)
		}
		if candidates == nil {
			// Nothing to guess from (a requested address, or a set
			// without a guessable address): read first.
			var taken []bool
			if observed == nil {
				var wanted []netip.Addr
				for _, r := range perSet {
					if r.IsValid() {
						wanted = append(wanted, r)
					}
				}
				if observed, taken, err = s.net.Observe(ctx, searches, wanted); err != nil {
					return nil, err
				}
			}
			picked, failure, err := s.pick(ctx, observed, taken, perSet)
			if err != nil {
				return nil, err
			}
			if failure != nil || len(unmatched) > 0 {
				// host-local keeps the round-robin position of every range set
				// that succeeded before the failure.
				advanced := make(map[int]store.Position, len(picked))
				for i, p := range picked {
					advanced[i] = store.Position{Addr: p.Address.Addr(), Node: s.node, At: now}
				}
				if err := s.net.AdvanceLastReserved(ctx, advanced); err != nil {
					return nil, err
				}
				if failure != nil {
					return nil, failure
				}
				return nil, requestedUnavailable(fmt.Sprintf("failed to allocate all requested IPs: %s %s in no range set of network %q, or another requested address already took %s range set (one address per range set)",
					joinAddrs(unmatched), plural(len(unmatched), "is", "are"), s.name, plural(len(unmatched), "its", "their")))
			}
			candidates = s.candidates(observed, picked, perSet)
		}
		att := store.Attachment{ContainerID: containerID, IfName: ifName, Node: s.node, Created: now}
		outcome, err := s.net.ReserveFirst(ctx, att, candidates, searches)
		if err != nil {
			return nil, err
		}
		switch {
		case outcome.IPs != nil:
			return outcome.IPs, nil
		case outcome.Existing != nil:
			// A concurrent ADD for the same attachment won: its addresses
			// are this ADD's answer too.
			return outcome.Existing.IPs, nil
		}
		for _, lost := range outcome.Lost {
			for i, req := range perSet {
				if req == lost {
					return nil, requestedUnavailable(fmt.Sprintf("requested IP address %s is not available in range set %d (%s) of network %q", lost, i, s.sets[i], s.name))
				}
			}
		}
		if observed == nil {
			// The guesses were taken: not a race, the pool is busy
			// there. The same transaction read the searches, unless
			// they were too many to fit; then read them next.
			observed = outcome.Observed
			guessable = false
			continue
		}
		// Chosen from a read and still taken: other allocators are at
		// work. Start elsewhere, from a fresh read.
		observed = nil
		races++
	}
	return nil, errContention
}

// searches returns each range set's search order from starts; nil for a
// set whose address is requested.
func (s *Session) searches(starts []netip.Addr, requested []netip.Addr) [][]core.Segment {
	searches := make([][]core.Segment, len(s.sets))
	for i, set := range s.sets {
		if !requested[i].IsValid() {
			searches[i] = s.core.SearchOrder(set, starts[i])
		}
	}
	return searches
}

// guess returns candidates read from nothing: the first addresses of each
// search, as if free.
func (s *Session) guess(searches [][]core.Segment) [][]store.AttachedAddr {
	width := perSetWidth(guessedCandidates, len(s.sets))
	lists := make([][]store.AttachedAddr, len(s.sets))
	for i, segs := range searches {
		var observed []core.Observation
		for _, seg := range segs {
			observed = append(observed, core.Observation{Segment: seg, Complete: true})
		}
		lists[i] = s.freeInOrder(i, observed, nil, width)
	}
	return product(lists, guessedCandidates)
}

// candidates returns picked followed by alternatives: the next free
// addresses of each search as observed, for an allocator that loses picked
// to a race. A requested address has no alternative.
func (s *Session) candidates(observed [][]core.Observation, picked []store.AttachedAddr, requested []netip.Addr) [][]store.AttachedAddr {
	width := perSetWidth(observedCandidates, len(s.sets))
	lists := make([][]store.AttachedAddr, len(s.sets))
	for i := range s.sets {
		lists[i] = []store.AttachedAddr{picked[i]}
		if !requested[i].IsValid() {
			lists[i] = s.freeInOrder(i, observed[i], &picked[i], width)
		}
	}
	return product(lists, observedCandidates)
}

// perSetWidth is the number of addresses per range set whose combinations,
// all range sets together, stay within total.
func perSetWidth(total, sets int) int {
	w := 1
	for {
		n := 1
		for range sets {
			n *= w + 1
		}
		if n > total {
			return w
		}
		w++
	}
}

// freeInOrder returns up to width free addresses of range set i in search
// order as observed, starting with first when given (found by pick, perhaps
// after narrowing reads the observations lack) and then only addresses
// after it.
func (s *Session) freeInOrder(i int, observed []core.Observation, first *store.AttachedAddr, width int) []store.AttachedAddr {
	set := s.sets[i]
	var out []store.AttachedAddr
	n := 0
	if first != nil {
		out = append(out, *first)
		n = 1
	}
	for ; len(out) < width; n++ {
		choice := s.core.Choose(set, observed, n)
		// Choose returns the last free address it met when the
		// observations end before the n-th.
		if !choice.Found || (len(out) > 0 && choice.Addr == out[len(out)-1].Address.Addr()) {
			break
		}
		if first != nil && n == 1 && choice.Addr == first.Address.Addr() {
			break // the observations know nothing after first
		}
		r := set[choice.Range]
		out = append(out, store.AttachedAddr{Address: netip.PrefixFrom(choice.Addr, r.Subnet.Bits()), Gateway: r.Gateway, RangeSet: i})
	}
	return out
}

// product returns the combinations of one address per range set in
// lexicographic order, the first set's choice the most significant, at
// most limit of them. In that order the first combination whose addresses
// are all free pairs each set's first free address, as host-local's
// independent searches would.
func product(lists [][]store.AttachedAddr, limit int) [][]store.AttachedAddr {
	out := [][]store.AttachedAddr{nil}
	for _, l := range lists {
		if len(l) == 0 {
			return nil
		}
		var next [][]store.AttachedAddr
		for _, prefix := range out {
			for _, a := range l {
				next = append(next, append(append([]store.AttachedAddr(nil), prefix...), a))
			}
		}
		out = next
	}
	return out[:min(len(out), limit)]
}

// pick chooses one address per range set, in order, from observed (and
// taken, whether each requested address is taken). It stops at the first
// range set that cannot give one and returns that failure together with the
// addresses chosen before it.
func (s *Session) pick(ctx context.Context, observed [][]core.Observation, taken []bool, requested []netip.Addr) ([]store.AttachedAddr, *types.Error, error) {
	picked := make([]store.AttachedAddr, 0, len(s.sets))
	for i, set := range s.sets {
		var addr netip.Addr
		var rangeIdx int
		if requested[i].IsValid() {
			addr = requested[i]
			idx, err := s.core.CheckRequested(set, addr)
			if err != nil {
				return picked, requestedUnavailable(fmt.Sprintf("range set %d of network %q: %v", i, s.name, err)), nil
			}
			if taken[0] {
				return picked, requestedUnavailable(fmt.Sprintf("requested IP address %s is not available in range set %d (%s) of network %q", addr, i, set, s.name)), nil
			}
			taken = taken[1:]
			rangeIdx = idx
		} else {
			choice, err := s.choose(ctx, set, observed[i])
			if err != nil {
				return nil, nil, err
			}
			if !choice.Found {
				return picked, exhausted(s.name, i, set), nil
			}
			addr, rangeIdx = choice.Addr, choice.Range
		}
		r := set[rangeIdx]
		picked = append(picked, store.AttachedAddr{
			Address:  netip.PrefixFrom(addr, r.Subnet.Bits()),
			Gateway:  r.Gateway,
			RangeSet: i,
		})
	}
	return picked, nil, nil
}

// Bounds on the extra reads a search makes when runs of taken addresses
// follow the last reserved one: narrowRounds for the whole search,
// splitParts segments counted per round trip (within etcd's 128 operations
// per transaction), readableSpan the size below which a segment is read key
// by key instead of counted.
const (
	narrowRounds = 64
	splitParts   = 120
	readableSpan = 30
)

// choose runs Choose. When the first reads end inside a run of taken
// addresses, it counts the taken addresses of the remaining segments, cut
// into up to splitParts pieces (one round trip, a few bytes per piece), to
// find the first piece with room, cuts that piece and counts again until it
// is small enough to read, then reads it. A full range set is recognised
// from the first count, and a free address at the far end of a /16 after
// three round trips: two counts and a read.
func (s *Session) choose(ctx context.Context, set core.RangeSet, observed []core.Observation) (core.Choice, error) {
	const pick = 0 // the first free address in search order, as host-local
	choice := s.core.Choose(set, observed, pick)
search:
	for round := 0; !choice.Found && !choice.Exhausted; round++ {
		if round == narrowRounds {
			return core.Choice{}, fmt.Errorf("searching range set %s: no answer after %d rounds of reads", set, narrowRounds)
		}
		remaining := choice.Resume
		segs := remaining
		var seg core.Segment
		// Each level cuts the piece with room into smaller ones; a
		// piece larger than readableSpan is always cut at least in two,
		// so this ends within a few levels even for an IPv6 /64.
		for depth := 0; ; depth++ {
			if depth == narrowRounds {
				return core.Choice{}, fmt.Errorf("searching range set %s: no piece small enough to read after %d counts", set, narrowRounds)
			}
			parts := s.cut(set, segs)
			i, err := s.firstWithRoom(ctx, set, parts)
			if err != nil {
				return core.Choice{}, err
			}
			if i < 0 && depth == 0 {
				return core.Choice{Exhausted: true}, nil
			}
			if i < 0 {
				// Taken meanwhile: count the remaining segments again.
				choice = core.Choice{Resume: remaining}
				continue search
			}
			seg = parts[i]
			if s.core.SegmentCapacity(set, seg) <= readableSpan {
				break
			}
			segs = []core.Segment{seg}
		}
		more, _, err := s.net.Observe(ctx, [][]core.Segment{{seg}}, nil)
		if err != nil {
			return core.Choice{}, err
		}
		choice = s.core.Choose(set, more[0], pick)
		if !choice.Found {
			choice = core.Choice{Resume: remaining}
		}
	}
	return choice, nil
}

// cut splits segs, in order, into at most splitParts pieces, each segment
// into a share of the pieces by its size, so that one count finds the
// first piece with room to within 1/splitParts of the whole.
//
// Shares are computed in floating point: IPv6 capacities reach 2^64, where
// integer products and sums overflow (an overflowed share of 1 would leave
// a /64 uncut, counted again and again).
func (s *Session) cut(set core.RangeSet, segs []core.Segment) []core.Segment {
	caps := make([]float64, len(segs))
	var total float64
	for i, seg := range segs {
		caps[i] = float64(s.core.SegmentCapacity(set, seg))
		total += caps[i]
	}
	budget := float64(max(0, splitParts-len(segs))) // on top of one piece each
	var parts []core.Segment
	for i, seg := range segs {
		n := 1
		if total > 0 {
			n = max(1, int(budget*caps[i]/total))
		}
		if n == 1 {
			parts = append(parts, seg)
			continue
		}
		parts = append(parts, s.core.Split(seg, n)...)
	}
	return parts
}

// firstWithRoom returns the index of the first segment that has a free
// address, or -1, from one round trip of counts.
func (s *Session) firstWithRoom(ctx context.Context, set core.RangeSet, segs []core.Segment) (int, error) {
	counts, err := s.net.CountTaken(ctx, segs)
	if err != nil {
		return 0, err
	}
	for i, seg := range segs {
		if uint64(counts[i]) < s.core.SegmentCapacity(set, seg) {
			return i, nil
		}
	}
	return -1, nil
}

// burstWindow is how recently another node must have moved a range set's
// round-robin position for this ADD to assume that nodes are allocating on
// the network at the same moment.
const burstWindow = 2 * time.Second

// searchStarts returns where each range set's search starts. Normally that
// is the set's round-robin position, exactly as host-local. When another
// node moved the position within burstWindow, or after this ADD lost a race
// for an address, the search starts instead at a spot drawn from the
// container ID, node and attempt, so that allocators racing on one network
// spread over the pool instead of all trying the same next address. A
// single node therefore always follows host-local's order.
func (s *Session) searchStarts(positions []store.Position, containerID string, attempt int, now time.Time) []netip.Addr {
	starts := make([]netip.Addr, len(positions))
	for i, p := range positions {
		if attempt == 0 && !s.racing(p, now) {
			starts[i] = p.Addr
			continue
		}
		h := fnv.New64a()
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d", containerID, s.node, attempt, i)
		starts[i] = s.core.Spot(s.sets[i], h.Sum64())
	}
	return starts
}

// racing reports whether another node moved position p within
// burstWindow of now: nodes are allocating on the network at this moment.
func (s *Session) racing(p store.Position, now time.Time) bool {
	return p.Node != "" && p.Node != s.node && now.Sub(p.At).Abs() < burstWindow
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func joinAddrs(addrs []netip.Addr) string {
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}
