//go:build tools

// Package tools pins the container runtime the e2e tests drive:
// containerd (with its CRI plugin, its runc shim and ctr) and crictl, the
// CRI client kubelet's developers use. They live in a module of their own
// so that the plugin's module does not depend on them; e2e builds them
// from here, once, into a cache directory.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
