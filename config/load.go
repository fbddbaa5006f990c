package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
)

// noIPAM is the message for a configuration without an "ipam" object.
const noIPAM = `the network configuration has no "ipam" object; add "ipam": {"type": "etcd", ...}`

// Load parses the network configuration of an ADD with its CNI_ARGS: the
// network, and what the invocation asks for (requested addresses, the
// pod).
func Load(stdin []byte, cniArgs string) (*Network, error) {
	return load(stdin, cniArgs, true)
}

// LoadNetwork parses the network configuration alone, for the commands
// that act on what is already stored (DEL, CHECK, GC, STATUS) and for the
// CLI. It reads no CNI_ARGS and no requested addresses (args.cni.ips,
// runtimeConfig.ips): a runtime sends DEL with what it sent to the ADD,
// and an argument that made that ADD fail must not also keep its DEL from
// releasing (NOTES 25).
func LoadNetwork(stdin []byte) (*Network, error) {
	return load(stdin, "", false)
}

func load(stdin []byte, cniArgs string, requests bool) (*Network, error) {
	if err := CheckJSON(stdin); err != nil {
		return nil, err
	}
	var n netConf
	if err := json.Unmarshal(stdin, &n); err != nil {
		return nil, undecodable("cannot decode the network configuration: " + describeJSONError(stdin, err))
	}
	if n.IPAM == nil {
		return nil, invalid(noIPAM)
	}
	if n.Name == "" {
		return nil, invalid(`the network configuration has no "name"; every network needs one`)
	}
	ipam := n.IPAM
	net := &Network{
		CNIVersion:       n.CNIVersion,
		Name:             n.Name,
		Routes:           routes(ipam.Routes),
		ResolvConf:       ipam.ResolvConf,
		NodeName:         ipam.NodeName,
		Core:             ipam.Core,
		WasmCacheDir:     ipam.WasmCache,
		LogFile:          ipam.LogFile,
		LogLevel:         ipam.LogLevel,
		ValidAttachments: n.ValidAttachments,
	}
	if net.NodeName != "" {
		if err := CheckNodeName(nodeNameKey, net.NodeName); err != nil {
			return nil, err
		}
	}
	if err := checkLogging(net); err != nil {
		return nil, err
	}
	if net.Core == "" {
		net.Core = hosts.Native
	}
	if hosts.CheckCoreName(net.Core) != nil {
		return nil, invalid(fmt.Sprintf(`ipam "core" is %q; use %s`, ipam.Core, coreChoices()))
	}
	if net.WasmCacheDir != "" && !filepath.IsAbs(net.WasmCacheDir) {
		// A plugin's working directory is the runtime's, not the admin's.
		return nil, invalid(fmt.Sprintf(`ipam "wasmCacheDir" is %q; give an absolute path`, net.WasmCacheDir))
	}

	if requests {
		requested, pod, err := loadRequested(cniArgs, &n)
		if err != nil {
			return nil, err
		}
		net.Requested, net.Pod = requested, pod
	}
	var err error
	if net.Sticky, err = loadSticky(ipam.Sticky); err != nil {
		return nil, err
	}
	if net.Cooldown, err = loadCooldown(ipam.Cooldown); err != nil {
		return nil, err
	}

	net.RangeSets = orderRangeSets(n.RuntimeConfig.IPRanges, core.RangeSpec{
		Subnet: ipam.Subnet, RangeStart: ipam.RangeStart, RangeEnd: ipam.RangeEnd, Gateway: ipam.Gateway,
	}, ipam.Ranges)

	etcd, err := loadEtcd(ipam.Etcd)
	if err != nil {
		return nil, err
	}
	net.Etcd = etcd
	return net, nil
}

func loadRequested(cniArgs string, n *netConf) ([]netip.Addr, *Pod, error) {
	var raw []string
	var pod *Pod
	if cniArgs != "" {
		args, err := parseCNIArgs(cniArgs)
		if err != nil {
			return nil, nil, &Error{Kind: BadEnvironment, Msg: fmt.Sprintf("CNI_ARGS %q: %v", cniArgs, err),
				Hint: "write CNI_ARGS as K=V;K2=V2, e.g. IgnoreUnknown=1;IP=203.0.113.7"}
		}
		raw, pod = append(raw, args.ips...), args.pod
	}
	if n.Args != nil && n.Args.CNI != nil {
		raw = append(raw, n.Args.CNI.IPs...)
	}
	raw = append(raw, n.RuntimeConfig.IPs...)
	addrs := make([]netip.Addr, 0, len(raw))
	for _, s := range raw {
		a, err := core.ParseRequestedAddr(s)
		if err != nil {
			return nil, nil, invalid(fmt.Sprintf("requested IP: %v", err))
		}
		addrs = append(addrs, a)
	}
	return addrs, pod, nil
}

// loadSticky reads ipam "sticky": how long a pod's addresses stay held for
// it after its DEL, under a lease. Empty means not sticky.
func loadSticky(text string) (time.Duration, error) {
	return loadLeaseDuration("sticky", text, "addresses freed at DEL")
}

// loadCooldown reads ipam "cooldown": how long a released address goes to
// no other pod, held for nobody under a lease. Empty means no cooldown.
func loadCooldown(text string) (time.Duration, error) {
	return loadLeaseDuration("cooldown", text, "addresses free again at once when released")
}

// coreChoices lists the core names for a message, as written in JSON,
// marking the default: `"native" (the default) or "wasm"`.
func coreChoices() string {
	var names []string
	for _, n := range hosts.CoreNames() {
		q := fmt.Sprintf("%q", n)
		if n == hosts.Native {
			q += " (the default)"
		}
		names = append(names, q)
	}
	return strings.Join(names, " or ")
}
