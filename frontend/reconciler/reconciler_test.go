package reconciler

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/internal/kubetest"
	"github.com/etcd-cni/etcd-ipam/internal/testbin"
	"github.com/etcd-cni/etcd-ipam/ipam"
	"github.com/etcd-cni/etcd-ipam/store"
)

func TestMain(m *testing.M) { os.Exit(testbin.Run(m)) }

const grace = 2 * time.Second

// cluster is a real kube-apiserver and a real etcd with one network on
// it, and the plugin binary that allocates on it as a runtime calls it.
type cluster struct {
	t       *testing.T
	api     *kubetest.Server
	admin   kubernetes.Interface
	plugin  string
	conf    string
	session *ipam.Session
	logs    *logLines
	// etcd is the plugin's etcd (the API server has its own).
	etcd *etcdtest.Server
}

func newCluster(t *testing.T, extraIPAM string) *cluster {
	t.Helper()
	api := kubetest.Start(t)
	etcd := etcdtest.Start(t)
	conf := fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "podnet", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": %q}%s,
		"ranges": [[{"subnet": "10.20.0.0/24"}]]}}`, etcd.Endpoint(), extraIPAM)
	loaded, err := config.Load([]byte(conf), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ipam.Open(loaded, ipam.Options{Core: native.New(), Node: "reconciler"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	logs := &logLines{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the reconcilers' log:\n%s", strings.Join(logs.lines, "\n"))
		}
	})
	return &cluster{t: t, api: api, admin: api.AdminClient(t), conf: conf, session: s, logs: logs, etcd: etcd,
		plugin: testbin.Path(t, "etcd-cni", "github.com/etcd-cni/etcd-ipam/frontend/cni")}
}

// cni runs the plugin as containerd does, with its CNI_ARGS.
func (c *cluster) cni(command, node, container, args string) string {
	c.t.Helper()
	cmd := exec.Command(c.plugin)
	cmd.Env = []string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + container, "CNI_IFNAME=eth0", "CNI_NETNS=/dev/null",
		"CNI_PATH=" + filepath.Dir(c.plugin), "ETCD_IPAM_NODE_NAME=" + node, "CNI_ARGS=" + args}
	cmd.Stdin = strings.NewReader(c.conf)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("%s %s: %v\n%s%s", command, container, err, out.String(), errOut.String())
	}
	return out.String()
}

// podADD creates a pod on node in the API server and makes its ADD with
// the CNI_ARGS a CRI runtime sends; it returns the pod.
func (c *cluster) podADD(ns, name, node, container string) *corev1.Pod {
	c.t.Helper()
	pod, err := c.admin.CoreV1().Pods(ns).Create(c.t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "x"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.cni("ADD", node, container, fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
		ns, name, container, pod.UID))
	return pod
}

func (c *cluster) node(name string) {
	c.t.Helper()
	if _, err := c.admin.CoreV1().Nodes().Create(c.t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) namespace(name string) {
	c.t.Helper()
	if _, err := c.admin.CoreV1().Namespaces().Create(c.t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) deletePod(ns, name string) {
	c.t.Helper()
	zero := int64(0)
	if err := c.admin.CoreV1().Pods(ns).Delete(c.t.Context(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		c.t.Fatal(err)
	}
}

// containers returns the containers that hold attachments now.
func (c *cluster) containers() map[string]bool {
	c.t.Helper()
	atts, err := c.session.Attachments(c.t.Context())
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, a := range atts {
		out[a.ContainerID] = true
	}
	return out
}

// reconciler starts a reconciler on the cluster as client, acting.
func (c *cluster) reconciler(client kubernetes.Interface, name string) *Reconciler {
	c.t.Helper()
	r, err := New(Options{Client: client, Networks: []Network{{Name: "podnet", Session: c.session}}, Grace: grace,
		Log: c.logs.add(name)})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.t.Cleanup(func() { cancel(); r.Stop() })
	if err := r.Start(ctx); err != nil {
		c.t.Fatal(err)
	}
	r.SetActing(true)
	return r
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(who string) func(string) {
	return func(s string) {
		l.mu.Lock()
		l.lines = append(l.lines, who+": "+s)
		l.mu.Unlock()
	}
}

func (l *logLines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gone waits until the reconciler's cache no longer has the pod.
func gone(t *testing.T, r *Reconciler, ns, name string) {
	t.Helper()
	eventually(t, 10*time.Second, "the pod's deletion reached the cache", func() bool {
		_, ok, _ := r.pods.GetIndexer().GetByKey(ns + "/" + name)
		return !ok
	})
}

// TestReleasesWhatIsGoneAndKeepsWhatLives runs the reconciler against a
// real API server and etcd, with the plugin making the allocations: each
// kind of leak is released after the grace (a missing node at once); a
// live pod, a pod's next instance and attachments without a pod UID are
// never touched.
func TestReleasesWhatIsGoneAndKeepsWhatLives(t *testing.T) {
	c := newCluster(t, "")
	c.namespace("shop")
	c.node("node-1")
	c.node("node-2")
	c.podADD("shop", "alive", "node-1", "c-alive")
	c.podADD("shop", "deleted", "node-1", "c-deleted")
	c.podADD("shop", "replaced", "node-1", "c-replaced-1")
	c.podADD("shop", "failed", "node-1", "c-failed")
	c.podADD("shop", "on-node-2", "node-2", "c-node2")
	c.cni("ADD", "node-2", "c-podman", "IgnoreUnknown=1;K8S_POD_NAME=web")     // podman: no identity
	c.cni("ADD", "node-gone", "c-plain", "")                                   // plain CNI on a node Kubernetes never had
	c.cni("ADD", "node-1", "c-nouid", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=x") // identity without UID
	r := c.reconciler(c.admin, "r")

	report := r.Pass(t.Context())
	if report.Released != 0 || len(report.Leaks) != 0 {
		t.Fatalf("first pass over live pods: %+v", report)
	}
	c.deletePod("shop", "deleted")
	c.deletePod("shop", "replaced")
	c.podADD("shop", "replaced", "node-1", "c-replaced-2")
	pod, err := c.admin.CoreV1().Pods("shop").Get(t.Context(), "failed", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodFailed
	if _, err := c.admin.CoreV1().Pods("shop").UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.admin.CoreV1().Nodes().Delete(t.Context(), "node-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone(t, r, "shop", "deleted")
	eventually(t, 10*time.Second, "node-2's deletion reached the cache", func() bool {
		_, ok, _ := r.nodes.GetIndexer().GetByKey("node-2")
		return !ok
	})
	eventually(t, 10*time.Second, "the Failed phase reached the cache", func() bool {
		return r.cached(store.Attachment{Node: "node-1", Pod: &store.PodRef{Namespace: "shop", Name: "failed", UID: string(pod.UID)}}).PodTerminal
	})

	report = r.Pass(t.Context())
	have := c.containers()
	if have["c-node2"] {
		t.Errorf("the pod on the deleted node keeps its attachment after a pass: %+v", report.Leaks)
	}
	for _, id := range []string{"c-deleted", "c-replaced-1", "c-failed"} {
		if !have[id] {
			t.Errorf("%s released before its grace", id)
		}
	}
	time.Sleep(grace)
	report = r.Pass(t.Context())
	have = c.containers()
	for _, id := range []string{"c-deleted", "c-replaced-1", "c-failed", "c-node2"} {
		if have[id] {
			t.Errorf("%s not released after the grace: %+v", id, report.Leaks)
		}
	}
	for _, id := range []string{"c-alive", "c-replaced-2", "c-podman", "c-plain", "c-nouid"} {
		if !have[id] {
			t.Errorf("%s released", id)
		}
	}
	for _, reason := range []Reason{PodGone, PodReplaced, PodTerminal, NodeGone} {
		if c.logs.count("reason="+string(reason)) != 1 {
			t.Errorf("want one release log line for %s, logs %q", reason, c.logs.lines)
		}
	}
	// Many passes more change nothing.
	for range 5 {
		if rep := r.Pass(t.Context()); rep.Released != 0 {
			t.Fatalf("a later pass released %+v", rep.Leaks)
		}
	}
}

// TestDeletedPodComesBackOneGraceAfterItsDeletion checks the watch: the
// addresses of a deleted pod are released one grace period after its
// deletion, by the delayed work item, with no full pass.
func TestDeletedPodComesBackOneGraceAfterItsDeletion(t *testing.T) {
	c := newCluster(t, "")
	c.namespace("shop")
	c.node("node-1")
	c.podADD("shop", "web", "node-1", "c-web")
	r := c.reconciler(c.admin, "r")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.work(ctx)
	c.deletePod("shop", "web")
	deleted := time.Now()
	gone(t, r, "shop", "web")
	eventually(t, grace+5*time.Second, "released by the delayed work item", func() bool { return !c.containers()["c-web"] })
	if took := time.Since(deleted); took < grace {
		t.Errorf("released %v after the deletion, before the grace of %v", took, grace)
	}
}

// TestAPIErrorsDecideNothing stops the API server between the cached look
// and the live read: a pod whose cache entry says gone (it is not: a
// stale cache is simulated by the live read failing) keeps its addresses,
// and a live pod survives passes across a restart.
func TestAPIErrorsDecideNothing(t *testing.T) {
	c := newCluster(t, "")
	c.namespace("shop")
	c.node("node-1")
	c.podADD("shop", "alive", "node-1", "c-alive")
	c.podADD("shop", "deleted", "node-1", "c-deleted")
	r := c.reconciler(c.admin, "r")
	c.deletePod("shop", "deleted")
	gone(t, r, "shop", "deleted")
	r.Pass(t.Context())
	time.Sleep(grace)
	c.api.Stop()
	report := r.Pass(t.Context())
	if report.Released != 0 || report.APIErrors == 0 {
		t.Errorf("a pass with the API server down released %d, saw %d API errors; want 0 and some", report.Released, report.APIErrors)
	}
	if !c.containers()["c-deleted"] || !c.containers()["c-alive"] {
		t.Fatal("an attachment was released while the API server was down")
	}
	c.api.Restart(t)
	eventually(t, 30*time.Second, "released once the API server answers again", func() bool {
		r.Pass(t.Context())
		return !c.containers()["c-deleted"]
	})
	for range 5 {
		r.Pass(t.Context())
	}
	if !c.containers()["c-alive"] {
		t.Fatal("the live pod's attachment was released")
	}
}

// TestReservationsAndAttachmentsWithoutAUIDAreNeverTouched reserves
// addresses as an operator does and makes attachments that carry no pod
// UID, on a live node and on one Kubernetes never had, for pods that do
// not exist: however many passes past the grace, the reservations stay as
// they were and the attachments stay; the one attachment taken from a
// reservation by a pod that is gone goes back to that reservation.
func TestReservationsAndAttachmentsWithoutAUIDAreNeverTouched(t *testing.T) {
	c := newCluster(t, "")
	c.namespace("shop")
	c.node("node-1")
	ctx := t.Context()
	forNobody := netip.MustParseAddr("10.20.0.200")
	forGhost := netip.MustParseAddr("10.20.0.201")
	forDB := netip.MustParseAddr("10.20.0.202")
	if _, err := c.session.Reserve(ctx, []netip.Addr{forNobody}, nil, "router"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.session.Reserve(ctx, []netip.Addr{forGhost}, &store.Identity{Namespace: "shop", Name: "ghost", IfName: "eth0"}, "never started"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.session.Reserve(ctx, []netip.Addr{forDB}, &store.Identity{Namespace: "shop", Name: "db-0", IfName: "eth0"}, "db"); err != nil {
		t.Fatal(err)
	}
	before := map[netip.Addr]*store.StoredAllocation{}
	for _, a := range []netip.Addr{forNobody, forGhost} {
		held, err := c.session.LookupAddress(ctx, a)
		if err != nil || held == nil || held.Hold == nil {
			t.Fatalf("%s after reserve: %+v, %v", a, held, err)
		}
		before[a] = held
	}
	c.podADD("shop", "db-0", "node-1", "c-db")
	if atts, err := c.session.ContainerAttachments(ctx, "c-db", "eth0"); err != nil || len(atts) != 1 || atts[0].IPs[0].Address.Addr() != forDB {
		t.Fatalf("db-0 got %+v, %v; want its reservation %s", atts, err, forDB)
	}
	untouchable := map[string]string{
		"c-nouid":        "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=nouid;K8S_POD_INFRA_CONTAINER_ID=c-nouid",
		"c-lone-uid":     "IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_UID=3f1c7e2a-0000-4000-8000-000000000001",
		"c-podman":       "IgnoreUnknown=1;K8S_POD_NAME=web",
		"c-plain":        "",
		"c-nouid-nonode": "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=gone",
	}
	for id, args := range untouchable {
		node := "node-1"
		if strings.HasSuffix(id, "-nonode") {
			node = "node-never"
		}
		c.cni("ADD", node, id, args)
	}
	r := c.reconciler(c.admin, "r")
	c.deletePod("shop", "db-0")
	gone(t, r, "shop", "db-0")
	report := r.Pass(ctx)
	if n := report.Networks[0].Untouchable; n != len(untouchable) {
		t.Errorf("%d attachments counted untouchable, want %d: %+v", n, len(untouchable), report)
	}
	time.Sleep(grace)
	report = r.Pass(ctx)
	if report.Released != 1 || report.Leaks[0].ContainerID != "c-db" {
		t.Fatalf("want db-0's attachment released and nothing else: %+v", report)
	}
	for range 3 {
		if report := r.Pass(ctx); report.Released != 0 || len(report.Leaks) != 0 {
			t.Fatalf("a later pass: %+v", report)
		}
	}

	have := c.containers()
	for id := range untouchable {
		if !have[id] {
			t.Errorf("%s (no pod UID) was released", id)
		}
	}
	for a, was := range before {
		now, err := c.session.LookupAddress(ctx, a)
		if err != nil || now == nil || now.ModRevision != was.ModRevision {
			t.Errorf("the reservation of %s changed: %+v, then %+v (%v)", a, was, now, err)
		}
	}
	back, err := c.session.LookupAddress(ctx, forDB)
	if err != nil || back == nil || back.Hold == nil || back.Hold.Kind != store.HoldReserved || back.Hold.For == nil || back.Hold.For.Name != "db-0" {
		t.Fatalf("%s after db-0's release: %+v, %v; want db-0's reservation back", forDB, back, err)
	}
}

// TestALiveReadOverrulesAStaleCache makes the informers' caches lag: a
// live pod and a live node are dropped from them. Past the grace, the
// live reads find both, and nothing is released; the node's pod would
// have gone at once, and the pod after the grace, had the cache decided.
func TestALiveReadOverrulesAStaleCache(t *testing.T) {
	c := newCluster(t, "")
	c.namespace("shop")
	c.node("node-1")
	c.node("node-2")
	c.podADD("shop", "web", "node-1", "c-web")
	c.podADD("shop", "api", "node-2", "c-api")
	r := c.reconciler(c.admin, "r")
	for _, x := range []struct {
		indexer cache.Indexer
		key     string
	}{{r.pods.GetIndexer(), "shop/web"}, {r.nodes.GetIndexer(), "node-2"}} {
		obj, ok, err := x.indexer.GetByKey(x.key)
		if err != nil || !ok {
			t.Fatalf("%s not in the cache: %v", x.key, err)
		}
		if err := x.indexer.Delete(obj); err != nil {
			t.Fatal(err)
		}
	}
	report := r.Pass(t.Context())
	if len(report.Leaks) != 2 || report.Released != 0 {
		t.Fatalf("the first pass over a stale cache: %+v", report)
	}
	time.Sleep(grace)
	report = r.Pass(t.Context())
	if report.Released != 0 {
		t.Fatalf("released live pods on a stale cache's word: %+v", report.Leaks)
	}
	for _, l := range report.Leaks {
		if l.Outcome != Recovered {
			t.Errorf("%s: outcome %s, want %s", l.ContainerID, l.Outcome, Recovered)
		}
	}
	if have := c.containers(); !have["c-web"] || !have["c-api"] {
		t.Fatalf("after the passes: %v", have)
	}
}
