package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/hosts/hostsel"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// The operator's commands read the network configuration a runtime passes
// the plugin, through the plugin's own loader, so that they see exactly
// the network, ranges and etcd settings the plugin sees.

// Flag names shared by the commands that read a network.
const (
	flagConfig    = "config"
	flagEndpoints = "endpoints"
	flagCert      = "cert"
	flagKey       = "key"
	flagCACert    = "cacert"
	flagCore      = "core"
	flagNode      = "node"
	flagJSON      = "json"
)

// configFlag is the network configuration to read.
func configFlag() cli.Flag {
	return &cli.StringFlag{
		Name:      flagConfig,
		Aliases:   []string{"c"},
		Usage:     "the network configuration: a plugin config or a whole .conflist, at `FILE` (- for stdin)",
		EnvVars:   []string{"ETCD_IPAM_CONFIG"},
		TakesFile: true,
	}
}

// etcdFlags override the configuration's etcdConfig, as etcdctl's flags.
func etcdFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagEndpoints, EnvVars: []string{"ETCD_IPAM_ENDPOINTS"},
			Usage: "etcd endpoints, comma-separated `URLS` (overrides etcdConfig.etcdURL)"},
		&cli.StringFlag{Name: flagCert, EnvVars: []string{"ETCD_IPAM_CERT"}, TakesFile: true,
			Usage: "client certificate `FILE` (overrides etcdConfig.etcdCertFile)"},
		&cli.StringFlag{Name: flagKey, EnvVars: []string{"ETCD_IPAM_KEY"}, TakesFile: true,
			Usage: "client key `FILE` (overrides etcdConfig.etcdKeyFile)"},
		&cli.StringFlag{Name: flagCACert, EnvVars: []string{"ETCD_IPAM_CACERT"}, TakesFile: true,
			Usage: "CA certificate `FILE` that signed etcd's (overrides etcdConfig.etcdTrustedCAFileFile)"},
	}
}

// coreFlag selects the host running the allocation core.
func coreFlag() cli.Flag {
	return &cli.StringFlag{Name: flagCore,
		Usage: "run the allocation core as `NAME`, native or wasm (default: the configuration's ipam \"core\")"}
}

// jsonFlag asks for machine-readable output.
func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: flagJSON, Usage: "print JSON (the format is documented in the README and stable)"}
}

// networkFlags are the flags of every command that reads a network from
// etcd.
func networkFlags() []cli.Flag {
	return append([]cli.Flag{configFlag()}, append(etcdFlags(), coreFlag())...)
}

// readConfig returns the bytes of --config, from stdin for "-".
func readConfig(c *cli.Context) (string, []byte, error) {
	path := c.String(flagConfig)
	if path == "" {
		return "", nil, usageErrorf("%s needs the network configuration; give --config FILE (or - for stdin)", c.Command.Name)
	}
	if path == "-" {
		data, err := io.ReadAll(stdin(c))
		if err != nil {
			return "", nil, fmt.Errorf("reading the network configuration from stdin: %w", err)
		}
		return "stdin", data, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("reading the network configuration: %w", err)
	}
	return path, data, nil
}

// checkNotEmpty refuses a configuration with nothing in it (blanks
// aside), naming where it was read from: the loader's own message ("pass
// the network configuration on stdin") speaks to a runtime, not to someone
// who gave --config FILE.
func checkNotEmpty(name string, data []byte) error {
	if len(bytes.TrimSpace(data)) > 0 {
		return nil
	}
	if name == "stdin" {
		return errors.New("the network configuration on stdin is empty; pipe a plugin configuration or .conflist in, or give --config FILE")
	}
	return fmt.Errorf("the network configuration in %s is empty; write a plugin configuration or .conflist there", name)
}

// stdin is the app's input: the process's stdin unless a test set another.
func stdin(c *cli.Context) io.Reader {
	if c.App.Reader != nil {
		return c.App.Reader
	}
	return os.Stdin
}

