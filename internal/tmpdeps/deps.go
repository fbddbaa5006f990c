package tmpdeps

import (
	_ "github.com/containernetworking/cni/libcni"
	_ "github.com/containernetworking/cni/pkg/skel"
	_ "github.com/urfave/cli/v2"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/etcd/server/v3/embed"
)

import _ "go.etcd.io/etcd/server/v3/etcdmain"

import _ "github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"
