package devetcd

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Cluster is an embedded etcd cluster of several members in this process,
// for seeing what a leader change does to the plugin's operations: a
// member can be stopped while the others elect a new leader. Raft timers
// are etcd's defaults (100 ms heartbeat, 1 s election timeout), so after
// the leader stops the followers trust it for up to a second before they
// elect another, as in production.
type Cluster struct {
	members []*embed.Etcd
	urls    []string
	muted   *atomic.Bool
	stopped []sync.Once
}

// StartCluster starts an n-member cluster on loopback ports with each
// member's data in a directory under dir. The caller must Close it.
func StartCluster(dir string, n int) (*Cluster, error) {
	return startCluster(dir, n, Options{})
}

func startCluster(dir string, n int, opts Options) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	muted := new(atomic.Bool)
	token := "devetcd-cluster-" + strconv.Itoa(ports[0])
	var initial []string
	cfgs := make([]*embed.Config, n)
	for i := range n {
		clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i]))}
		peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i+1]))}
		name := fmt.Sprintf("%s-%d", token, i)
		cfg, err := memberConfig(name, filepath.Join(dir, name), clientURL, peerURL, muted, opts)
		if err != nil {
			return nil, err
		}
		cfg.InitialClusterToken = token
		initial = append(initial, cfg.Name+"="+peerURL.String())
		cfgs[i] = cfg
	}
	c := &Cluster{muted: muted, stopped: make([]sync.Once, n)}
	// Every member must be starting before any can be ready: a quorum
	// needs the others.
	for i, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("starting cluster member %d: %w", i, err)
		}
		c.members = append(c.members, e)
		c.urls = append(c.urls, cfg.AdvertiseClientUrls[0].String())
	}
	for i, e := range c.members {
		if err := waitReady(e); err != nil {
			c.Close()
			return nil, fmt.Errorf("cluster member %d: %w", i, err)
		}
	}
	return c, nil
}

// Endpoints lists the members' client URLs, in member order.
func (c *Cluster) Endpoints() []string { return append([]string(nil), c.urls...) }

// Leader returns the index of the member that leads, waiting up to
// readyTimeout for the running members to agree on one.
func (c *Cluster) Leader() (int, error) {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		for i, e := range c.members {
			if c.isStopped(i) {
				continue
			}
			if lead := e.Server.Leader(); lead != 0 && lead == e.Server.MemberID() {
				return i, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return -1, errors.New("the cluster elected no leader within " + readyTimeout.String())
}

// Stop stops member i: its clients' connections break, and the others
// elect a new leader if it led.
func (c *Cluster) Stop(i int) {
	c.stopped[i].Do(func() {
		// A stopping member logs its own orderly shutdown at error
		// level; only real trouble should be heard.
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

// Close stops every member.
func (c *Cluster) Close() {
	for i := range c.members {
		c.Stop(i)
	}
}
