package ipam

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// replyLoser lets the next write through to etcd, which commits it, and
// then tells the caller that the connection broke: the reply is lost, as
// when a member dies between committing and answering.
type replyLoser struct {
	mu    sync.Mutex
	armed bool
	lost  int
}

func (l *replyLoser) interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if txn, ok := req.(*etcdserverpb.TxnRequest); ok && err == nil && l.armed && writes(txn) {
		l.armed = false
		l.lost++
		return status.Error(codes.Unavailable, "connection lost after the write was sent (test)")
	}
	return err
}

// loseNext arms the loser for the next write and, after op, checks that
// it lost one reply.
func (l *replyLoser) loseNext(t *testing.T, op func()) {
	t.Helper()
	l.mu.Lock()
	l.armed, l.lost = true, 0
	l.mu.Unlock()
	op()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != 1 {
		t.Fatalf("%d replies lost, want 1: the operation made no write", l.lost)
	}
}

// writes reports whether a transaction can write: any put or delete, at
// any level.
func writes(txn *etcdserverpb.TxnRequest) bool {
	for _, ops := range [][]*etcdserverpb.RequestOp{txn.Success, txn.Failure} {
		for _, op := range ops {
			if op.GetRequestPut() != nil || op.GetRequestDeleteRange() != nil {
				return true
			}
			if t := op.GetRequestTxn(); t != nil && writes(t) {
				return true
			}
		}
	}
	return false
}

// TestOperatorWritesAfterALostReply: an operator's reserve and releases
// whose write committed but whose reply was lost are retried (settle), and
// the retry reports what happened: reserved, released, not "taken by
// itself" or "nothing released".
func TestOperatorWritesAfterALostReply(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "lost", []core.RangeSpec{{Subnet: "203.0.113.0/28"}})
	l := &replyLoser{}
	s, err := Open(conf, Options{Core: native.New(), Node: "node-a", DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(l.interceptor)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	id := &store.Identity{Namespace: "db", Name: "router-0", IfName: "eth0"}
	static := netip.MustParseAddr("203.0.113.7")
	nobody := netip.MustParseAddr("203.0.113.9")

	l.loseNext(t, func() {
		if _, err := s.Reserve(ctx(t), []netip.Addr{static}, id, "static"); err != nil {
			t.Fatalf("reserve for router-0, reply lost: %v", err)
		}
	})
	l.loseNext(t, func() {
		if _, err := s.Reserve(ctx(t), []netip.Addr{nobody}, nil, "broken NIC"); err != nil {
			t.Fatalf("reserve for nobody, reply lost: %v", err)
		}
	})
	if set, err := s.net.HeldSet(ctx(t), *id); err != nil || set == nil || len(set.Addrs) != 1 || set.Addrs[0].Addr != static {
		t.Fatalf("router-0's reservation: %+v (%v)", set, err)
	}

	// An attachment released by address, one by container, a hold.
	if _, err := s.Add(ctx(t), "c1", "eth0", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx(t), "c2", "eth0", nil); err != nil {
		t.Fatal(err)
	}
	c1 := attachmentsOf(t, s, []string{"c1"})[0]
	held, err := s.LookupAddress(ctx(t), c1.IPs[0].Address.Addr())
	if err != nil {
		t.Fatal(err)
	}
	l.loseNext(t, func() {
		if _, err := s.ReleaseAddress(ctx(t), *held); err != nil {
			t.Fatalf("release %s, reply lost: %v", held.Addr, err)
		}
	})
	l.loseNext(t, func() {
		if n, err := s.FreeAttachments(ctx(t), attachmentsOf(t, s, []string{"c2"})); err != nil || n != 1 {
			t.Fatalf("release --container c2, reply lost: %d released (%v), want 1", n, err)
		}
	})
	hold, err := s.LookupAddress(ctx(t), nobody)
	if err != nil {
		t.Fatal(err)
	}
	l.loseNext(t, func() {
		if err := s.ReleaseHold(ctx(t), *hold); err != nil {
			t.Fatalf("release of the reservation %s, reply lost: %v", nobody, err)
		}
	})
	if all, err := s.Allocations(ctx(t)); err != nil || len(all) != 1 || all[0].Addr != static {
		t.Fatalf("left: %+v (%v), want router-0's reservation only", all, err)
	}
}

// TestReserveTwice: the same reserve again says that it already holds,
// with the first one's time and note; a different one for the same pod,
// or of an address the pod does not hold, is still refused.
func TestReserveTwice(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "twice", []core.RangeSpec{{Subnet: "203.0.113.0/28"}}, []core.RangeSpec{{Subnet: "2001:db8:3::/120"}})
	s := openSession(t, conf, "node-a")
	id := &store.Identity{Namespace: "db", Name: "router-0", IfName: "eth0"}
	both := []netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8:3::7")}
	first, err := s.Reserve(ctx(t), both, id, "static")
	if err != nil || first.Already {
		t.Fatalf("first reserve: %+v (%v)", first, err)
	}
	for _, attached := range []bool{false, true} {
		again, err := s.Reserve(ctx(t), both, id, "static")
		if err != nil || !again.Already || again.Note != "static" || again.Since.IsZero() {
			t.Fatalf("reserve again (attached: %v): %+v (%v), want Already with the first's note and time", attached, again, err)
		}
		// The same with the pod attached.
		if _, err := s.AddPod(ctx(t), "router", "eth0", nil, &store.PodRef{Namespace: "db", Name: "router-0"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Reserve(ctx(t), both[:1], id, "static"); err == nil {
		t.Fatal("reserving part of router-0's reservation again passed; want refused (it holds other addresses)")
	}
	spare := []netip.Addr{netip.MustParseAddr("203.0.113.9")}
	if _, err := s.Reserve(ctx(t), spare, nil, "spare"); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Reserve(ctx(t), spare, nil, "other note"); err != nil || !again.Already || again.Note != "spare" {
		t.Fatalf("reserve for nobody again: %+v (%v), want Already with the first note", again, err)
	}
	if _, err := s.Reserve(ctx(t), spare, id, ""); err == nil {
		t.Fatal("reserving nobody's address for router-0 passed")
	}
}
