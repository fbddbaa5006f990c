package config

import (
	"bytes"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/etcd-cni/etcd-ipam/core"
)

// wire types mirror the JSON a runtime sends.
type netConf struct {
	CNIVersion    string    `json:"cniVersion"`
	Name          string    `json:"name"`
	IPAM          *ipamConf `json:"ipam"`
	RuntimeConfig struct {
		IPRanges [][]core.RangeSpec `json:"ipRanges,omitempty"`
		IPs      []string           `json:"ips,omitempty"`
	} `json:"runtimeConfig,omitempty"`
	Args *struct {
		CNI *struct {
			IPs []string `json:"ips"`
		} `json:"cni"`
	} `json:"args"`
	ValidAttachments []types.GCAttachment `json:"cni.dev/valid-attachments,omitempty"`
}

type ipamConf struct {
	Type string `json:"type"`
	// The deprecated single range at the top of "ipam".
	Subnet     string             `json:"subnet"`
	RangeStart string             `json:"rangeStart"`
	RangeEnd   string             `json:"rangeEnd"`
	Gateway    string             `json:"gateway"`
	Ranges     [][]core.RangeSpec `json:"ranges"`
	Routes     []*routeConf       `json:"routes"`
	ResolvConf string             `json:"resolvConf"`
	NodeName   string             `json:"nodeName"`
	Core       string             `json:"core"`
	WasmCache  string             `json:"wasmCacheDir"`
	LogFile    string             `json:"logFile"`
	LogLevel   string             `json:"logLevel"`
	Sticky     string             `json:"sticky"`
	Cooldown   string             `json:"cooldown"`
	Etcd       *etcdConf          `json:"etcdConfig"`
}

// routeConf is one entry of ipam "routes". CNI's own decoder of a route
// reports a "dst" that is not a CIDR (or a "gw" that is not an address)
// without saying where; routeError keeps the route's text so that the
// message can give its line and column.
type routeConf struct{ types.Route }

func (r *routeConf) UnmarshalJSON(data []byte) error {
	if err := r.Route.UnmarshalJSON(data); err != nil {
		return &routeError{text: bytes.Clone(data), err: err}
	}
	return nil
}

type routeError struct {
	text []byte
	err  error
}

func (e *routeError) Error() string {
	return fmt.Sprintf(`ipam "routes": %v; write each route as {"dst": "CIDR", "gw": "address"}`, e.err)
}

func (e *routeError) Unwrap() error { return e.err }

// routes returns the routes as written; a null entry stays nil, as in
// host-local.
func routes(rs []*routeConf) []*types.Route {
	if rs == nil {
		return nil
	}
	out := make([]*types.Route, len(rs))
	for i, r := range rs {
		if r != nil {
			out[i] = &r.Route
		}
	}
	return out
}

type etcdConf struct {
	URL        string `json:"etcdURL"`
	CertFile   string `json:"etcdCertFile"`
	KeyFile    string `json:"etcdKeyFile"`
	CAFileFile string `json:"etcdTrustedCAFileFile"`
	CAFile     string `json:"etcdTrustedCAFile"`
	Username   string `json:"etcdUsername"`
	Password   string `json:"etcdPassword"`
	Timeout    string `json:"etcdTimeout"`
}
