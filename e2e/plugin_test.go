package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// invocation is one execution of the plugin binary, as a runtime makes it.
type invocation struct {
	Command     string
	ContainerID string
	Config      string
}

// outcome is what the plugin did.
type outcome struct {
	Stdout, Stderr []byte
	ExitCode       int
	Start, End     time.Time
	// Err is the CNI error the plugin printed, when it failed.
	Err *cniError
	// Addrs are the addresses of a successful ADD's result.
	Addrs []string
}

// cniError is the error object of the CNI spec.
type cniError struct {
	CNIVersion string `json:"cniVersion"`
	Code       uint   `json:"code"`
	Msg        string `json:"msg"`
	Details    string `json:"details"`
}

// pluginTimeout bounds one execution: far above any etcdTimeout the tests
// configure, so that hitting it means the plugin hung.
const pluginTimeout = time.Minute

// runPlugin executes our plugin. It returns an error only when the
// plugin's output breaks the CNI contract: a failure without one CNI error
// object on stdout, or a success without a result.
func (s *suite) runPlugin(inv invocation) (outcome, error) {
	return s.runPluginArgs(inv, "")
}

// runPluginArgs is runPlugin with CNI_ARGS, as a runtime passes a pod's
// identity.
func (s *suite) runPluginArgs(inv invocation, cniArgs string) (outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "etcd"))
	cmd.Stdin = strings.NewReader(inv.Config)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"CNI_COMMAND=" + inv.Command,
		"CNI_CONTAINERID=" + inv.ContainerID,
		"CNI_NETNS=/dev/null",
		"CNI_IFNAME=eth0",
		"CNI_ARGS=" + cniArgs,
		"CNI_PATH=" + s.binDir,
		"ETCD_IPAM_NODE_NAME=e2e-node",
		// Compiled code of the wasm core stays in the test's directory.
		"ETCD_IPAM_WASM_CACHE_DIR=" + filepath.Join(s.binDir, "wasm-cache"),
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	out := outcome{Start: time.Now()}
	err := cmd.Run()
	out.End = time.Now()
	out.Stdout, out.Stderr = stdout.Bytes(), stderr.Bytes()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return out, fmt.Errorf("%s %s: the plugin ran longer than %v", inv.Command, inv.ContainerID, pluginTimeout)
	case errors.As(err, &exitErr):
		out.ExitCode = exitErr.ExitCode()
	case err != nil:
		return out, fmt.Errorf("running the plugin: %w", err)
	}
	if out.ExitCode != 0 {
		var e cniError
		dec := json.NewDecoder(bytes.NewReader(out.Stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.Code == 0 || e.Msg == "" {
			return out, fmt.Errorf("%s %s exited %d without a CNI error object on stdout (%v): %q, stderr %q",
				inv.Command, inv.ContainerID, out.ExitCode, err, out.Stdout, out.Stderr)
		}
		out.Err = &e
		return out, nil
	}
	if inv.Command == "ADD" {
		var res struct {
			IPs []struct {
				Address string `json:"address"`
			} `json:"ips"`
		}
		if err := json.Unmarshal(out.Stdout, &res); err != nil || len(res.IPs) == 0 {
			return out, fmt.Errorf("ADD %s succeeded without a result (%v): %q", inv.ContainerID, err, out.Stdout)
		}
		for _, ip := range res.IPs {
			p, err := netip.ParsePrefix(ip.Address)
			if err != nil {
				return out, fmt.Errorf("ADD %s: address %q: %w", inv.ContainerID, ip.Address, err)
			}
			out.Addrs = append(out.Addrs, p.Addr().String())
		}
	}
	return out, nil
}

// mustSucceed runs inv and fails the test unless the plugin succeeded.
func (s *suite) mustSucceed(t *testing.T, inv invocation) outcome {
	t.Helper()
	out, err := s.runPlugin(inv)
	if err != nil {
		t.Fatal(err)
	}
	if out.Err != nil {
		t.Fatalf("%s %s failed: %+v", inv.Command, inv.ContainerID, *out.Err)
	}
	return out
}

// mustFail runs inv and fails the test unless the plugin failed with code.
func (s *suite) mustFail(t *testing.T, inv invocation, code uint) outcome {
	t.Helper()
	out, err := s.runPlugin(inv)
	if err != nil {
		t.Fatal(err)
	}
	if out.Err == nil {
		t.Fatalf("%s %s succeeded, want CNI error %d: %s", inv.Command, inv.ContainerID, code, out.Stdout)
	}
	if out.Err.Code != code {
		t.Fatalf("%s %s: CNI error %d (%s; %s), want %d", inv.Command, inv.ContainerID, out.Err.Code, out.Err.Msg, out.Err.Details, code)
	}
	return out
}
