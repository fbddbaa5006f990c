package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/frontend/exporter"
)

// Flags of the exporter.
const (
	flagListen        = "listen"
	flagScrapeTimeout = "scrape-timeout"
)

// exporterCommand serves Prometheus metrics of every configured network,
// so that a pool filling up or an unreachable etcd raises an alert before
// an ADD fails.
func exporterCommand() *cli.Command {
	return &cli.Command{
		Name:      "exporter",
		Usage:     "serve Prometheus metrics of networks: capacity and allocated addresses per range, etcd up",
		UsageText: "etcd-ipam exporter --config PATH [--config PATH...] [--listen ADDR] [--scrape-timeout D]",
		Description: "Serves /metrics on --listen. Each --config is a plugin configuration or\n" +
			".conflist, or a directory whose .conf, .conflist and .json files are read,\n" +
			"taking every network whose ipam type is \"etcd\". Every scrape counts the\n" +
			"addresses of every network afresh (one round trip of count-only requests per\n" +
			"network), each within --scrape-timeout; a network whose etcd does not answer\n" +
			"has etcd_ipam_up 0 and no other metrics, and the scrape still succeeds. The\n" +
			"README's Metrics section lists the metrics.\n\n" +
			"Example:\n\n" +
			"   etcd-ipam exporter --config /etc/cni/net.d --listen :9745",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: flagConfig, Aliases: []string{"c"}, EnvVars: []string{"ETCD_IPAM_CONFIG"}, TakesFile: true,
				Usage: "a network configuration `PATH`: a plugin config, a .conflist or a directory of them (repeatable)"},
			&cli.StringFlag{Name: flagListen, Value: ":9745", Usage: "serve metrics on `ADDR` (host:port)"},
			&cli.DurationFlag{Name: flagScrapeTimeout, Value: 5 * time.Second,
				Usage: "give each network's etcd at most `D` per scrape (at least 100ms)"},
		}, append(etcdFlags(), coreFlag())...),
		Action: runExporter,
	}
}

func runExporter(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	paths := c.StringSlice(flagConfig)
	if len(paths) == 0 {
		return usageErrorf("exporter needs at least one --config PATH (a file or a directory such as /etc/cni/net.d)")
	}
	if slices.Contains(paths, "-") {
		return usageErrorf("exporter reads --config from files and directories, not stdin")
	}
	if err := checkCoreFlag(c); err != nil {
		return err
	}
	if d := c.Duration(flagScrapeTimeout); d < minScrapeTimeout {
		return usageErrorf("--scrape-timeout must be at least %v, got %v: no etcd answers a scrape sooner, so etcd_ipam_up would always be 0", minScrapeTimeout, d)
	}
	if err := checkListen(c.String(flagListen)); err != nil {
		return err
	}
	confs, err := exportedNetworks(c, paths)
	if err != nil {
		return err
	}
	// Listening before anything connects makes a taken port the first
	// and only error, at once.
	ln, err := listen(c.Context, c.String(flagListen))
	if err != nil {
		return err
	}
	defer ln.Close()
	networks := make([]exporter.Network, len(confs))
	for i, conf := range confs {
		networks[i] = exporter.Network{Name: conf.Name, Open: func() (exporter.Session, error) {
			s, err := openSessionFor(c, conf)
			if err != nil {
				return nil, err
			}
			return s, nil
		}}
	}
	col, err := exporter.NewCollector(networks, exporter.Options{
		Timeout: c.Duration(flagScrapeTimeout),
		Log:     func(msg string) { fmt.Fprintf(c.App.ErrWriter, "etcd-ipam exporter: %s\n", msg) },
	})
	if err != nil {
		return err
	}
	defer col.Close()
	handler, err := exporter.Handler(col)
	if err != nil {
		return err
	}
	names := make([]string, len(confs))
	for i, conf := range confs {
		names[i] = conf.Name
	}
	// The address actually bound (a port of 0 becomes a real one), which
	// is how tests and scripts find it.
	fmt.Fprintf(c.App.Writer, "serving metrics of %s on http://%s/metrics\n", strings.Join(names, ", "), ln.Addr())
	return exporter.Serve(c.Context, ln, handler)
}

