package reconciler

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/yaml"

	"github.com/etcd-cni/etcd-ipam/store"
)

// racingSession runs race once, right after the attachments are listed:
// what a DEL or ADD arriving between a pass's list and its release does.
type racingSession struct {
	Session
	race func()
}

func (s *racingSession) Attachments(ctx context.Context) ([]store.StoredAttachment, error) {
	atts, err := s.Session.Attachments(ctx)
	if s.race != nil {
		s.race()
		s.race = nil
	}
	return atts, err
}

// TestRacingDELAndADDWin makes the late DEL of a gone pod arrive between
// the list and the release, and the same container's attachment be made
// again, and a live pod take an address: the release frees nothing.
func TestRacingDELAndADDWin(t *testing.T) {
	c := newCluster(t, "")
	c.namespace("shop")
	c.node("node-1")
	pod := c.podADD("shop", "racy", "node-1", "c-racy")
	r := c.reconciler(c.admin, "r")
	c.deletePod("shop", "racy")
	gone(t, r, "shop", "racy")
	r.Pass(t.Context())
	time.Sleep(grace)
	args := "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=racy;K8S_POD_INFRA_CONTAINER_ID=c-racy;K8S_POD_UID=" + string(pod.UID)
	r.opts.Networks[0].Session = &racingSession{Session: c.session, race: func() {
		c.cni("DEL", "node-1", "c-racy", args)
		c.podADD("shop", "other", "node-1", "c-other")
		c.cni("ADD", "node-1", "c-racy", args)
	}}
	report := r.Pass(t.Context())
	if report.Released != 0 || len(report.Leaks) != 1 || report.Leaks[0].Outcome != Changed {
		t.Fatalf("a pass whose attachment changed after the list: %+v", report)
	}
	if have := c.containers(); !have["c-racy"] || !have["c-other"] {
		t.Fatalf("after the race: %v, want the re-made c-racy and c-other", have)
	}
	// The next pass sees the re-made attachment of the gone pod afresh.
	if report := r.Pass(t.Context()); report.Released != 0 {
		t.Errorf("the re-made attachment was released before its own grace: %+v", report.Leaks)
	}
}

// TestStickyReleasesMakeHolds releases a gone pod on a sticky network:
// the address becomes a hold, and the pod's next instance gets it back.
func TestStickyReleasesMakeHolds(t *testing.T) {
	c := newCluster(t, `, "sticky": "1h"`)
	c.namespace("shop")
	c.node("node-1")
	c.podADD("shop", "db-0", "node-1", "c-db-1")
	first := c.session
	atts, err := first.Attachments(t.Context())
	if err != nil || len(atts) != 1 {
		t.Fatal(atts, err)
	}
	addr := atts[0].IPs[0].Address.Addr()
	r := c.reconciler(c.admin, "r")
	c.deletePod("shop", "db-0")
	gone(t, r, "shop", "db-0")
	r.Pass(t.Context())
	time.Sleep(grace)
	if report := r.Pass(t.Context()); report.Released != 1 {
		t.Fatalf("want the gone pod released: %+v", report)
	}
	held, err := c.session.LookupAddress(t.Context(), addr)
	if err != nil || held == nil || held.Hold == nil {
		t.Fatalf("%s after the release: %+v, %v; want a hold", addr, held, err)
	}
	c.podADD("shop", "db-0", "node-1", "c-db-2")
	atts, err = c.session.ContainerAttachments(t.Context(), "c-db-2", "eth0")
	if err != nil || len(atts) != 1 || atts[0].IPs[0].Address.Addr() != addr {
		t.Fatalf("the next instance got %+v, %v; want %s back", atts, err, addr)
	}
}

