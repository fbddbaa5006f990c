package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// TestCommandsUnderTheMinimalRole runs every command that talks to etcd as
// a user holding only the README's role (readwrite on /etcd-cni/networks/),
// then as a user without it: the first must work, the second must fail
// with exit status 1 and a sentence naming the refusal, and neither may
// print a password.
func TestCommandsUnderTheMinimalRole(t *testing.T) {
	srv := etcdtest.Start(t)
	users := srv.EnableAuth(t)
	dir := t.TempDir()
	confFor := func(file, user, password string) string {
		etcd, err := json.Marshal(map[string]string{"etcdURL": srv.Endpoint(), "etcdUsername": user, "etcdPassword": password})
		if err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "rolenet", "ipam": {"type": "etcd", "etcdConfig": %s, "ranges": [[{"subnet": "198.51.100.0/28"}]]}}`, etcd)
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	plugin := confFor("plugin.json", users.Plugin, users.PluginPassword)
	outsider := confFor("outsider.json", users.Outsider, users.OutsiderPassword)
	secrets := []string{users.PluginPassword, users.OutsiderPassword, users.RootPassword}

	data, err := os.ReadFile(plugin)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := config.Load(data, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ipam.Open(conf, ipam.Options{Core: native.New(), Node: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, id := range []string{"keep", "stale", "freed"} {
		add(t, s, id)
	}

	noSecret := func(r result) result {
		t.Helper()
		for _, secret := range secrets {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("output reveals a password:\nstdout %s\nstderr %s", r.stdout, r.stderr)
			}
		}
		return r
	}
	for _, args := range [][]string{
		{"ls", "-c", plugin},
		{"ls", "-c", plugin, "--json"},
		{"usage", "-c", plugin},
		{"plan", "-c", plugin, "-n", "2"},
		{"release", "-c", plugin, "--yes", "--container", "freed"},
		{"gc", "-c", plugin, "--node", "node-a", "--keep", "-"},
	} {
		r := noSecret(runCLI(t, strings.NewReader("keep eth0\n"), args...)).ok(t)
		t.Logf("%s: %s", args[0], strings.TrimSpace(r.stdout))
	}
	after := noSecret(runCLI(t, nil, "ls", "-c", plugin, "--json")).ok(t)
	if !strings.Contains(after.stdout, `"keep"`) || strings.Contains(after.stdout, `"stale"`) || strings.Contains(after.stdout, `"freed"`) {
		t.Errorf("after release and gc under the role, ls shows:\n%s", after.stdout)
	}

	for _, args := range [][]string{
		{"ls", "-c", outsider},
		{"usage", "-c", outsider},
		{"plan", "-c", outsider, "-n", "1"},
		{"release", "-c", outsider, "--yes", "--container", "keep"},
		{"gc", "-c", outsider, "--node", "node-a", "--keep", "-"},
	} {
		r := noSecret(runCLI(t, strings.NewReader(""), args...))
		r.failed(t, 1, "permission denied")
	}
	r := noSecret(runCLI(t, nil, "ls", "-c", confFor("typo.json", users.Plugin, "wrong-"+users.PluginPassword)))
	r.failed(t, 1, "authentication failed")
	if strings.Contains(r.stderr, "wrong-"+users.PluginPassword) {
		t.Errorf("a wrong password is echoed: %s", r.stderr)
	}
	still := runCLI(t, nil, "ls", "-c", plugin, "--json").ok(t)
	if !strings.Contains(still.stdout, `"keep"`) {
		t.Errorf("a refused command changed the network:\n%s", still.stdout)
	}
}

// TestPasswordInEtcdURLIsNeverShown: an etcdURL (or --endpoints) may carry
// user:password@; every command that shows an endpoint, in a problem, an
// error or the exporter's log, keeps the user and hides the password.
func TestPasswordInEtcdURLIsNeverShown(t *testing.T) {
	const secret = "S3cretPW"
	conf := func(etcdURL string) string {
		etcd, err := json.Marshal(map[string]string{"etcdURL": etcdURL, "etcdUsername": "u", "etcdPassword": "p", "etcdTimeout": "300ms"})
		if err != nil {
			t.Fatal(err)
		}
		return writeConfig(t, fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "urlnet", "ipam": {"type": "etcd", "etcdConfig": %s, "ranges": [[{"subnet": "198.51.100.0/28"}]]}}`, etcd))
	}
	down := conf("http://root:" + secret + "@127.0.0.1:1")
	mixed := conf("http://root:" + secret + "@127.0.0.1:1,https://root:" + secret + "@127.0.0.1:2")
	check := func(t *testing.T, what, text string) {
		t.Helper()
		if strings.Contains(text, secret) {
			t.Errorf("%s reveals the password:\n%s", what, text)
		}
		if !strings.Contains(text, "root:xxxxx@") {
			t.Errorf("%s does not show the endpoint with its user:\n%s", what, text)
		}
	}
	for _, args := range [][]string{
		{"validate", "-c", mixed},
		{"validate", "-c", mixed, "--json"},
		{"validate", "-c", down, "--endpoints", "http://127.0.0.1:1,https://root:" + secret + "@127.0.0.1:2"},
		{"nodes", "-c", down},
		{"ls", "-c", down},
		{"usage", "-c", mixed},
	} {
		t.Run(strings.Join(args[:1], " "), func(t *testing.T) {
			r := runCLI(t, nil, args...)
			if r.code != 1 {
				t.Errorf("exit status %d, want 1", r.code)
			}
			check(t, "the output", r.stdout+r.stderr)
		})
	}
	t.Run("exporter", func(t *testing.T) {
		e := startExporter(t, "--config", down, "--scrape-timeout", "1s")
		e.scrape(t)
		check(t, "the exporter's log", e.stderr.String())
	})
}
