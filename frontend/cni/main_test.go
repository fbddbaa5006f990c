package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcd-cni/etcd-ipam/hosts/wasm"
	"github.com/etcd-cni/etcd-ipam/internal/testbin"
)

// pluginPackage is the plugin's import path, which tests build.
const pluginPackage = "github.com/etcd-cni/etcd-ipam/frontend/cni"

// pluginPath is the plugin binary built once for this package's tests:
// they drive it as a runtime does, through stdin, environment and exit
// status.
var pluginPath string

func TestMain(m *testing.M) {
	if at := os.Getenv(crashEnv); at != "" {
		os.Exit(runCrashingPlugin(at))
	}
	var err error
	pluginPath, err = testbin.Build("etcd", pluginPackage)
	if err != nil {
		fmt.Fprintln(os.Stderr, "building the plugin:", err)
		os.Exit(1)
	}
	os.Exit(testbin.Run(m))
}

// testCoreEnv runs this package's tests against another core: with
// ETCD_IPAM_TEST_CORE=wasm every configuration given to our plugin binary
// (not host-local) gets ipam "core": "wasm" unless it names a core itself,
// so that the whole suite proves the WebAssembly core as it proves native.
const testCoreEnv = "ETCD_IPAM_TEST_CORE"

// withCore sets ipam "core" in a configuration that is a JSON object with
// an "ipam" object lacking one; anything else (the bad-input cases) is
// passed through untouched.
func withCore(config, core string) string {
	var conf map[string]json.RawMessage
	if json.Unmarshal([]byte(config), &conf) != nil {
		return config
	}
	var ipamConf map[string]json.RawMessage
	if json.Unmarshal(conf["ipam"], &ipamConf) != nil || ipamConf == nil {
		return config
	}
	if _, ok := ipamConf["core"]; ok {
		return config
	}
	ipamConf["core"], _ = json.Marshal(core)
	conf["ipam"], _ = json.Marshal(ipamConf)
	out, err := json.Marshal(conf)
	if err != nil {
		return config
	}
	return string(out)
}

// invocation is one execution of the plugin.
type invocation struct {
	Command     string
	ContainerID string
	IfName      string
	Args        string
	Config      string
	Env         []string
}

type outcome struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

func run(t testing.TB, inv invocation) outcome {
	t.Helper()
	return runBinary(t, pluginPath, inv)
}

// runBinary executes a plugin binary (ours, or host-local for comparison)
// as a runtime does.
func runBinary(t testing.TB, bin string, inv invocation) outcome {
	t.Helper()
	cmd := exec.Command(bin)
	env := []string{"PATH=" + os.Getenv("PATH"), "CNI_COMMAND=" + inv.Command, "CNI_PATH=" + filepath.Dir(bin)}
	if inv.ContainerID != "" {
		env = append(env, "CNI_CONTAINERID="+inv.ContainerID)
	}
	ifName := inv.IfName
	if ifName == "" {
		ifName = "eth0"
	}
	env = append(env, "CNI_IFNAME="+ifName, "CNI_NETNS=/dev/null", "ETCD_IPAM_NODE_NAME=test-node")
	if inv.Args != "" {
		env = append(env, "CNI_ARGS="+inv.Args)
	}
	config := inv.Config
	if core := os.Getenv(testCoreEnv); core != "" && bin == pluginPath {
		config = withCore(config, core)
		env = append(env, wasm.CacheDirEnv+"="+filepath.Join(filepath.Dir(pluginPath), "wasm-cache"))
	}
	cmd.Stdin = strings.NewReader(config)
	cmd.Env = append(env, inv.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := outcome{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if exitErr, ok := err.(*exec.ExitError); ok {
		out.ExitCode = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", bin, err)
	}
	return out
}

// cniError is the error JSON the plugin prints.
type cniError struct {
	CNIVersion string `json:"cniVersion"`
	Code       uint   `json:"code"`
	Msg        string `json:"msg"`
	Details    string `json:"details"`
}

// mustFail runs inv, requires a CNI error with the given code, and returns it.
func mustFail(t testing.TB, inv invocation, code uint) cniError {
	t.Helper()
	out := run(t, inv)
	if out.ExitCode == 0 {
		t.Fatalf("%s %s succeeded, want CNI error %d; stdout %s", inv.Command, inv.ContainerID, code, out.Stdout)
	}
	var e cniError
	dec := json.NewDecoder(bytes.NewReader(out.Stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%s: stdout is not CNI error JSON (%v): %q", inv.Command, err, out.Stdout)
	}
	if e.Code != code {
		t.Fatalf("%s %s: error code %d (%s), want %d", inv.Command, inv.ContainerID, e.Code, e.Msg, code)
	}
	if e.Msg == "" || e.CNIVersion == "" {
		t.Fatalf("%s: error JSON lacks msg or cniVersion: %+v", inv.Command, e)
	}
	return e
}

// mustSucceed runs inv and requires exit status 0.
func mustSucceed(t testing.TB, inv invocation) []byte {
	t.Helper()
	out := run(t, inv)
	if out.ExitCode != 0 {
		t.Fatalf("%s %s failed (exit %d): %s %s", inv.Command, inv.ContainerID, out.ExitCode, out.Stdout, out.Stderr)
	}
	return out.Stdout
}
