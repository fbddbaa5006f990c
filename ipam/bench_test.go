package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// These benchmarks time one session's operations against an embedded etcd
// on loopback, without process start-up; "etcd-ipam bench" measures whole
// plugin processes against host-local. Run them with
//
//	go test -run '^$' -bench . ./ipam/

func benchSession(b *testing.B, srv *etcdtest.Server, name, subnet, node string) *Session {
	b.Helper()
	conf := testNetwork(srv, name, []core.RangeSpec{{Subnet: subnet}})
	s, err := Open(conf, Options{Core: native.New(), Node: node})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchCtx(b *testing.B) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	b.Cleanup(cancel)
	return c
}

// BenchmarkAddEmpty16 is an ADD into a /16 that fills up only as b.N does.
func BenchmarkAddEmpty16(b *testing.B) {
	srv := etcdtest.Start(b)
	s := benchSession(b, srv, "bench-add", "198.18.0.0/16", "node-a")
	ctx := benchCtx(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Add(ctx, fmt.Sprintf("c%d", i), "eth0", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddDelBusy20 is an ADD and a DEL on a /20 that is 90% full with
// every tenth address free, the way churn leaves a pool.
func BenchmarkAddDelBusy20(b *testing.B) {
	srv := etcdtest.Start(b)
	s := benchSession(b, srv, "bench-busy", "198.19.0.0/20", "node-a")
	ctx := benchCtx(b)
	r := s.RangeSets()[0][0]
	var atts []store.Attachment
	i := 0
	for a := r.RangeStart; !r.RangeEnd.Less(a); a, i = a.Next(), i+1 {
		if a == r.Gateway || i%10 == 0 {
			continue
		}
		atts = append(atts, store.Attachment{ContainerID: "filler-" + a.String(), IfName: "eth0", Node: "filler-node", Created: time.Now().UTC(),
			IPs: []store.AttachedAddr{{Address: netip.PrefixFrom(a, r.Subnet.Bits())}}})
	}
	if err := s.net.Record(ctx, atts); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("c%d", i)
		if _, err := s.Add(ctx, id, "eth0", nil); err != nil {
			b.Fatal(err)
		}
		if err := s.Del(ctx, id, "eth0"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDel is a DEL of an attachment made before the timer started.
func BenchmarkDel(b *testing.B) {
	srv := etcdtest.Start(b)
	s := benchSession(b, srv, "bench-del", "198.18.0.0/16", "node-a")
	ctx := benchCtx(b)
	for i := 0; i < b.N; i++ {
		if _, err := s.Add(ctx, fmt.Sprintf("c%d", i), "eth0", nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Del(ctx, fmt.Sprintf("c%d", i), "eth0"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddContended64 runs ADDs from 64 sessions, each a node of its
// own, at once on one /16, and checks that every ADD got its own address.
func BenchmarkAddContended64(b *testing.B) {
	srv := etcdtest.Start(b)
	const allocators = 64
	sessions := make([]*Session, allocators)
	for i := range sessions {
		sessions[i] = benchSession(b, srv, "bench-crowd", "198.18.0.0/16", fmt.Sprintf("node-%02d", i))
	}
	ctx := benchCtx(b)
	next := make(chan int)
	go func() {
		for i := 0; i < b.N; i++ {
			next <- i
		}
		close(next)
	}()
	b.ResetTimer()
	errs := make(chan error, allocators)
	for _, s := range sessions {
		go func() {
			for i := range next {
				if _, err := s.Add(ctx, fmt.Sprintf("c%d", i), "eth0", nil); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range sessions {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	resp, err := srv.Client(b).Get(ctx, sessions[0].net.Prefix()+"ips/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		b.Fatal(err)
	}
	if resp.Count != int64(b.N) {
		b.Fatalf("%d addresses allocated, want %d", resp.Count, b.N)
	}
}

// BenchmarkGC10000 is a GC that releases 10,000 stale attachments of this
// node, recorded before the timer starts.
func BenchmarkGC10000(b *testing.B) {
	srv := etcdtest.Start(b)
	ctx := benchCtx(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := benchSession(b, srv, fmt.Sprintf("bench-gc-%d", i), "198.18.0.0/16", "node-a")
		r := s.RangeSets()[0][0]
		a := r.RangeStart.Next()
		var atts []store.Attachment
		for k := 0; k < 10000; k++ {
			atts = append(atts, store.Attachment{ContainerID: fmt.Sprintf("stale-%d", k), IfName: "eth0", Node: "node-a",
				Created: time.Now().UTC(), IPs: []store.AttachedAddr{{Address: netip.PrefixFrom(a, r.Subnet.Bits())}}})
			a = a.Next()
		}
		if err := s.net.Record(ctx, atts); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		released, err := s.GC(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(released) != 10000 {
			b.Fatalf("GC released %d attachments, want 10000", len(released))
		}
	}
}

// BenchmarkStickyPod is the life of a StatefulSet pod on a sticky network:
// its ADD (nothing held: one read, one write), its DEL turning the
// addresses into holds (a read, a lease grant, a write), and its next
// instance's ADD taking them back (one read, one write).
func BenchmarkStickyPod(b *testing.B) {
	srv := etcdtest.Start(b)
	conf := testNetwork(srv, "bench-sticky", []core.RangeSpec{{Subnet: "198.18.0.0/16"}}, []core.RangeSpec{{Subnet: "2001:db8:80::/64"}})
	conf.Sticky = time.Hour
	s, err := Open(conf, Options{Core: native.New(), Node: "node-a"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ctx := benchCtx(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := &store.PodRef{Namespace: "bench", Name: fmt.Sprintf("web-%d", i)}
		if _, err := s.AddPod(ctx, fmt.Sprintf("c%d-a", i), "eth0", nil, p); err != nil {
			b.Fatal(err)
		}
		if err := s.Del(ctx, fmt.Sprintf("c%d-a", i), "eth0"); err != nil {
			b.Fatal(err)
		}
		if _, err := s.AddPod(ctx, fmt.Sprintf("c%d-b", i), "eth0", nil, p); err != nil {
			b.Fatal(err)
		}
	}
}