// TestOnlyTheLeaderReleases runs two replicas: only the Lease holder
// releases, and when it stops the other takes over.
func TestOnlyTheLeaderReleases(t *testing.T) {
	c := newCluster(t, "")
	c.namespace("shop")
	c.namespace("etcd-ipam")
	c.node("node-1")
	c.podADD("shop", "a", "node-1", "c-a")
	c.podADD("shop", "b", "node-1", "c-b")
	replicas := []*Reconciler{c.reconciler(c.admin, "r0"), c.reconciler(c.admin, "r1")}
	cancels := make([]context.CancelFunc, 2)
	for i, r := range replicas {
		r.SetActing(false)
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		t.Cleanup(cancel)
		go r.Elect(ctx, Election{Namespace: "etcd-ipam", Name: "reconcile", Identity: []string{"r0", "r1"}[i],
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond})
	}
	leader := -1
	eventually(t, 20*time.Second, "a leader", func() bool {
		for i, r := range replicas {
			if r.acting.Load() {
				leader = i
			}
		}
		return leader >= 0
	})
	follower := 1 - leader
	if replicas[follower].acting.Load() {
		t.Fatal("both replicas act")
	}
	c.deletePod("shop", "a")
	c.deletePod("shop", "b")
	for _, r := range replicas {
		gone(t, r, "shop", "a")
		gone(t, r, "shop", "b")
		r.Pass(t.Context())
	}
	time.Sleep(grace)
	if report := replicas[follower].Pass(t.Context()); report.Released != 0 || !c.containers()["c-a"] {
		t.Fatalf("the follower released: %+v", report)
	}
	if report := replicas[leader].Pass(t.Context()); report.Released != 2 {
		t.Fatalf("the leader released %d, want 2: %+v", report.Released, report.Leaks)
	}
	c.podADD("shop", "c", "node-1", "c-c")
	c.deletePod("shop", "c")
	cancels[leader]()
	eventually(t, 20*time.Second, "the other replica takes over", func() bool { return replicas[follower].acting.Load() })
	gone(t, replicas[follower], "shop", "c")
	replicas[follower].Pass(t.Context())
	time.Sleep(grace)
	if report := replicas[follower].Pass(t.Context()); report.Released != 1 {
		t.Fatalf("the new leader released %d, want 1: %+v", report.Released, report.Leaks)
	}
}

// TestRunsUnderTheManifestsRBAC binds a ServiceAccount to exactly the
// ClusterRole and Role of deploy/kubernetes/reconciler.yaml and runs the
// reconciler as it: informers, live reads, the Lease and the Event work.
func TestRunsUnderTheManifestsRBAC(t *testing.T) {
	c := newCluster(t, "")
	data, err := os.ReadFile("../../deploy/kubernetes/reconciler.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.namespace("etcd-ipam")
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		switch tm.Kind {
		case "ClusterRole":
			var o rbacv1.ClusterRole
			decode(t, doc, &o)
			_, err = c.admin.RbacV1().ClusterRoles().Create(ctx, &o, metav1.CreateOptions{})
		case "ClusterRoleBinding":
			var o rbacv1.ClusterRoleBinding
			decode(t, doc, &o)
			_, err = c.admin.RbacV1().ClusterRoleBindings().Create(ctx, &o, metav1.CreateOptions{})
		case "Role":
			var o rbacv1.Role
			decode(t, doc, &o)
			_, err = c.admin.RbacV1().Roles(o.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		case "RoleBinding":
			var o rbacv1.RoleBinding
			decode(t, doc, &o)
			_, err = c.admin.RbacV1().RoleBindings(o.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		default:
			continue // the ServiceAccount comes from kubetest, the Deployment does not run here
		}
		if err != nil {
			t.Fatalf("creating the manifest's %s: %v", tm.Kind, err)
		}
	}
	client, err := kubernetes.NewForConfig(c.api.ServiceAccountConfig(t, "etcd-ipam", "etcd-ipam-reconciler"))
	if err != nil {
		t.Fatal(err)
	}
	c.namespace("shop")
	c.node("node-1")
	c.podADD("shop", "web", "node-1", "c-web")
	broadcaster := record.NewBroadcaster()
	t.Cleanup(broadcaster.Shutdown)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	r, err := New(Options{Client: client, Networks: []Network{{Name: "podnet", Session: c.session}}, Grace: grace, Log: c.logs.add("sa"),
		Events: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "etcd-ipam-reconcile"})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); r.Stop() })
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	go r.Elect(ctx, Election{Namespace: "etcd-ipam", Name: "etcd-ipam-reconcile", Identity: "sa",
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond})
	eventually(t, 20*time.Second, "leading under the Role", func() bool { return r.acting.Load() })
	c.deletePod("shop", "web")
	gone(t, r, "shop", "web")
	r.Pass(t.Context())
	time.Sleep(grace)
	if report := r.Pass(t.Context()); report.Released != 1 || report.APIErrors != 0 {
		t.Fatalf("under the manifests' RBAC: %+v", report)
	}
	eventually(t, 20*time.Second, "an IPAddressReleased Event about the pod", func() bool {
		events, err := c.admin.CoreV1().Events("shop").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events.Items {
			if e.Reason == EventReason && e.InvolvedObject.Name == "web" && e.InvolvedObject.Kind == "Pod" {
				return true
			}
		}
		return false
	})
}

func decode(t *testing.T, doc string, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(bytes.TrimSpace([]byte(doc)), into); err != nil {
		t.Fatal(err)
	}
}
