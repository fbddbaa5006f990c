// Package e2e proves the plugin as it is used: executed as a binary by a
// runtime (libcni, with the bridge plugin; and containerd's CRI plugin,
// driven by crictl as kubelet drives it), against real etcd servers in
// Docker containers built from source, across network namespaces the tests
// create, while etcd members are stopped, cut off or entirely down.
//
// The tests need a Docker daemon and root (for network namespaces). They
// fail, rather than skip, when Docker is missing, so that CI cannot pass
// without running them; `go test -short` skips them. Everything they create
// carries the test process's id (a container label, a name prefix), is
// removed in t.Cleanup, and is swept at the start of the next run if a
// crashed run left it behind.
package e2e