// pluginConfig returns the configuration the plugin itself would get: the
// data as is for a plugin configuration, or for a .conflist the first
// plugin whose ipam type is "etcd", with the list's name and cniVersion,
// as a runtime builds it.
func pluginConfig(data []byte) ([]byte, error) {
	if err := config.CheckJSON(data); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("decoding the network configuration: %w", err)
	}
	if _, ok := top["plugins"]; !ok {
		return data, nil
	}
	var list struct {
		Name       string           `json:"name"`
		CNIVersion string           `json:"cniVersion"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("decoding the .conflist: %w", err)
	}
	for _, p := range list.Plugins {
		ipamConf, _ := p["ipam"].(map[string]any)
		if ipamConf == nil || ipamConf["type"] != "etcd" {
			continue
		}
		p["name"] = list.Name
		p["cniVersion"] = list.CNIVersion
		return json.Marshal(p)
	}
	return nil, fmt.Errorf(`the .conflist %q has no plugin with "ipam": {"type": "etcd"}`, list.Name)
}

// usesEtcdIPAM reports whether a plugin configuration, or any plugin of a
// .conflist, has ipam type "etcd": what pluginConfig would find.
func usesEtcdIPAM(data []byte) (bool, error) {
	if err := config.CheckJSON(data); err != nil {
		return false, err
	}
	type plugin struct {
		IPAM struct {
			Type string `json:"type"`
		} `json:"ipam"`
	}
	var conf struct {
		plugin
		Plugins []plugin `json:"plugins"`
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		return false, fmt.Errorf("decoding the network configuration: %w", err)
	}
	if conf.Plugins == nil {
		return conf.IPAM.Type == "etcd", nil
	}
	for _, p := range conf.Plugins {
		if p.IPAM.Type == "etcd" {
			return true, nil
		}
	}
	return false, nil
}

// overrideEtcd writes the etcd flags into the configuration's etcdConfig
// before it is loaded, so that the loader checks the result as it checks
// what a runtime passes (https needs the three files, and so on).
func overrideEtcd(c *cli.Context, data []byte) ([]byte, error) {
	overrides := map[string]string{
		"etcdURL":               c.String(flagEndpoints),
		"etcdCertFile":          c.String(flagCert),
		"etcdKeyFile":           c.String(flagKey),
		"etcdTrustedCAFileFile": c.String(flagCACert),
	}
	given := false
	for _, v := range overrides {
		given = given || v != ""
	}
	if !given {
		return data, nil
	}
	var conf map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep numbers as written
	if err := dec.Decode(&conf); err != nil {
		return nil, fmt.Errorf("decoding the network configuration: %w", err)
	}
	ipamConf, ok := conf["ipam"].(map[string]any)
	if !ok {
		return data, nil // the loader reports the missing ipam object
	}
	etcd, _ := ipamConf["etcdConfig"].(map[string]any)
	if etcd == nil {
		etcd = map[string]any{}
		ipamConf["etcdConfig"] = etcd
	}
	for k, v := range overrides {
		if v != "" {
			etcd[k] = v
		}
	}
	if c.String(flagCACert) != "" {
		delete(etcd, "etcdTrustedCAFile") // the alias would conflict
	}
	return json.Marshal(conf)
}

// loadNetwork reads --config and the etcd flags and returns the network as
// the plugin would load it. A bad configuration is a failure (status 1),
// not a usage error: the command line was right, the file is wrong.
func loadNetwork(c *cli.Context) (*config.Network, error) {
	name, data, err := readConfig(c)
	if err != nil {
		return nil, err
	}
	if err := checkNotEmpty(name, data); err != nil {
		return nil, err
	}
	conf, err := loadNetworkBytes(c, data)
	if err != nil {
		return nil, fmt.Errorf("the network configuration in %s: %w", name, err)
	}
	return conf, nil
}

func loadNetworkBytes(c *cli.Context, data []byte) (*config.Network, error) {
	data, err := pluginConfig(data)
	if err != nil {
		return nil, err
	}
	if data, err = overrideEtcd(c, data); err != nil {
		return nil, err
	}
	return config.LoadNetwork(data)
}

// coreHost starts the allocation core the command runs: --core, else the
// configuration's ipam "core", through the selector the plugin uses. Close
// the returned Closer when done (the wasm host holds a runtime).
func coreHost(c *cli.Context, conf *config.Network) (hosts.Core, io.Closer, error) {
	name := conf.Core
	if c.IsSet(flagCore) {
		if err := checkCoreFlag(c); err != nil {
			return nil, nil, err
		}
		name = c.String(flagCore)
	}
	host, closer, err := hostsel.Open(name, conf.WasmCacheDir, os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	return host, closer, nil
}

// checkCoreFlag rejects a --core that names no host, as a usage error.
func checkCoreFlag(c *cli.Context) error {
	if name := c.String(flagCore); c.IsSet(flagCore) && hosts.CheckCoreName(name) != nil {
		return usageErrorf("--core %q: use %s", name, strings.Join(hosts.CoreNames(), " or "))
	}
	return nil
}

// nodeName is the node the plugin would record on this machine: --node,
// else ipam "nodeName", else ETCD_IPAM_NODE_NAME, else the host name.
func nodeName(c *cli.Context, conf *config.Network) (string, error) {
	if n := c.String(flagNode); n != "" {
		if err := config.CheckNodeName("--node", n); err != nil {
			return "", usageErrorf("%v", err)
		}
		return n, nil
	}
	node, err := conf.Node(os.Getenv)
	if err != nil {
		return "", fmt.Errorf("%w, or give --node", err)
	}
	return node, nil
}

// openSession loads the network and connects to its etcd.
func openSession(c *cli.Context) (*config.Network, *session, error) {
	conf, err := loadNetwork(c)
	if err != nil {
		return nil, nil, err
	}
	s, err := openSessionFor(c, conf)
	if err != nil {
		return nil, nil, err
	}
	return conf, s, nil
}

// openSessionFor connects to the etcd of a loaded network.
func openSessionFor(c *cli.Context, conf *config.Network) (*session, error) {
	node, err := nodeName(c, conf)
	if err != nil {
		return nil, err
	}
	host, closer, err := coreHost(c, conf)
	if err != nil {
		return nil, err
	}
	s, err := ipam.Open(conf, ipam.Options{Core: host, Node: node})
	if err != nil {
		_ = closer.Close()
		return nil, err
	}
	return &session{Session: s, core: closer}, nil
}

// session is an ipam.Session with the core host it runs on.
type session struct {
	*ipam.Session
	core io.Closer
}

// Close disconnects from etcd and stops the core host.
func (s *session) Close() error {
	err := s.Session.Close()
	if cerr := s.core.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeJSON prints v indented, the one JSON style of every command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
