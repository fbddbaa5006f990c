package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// tlsExample is the README's two-range-set example with etcdConfig given
// as the body of etcdConfig (without braces), so each test can choose the
// URL and the TLS keys it is about.
func tlsExample(etcdConfig string) string {
	return `{"cniVersion": "0.3.1", "name": "examplenet", "ipam": {"type": "etcd", "etcdConfig": {` + etcdConfig +
		`}, "ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8:1::/64"}]]}}`
}

// etcdConfigJSON renders key/value pairs as the body of a JSON object.
// Values go through encoding/json so that temporary paths with unusual
// characters still make valid JSON.
func etcdConfigJSON(t *testing.T, pairs ...string) string {
	t.Helper()
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		k, err := json.Marshal(pairs[i])
		if err != nil {
			t.Fatal(err)
		}
		v, err := json.Marshal(pairs[i+1])
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, string(k)+": "+string(v))
	}
	return strings.Join(parts, ", ")
}

// TestTLSExample runs the README example against an etcd that requires
// TLS with client certificates, with the CA given under its documented
// key and under its alias: both must allocate as over plaintext and
// release again.
func TestTLSExample(t *testing.T) {
	for _, tc := range []struct {
		name  string
		caKey string
	}{
		{"etcdTrustedCAFileFile", "etcdTrustedCAFileFile"},
		{"alias etcdTrustedCAFile", "etcdTrustedCAFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, files := etcdtest.StartTLS(t)
			conf := tlsExample(etcdConfigJSON(t,
				"etcdURL", srv.Endpoint(),
				"etcdCertFile", files.CertFile,
				"etcdKeyFile", files.KeyFile,
				tc.caKey, files.CAFile))
			add := invocation{Command: "ADD", ContainerID: "example", IfName: "dummy0", Config: conf}
			want := "203.0.113.2/24 gw 203.0.113.1; 2001:db8:1::2/64 gw 2001:db8:1::1"
			if got := parseResult(t, mustSucceed(t, add)).summary(); got != want {
				t.Fatalf("ADD = %s, want %s", got, want)
			}
			mustSucceed(t, invocation{Command: "DEL", ContainerID: "example", IfName: "dummy0", Config: conf})
			resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/networks/examplenet/ips/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			if resp.Count != 0 {
				t.Errorf("DEL left %d address keys", resp.Count)
			}
		})
	}
}

// TestTLSConfigErrors checks that TLS settings that cannot work are
// reported as configuration errors (code 7) naming what is wrong, before
// any attempt to reach etcd.
func TestTLSConfigErrors(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	missingKey := filepath.Join(t.TempDir(), "no-such-key.pem")
	for _, tc := range []struct {
		name       string
		etcdConfig string
		mention    string
	}{
		{"missing key file", etcdConfigJSON(t,
			"etcdURL", srv.Endpoint(),
			"etcdCertFile", files.CertFile,
			"etcdKeyFile", missingKey,
			"etcdTrustedCAFileFile", files.CAFile), missingKey},
		{"https without etcdCertFile", etcdConfigJSON(t,
			"etcdURL", srv.Endpoint(),
			"etcdKeyFile", files.KeyFile,
			"etcdTrustedCAFileFile", files.CAFile), "etcdCertFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := invocation{Command: "ADD", ContainerID: "example", IfName: "dummy0", Config: tlsExample(tc.etcdConfig)}
			e := mustFail(t, inv, 7)
			t.Logf("code %d, msg %q", e.Code, e.Msg)
			if !strings.Contains(e.Msg, tc.mention) {
				t.Errorf("error %q does not mention %q", e.Msg, tc.mention)
			}
		})
	}
}

// TestTLSUnreachableFails checks the failures that only show when the
// plugin talks to etcd: a CA that did not sign etcd's certificate, and
// plaintext spoken to the TLS port. Neither may succeed or write anything;
// the plugin must give up within etcdTimeout and say so as a CNI error.
// The code and message are logged (run with -v) because the spec leaves
// the code open.
func TestTLSUnreachableFails(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	plainURL := "http://" + strings.TrimPrefix(srv.Endpoint(), "https://")
	cases := []struct {
		name       string
		etcdConfig string
	}{
		{"wrong CA", etcdConfigJSON(t,
			"etcdURL", srv.Endpoint(),
			"etcdCertFile", files.CertFile,
			"etcdKeyFile", files.KeyFile,
			"etcdTrustedCAFileFile", files.OtherCAFile,
			"etcdTimeout", "2s")},
		{"http to the TLS port", etcdConfigJSON(t,
			"etcdURL", plainURL,
			"etcdTimeout", "2s")},
	}
	// Each case waits for its timeout, so they run in parallel; the group
	// returns only when all of them are done, before etcd is inspected.
	t.Run("fails", func(t *testing.T) {
		for _, tc := range cases {
			for _, command := range []string{"ADD", "DEL"} {
				t.Run(tc.name+" "+command, func(t *testing.T) {
					t.Parallel()
					inv := invocation{Command: command, ContainerID: "example", IfName: "dummy0", Config: tlsExample(tc.etcdConfig)}
					start := time.Now()
					out := run(t, inv)
					elapsed := time.Since(start)
					if out.ExitCode == 0 {
						t.Fatalf("%s succeeded, want a CNI error; stdout %s", command, out.Stdout)
					}
					dec := json.NewDecoder(bytes.NewReader(out.Stdout))
					dec.DisallowUnknownFields()
					var e cniError
					if err := dec.Decode(&e); err != nil {
						t.Fatalf("stdout is not CNI error JSON (%v): %q", err, out.Stdout)
					}
					if e.Code == 0 || e.Msg == "" || e.CNIVersion == "" {
						t.Errorf("error JSON lacks code, msg or cniVersion: %+v", e)
					}
					t.Logf("exit %d after %v: code %d, msg %q, details %q", out.ExitCode, elapsed.Round(10*time.Millisecond), e.Code, e.Msg, e.Details)
				})
			}
		}
	})
	t.Run("nothing written", func(t *testing.T) {
		resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/networks/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			t.Errorf("key %s written by a failed invocation", kv.Key)
		}
	})
}
