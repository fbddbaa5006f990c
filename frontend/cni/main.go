// Command etcd is a CNI IPAM plugin that hands out addresses like
// host-local but keeps its state in etcd, so that an address is unique
// across every node of a cluster. Build it with
//
//	go build -o etcd ./frontend/cni
//
// and install it into the runtime's CNI bin directory. This file reads
// stdin and hands the commands to CNI's protocol (package skel); plugin.go
// turns each command into a package ipam operation and its error into a
// CNI error.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// cniVersionPattern finds the cniVersion of a configuration that is not
// valid JSON. It is compiled only on that error path: every invocation
// pays for package-level initialisation, few need this.
const cniVersionPattern = `"cniVersion"\s*:\s*"([0-9A-Za-z.\-]{1,16})"`

// supportedVersions are the CNI spec versions this plugin speaks: every
// one host-local speaks, so that old configurations keep working when
// host-local is replaced by this plugin. Listed rather than version.All
// so that a CNI library upgrade cannot add a version nobody has tested.
var supportedVersions = version.PluginSupports("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

func main() {
	// One invocation is one sequence of etcd requests: nothing runs in
	// parallel, and more Ps only add threads and wake-ups, which cost the
	// most when a rollout starts many plugins at once on a busy node
	// (measured by "etcd-ipam bench": p50 ADD 25 ms -> 16 ms on a loaded
	// 2-core machine).
	runtime.GOMAXPROCS(1)
	stdin, err := io.ReadAll(os.Stdin)
	if err != nil {
		exitWithError(nil, types.NewError(types.ErrIOFailure, "reading the network configuration from stdin: "+err.Error(), ""))
	}
	cmd := os.Getenv("CNI_COMMAND")
	if cmd != "" && cmd != "VERSION" {
		// skel would reject broken JSON too, but without saying where.
		if err := config.CheckJSON(stdin); err != nil {
			exitWithError(stdin, ipam.AsCNIError(err))
		}
	}
	if err := replaceStdin(stdin); err != nil {
		exitWithError(stdin, types.NewError(types.ErrIOFailure, err.Error(), ""))
	}
	p := newPlugin(os.Getenv, os.Stderr)
	if cniErr := skel.PluginMainFuncsWithError(skel.CNIFuncs{
		Add:    p.cmdAdd,
		Del:    p.cmdDel,
		Check:  p.cmdCheck,
		GC:     p.cmdGC,
		Status: p.cmdStatus,
	}, supportedVersions, "CNI etcd IPAM plugin "+buildVersion()); cniErr != nil {
		exitWithError(stdin, cniErr)
	}
}

// replaceStdin lets skel read the configuration that main already read.
func replaceStdin(data []byte) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating a pipe for stdin: %w", err)
	}
	go func() {
		_, _ = io.Copy(w, bytes.NewReader(data))
		_ = w.Close()
	}()
	os.Stdin = r
	return nil
}

// exitWithError prints a CNI error, in the configuration's cniVersion when
// it can be read, and exits with status 1.
func exitWithError(stdin []byte, e *types.Error) {
	var conf struct {
		CNIVersion string `json:"cniVersion"`
	}
	if json.Unmarshal(stdin, &conf) != nil {
		// Broken JSON: still answer in the version it asked for, if any.
		if m := regexp.MustCompile(cniVersionPattern).FindSubmatch(stdin); m != nil {
			conf.CNIVersion = string(m[1])
		}
	} else if conf.CNIVersion == "" && bytes.HasPrefix(bytes.TrimSpace(stdin), []byte("{")) {
		// CNI reads a configuration without cniVersion as 0.1.0.
		conf.CNIVersion = "0.1.0"
	}
	if !slices.Contains(supportedVersions.SupportedVersions(), conf.CNIVersion) {
		// Unknown or missing: answer in the newest version this plugin speaks.
		conf.CNIVersion = supportedVersions.SupportedVersions()[len(supportedVersions.SupportedVersions())-1]
	}
	out, _ := json.MarshalIndent(struct {
		CNIVersion string `json:"cniVersion"`
		Code       uint   `json:"code"`
		Msg        string `json:"msg"`
		Details    string `json:"details,omitempty"`
	}{conf.CNIVersion, e.Code, e.Msg, e.Details}, "", "    ")
	_, _ = os.Stdout.Write(append(out, '\n'))
	os.Exit(1)
}
