//go:build tools

// Package apiserver pins the kube-apiserver that internal/kubetest builds
// and runs. It is a module of its own so that Kubernetes' dependency graph
// (hundreds of modules, and replacements only a main module may make) stays
// out of the project's go.mod; nothing imports this package.
package apiserver

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
