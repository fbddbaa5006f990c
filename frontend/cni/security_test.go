package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// authExample is the README's example logging in to etcd as user, with
// extra ipam keys (such as logging) spliced in.
func authExample(t *testing.T, endpoint, user, password, extraIPAM string) string {
	t.Helper()
	return `{"cniVersion": "1.1.0", "name": "authnet", "ipam": {"type": "etcd", ` + extraIPAM + `"etcdConfig": {` +
		etcdConfigJSON(t, "etcdURL", endpoint, "etcdUsername", user, "etcdPassword", password, "etcdTimeout", "4s") +
		`}, "ranges": [[{"subnet": "198.51.100.0/24"}], [{"subnet": "2001:db8:7::/64"}]]}}`
}

// requireNoSecret fails when any of texts holds one of the secrets.
func requireNoSecret(t *testing.T, what string, text []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(text, []byte(s)) {
			t.Errorf("%s reveals a secret %q:\n%s", what, s, text)
		}
	}
}

// TestMinimalRole runs every CNI command as a user whose only role is the
// one the README documents (readwrite on /etcd-cni/networks/), then shows
// that a user without it, and a wrong password, fail with code 7 and a
// message that says what to fix, without writing anything and without
// echoing the password anywhere: result, error, stderr or log.
func TestMinimalRole(t *testing.T) {
	srv := etcdtest.Start(t)
	users := srv.EnableAuth(t)
	root := srv.ClientAs(t, users.Root, users.RootPassword)
	logFile := filepath.Join(t.TempDir(), "log", "etcd-ipam.log")
	logKeys := `"logFile": ` + mustJSON(t, logFile) + `, "logLevel": "debug", `
	secrets := []string{users.PluginPassword, users.OutsiderPassword, users.RootPassword}

	conf := authExample(t, srv.Endpoint(), users.Plugin, users.PluginPassword, logKeys)
	add := invocation{Command: "ADD", ContainerID: "role-c1", IfName: "eth0", Config: conf}
	if got := parseResult(t, mustSucceed(t, add)).summary(); got != "198.51.100.2/24 gw 198.51.100.1; 2001:db8:7::2/64 gw 2001:db8:7::1" {
		t.Fatalf("ADD under the minimal role = %s", got)
	}
	for _, cmd := range []string{"CHECK", "STATUS"} {
		mustSucceed(t, invocation{Command: cmd, ContainerID: "role-c1", IfName: "eth0", Config: conf})
	}
	mustSucceed(t, invocation{Command: "ADD", ContainerID: "role-c2", IfName: "eth0", Config: conf})
	gcConf := strings.Replace(conf, `"name": "authnet",`, `"name": "authnet", "cni.dev/valid-attachments": [{"containerID": "role-c1", "ifname": "eth0"}],`, 1)
	mustSucceed(t, invocation{Command: "GC", Config: gcConf})
	if n := countKeys(t, root, "/etcd-cni/networks/authnet/containers/"); n != 1 {
		t.Fatalf("after GC keeping role-c1, %d attachments remain, want 1", n)
	}
	mustSucceed(t, invocation{Command: "DEL", ContainerID: "role-c1", IfName: "eth0", Config: conf})
	if n := countKeys(t, root, "/etcd-cni/networks/authnet/"); n != 3 {
		// Only the two last-reserved positions stay, as in host-local,
		// and the node's liveness record.
		t.Fatalf("after DEL, %d keys remain under the network, want the 2 last-reserved positions and seen/", n)
	}

	for _, tc := range []struct {
		name, user, password, mention string
	}{
		{"user without the role", users.Outsider, users.OutsiderPassword, "permission"},
		{"wrong password", users.Plugin, users.PluginPassword + "-typo", "authentication failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := invocation{Command: "ADD", ContainerID: "role-bad", IfName: "eth0",
				Config: authExample(t, srv.Endpoint(), tc.user, tc.password, logKeys)}
			out := run(t, inv)
			requireNoSecret(t, "stdout", out.Stdout, append(secrets, tc.password)...)
			requireNoSecret(t, "stderr", out.Stderr, append(secrets, tc.password)...)
			e := mustFail(t, inv, 7)
			if !strings.Contains(e.Msg, tc.mention) || !strings.Contains(e.Details, "etcdUsername") {
				t.Errorf("error does not say what is wrong (%q) and what to check: %+v", tc.mention, e)
			}
			if n := countKeys(t, root, "/etcd-cni/networks/authnet/containers/role-bad"); n != 0 {
				t.Errorf("a refused ADD left %d keys", n)
			}
		})
	}

	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("reading the log: %v", err)
	}
	requireNoSecret(t, "the log", log, append(secrets, users.PluginPassword+"-typo")...)
	for _, want := range []string{
		"command=ADD", "msg=allocated", "198.51.100.2/24", "msg=released", "msg=collected",
		"attachment=role-c2/eth0", "passwordSet=true", "code=7", "level=ERROR",
	} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if fi, err := os.Stat(logFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}

