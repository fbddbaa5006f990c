// Package config is the plugin's one configuration loader: it turns the
// network configuration a runtime passes on stdin, plus CNI_ARGS, into a
// typed Network, and reports bad input as CNI errors (code 6 for JSON that
// does not parse, code 7 for a configuration that parses but is wrong).
//
// It only reads bytes it is given; range validation itself belongs to
// package core, so that every host applies the same rules.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/etcd-cni/etcd-ipam/core"
)

// DefaultTimeout bounds a whole plugin invocation's work against etcd when
// etcdConfig.etcdTimeout is not set: a runtime must hear back, even when
// etcd is unreachable, well before its own timeouts fire. 8 s leaves room
// for process start and shutdown inside the 10 s the README promises.
const DefaultTimeout = 8 * time.Second

// Network is what one plugin invocation needs to know.
type Network struct {
	CNIVersion string
	Name       string

	// RangeSets in host-local's order: runtimeConfig.ipRanges first, then
	// the deprecated top-level range, then "ranges". Not yet validated.
	RangeSets [][]core.RangeSpec
	// Requested addresses from CNI_ARGS ip=, args.cni.ips and
	// runtimeConfig.ips, in that order.
	Requested []netip.Addr

	Routes     []*types.Route
	ResolvConf string
	Etcd       Etcd
	// NodeName is the ipam "nodeName" key; empty means "ask the host".
	NodeName string
	// Core selects the host that runs the allocation core.
	Core string
	// WasmCacheDir is the ipam "wasmCacheDir" key: where core "wasm" keeps
	// compiled code between invocations. Empty means the host's default.
	WasmCacheDir string
	// LogFile is where the plugin appends its log; empty means no log.
	// Logs never go to stdout, which carries the CNI result.
	LogFile string
	// LogLevel is "debug", "info" (the default), "warn" or "error".
	LogLevel string

	// ValidAttachments is GC's list of attachments to keep.
	ValidAttachments []types.GCAttachment
}

// NodeNameEnv overrides the host name as the node name that allocations
// record.
const NodeNameEnv = "ETCD_IPAM_NODE_NAME"

// Node is the node name this invocation records in its allocations: ipam
// "nodeName", else $ETCD_IPAM_NODE_NAME (read through getenv), else the
// host name. GC on a node releases only allocations with its name.
func (n *Network) Node(getenv func(string) string) (string, error) {
	if n.NodeName != "" {
		return n.NodeName, nil
	}
	if name := getenv(NodeNameEnv); name != "" {
		return name, nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "", invalid(fmt.Sprintf("cannot tell this node's name (hostname: %v); set ipam \"nodeName\" or %s", err, NodeNameEnv))
	}
	return host, nil
}

// Etcd says how to reach etcd.
type Etcd struct {
	Endpoints []string
	CertFile  string
	KeyFile   string
	CAFile    string
	Username  string
	Password  string
	Timeout   time.Duration
}

// Secure reports whether the endpoints use TLS.
func (e Etcd) Secure() bool {
	for _, ep := range e.Endpoints {
		if strings.HasPrefix(ep, "https://") {
			return true
		}
	}
	return false
}

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

// Load parses the network configuration and CNI_ARGS.
func Load(stdin []byte, cniArgs string) (*Network, error) {
	if err := CheckJSON(stdin); err != nil {
		return nil, err
	}
	var n netConf
	if err := json.Unmarshal(stdin, &n); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "cannot decode the network configuration: "+describeJSONError(stdin, err), "")
	}
	if n.IPAM == nil {
		return nil, invalid(`the network configuration has no "ipam" object; add "ipam": {"type": "etcd", ...}`)
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
	if err := checkLogging(net); err != nil {
		return nil, err
	}
	switch net.Core {
	case "", "native":
		net.Core = "native"
	case "wasm":
	default:
		return nil, invalid(fmt.Sprintf(`ipam "core" is %q; use "native" (the default) or "wasm"`, ipam.Core))
	}
	if net.WasmCacheDir != "" && !filepath.IsAbs(net.WasmCacheDir) {
		// A plugin's working directory is the runtime's, not the admin's.
		return nil, invalid(fmt.Sprintf(`ipam "wasmCacheDir" is %q; give an absolute path`, net.WasmCacheDir))
	}

	requested, err := loadRequested(cniArgs, &n)
	if err != nil {
		return nil, err
	}
	net.Requested = requested

	net.RangeSets = append(net.RangeSets, n.RuntimeConfig.IPRanges...)
	if ipam.Subnet != "" {
		net.RangeSets = append(net.RangeSets, []core.RangeSpec{{
			Subnet: ipam.Subnet, RangeStart: ipam.RangeStart, RangeEnd: ipam.RangeEnd, Gateway: ipam.Gateway,
		}})
	}
	net.RangeSets = append(net.RangeSets, ipam.Ranges...)

	etcd, err := loadEtcd(ipam.Etcd)
	if err != nil {
		return nil, err
	}
	net.Etcd = etcd
	return net, nil
}

