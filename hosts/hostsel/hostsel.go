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
// the wasm host keeps compiled code between processes; empty means
// wasm.DefaultCacheDir(getenv), so that no frontend needs to know the
// default. Native ignores both. Close the returned Closer when done with
// the host.
func Open(name, cacheDir string, getenv func(string) string) (hosts.Core, io.Closer, error) {
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
		if cacheDir == "" {
			cacheDir = wasm.DefaultCacheDir(getenv)
		}
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
