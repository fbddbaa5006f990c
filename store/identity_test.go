package store

import (
	"errors"
	"strings"
	"testing"
)

// TestIdentityOf: a pod is an identity only when Kubernetes could have it
// (NOTES 25). What runtimes send otherwise (podman's lone container name, a
// namespace alone, names with a slash or a space) is recorded for display
// and never takes or leaves a hold.
func TestIdentityOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pod    *PodRef
		ifName string
		want   string // "" for no identity
	}{
		{"no pod", nil, "eth0", ""},
		{"a Kubernetes pod", &PodRef{Namespace: "shop", Name: "web-0", UID: "u1"}, "eth0", "shop/web-0/eth0"},
		{"a dotted pod name", &PodRef{Namespace: "kube-system", Name: "coredns.v1-abc"}, "net1", "kube-system/coredns.v1-abc/net1"},
		{"podman: a name alone", &PodRef{Name: "a"}, "eth0", ""},
		{"a namespace alone", &PodRef{Namespace: "shop"}, "eth0", ""},
		{"a name with a slash", &PodRef{Namespace: "ns", Name: "a/b"}, "eth0", ""},
		{"a namespace with a slash", &PodRef{Namespace: "../..", Name: "x"}, "eth0", ""},
		{"a name with a space", &PodRef{Namespace: "sh op", Name: "x y"}, "eth0", ""},
		{"upper case", &PodRef{Namespace: "Shop", Name: "web-0"}, "eth0", ""},
		{"a dotted namespace", &PodRef{Namespace: "a.b", Name: "web-0"}, "eth0", ""},
		{"a name too long", &PodRef{Namespace: "ns", Name: strings.Repeat("a", 254)}, "eth0", ""},
		{"an interface name too long", &PodRef{Namespace: "ns", Name: "p"}, "sixteen-bytes-ab", ""},
	} {
		id := IdentityOf(Attachment{IfName: tc.ifName, Pod: tc.pod})
		got := ""
		if id != nil {
			got = id.String()
		}
		if got != tc.want {
			t.Errorf("%s: IdentityOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestCheckIdentityNamesThePart: the CLI shows CheckIdentity's error to
// an operator who typed --for or --pod, so it says which part is wrong.
func TestCheckIdentityNamesThePart(t *testing.T) {
	for _, tc := range []struct {
		id   Identity
		what string
	}{
		{Identity{Namespace: "shop", Name: "x", IfName: ".."}, IfName},
		{Identity{Namespace: "shop", Name: "x/..", IfName: "eth0"}, PodName},
		{Identity{Namespace: "..", Name: "..", IfName: "eth0"}, PodNamespace},
		{Identity{Namespace: "shop", Name: "x", IfName: "averyveryverylong0"}, IfName},
		{Identity{Namespace: "shop", Name: "x", IfName: "et h0"}, IfName},
	} {
		err := CheckIdentity(tc.id)
		var nameErr *NameError
		if !errors.As(err, &nameErr) || nameErr.What != tc.what {
			t.Errorf("CheckIdentity(%+v) = %v, want a NameError about the %s", tc.id, err, tc.what)
		}
	}
	if err := CheckIdentity(Identity{Namespace: "shop", Name: "web-0", IfName: "eth0"}); err != nil {
		t.Errorf("a valid identity: %v", err)
	}
}

// TestPodRefString: listings show what the runtime sent.
func TestPodRefString(t *testing.T) {
	for _, tc := range []struct {
		pod  PodRef
		want string
	}{
		{PodRef{Namespace: "shop", Name: "web-0"}, "shop/web-0"},
		{PodRef{Name: "a"}, "a"},
		{PodRef{Namespace: "shop"}, "shop/"},
	} {
		if got := tc.pod.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.pod, got, tc.want)
		}
	}
}
