package reconciler

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
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

// countingTransport counts the requests a client makes, by verb and path.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := req.Method
	switch {
	case req.URL.Query().Get("watch") == "true":
		kind = "WATCH"
	case req.Method == http.MethodGet && (strings.HasSuffix(req.URL.Path, "/pods") || strings.HasSuffix(req.URL.Path, "/nodes")):
		kind = "LIST"
	}
	c.mu.Lock()
	c.seen[kind+" "+req.URL.Path]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
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
	r, err := New(Options{Client: client, Networks: []Network{{Name: "podnet", Session: c.session}}, Grace: time.Hour})
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
	t.Logf("API requests: %v", counter.seen)
	if leaked != nodes*perNode-livePods {
		t.Errorf("%d leaked, want %d", leaked, nodes*perNode-livePods)
	}
}