// TestLogLevelAndStdout checks that logs never reach stdout, that a
// quieter level drops the lines below it, and that a log file that cannot
// be opened does not stop the ADD but is reported on stderr.
func TestLogLevelAndStdout(t *testing.T) {
	srv := etcdtest.Start(t)
	dir := t.TempDir()
	quiet := filepath.Join(dir, "quiet.log")
	conf := func(extra string) string {
		return `{"cniVersion": "1.1.0", "name": "lognet", "ipam": {"type": "etcd", ` + extra +
			`"etcdConfig": {"etcdURL": "` + srv.Endpoint() + `"}, "ranges": [[{"subnet": "192.0.2.0/30"}]]}}`
	}
	// /30 has one allocatable address besides the gateway.
	withQuiet := conf(`"logFile": ` + mustJSON(t, quiet) + `, "logLevel": "error", `)
	out := mustSucceed(t, invocation{Command: "ADD", ContainerID: "log-c1", Config: withQuiet})
	var result map[string]any
	if err := json.Unmarshal(out, &result); err != nil {
		t.Fatalf("stdout is not only the result: %v\n%s", err, out)
	}
	mustFail(t, invocation{Command: "ADD", ContainerID: "log-c2", Config: withQuiet}, 100)
	log, err := os.ReadFile(quiet)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), "allocated") || !strings.Contains(string(log), "code=100") {
		t.Errorf("logLevel error should keep only the failure:\n%s", log)
	}

	// A directory where the log file should be: the ADD still works.
	blocked := filepath.Join(dir, "blocked")
	if err := os.Mkdir(blocked, 0o700); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, invocation{Command: "DEL", ContainerID: "log-c1", Config: withQuiet})
	res := run(t, invocation{Command: "ADD", ContainerID: "log-c3", Config: conf(`"logFile": ` + mustJSON(t, blocked) + `, `)})
	if res.ExitCode != 0 {
		t.Fatalf("an unwritable log file failed the ADD: %s", res.Stdout)
	}
	if !strings.Contains(string(res.Stderr), "not logging") || !strings.Contains(string(res.Stderr), blocked) {
		t.Errorf("stderr does not report the unusable log file: %q", res.Stderr)
	}

	for _, bad := range []struct{ extra, mention string }{
		{`"logLevel": "verbose", `, `"logLevel" is "verbose"`},
		{`"logFile": "relative.log", `, "absolute path"},
	} {
		e := mustFail(t, invocation{Command: "ADD", ContainerID: "log-c4", Config: conf(bad.extra)}, 7)
		if !strings.Contains(e.Msg, bad.mention) {
			t.Errorf("error %q does not mention %q", e.Msg, bad.mention)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func countKeys(t *testing.T, c *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := c.Get(t.Context(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("counting %s: %v", prefix, err)
	}
	return resp.Count
}

// TestPasswordInEtcdURLIsNeverShown: a URL may carry user:password@ (etcd's
// client ignores it); wherever the plugin shows an endpoint, in its debug
// log or an error, the user is kept and the password hidden.
func TestPasswordInEtcdURLIsNeverShown(t *testing.T) {
	srv := etcdtest.Start(t)
	const secret = "S3cretPW"
	withUser := strings.Replace(srv.Endpoint(), "://", "://root:"+secret+"@", 1)
	logFile := filepath.Join(t.TempDir(), "etcd-ipam.log")
	conf := func(etcd string) string {
		return `{"cniVersion": "1.1.0", "name": "urlnet", "ipam": {"type": "etcd", "logFile": ` + mustJSON(t, logFile) +
			`, "logLevel": "debug", "etcdConfig": {` + etcd + `}, "ranges": [[{"subnet": "198.51.100.0/24"}]]}}`
	}
	mustSucceed(t, invocation{Command: "ADD", ContainerID: "url-c1", Config: conf(etcdConfigJSON(t, "etcdURL", withUser))})
	for _, tc := range []struct {
		name, etcd string
		code       uint
	}{
		{"mixed schemes", etcdConfigJSON(t, "etcdURL", withUser+",https://root:"+secret+"@127.0.0.1:2"), 7},
		{"another scheme", etcdConfigJSON(t, "etcdURL", "ftp://root:"+secret+"@127.0.0.1:2379"), 7},
		{"etcd down while logging in", etcdConfigJSON(t, "etcdURL", "http://root:"+secret+"@127.0.0.1:1",
			"etcdUsername", "u", "etcdPassword", "p", "etcdTimeout", "500ms"), 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, invocation{Command: "ADD", ContainerID: "url-c2", Config: conf(tc.etcd)})
			e := oneCNIError(t, out.Stdout)
			if e.Code != tc.code {
				t.Errorf("code %d (%s), want %d", e.Code, e.Msg, tc.code)
			}
			requireNoSecret(t, "the error", out.Stdout, secret)
			requireNoSecret(t, "stderr", out.Stderr, secret)
			if !strings.Contains(e.Msg, "root:xxxxx@") {
				t.Errorf("error %q does not show the endpoint's user", e.Msg)
			}
		})
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	requireNoSecret(t, "the log", log, secret)
	if !bytes.Contains(log, []byte("root:xxxxx@")) {
		t.Errorf("the debug log does not show the endpoints with their user:\n%s", log)
	}
}
