package kubetest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

func context30s(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestServer is the harness's contract in one story, on one server (each
// start costs seconds): the admin can do anything, a ServiceAccount only
// what RBAC grants it, servers sharing an etcd do not see each other, and
// objects outlive a restart.
func TestServer(t *testing.T) {
	if testing.Short() {
		t.Skip("kubetest: a real kube-apiserver is not short")
	}
	if _, err := Binary(); err != nil { // the build is not the start's cost
		t.Fatal(err)
	}
	etcd := etcdtest.Start(t)
	start := time.Now()
	s := Start(t, WithEtcd(etcd.Endpoint()))
	t.Logf("Start took %v", time.Since(start))
	admin := s.AdminClient(t)
	ctx := context30s(t)

	v, err := admin.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != Version {
		t.Errorf("server version %q, want %q", v.GitVersion, Version)
	}

	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pods"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "pods", Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/none"}}},
	}
	if _, err := admin.CoreV1().Pods("pods").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	wantPod(t, admin, "p")

	t.Run("RBAC", func(t *testing.T) {
		ctx := context30s(t)
		sa, err := kubernetes.NewForConfig(s.ServiceAccountConfig(t, "reader", "pod-reader"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = sa.CoreV1().Pods("pods").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("listing pods without a binding: %v, want forbidden", err)
		}
		role := &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
		}
		if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "pod-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "reader", Name: "pod-reader"}},
		}
		if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// RBAC's authorizer reads bindings from an informer: a new
		// binding takes effect within moments, not at once.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err = sa.CoreV1().Pods("pods").List(ctx, metav1.ListOptions{})
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("listing pods with a binding: %v", err)
		}
		wantPod(t, sa, "p")
		if _, err := sa.CoreV1().Pods("pods").Create(ctx, pod, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("creating a pod with get/list only: %v, want forbidden", err)
		}
	})

	t.Run("Kubeconfig", func(t *testing.T) {
		path := s.Kubeconfig(t)
		if path != s.Kubeconfig(t) {
			t.Error("a second call wrote another file")
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		wantPod(t, c, "p")
	})

	// What the package doc says of deleting pods without a kubelet.
	t.Run("PodDeletion", func(t *testing.T) {
		ctx := context30s(t)
		pods := admin.CoreV1().Pods("pods")
		onNode := pod.DeepCopy()
		onNode.Name, onNode.Spec.NodeName = "on-node", "node-1"
		if _, err := pods.Create(ctx, onNode, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pods.Delete(ctx, onNode.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := pods.Get(ctx, onNode.Name, metav1.GetOptions{})
		if err != nil || got.DeletionTimestamp == nil {
			t.Fatalf("a pod on a node after a graceful delete: %v, %v; want it kept, deleting", err, got.DeletionTimestamp)
		}
		zero := int64(0)
		if err := pods.Delete(ctx, onNode.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		if _, err := pods.Get(ctx, onNode.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("after a delete with grace 0: %v, want not found", err)
		}

		noNode := pod.DeepCopy()
		noNode.Name = "no-node"
		if _, err := pods.Create(ctx, noNode, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pods.Delete(ctx, noNode.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := pods.Get(ctx, noNode.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("a pod on no node after a delete: %v, want not found", err)
		}
	})

	t.Run("SharedEtcd", func(t *testing.T) {
		other := Start(t, WithEtcd(etcd.Endpoint())).AdminClient(t)
		_, err := other.CoreV1().Namespaces().Get(context30s(t), "pods", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("a second server on the same etcd: namespace pods: %v, want not found", err)
		}
	})

	t.Run("Restart", func(t *testing.T) {
		s.Stop()
		s.Stop() // idempotent
		ctx := context30s(t)
		if _, err := admin.CoreV1().Pods("pods").List(ctx, metav1.ListOptions{}); err == nil {
			t.Fatal("listing pods succeeded while the server was stopped")
		}
		start := time.Now()
		s.Restart(t)
		t.Logf("Restart took %v", time.Since(start))
		// The same client: the port, the CA and the etcd are the same.
		wantPod(t, admin, "p")
	})
}

// wantPod checks that listing namespace "pods" gives exactly the pod name.
func wantPod(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	list, err := c.CoreV1().Pods("pods").List(context30s(t), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != name {
		var names []string
		for _, p := range list.Items {
			names = append(names, p.Name)
		}
		t.Fatalf("pods %v, want [%s]", names, name)
	}
}
