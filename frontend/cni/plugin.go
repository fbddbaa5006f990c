package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"google.golang.org/grpc"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/hosts/hostsel"
	"github.com/etcd-cni/etcd-ipam/ipam"
	"github.com/etcd-cni/etcd-ipam/store"
)

// plugin holds what the commands need from the process environment.
type plugin struct {
	getenv func(string) string
	// stderr receives what cannot go to the log file, such as the log
	// file's own failure to open; never the CNI result.
	stderr io.Writer
	// dialOptions instrument the etcd connection; tests use them to kill
	// the process at each request. Empty in the plugin binary.
	dialOptions []grpc.DialOption
}

func newPlugin(getenv func(string) string, stderr io.Writer) *plugin {
	return &plugin{getenv: getenv, stderr: stderr}
}

// open connects a session for a loaded configuration. done closes the
// session and releases the core host (a WebAssembly runtime for "wasm").
func (p *plugin) open(conf *config.Network, log *slog.Logger) (_ *ipam.Session, done func(), _ error) {
	node, err := conf.Node(p.getenv)
	if err != nil {
		return nil, nil, err
	}
	logSettings(log, conf, node)
	host, release, err := p.core(conf)
	if err != nil {
		return nil, nil, err
	}
	s, err := ipam.Open(conf, ipam.Options{Core: host, Node: node, DialOptions: p.dialOptions})
	if err != nil {
		_ = release.Close()
		return nil, nil, err
	}
	return s, func() { _ = s.Close(); _ = release.Close() }, nil
}

// core starts the configured host of the allocation core; close the
// returned Closer when the invocation ends. The wasm host's compiled code
// is cached in ipam "wasmCacheDir", else where hostsel.Open defaults to.
func (p *plugin) core(conf *config.Network) (hosts.Core, io.Closer, error) {
	host, release, err := hostsel.Open(conf.Core, conf.WasmCacheDir, p.getenv)
	if err != nil {
		return nil, nil, &config.Error{Kind: config.Invalid, Msg: fmt.Sprintf("ipam \"core\": %v", err)}
	}
	return host, release, nil
}

func (p *plugin) cmdAdd(args *skel.CmdArgs) error {
	return p.withSession("ADD", args, func(ctx context.Context, conf *config.Network, s *ipam.Session, log *slog.Logger) error {
		result := &current.Result{CNIVersion: current.ImplementedSpecVersion}
		if conf.ResolvConf != "" {
			dns, err := parseResolvConf(conf.ResolvConf)
			if err != nil {
				return &config.Error{Kind: config.Invalid, Msg: err.Error(), Hint: "fix or remove ipam \"resolvConf\""}
			}
			result.DNS = dns
		}
		// Half of what is left for etcd may go to waiting for this
		// node's other ADDs on the network (nodelock.go).
		wait := time.Duration(0)
		if deadline, ok := ctx.Deadline(); ok {
			wait = time.Until(deadline) / 2
		}
		s.Connect(ctx) // outside the turn: others need not wait for it
		unlock, _ := lockNetwork(s.Node(), conf.Name, conf.Etcd.Endpoints, wait)
		ips, err := s.AddPod(ctx, args.ContainerID, args.IfName, conf.Requested, podRef(conf.Pod))
		unlock()
		if err != nil {
			return err
		}
		for _, ip := range ips {
			cfg := &current.IPConfig{
				Address: net.IPNet{IP: ip.Address.Addr().AsSlice(), Mask: net.CIDRMask(ip.Address.Bits(), ip.Address.Addr().BitLen())},
			}
			if ip.Gateway.IsValid() {
				cfg.Gateway = ip.Gateway.AsSlice()
			}
			result.IPs = append(result.IPs, cfg)
		}
		log.Info("allocated", "addresses", attachedList(ips))
		result.Routes = conf.Routes
		return types.PrintResult(result, conf.CNIVersion)
	})
}

// withSession opens a session for args and runs op. One etcdTimeout
// covers the whole invocation, counted from before the connection is made
// (logging in with etcdUsername waits for etcd), so that an unreachable
// etcd is reported within it.
//
// A configuration whose cniVersion cannot express the network's result is
// refused before op runs, for every command, as host-local's loader does.
//
// Each command is logged (when ipam "logFile" is set) under its name,
// network, container and interface: failures with their CNI code, and
// what a command changed as the command itself reports it.
func (p *plugin) withSession(command string, args *skel.CmdArgs, op func(context.Context, *config.Network, *ipam.Session, *slog.Logger) error) error {
	start := time.Now()
	var conf *config.Network
	var err error
	if command == "ADD" {
		conf, err = config.Load(args.StdinData, args.Args)
	} else {
		// Only an ADD asks for anything: the other commands act on what
		// is stored, by container ID and interface name, and no CNI_ARGS
		// may keep a DEL from releasing (config.LoadNetwork).
		conf, err = config.LoadNetwork(args.StdinData)
	}
	if err != nil {
		return ipam.AsCNIError(err)
	}
	log, closeLog := openLog(conf, p.stderr)
	defer closeLog()
	log = log.With("command", command, "network", conf.Name, "containerID", args.ContainerID, "ifName", args.IfName)
	// Every error below is typed; AsCNIError gives it its code once, here.
	err = func() error {
		s, done, err := p.open(conf, log)
		if err != nil {
			return err
		}
		defer done()
		if err := checkOneSetPerFamily(conf.Name, conf.CNIVersion, s.RangeSets()); err != nil {
			return err
		}
		ctx, cancel := context.WithDeadline(context.Background(), start.Add(conf.Etcd.Timeout))
		defer cancel()
		return op(ctx, conf, s, log)
	}()
	if err == nil {
		logOutcome(log, nil, time.Since(start))
		return nil
	}
	cniErr := ipam.AsCNIError(err)
	logOutcome(log, cniErr, time.Since(start))
	return cniErr
}

func (p *plugin) cmdDel(args *skel.CmdArgs) error {
	return p.withSession("DEL", args, func(ctx context.Context, _ *config.Network, s *ipam.Session, log *slog.Logger) error {
		if err := s.Del(ctx, args.ContainerID, args.IfName); err != nil {
			return err
		}
		log.Info("released")
		return nil
	})
}

func (p *plugin) cmdCheck(args *skel.CmdArgs) error {
	return p.withSession("CHECK", args, func(ctx context.Context, _ *config.Network, s *ipam.Session, _ *slog.Logger) error {
		return s.Check(ctx, args.ContainerID, args.IfName)
	})
}

func (p *plugin) cmdGC(args *skel.CmdArgs) error {
	return p.withSession("GC", args, func(ctx context.Context, conf *config.Network, s *ipam.Session, log *slog.Logger) error {
		released, err := s.GC(ctx, conf.ValidAttachments)
		if err != nil {
			return err
		}
		for _, att := range released {
			log.Info("collected", "attachment", att.ContainerID+"/"+att.IfName, "addresses", attachedList(att.IPs))
		}
		return nil
	})
}

func (p *plugin) cmdStatus(args *skel.CmdArgs) error {
	err := p.withSession("STATUS", args, func(ctx context.Context, _ *config.Network, s *ipam.Session, _ *slog.Logger) error {
		return s.Status(ctx)
	})
	if err == nil {
		return nil
	}
	return ipam.AsStatusError(err)
}

// podRef is the pod CNI_ARGS named, as the store records it.
func podRef(p *config.Pod) *store.PodRef {
	if p == nil {
		return nil
	}
	return &store.PodRef{Namespace: p.Namespace, Name: p.Name, UID: p.UID}
}
