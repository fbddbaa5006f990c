// Package tmpdeps keeps modules that parts of the project still being
// written will need in go.mod, so that parallel work does not race on it.
// It is removed once every import below is used by real code. (Programs
// the tests build, such as host-local and the etcd server, are pinned by
// go.mod's tool directives instead.)
package tmpdeps

import (
	_ "github.com/containernetworking/cni/libcni"
	_ "github.com/ory/dockertest/v3"
	_ "github.com/tetratelabs/wazero"
)
