package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Cluster is an embedded etcd cluster of several members in this process,
// for tests of what a leader change does to the plugin's operations: a
// member can be stopped while the others elect a new leader.
type Cluster struct {
	members []*embed.Etcd
	urls    []string
	muted   *atomic.Bool
	stopped []sync.Once
}

// StartCluster starts an n-member cluster on loopback, with data under
// t.TempDir, and stops it in t.Cleanup. Raft timers are etcd's defaults
// (100 ms heartbeat, 1 s election timeout): after the leader is stopped,
// the followers go on trusting it for up to a second before they elect
// another, which is the window a client must ride out in production too.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	muted := new(atomic.Bool)
	token := "etcdtest-cluster-" + strconv.Itoa(ports[0])
	var initial []string
	cfgs := make([]*embed.Config, n)
	for i := range n {
		clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i]))}
		peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i+1]))}
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("%s-%d", token, i)
		cfg.Dir = t.TempDir()
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
		cfg.InitialClusterToken = token
		cfg.LogLevel = "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newLogger(muted).With(zap.String("etcd", cfg.Name)))
		cfg.UnsafeNoFsync = true
		cfg.BackendBatchInterval = 5 * time.Millisecond
		initial = append(initial, cfg.Name+"="+peerURL.String())
		cfgs[i] = cfg
	}
	c := &Cluster{muted: muted, stopped: make([]sync.Once, n)}
	t.Cleanup(c.stopAll)
	// Every member must be starting before any can be ready: a quorum
	// needs the others.
	for i, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			t.Fatalf("etcdtest: starting member %d: %v", i, err)
		}
		c.members = append(c.members, e)
		c.urls = append(c.urls, cfg.AdvertiseClientUrls[0].String())
	}
	for i, e := range c.members {
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			t.Fatalf("etcdtest: member %d failed while starting: %v", i, err)
		case <-time.After(readyTimeout):
			t.Fatalf("etcdtest: member %d was not ready within %v", i, readyTimeout)
		}
	}
	return c
}

// Endpoints lists the members' client URLs, in member order.
func (c *Cluster) Endpoints() []string { return append([]string(nil), c.urls...) }

// Leader returns the index of the member that leads, waiting up to
// readyTimeout for the running members to agree on one.
func (c *Cluster) Leader(t testing.TB) int {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		for i, e := range c.members {
			if c.isStopped(i) {
				continue
			}
			if lead := e.Server.Leader(); lead != 0 && lead == e.Server.MemberID() {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("etcdtest: no leader within %v", readyTimeout)
	return -1
}

// Stop stops member i: its clients' connections break, and the others
// elect a new leader if it led.
func (c *Cluster) Stop(i int) {
	c.stopped[i].Do(func() {
		// A stopping member logs its own orderly shutdown at error
		// level; the test only wants to hear of real trouble.
		c.muted.Store(true)
		c.members[i].Close()
		c.muted.Store(false)
	})
}

func (c *Cluster) isStopped(i int) bool {
	select {
	case <-c.members[i].Server.StopNotify():
		return true
	default:
		return false
	}
}

func (c *Cluster) stopAll() {
	for i := range c.members {
		c.Stop(i)
	}
}