func loadRequested(cniArgs string, n *netConf) ([]netip.Addr, error) {
	var raw []string
	if cniArgs != "" {
		ips, err := parseCNIArgs(cniArgs)
		if err != nil {
			return nil, types.NewError(types.ErrInvalidEnvironmentVariables,
				fmt.Sprintf("CNI_ARGS %q: %v", cniArgs, err), "write CNI_ARGS as K=V;K2=V2, e.g. IgnoreUnknown=1;IP=203.0.113.7")
		}
		raw = append(raw, ips...)
	}
	if n.Args != nil && n.Args.CNI != nil {
		raw = append(raw, n.Args.CNI.IPs...)
	}
	raw = append(raw, n.RuntimeConfig.IPs...)
	addrs := make([]netip.Addr, 0, len(raw))
	for _, s := range raw {
		a, err := core.ParseRequestedAddr(s)
		if err != nil {
			return nil, invalid(fmt.Sprintf("requested IP: %v", err))
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// parseCNIArgs reads CNI_ARGS (K=V;K2=V2) and returns the requested
// addresses. The key is IP as CNI's convention and host-local spell it, or
// ip as this plugin's spec does; its value may list several addresses
// separated by commas. Like host-local, the last IP key counts, an empty
// value requests nothing, and any other key is an error unless
// IgnoreUnknown is true.
func parseCNIArgs(args string) ([]string, error) {
	var ips, unknown []string
	ignoreUnknown := false
	for _, pair := range strings.Split(args, ";") {
		key, value, ok := strings.Cut(pair, "=")
		if !ok || strings.Contains(value, "=") {
			return nil, fmt.Errorf("invalid pair %q", pair)
		}
		switch key {
		case "IP", "ip":
			// As with host-local, a repeated key replaces the earlier
			// one, and an empty value requests nothing.
			ips = nil
			for _, item := range strings.Split(value, ",") {
				if item = strings.TrimSpace(item); item != "" {
					ips = append(ips, item)
				}
			}
		case "IgnoreUnknown":
			switch strings.ToLower(value) {
			case "1", "true":
				ignoreUnknown = true
			case "0", "false":
			default:
				return nil, fmt.Errorf("IgnoreUnknown=%q is not a boolean (use 1 or true)", value)
			}
		default:
			unknown = append(unknown, pair)
		}
	}
	if len(unknown) > 0 && !ignoreUnknown {
		return nil, fmt.Errorf("unknown arguments %q; this plugin knows IP and IgnoreUnknown (add IgnoreUnknown=1 to pass others through)", unknown)
	}
	return ips, nil
}

func loadEtcd(c *etcdConf) (Etcd, error) {
	if c == nil {
		return Etcd{}, invalid(`ipam has no "etcdConfig"; add "etcdConfig": {"etcdURL": "https://127.0.0.1:2379", ...}`)
	}
	if c.CAFileFile != "" && c.CAFile != "" && c.CAFileFile != c.CAFile {
		return Etcd{}, invalid(fmt.Sprintf("etcdTrustedCAFileFile (%q) and its alias etcdTrustedCAFile (%q) differ; give one of them", c.CAFileFile, c.CAFile))
	}
	e := Etcd{
		CertFile: c.CertFile,
		KeyFile:  c.KeyFile,
		CAFile:   c.CAFileFile,
		Username: c.Username,
		Password: c.Password,
		Timeout:  DefaultTimeout,
	}
	if e.CAFile == "" {
		e.CAFile = c.CAFile
	}
	for _, ep := range strings.Split(c.URL, ",") {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			continue
		}
		if err := checkEndpoint(ep); err != nil {
			return Etcd{}, err
		}
		e.Endpoints = append(e.Endpoints, ep)
	}
	if len(e.Endpoints) == 0 {
		return Etcd{}, invalid(`etcdConfig.etcdURL is empty; give one or more comma-separated endpoints such as "https://10.0.0.1:2379,https://10.0.0.2:2379"`)
	}
	// etcd's client speaks the first endpoint's scheme to every endpoint,
	// so a mix could never work as written.
	var http, https []string
	for _, ep := range e.Endpoints {
		switch {
		case strings.HasPrefix(ep, "http://"):
			http = append(http, ep)
		case strings.HasPrefix(ep, "https://"):
			https = append(https, ep)
		}
	}
	if len(http) > 0 && len(https) > 0 {
		return Etcd{}, invalid(fmt.Sprintf("etcdURL mixes http:// (%s) and https:// (%s) endpoints; etcd's client uses one scheme for all of them, so give every endpoint the scheme the cluster serves", strings.Join(http, ", "), strings.Join(https, ", ")))
	}
	if e.Secure() {
		var missing []string
		for _, f := range []struct{ key, value string }{
			{"etcdCertFile", e.CertFile}, {"etcdKeyFile", e.KeyFile}, {"etcdTrustedCAFileFile", e.CAFile},
		} {
			if f.value == "" {
				missing = append(missing, f.key)
			}
		}
		if len(missing) > 0 {
			return Etcd{}, invalid(fmt.Sprintf("etcdURL uses https:// but %s %s not set; give the client certificate, its key and the CA that signed etcd's certificate", strings.Join(missing, ", "), plural(len(missing), "is", "are")))
		}
	}
	if (e.Username == "") != (e.Password == "") {
		return Etcd{}, invalid("etcdUsername and etcdPassword go together; give both or neither")
	}
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 {
			return Etcd{}, invalid(fmt.Sprintf("etcdConfig.etcdTimeout %q is not a positive duration; write it like \"10s\" or \"1500ms\"", c.Timeout))
		}
		e.Timeout = d
	}
	return e, nil
}

// checkLogging fills in the default log level and rejects a level or log
// file that could only be a mistake, before anything is written.
func checkLogging(n *Network) error {
	if n.LogLevel == "" {
		n.LogLevel = "info"
	}
	switch n.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return invalid(fmt.Sprintf(`ipam "logLevel" is %q; use "debug", "info", "warn" or "error"`, n.LogLevel))
	}
	if n.LogFile != "" && !filepath.IsAbs(n.LogFile) {
		return invalid(fmt.Sprintf(`ipam "logFile" %q is not an absolute path; runtimes start plugins in varying directories, so give the full path`, n.LogFile))
	}
	return nil
}