// minScrapeTimeout is the shortest --scrape-timeout: a round trip to etcd
// and back, with room to spare.
const minScrapeTimeout = 100 * time.Millisecond

// checkListen refuses a --listen address that Prometheus could not be
// pointed at: without a port, or with port 0 (a random port, printed but
// not configurable), unless on a loopback address, where a test or script
// on this host reads the printed one.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	var addrErr *net.AddrError
	switch {
	case errors.As(err, &addrErr):
		return usageErrorf("--listen %q is not HOST:PORT (%s); give the port to serve on, e.g. :9745", addr, addrErr.Err)
	case err != nil:
		return usageErrorf("--listen %q is not HOST:PORT; give the port to serve on, e.g. :9745", addr)
	case port == "":
		return usageErrorf("--listen %q has no port; give the port to serve on, e.g. :9745", addr)
	}
	if p, err := net.LookupPort("tcp", port); err == nil && p == 0 {
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return usageErrorf("--listen %q asks for port 0, a random port that Prometheus could not be told; give the port to serve on, e.g. :9745", addr)
		}
	}
	return nil
}

// listen opens addr for scrapes; a taken address is named as such, with
// what to do about it.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err == nil {
		return ln, nil
	}
	// The operation's own text repeats the address; its cause does not.
	cause := err
	var op *net.OpError
	if errors.As(err, &op) {
		cause = op.Err
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("cannot listen on %s (--listen): %w; stop what serves it or choose another address", addr, cause)
	}
	return nil, fmt.Errorf("cannot listen on %s (--listen): %w", addr, cause)
}

// configExts are the files of a configuration directory the exporter
// reads, as a runtime reads /etc/cni/net.d.
var configExts = []string{".conf", ".conflist", ".json"}

// exportedNetworks loads every network that paths name: a file is one
// network and must use ipam type "etcd"; a directory gives each of its
// configurations that does, and must have at least one.
func exportedNetworks(c *cli.Context, paths []string) ([]*config.Network, error) {
	var out []*config.Network
	for _, path := range paths {
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("reading the network configurations: %w", err)
		}
		if !info.IsDir() {
			conf, err := loadNetworkFile(c, path)
			if err != nil {
				return nil, err
			}
			out = append(out, conf)
			continue
		}
		confs, err := loadNetworkDir(c, path)
		if err != nil {
			return nil, err
		}
		out = append(out, confs...)
	}
	return out, nil
}

func loadNetworkFile(c *cli.Context, path string) (*config.Network, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the network configuration: %w", err)
	}
	if err := checkNotEmpty(path, data); err != nil {
		return nil, err
	}
	conf, err := loadNetworkBytes(c, data)
	if err != nil {
		return nil, fmt.Errorf("the network configuration in %s: %w", path, err)
	}
	return conf, nil
}

// loadNetworkDir loads the directory's etcd networks in file name order.
// Another plugin's configuration is skipped; a file that is not a network
// configuration at all is an error, since it may be an etcd network the
// operator expects to see.
func loadNetworkDir(c *cli.Context, dir string) ([]*config.Network, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("reading the network configurations: %w", err)
	}
	var out []*config.Network
	for _, e := range entries {
		if e.IsDir() || !slices.Contains(configExts, filepath.Ext(e.Name())) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading the network configuration: %w", err)
		}
		if err := checkNotEmpty(path, data); err != nil {
			return nil, err
		}
		etcd, err := usesEtcdIPAM(data)
		if err != nil {
			return nil, fmt.Errorf("the network configuration in %s: %w", path, err)
		}
		if !etcd {
			continue
		}
		conf, err := loadNetworkBytes(c, data)
		if err != nil {
			return nil, fmt.Errorf("the network configuration in %s: %w", path, err)
		}
		out = append(out, conf)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf(`the directory %s has no network configuration (%s) with "ipam": {"type": "etcd"}`,
			dir, strings.Join(configExts, ", "))
	}
	return out, nil
}
