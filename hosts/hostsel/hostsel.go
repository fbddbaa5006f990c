// Package hostsel maps the name of a core host, as the plugin's ipam "core"
// key and the CLI's --core flag spell it (hosts.CoreNames), to a running
// hosts.Core, so that every frontend selects and starts hosts the same way.
package hostsel

import (
	"fmt"
	"io"

	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/hosts/wasm"
)

// Open starts the named host; the empty name means hosts.Native, and a name
// not in hosts.CoreNames is a *hosts.UnknownCoreError. cacheDir is where
// the wasm host keeps compiled code between processes ("" for memory only;
// wasm.DefaultCacheDir gives the usual place); native ignores it. Close the
// returned Closer when done with the host.
func Open(name, cacheDir string) (hosts.Core, io.Closer, error) {
	if name == "" {
		name = hosts.Native
	}
	if err := hosts.CheckCoreName(name); err != nil {
		return nil, nil, err
	}
	switch name {
	case hosts.Native:
		return native.New(), nopCloser{}, nil
	case hosts.Wasm:
		h, err := wasm.New(wasm.Options{CacheDir: cacheDir})
		if err != nil {
			return nil, nil, fmt.Errorf("starting the WebAssembly core: %w", err)
		}
		return h, h, nil
	}
	// A name added to hosts.CoreNames without a host here.
	return nil, nil, fmt.Errorf("core %q has no host to start", name)
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
