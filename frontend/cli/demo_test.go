package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcd-cni/etcd-ipam/internal/testbin"
	"github.com/etcd-cni/etcd-ipam/store"
)

// fakePluginEnv, when set in the environment, makes the test binary act as
// a stand-in CNI plugin instead of running tests: "ok" to succeed, "fail"
// to fail like a plugin that found no free address. The demo passes its
// environment on to the plugin, so a test sets it and passes the test
// binary itself as --plugin.
const fakePluginEnv = "ETCD_IPAM_TEST_FAKE_PLUGIN"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakePluginEnv); mode != "" {
		os.Exit(fakePlugin(mode, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(testbin.Run(m))
}

// fakePlugin is just enough of a CNI IPAM plugin to check the demo's side
// of the contract: config on stdin, CNI_* in the environment, result or
// CNI error on stdout. It records each container under the real plugin's
// containers/ key, so that the key listings have something to show.
func fakePlugin(mode string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(format string, args ...any) int {
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintf(stdout, `{"cniVersion":"1.0.0","code":11,"msg":%q}`+"\n", msg)
		fmt.Fprintln(stderr, "fake plugin:", msg)
		return 1
	}
	if mode == "fail" {
		return fail("no free address in range set 0")
	}
	var conf struct {
		Name string `json:"name"`
		IPAM struct {
			Type       string `json:"type"`
			EtcdConfig struct {
				EtcdURL string `json:"etcdURL"`
			} `json:"etcdConfig"`
		} `json:"ipam"`
	}
	if err := json.NewDecoder(stdin).Decode(&conf); err != nil {
		return fail("decoding the config on stdin: %v", err)
	}
	for _, v := range []string{"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"} {
		if os.Getenv(v) == "" {
			return fail("%s is not set", v)
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{conf.IPAM.EtcdConfig.EtcdURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fail("connecting to etcd: %v", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := store.Root + conf.Name + "/containers/" + os.Getenv("CNI_CONTAINERID") + "/" + os.Getenv("CNI_IFNAME")
	switch cmd := os.Getenv("CNI_COMMAND"); cmd {
	case "ADD":
		if _, err := cli.Put(ctx, key, "fake"); err != nil {
			return fail("put: %v", err)
		}
		fmt.Fprintf(stdout, `{"cniVersion":"1.0.0","ips":[{"address":"192.0.2.1/24"}],"dns":{"domain":%q}}`, os.Getenv("CNI_CONTAINERID"))
	case "DEL":
		if _, err := cli.Delete(ctx, key); err != nil {
			return fail("delete: %v", err)
		}
	default:
		return fail("unexpected CNI_COMMAND %q", cmd)
	}
	return 0
}

// runDemo runs "etcd-ipam demo args..." in-process and returns its exit
// status, stdout and stderr.
func runDemoApp(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	app := newApp(&stdout, &stderr)
	err := app.RunContext(context.Background(), append([]string{"etcd-ipam", "demo"}, args...))
	if err != nil {
		fmt.Fprintf(&stderr, "etcd-ipam: %v\n", err)
	}
	return exitCode(err), stdout.String(), stderr.String()
}

// keysAfter returns the key lines (those under store.Root) printed after the
// first heading that contains title.
func keysAfter(t *testing.T, out, title string) []string {
	t.Helper()
	_, section, ok := strings.Cut(out, title)
	if !ok {
		t.Fatalf("output has no heading %q:\n%s", title, out)
	}
	section, _, _ = strings.Cut(section, "\n== ")
	var keys []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, store.Root) {
			keys = append(keys, line)
		}
	}
	return keys
}

// TestDemoWithFakePlugin checks the demo's own logic (environment, stdin,
// output sections, DEL) against a stand-in plugin, independently of the
// real one.
func TestDemoWithFakePlugin(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakePluginEnv, "ok")
	code, out, errOut := runDemoApp(t, "--plugin", self, "--containers", "2")
	if code != 0 {
		t.Fatalf("demo exited with status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"== ADD demo-1 eth0: CNI result ==",
		"== ADD demo-2 eth0: CNI result ==",
		`"domain": "demo-2"`,
		"/etcd-cni/networks/examplenet/containers/demo-1/eth0\nfake\n",
		"DEL demo-2 eth0: ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ADD demo-3") {
		t.Errorf("--containers 2 ran a third container:\n%s", out)
	}
	if keys := keysAfter(t, out, "keys after ADD"); len(keys) != 2 {
		t.Errorf("after ADD: keys %q, want 2", keys)
	}
	if keys := keysAfter(t, out, "keys after DEL"); len(keys) != 0 {
		t.Errorf("after DEL: keys %q, want none", keys)
	}
}

// TestDemoReportsPluginFailure checks that a failing plugin call shows the
// plugin's stdout and stderr and exits with status 1.
func TestDemoReportsPluginFailure(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakePluginEnv, "fail")
	code, out, errOut := runDemoApp(t, "--plugin", self)
	if code != 1 {
		t.Fatalf("demo exited with status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		`"code":11`, // the plugin's stdout
		"fake plugin: no free address in range set 0",       // the plugin's stderr
		"ADD for container demo-1 failed with CNI error 11", // the one-line error
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// TestDemo runs the README's quick start end to end: it builds the real
// plugin from ./frontend/cni and checks what it allocates and stores.
//
// NOTE for the lead: this test needs the plugin in ./frontend/cni; it was
// written before the plugin existed and fails until the plugin builds and
// works. It is skipped only with -short, because it runs "go build".
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin with go build; skipped with -short")
	}
	code, out, errOut := runDemoApp(t)
	if code != 0 {
		t.Fatalf("demo exited with status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"203.0.113.2/24", "203.0.113.3/24", "2001:db8:1::2/64"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}

	added := keysAfter(t, out, "keys after ADD")
	var ips, containers int
	for _, k := range added {
		if !strings.HasPrefix(k, "/etcd-cni/networks/examplenet/") {
			t.Errorf("key %s is not under /etcd-cni/networks/examplenet/", k)
		}
		if strings.Contains(k, "/ips/") {
			ips++
		}
		if strings.Contains(k, "/containers/") {
			containers++
		}
	}
	// Three containers, each with one IPv4 and one IPv6 address.
	if ips != 6 || containers != 3 {
		t.Errorf("after ADD: %d ips/ and %d containers/ keys, want 6 and 3; keys %q", ips, containers, added)
	}

	for _, k := range keysAfter(t, out, "keys after DEL") {
		if !strings.HasPrefix(k, "/etcd-cni/networks/examplenet/last-reserved/") && !strings.HasPrefix(k, "/etcd-cni/networks/examplenet/seen/") {
			t.Errorf("after DEL key %s remains; only last-reserved/ (round-robin state) and seen/ (liveness) should", k)
		}
	}
}
