package kubernetes

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
)

// TestReconcilerRBACIsExactlyWhatItNeeds pins the reconciler's rights
// (NOTES 27): get/list/watch on pods and nodes and create/patch on events
// cluster-wide, get/create/update on Leases in its own namespace, bound
// to its ServiceAccount and to nothing else.
func TestReconcilerRBACIsExactlyWhatItNeeds(t *testing.T) {
	m := loadManifests(t)
	cr := m.clusterRoles[0]
	wantCluster := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if diff := cmp.Diff(wantCluster, cr.Rules); diff != "" {
		t.Errorf("ClusterRole %s rules (-want +got):\n%s", cr.Name, diff)
	}
	role := m.roles[0]
	wantRole := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
	}
	if diff := cmp.Diff(wantRole, role.Rules); diff != "" {
		t.Errorf("Role %s rules (-want +got):\n%s", role.Name, diff)
	}
	sa := m.serviceAccounts[0]
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: sa.Namespace}}
	crb := m.clusterRoleBindings[0]
	if crb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name}) || !cmp.Equal(crb.Subjects, subject) {
		t.Errorf("ClusterRoleBinding %s binds %v to %v, want ClusterRole %s to %v", crb.Name, crb.RoleRef, crb.Subjects, cr.Name, subject)
	}
	rb := m.roleBindings[0]
	if rb.Namespace != sa.Namespace || role.Namespace != sa.Namespace ||
		rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}) || !cmp.Equal(rb.Subjects, subject) {
		t.Errorf("RoleBinding %s/%s binds %v to %v, want Role %s to %v in %s", rb.Namespace, rb.Name, rb.RoleRef, rb.Subjects, role.Name, subject, sa.Namespace)
	}
	var d *reconcilerDeployment
	for _, dep := range m.deployments {
		if dep.Spec.Template.Spec.ServiceAccountName == sa.Name {
			d = &reconcilerDeployment{name: dep.Name, replicas: *dep.Spec.Replicas, args: dep.Spec.Template.Spec.Containers[0].Args}
		}
	}
	if d == nil {
		t.Fatalf("no Deployment runs as ServiceAccount %s", sa.Name)
	}
	if d.replicas != 2 || len(d.args) == 0 || d.args[0] != "reconcile" || slices.Contains(d.args, "--once") || slices.Contains(d.args, "--dry-run") {
		t.Errorf("Deployment %s: %d replicas, args %q; want 2 replicas running reconcile with leader election", d.name, d.replicas, d.args)
	}
}

type reconcilerDeployment struct {
	name     string
	replicas int32
	args     []string
}
