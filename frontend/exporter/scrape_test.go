package exporter

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/ipam"
	"github.com/etcd-cni/etcd-ipam/store"
)

// received counts the bytes of etcd's answers to the sessions it
// instruments.
type received struct {
	mu       sync.Mutex
	bytes    int
	requests int
}

func (r *received) interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if m, ok := reply.(proto.Message); ok {
		r.bytes += proto.Size(m)
	}
	return err
}

func (r *received) take() (bytes, requests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bytes, requests, r.bytes, r.requests = r.bytes, r.requests, 0, 0
	return bytes, requests
}

// BenchmarkScrape measures one scrape of 5 networks holding 100,000
// allocations in all, made by 20, 100 or 1,000 nodes on every network: its
// time, and the requests and bytes it reads from etcd, which grow with the
// nodes (a liveness record and a count each) and not with the
// allocations. Run it with
//
//	go test -run '^$' -bench Scrape -benchtime 50x ./frontend/exporter
func BenchmarkScrape(b *testing.B) {
	for _, nodes := range []int{20, 100, 1000} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) { benchmarkScrape(b, nodes) })
	}
}

func benchmarkScrape(b *testing.B, nodes int) {
	const networks, perNetwork = 5, 20000
	srv := etcdtest.Start(b)
	cli := srv.Client(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wire := &received{}
	var nets []Network
	for n := range networks {
		name := fmt.Sprintf("net-%d", n)
		sets := [][]core.RangeSpec{{{Subnet: fmt.Sprintf("10.%d.0.0/16", 40+n)}}}
		conf := &config.Network{CNIVersion: "1.1.0", Name: name, RangeSets: sets,
			Etcd: config.Etcd{Endpoints: []string{srv.Endpoint()}, Timeout: 10 * time.Second}}
		st, err := store.Open(cli, name)
		if err != nil {
			b.Fatal(err)
		}
		created := time.Now().UTC().Truncate(time.Millisecond)
		atts := make([]store.Attachment, 0, perNetwork)
		a := netip.MustParseAddr(fmt.Sprintf("10.%d.0.2", 40+n))
		for i := range perNetwork {
			atts = append(atts, store.Attachment{ContainerID: fmt.Sprintf("c%05d", i), IfName: "eth0",
				Node: fmt.Sprintf("node-%04d", i%nodes), Created: created,
				IPs: []store.AttachedAddr{{Address: netip.PrefixFrom(a, 16)}}})
			a = a.Next()
		}
		if err := st.Record(ctx, atts); err != nil {
			b.Fatal(err)
		}
		for i := range nodes {
			if err := st.Sight(ctx, store.Sighting{Node: fmt.Sprintf("node-%04d", i), At: created, By: "STATUS"}); err != nil {
				b.Fatal(err)
			}
		}
		nets = append(nets, Network{Name: name, Open: func() (Session, error) {
			return ipam.Open(conf, ipam.Options{Core: native.New(), Node: "exporter",
				DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(wire.interceptor)}})
		}})
	}
	c, err := NewCollector(nets, Options{Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	scrape := func() {
		families, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "etcd_ipam_up" {
				continue
			}
			for _, m := range f.GetMetric() {
				if m.GetGauge().GetValue() != 1 {
					b.Fatalf("a network is down: %v", m)
				}
			}
		}
	}
	scrape() // opens the sessions
	wire.take()
	b.ResetTimer()
	for b.Loop() {
		scrape()
	}
	b.StopTimer()
	bytes, requests := wire.take()
	b.ReportMetric(float64(bytes)/float64(b.N), "etcd-bytes/scrape")
	b.ReportMetric(float64(requests)/float64(b.N), "etcd-requests/scrape")
}
