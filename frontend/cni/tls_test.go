package main

import (
	"bytes"
	"context"
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
// The code and message are logged (run with -v): the wrong CA is code 7 at
// once (TestTLSHandshakeRefusals pins that down); plaintext cannot tell a
// TLS port from a dead one, so it is code 11 after etcdTimeout.
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

// TestTLSHandshakeRefusals: etcd's certificate not signed by the
// configured CA fails every handshake in a way no retry can fix, so it is
// a configuration error, code 7, saying what to fix; STATUS reports it as
// "not available", code 50, with the same reason. Nothing is written.
func TestTLSHandshakeRefusals(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	for _, tc := range []struct {
		name       string
		etcdConfig string
		mentions   []string
	}{
		{"wrong CA", etcdConfigJSON(t,
			"etcdURL", srv.Endpoint(),
			"etcdCertFile", files.CertFile,
			"etcdKeyFile", files.KeyFile,
			"etcdTrustedCAFileFile", files.OtherCAFile,
			"etcdTimeout", "2s"), []string{"unknown authority", files.OtherCAFile, "etcdTrustedCAFileFile"}},
		{"wrong CA under the alias", etcdConfigJSON(t,
			"etcdURL", srv.Endpoint(),
			"etcdCertFile", files.CertFile,
			"etcdKeyFile", files.KeyFile,
			"etcdTrustedCAFile", files.OtherCAFile,
			"etcdTimeout", "2s"), []string{"unknown authority", files.OtherCAFile}},
	} {
		for _, command := range []string{"ADD", "DEL", "CHECK", "STATUS"} {
			t.Run(tc.name+" "+command, func(t *testing.T) {
				conf := strings.Replace(tlsExample(tc.etcdConfig), `"0.3.1"`, `"1.1.0"`, 1)
				code := uint(7)
				if command == "STATUS" {
					code = 50
				}
				start := time.Now()
				e := mustFail(t, invocation{Command: command, ContainerID: "example", IfName: "dummy0", Config: conf}, code)
				t.Logf("after %v: %s (%s)", time.Since(start).Round(10*time.Millisecond), e.Msg, e.Details)
				for _, m := range tc.mentions {
					if !strings.Contains(e.Msg+" "+e.Details, m) {
						t.Errorf("error %q (details %q) does not mention %q", e.Msg, e.Details, m)
					}
				}
			})
		}
	}
	resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		t.Errorf("key %s written by a refused invocation", kv.Key)
	}
}

// TestTLSClientCertificateRefused: etcd refuses a client certificate its
// CA did not sign. With TLS 1.3 the client learns it only from an alert
// after its own handshake is done, and when the client's first bytes cross
// etcd closing the connection, the alert is lost to a reset. So the plugin
// reports code 7 naming etcdCertFile when it saw the alert (usually, at
// once), and code 11 after etcdTimeout when it did not; never a success,
// never a write.
func TestTLSClientCertificateRefused(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	_, stranger := etcdtest.StartTLS(t) // a client certificate srv's CA did not sign
	conf := strings.Replace(tlsExample(etcdConfigJSON(t,
		"etcdURL", srv.Endpoint(),
		"etcdCertFile", stranger.CertFile,
		"etcdKeyFile", stranger.KeyFile,
		"etcdTrustedCAFileFile", files.CAFile,
		"etcdTimeout", "2s")), `"0.3.1"`, `"1.1.0"`, 1)
	t.Run("commands", func(t *testing.T) {
		for _, command := range []string{"ADD", "DEL", "CHECK", "STATUS"} {
			t.Run(command, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				out := run(t, invocation{Command: command, ContainerID: "example", IfName: "dummy0", Config: conf})
				if out.ExitCode == 0 {
					t.Fatalf("%s succeeded with a client certificate etcd does not trust: %s", command, out.Stdout)
				}
				var e cniError
				if err := json.Unmarshal(out.Stdout, &e); err != nil || e.Msg == "" {
					t.Fatalf("stdout is not a CNI error (%v): %q", err, out.Stdout)
				}
				t.Logf("after %v: code %d: %s (%s)", time.Since(start).Round(10*time.Millisecond), e.Code, e.Msg, e.Details)
				switch {
				case e.Code == 11 || (command == "STATUS" && e.Code == 50 && !strings.Contains(e.Msg, "TLS")):
					// The alert was lost; see above.
				case e.Code == 7 || (command == "STATUS" && e.Code == 50):
					for _, m := range []string{"certificate", stranger.CertFile} {
						if !strings.Contains(e.Msg+" "+e.Details, m) {
							t.Errorf("error %q (details %q) does not mention %q", e.Msg, e.Details, m)
						}
					}
				default:
					t.Errorf("code %d, want 7 (or 11 when the alert was lost)", e.Code)
				}
			})
		}
	})
	resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		t.Errorf("key %s written by a refused invocation", kv.Key)
	}
}

