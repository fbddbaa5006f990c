package reconciler

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/ipam"
	"github.com/etcd-cni/etcd-ipam/store"
)

// countingTransport counts the requests a client makes, by kind: "LIST
// pods", "WATCH nodes", "GET pod" (one object), or the method and path of
// anything else.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := req.Method + " " + req.URL.Path
	resource := ""
	for _, r := range []string{"pods", "nodes"} {
		if strings.HasSuffix(req.URL.Path, "/"+r) {
			resource = r
		} else if strings.Contains(req.URL.Path, "/"+r+"/") {
			resource = strings.TrimSuffix(r, "s")
		}
	}
	switch {
	case resource == "":
	case req.URL.Query().Get("watch") == "true":
		kind = "WATCH " + resource
	case req.Method == http.MethodGet && strings.HasSuffix(resource, "s"):
		kind = "LIST " + resource
	case req.Method == http.MethodGet:
		kind = "GET " + resource
	}
	c.mu.Lock()
	c.seen[kind]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

// take returns the counts and starts counting afresh.
func (c *countingTransport) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.seen
	c.seen = map[string]int{}
	return out
}

// TestScalePass measures a full pass over 20,000 attachments on 1,000
// nodes against 5,000 live pods, and counts what it asks the API server.
// It logs the numbers (README, Performance); set ETCD_IPAM_RECONCILE_SCALE=1
// to run it.
func TestScalePass(t *testing.T) {
	if os.Getenv("ETCD_IPAM_RECONCILE_SCALE") != "1" {
		t.Skip("set ETCD_IPAM_RECONCILE_SCALE=1 to measure a pass over 20,000 attachments")
	}
	const nodes, perNode, livePods = 1000, 20, 5000
	c := newCluster(t, "")
	ctx := t.Context()
	c.namespace("shop")
	conf, err := config.Load([]byte(strings.Replace(c.conf, `"10.20.0.0/24"`, `"10.128.0.0/12"`, 1)), "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	uids := map[string]string{}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range livePods {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			name := fmt.Sprintf("p%d", i)
			pod, err := c.admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
				Spec: corev1.PodSpec{NodeName: fmt.Sprintf("n%d", i%nodes), Containers: []corev1.Container{{Name: "c", Image: "x"}}}}, metav1.CreateOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			uids[name] = string(pod.UID)
			mu.Unlock()
		}()
	}
	for i := range nodes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := c.admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%d", i)}}, metav1.CreateOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	t.Logf("created %d pods and %d nodes in %v", livePods, nodes, time.Since(start))
	start = time.Now()
	for n := range nodes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s, err := ipam.Open(conf, ipam.Options{Core: native.New(), Node: fmt.Sprintf("n%d", n)})
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			for k := range perNode {
				i := n*perNode + k // pods p0..p4999 live, the rest gone
				name := fmt.Sprintf("p%d", i)
				mu.Lock()
				uid := uids[name]
				mu.Unlock()
				if uid == "" {
					uid = "gone-" + name
				}
				if _, err := s.AddPod(ctx, "c"+name, "eth0", nil, &store.PodRef{Namespace: "shop", Name: name, UID: uid}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("made %d attachments in %v", nodes*perNode, time.Since(start))

	cfg := c.api.AdminConfig()
	counter := &countingTransport{seen: map[string]int{}}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter }
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64 // how far the reconciler's clock is ahead
	now := func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
	r, err := New(Options{Client: client, Networks: []Network{{Name: "podnet", Session: c.session}}, Grace: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); r.Stop() }()
	start = time.Now()
	if err := r.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	synced := time.Since(start)
	start = time.Now()
	report := r.Pass(ctx)
	took := time.Since(start)
	leaked := 0
	for _, n := range report.Networks {
		leaked += n.Leaked
	}
	t.Logf("informers synced in %v; pass over %d attachments (%d leaked) in %v", synced, report.Networks[0].Attachments, leaked, took)
	requests := counter.take()
	t.Logf("API requests from the start to the end of the pass: %v", requests)
	if leaked != nodes*perNode-livePods {
		t.Errorf("%d leaked, want %d", leaked, nodes*perNode-livePods)
	}
	// The informers' one read of each: a LIST then a WATCH, or a WATCH
	// that streams the list first (client-go's WatchListClient).
	for _, r := range []string{"pods", "nodes"} {
		if requests["LIST "+r] > 1 || requests["WATCH "+r] != 1 {
			t.Errorf("%d lists and %d watches of %s, want at most one list and one watch: %v", requests["LIST "+r], requests["WATCH "+r], r, requests)
		}
	}
	if n := requests["GET pod"] + requests["GET node"]; n != 0 {
		t.Errorf("a pass with no leak due made %d live GETs", n)
	}

	// The grace has passed: each leak costs one live GET and one release.
	r.SetActing(true)
	clock.Store(int64(2 * time.Hour))
	start = time.Now()
	report = r.Pass(ctx)
	took = time.Since(start)
	requests = counter.take()
	t.Logf("pass releasing %d leaks in %v; API requests: %v", report.Released, took, requests)
	if report.Released != nodes*perNode-livePods || report.APIErrors != 0 {
		t.Errorf("released %d with %d API errors, want %d and none", report.Released, report.APIErrors, nodes*perNode-livePods)
	}
	if requests["GET pod"] != report.Released || len(requests) != 1 {
		t.Errorf("%v for %d releases, want one GET of a pod each and nothing else", requests, report.Released)
	}
	if atts, err := c.session.Attachments(ctx); err != nil || len(atts) != livePods {
		t.Errorf("%d attachments left (%v), want the %d live pods'", len(atts), err, livePods)
	}
}
