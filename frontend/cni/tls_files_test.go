package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// TestTLSBadFiles: TLS files that can never work fail at once with code 7,
// naming the file and saying what is wrong with it, before anything is
// sent to etcd; none of them may write.
func TestTLSBadFiles(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a PEM file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		cert, key, ca string
		mentions      []string
	}{
		{"expired client certificate", files.ExpiredCertFile, files.ExpiredKeyFile, files.CAFile,
			[]string{files.ExpiredCertFile, "expired", "renew"}},
		{"certificate and key do not match", files.CertFile, files.ExpiredKeyFile, files.CAFile,
			[]string{files.CertFile, files.ExpiredKeyFile, "does not match"}},
		{"server-only certificate", files.ServerOnlyCertFile, files.ServerOnlyKeyFile, files.CAFile,
			[]string{files.ServerOnlyCertFile, "not a client certificate"}},
		{"CA file is not PEM", files.CertFile, files.KeyFile, garbage,
			[]string{garbage, "no PEM certificate"}},
		{"certificate file is not PEM", garbage, files.KeyFile, files.CAFile,
			[]string{garbage}},
		{"key file is a certificate", files.CertFile, files.CAFile, files.CAFile,
			[]string{files.CAFile}},
		{"missing CA file", files.CertFile, files.KeyFile, filepath.Join(dir, "missing-ca.pem"),
			[]string{"missing-ca.pem", "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := tlsExample(etcdConfigJSON(t,
				"etcdURL", srv.Endpoint(),
				"etcdCertFile", tc.cert, "etcdKeyFile", tc.key, "etcdTrustedCAFileFile", tc.ca,
				"etcdTimeout", "5s"))
			start := time.Now()
			e := mustFail(t, invocation{Command: "ADD", ContainerID: "tls-files", IfName: "eth0", Config: conf}, 7)
			took := time.Since(start)
			t.Logf("after %v: %s", took.Round(time.Millisecond), e.Msg)
			for _, m := range tc.mentions {
				if !strings.Contains(e.Msg+" "+e.Details, m) {
					t.Errorf("error %q does not mention %q", e.Msg, m)
				}
			}
		})
	}
	resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Errorf("refused TLS files let %d keys be written", resp.Count)
	}
}

// TestTLSNeverFallsBackToPlaintext points an https:// endpoint at a
// listener that records what the plugin sends. Whatever happens, the first
// bytes on every connection must be a TLS handshake record (type 22), never
// the plaintext HTTP/2 preface ("PRI * HTTP/2.0") that a fallback would
// send; the ADD fails and says so.
func TestTLSNeverFallsBackToPlaintext(t *testing.T) {
	_, files := etcdtest.StartTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var (
		mu     sync.Mutex
		firsts [][]byte
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 16)
			n, _ := conn.Read(buf)
			mu.Lock()
			firsts = append(firsts, buf[:n])
			mu.Unlock()
			// A plaintext server's answer to a ClientHello: it just closes.
			_ = conn.Close()
		}
	}()
	conf := tlsExample(etcdConfigJSON(t,
		"etcdURL", "https://"+ln.Addr().String(),
		"etcdCertFile", files.CertFile, "etcdKeyFile", files.KeyFile, "etcdTrustedCAFileFile", files.CAFile,
		"etcdTimeout", "1500ms"))
	out := run(t, invocation{Command: "ADD", ContainerID: "no-fallback", IfName: "eth0", Config: conf})
	if out.ExitCode == 0 {
		t.Fatalf("ADD against a listener that is not etcd succeeded: %s", out.Stdout)
	}
	e := oneCNIError(t, out.Stdout)
	if e.Code != 11 && e.Code != 7 {
		t.Errorf("code %d (%s), want 11 or 7", e.Code, e.Msg)
	}
	_ = ln.Close()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(firsts) == 0 {
		t.Fatal("the plugin never connected")
	}
	for i, b := range firsts {
		if len(b) == 0 {
			continue
		}
		if b[0] != 0x16 || bytes.HasPrefix(b, []byte("PRI ")) {
			t.Errorf("connection %d began with %q, not a TLS handshake", i, b)
		}
	}
	t.Logf("%d connections, all starting with a TLS handshake; code %d: %s", len(firsts), e.Code, e.Msg)
}
