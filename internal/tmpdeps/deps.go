// Package tmpdeps keeps modules that parts of the project still being
// written will need in go.mod, so that parallel work does not race on it.
// It is removed once every import below is used by real code.
package tmpdeps

import (
	_ "github.com/containernetworking/cni/libcni"
	_ "github.com/containernetworking/plugins/pkg/link"
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"
	_ "github.com/ory/dockertest/v3"
	_ "github.com/tetratelabs/wazero"
	_ "go.etcd.io/etcd/server/v3/etcdmain"
)