// checkEndpoint accepts http://host:port, https://host:port and host:port.
func checkEndpoint(ep string) error {
	if !strings.Contains(ep, "://") {
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid(fmt.Sprintf("etcd endpoint %q is not a URL like https://10.0.0.1:2379", ep))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func invalid(msg string) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, msg, "")
}

// CheckJSON returns a code-6 CNI error that says where data stops being
// JSON, or nil. The plugin runs it before anything else reads stdin, so
// that a typo is reported with its line and column.
func CheckJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return types.NewError(types.ErrDecodingFailure, "the network configuration is not valid JSON: "+describeJSONError(data, err), "")
	}
	if _, ok := v.(map[string]any); !ok {
		return types.NewError(types.ErrDecodingFailure, "the network configuration must be a JSON object ({...})", "")
	}
	return nil
}

// describeJSONError turns a decoding error into "line L, column C: reason,
// near `...`".
func describeJSONError(data []byte, err error) string {
	var offset int64 = -1
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var routeErr *routeError
	switch {
	case errors.As(err, &routeErr):
		// The first match of the route's text is the failing route: an
		// identical route earlier would have failed first, and a JSON
		// string cannot hold the text unescaped. (Only the same text as
		// an unknown member's value earlier would be found instead.)
		if i := bytes.Index(data, routeErr.text); i >= 0 {
			offset = int64(i)
		}
	case errors.As(err, &syntaxErr):
		// Offset counts the offending byte too; point at it, except at
		// the end of the input, which has no byte to point at.
		offset = syntaxErr.Offset
		if offset > 0 && syntaxErr.Error() != "unexpected end of JSON input" {
			offset--
		}
	case errors.As(err, &typeErr):
		offset = typeErr.Offset
	}
	if len(data) == 0 {
		return "it is empty; pass the network configuration on stdin"
	}
	if offset < 0 {
		return err.Error()
	}
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:offset] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	from := max(offset-30, 0)
	to := min(offset+10, int64(len(data)))
	near := strings.ToValidUTF8(string(data[from:to]), "?")
	return fmt.Sprintf("line %d, column %d: %v, near `%s`", line, col, err, near)
}
