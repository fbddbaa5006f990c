package ipam

import (
	"testing"

	"google.golang.org/grpc"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// TestAddAfterALostReplyNeverWritesTwice: an ADD whose write committed but
// whose reply was lost is retried (settle); the retry finds the attachment
// its first attempt wrote and answers with its addresses, without a second
// write: a retry never resends work that already committed, so it neither
// takes a second address nor adds load to a struggling cluster.
func TestAddAfterALostReplyNeverWritesTwice(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "add-lost", []core.RangeSpec{{Subnet: "203.0.113.0/28"}})
	l := &replyLoser{}
	cc := &countingCore{Core: native.New(), counts: map[string]int{}}
	s, err := Open(conf, Options{Core: cc, Node: "node-a", DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(l.interceptor)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var got []string
	l.loseNext(t, func() {
		ips, err := s.Add(ctx(t), "c1", "eth0", nil)
		if err != nil {
			t.Fatalf("ADD, reply lost: %v", err)
		}
		got = addrs(ips)
	})
	if !equal(got, []string{"203.0.113.2/28"}) {
		t.Errorf("ADD answered %v, want 203.0.113.2/28", got)
	}
	if cc.counts["offer"] != 1 {
		t.Errorf("%d writes offered, want 1: the retry must find the committed one", cc.counts["offer"])
	}
	all, err := s.Allocations(ctx(t))
	if err != nil || len(all) != 1 {
		t.Fatalf("allocations %+v (%v), want the one address", all, err)
	}
	// The next ADD continues after it, as if no reply had been lost.
	if next := mustAdd(t, s, "c2"); !equal(next, []string{"203.0.113.3/28"}) {
		t.Errorf("next ADD got %v, want 203.0.113.3/28", next)
	}
}
