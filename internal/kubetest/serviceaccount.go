package kubetest

import (
	"context"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

const (
	// requestTimeout bounds each request the harness makes itself.
	requestTimeout = 30 * time.Second
	// tokenLifetime outlives any test; a token stays valid across
	// Restart, which keeps the signing key.
	tokenLifetime = 24 * time.Hour
)

// ServiceAccountConfig returns a client config that authenticates as the
// ServiceAccount namespace/name, creating the namespace and the account
// first if they do not exist. Its bearer token comes from the TokenRequest
// API, so the identity is the one a pod of that account would have: RBAC
// grants it only what the test binds to it (user
// "system:serviceaccount:<namespace>:<name>").
func (s *Server) ServiceAccountConfig(t testing.TB, namespace, name string) *rest.Config {
	t.Helper()
	c := s.AdminClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("kubetest: creating namespace %s: %v", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := c.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("kubetest: creating service account %s/%s: %v", namespace, name, err)
	}
	seconds := int64(tokenLifetime / time.Second)
	tr, err := c.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: requesting a token of %s/%s: %v", namespace, name, err)
	}
	return &rest.Config{
		Host:            s.host,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.pki.caPEM},
		BearerToken:     tr.Status.Token,
		QPS:             -1,
	}
}