// TestTLSUnanswered: https endpoints that never complete a handshake look
// like a network that may recover, so the plugin retries until etcdTimeout
// and reports code 11, as for any unreachable etcd. A plaintext etcd
// closes the connection on a TLS hello without a word, so it looks the
// same (its outcome is only logged, with -v); it must never succeed or get
// anything written.
func TestTLSUnanswered(t *testing.T) {
	_, files := etcdtest.StartTLS(t)
	plain := etcdtest.Start(t)
	for _, tc := range []struct {
		name, url string
		code      uint // 0: any CNI error
	}{
		{"https to a plaintext etcd", "https://" + strings.TrimPrefix(plain.Endpoint(), "http://"), 0},
		// Nothing listens on port 9 of loopback (discard).
		{"https to a closed port", "https://127.0.0.1:9", 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conf := tlsExample(etcdConfigJSON(t,
				"etcdURL", tc.url,
				"etcdCertFile", files.CertFile,
				"etcdKeyFile", files.KeyFile,
				"etcdTrustedCAFileFile", files.CAFile,
				"etcdTimeout", "2s"))
			start := time.Now()
			out := run(t, invocation{Command: "ADD", ContainerID: "example", IfName: "dummy0", Config: conf})
			if out.ExitCode == 0 {
				t.Fatalf("ADD succeeded: %s", out.Stdout)
			}
			var e cniError
			if err := json.Unmarshal(out.Stdout, &e); err != nil || e.Code == 0 || e.Msg == "" {
				t.Fatalf("stdout is not a CNI error (%v): %q", err, out.Stdout)
			}
			t.Logf("after %v: code %d: %s (%s)", time.Since(start).Round(10*time.Millisecond), e.Code, e.Msg, e.Details)
			if tc.code != 0 && e.Code != tc.code {
				t.Errorf("code %d, want %d", e.Code, tc.code)
			}
		})
	}
	t.Cleanup(func() {
		// Runs after the parallel subtests, before the servers stop.
		resp, err := plain.Client(t).Get(context.Background(), "/etcd-cni/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Error(err)
			return
		}
		if resp.Count != 0 {
			t.Errorf("a failed invocation wrote %d keys", resp.Count)
		}
	})
}

// TestTLSOneBadEndpoint: an endpoint whose certificate does not verify does
// not fail the invocation while another endpoint serves; in either order.
func TestTLSOneBadEndpoint(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	other, _ := etcdtest.StartTLS(t) // its certificate is signed by another CA
	for _, tc := range []struct{ name, network, urls string }{
		{"bad endpoint last", "badlast", srv.Endpoint() + "," + other.Endpoint()},
		{"bad endpoint first", "badfirst", other.Endpoint() + "," + srv.Endpoint()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := strings.Replace(tlsExample(etcdConfigJSON(t,
				"etcdURL", tc.urls,
				"etcdCertFile", files.CertFile,
				"etcdKeyFile", files.KeyFile,
				"etcdTrustedCAFileFile", files.CAFile)), `"examplenet"`, `"`+tc.network+`"`, 1)
			add := invocation{Command: "ADD", ContainerID: "example", IfName: "dummy0", Config: conf}
			want := "203.0.113.2/24 gw 203.0.113.1; 2001:db8:1::2/64 gw 2001:db8:1::1"
			if got := parseResult(t, mustSucceed(t, add)).summary(); got != want {
				t.Fatalf("ADD = %s, want %s", got, want)
			}
			mustSucceed(t, invocation{Command: "DEL", ContainerID: "example", IfName: "dummy0", Config: conf})
		})
	}
	for _, network := range []string{"badlast", "badfirst"} {
		resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/networks/"+network+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, kv := range resp.Kvs {
			keys = append(keys, string(kv.Key))
		}
		if got := strings.Join(keys, " "); got != "/etcd-cni/networks/"+network+"/last-reserved/0 /etcd-cni/networks/"+network+"/last-reserved/1 /etcd-cni/networks/"+network+"/seen/test-node" {
			t.Errorf("after ADD and DEL on %s, keys are %s; want only the round-robin positions and the node's liveness", network, got)
		}
	}
}
