// Package hostsel maps the name of a core host, as the plugin's ipam "core"
// key and the CLI's --core flag spell it, to a running hosts.Core, so that
// every frontend selects and starts hosts the same way.
package hostsel

import (
	"fmt"
	"io"
	"strings"

	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/hosts/wasm"
)

// The host names. Native is the default: no start-up cost.
const (
	Native = "native"
	Wasm   = "wasm"
)

// Names lists the accepted names, the default first.
func Names() []string { return []string{Native, Wasm} }

// UnknownError reports a name that is not in Names.
type UnknownError struct{ Name string }

func (e *UnknownError) Error() string {
	return fmt.Sprintf("core %q is unknown; use %s", e.Name, strings.Join(quoted(Names()), " or "))
}

func quoted(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}

// Open starts the named host. The empty name means Native. cacheDir is where
// the wasm host keeps compiled code between processes ("" for memory only;
// wasm.DefaultCacheDir gives the usual place); native ignores it. Close the
// returned Closer when done with the host.
func Open(name, cacheDir string) (hosts.Core, io.Closer, error) {
	switch name {
	case "", Native:
		return native.New(), nopCloser{}, nil
	case Wasm:
		h, err := wasm.New(wasm.Options{CacheDir: cacheDir})
		if err != nil {
			return nil, nil, fmt.Errorf("starting the WebAssembly core: %w", err)
		}
		return h, h, nil
	}
	return nil, nil, &UnknownError{Name: name}
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
