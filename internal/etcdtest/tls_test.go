package etcdtest

import (
	"context"
	"crypto/tls"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestStartTLSServesOnlyVerifiedClients checks StartTLS: an https endpoint
// on 127.0.0.1, a working Client, and refusal of every client that lacks
// the right certificate or trust.
func TestStartTLSServesOnlyVerifiedClients(t *testing.T) {
	s, files := StartTLS(t)
	u, err := url.Parse(s.Endpoint())
	if err != nil || u.Scheme != "https" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" {
		t.Fatalf("endpoint %q is not https://127.0.0.1:PORT (parse error %v)", s.Endpoint(), err)
	}
	for _, f := range []string{files.CAFile, files.CertFile, files.KeyFile, files.OtherCAFile} {
		if data, err := os.ReadFile(f); err != nil || !strings.HasPrefix(string(data), "-----BEGIN ") {
			t.Errorf("%s is not a PEM file: %v", f, err)
		}
	}

	c := s.Client(t)
	Put(t, c, "/k", "v")
	if v, ok := Get(t, c, "/k"); !ok || v != "v" {
		t.Fatalf("/k = %q (exists %v), want %q", v, ok, "v")
	}

	tlsConfig := func(info transport.TLSInfo) *tls.Config {
		cfg, err := info.ClientConfig()
		if err != nil {
			t.Fatalf("client TLS config %+v: %v", info, err)
		}
		return cfg
	}
	// The refusals take a timeout each, so they run in parallel; the
	// group returns when all are done.
	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			endpoint string
			tls      *tls.Config
		}{
			{"no client certificate", s.Endpoint(), tlsConfig(transport.TLSInfo{TrustedCAFile: files.CAFile})},
			{"unrelated CA", s.Endpoint(), tlsConfig(transport.TLSInfo{CertFile: files.CertFile, KeyFile: files.KeyFile, TrustedCAFile: files.OtherCAFile})},
			{"plaintext", "http://" + u.Host, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				c, err := clientv3.New(clientv3.Config{
					Endpoints: []string{tc.endpoint}, DialTimeout: time.Second, TLS: tc.tls, Logger: zap.NewNop(),
				})
				if err != nil {
					return // refused while connecting: that is a refusal too
				}
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				if _, err := c.Put(ctx, "/intruder", "x"); err == nil {
					t.Fatal("put succeeded, want the server to refuse the client")
				}
			})
		}
	})
	if _, ok := Get(t, c, "/intruder"); ok {
		t.Error("a refused client's put reached etcd")
	}
}

// TestStartTLSKeepsPlainServersPlain checks that a plain Start is
// untouched by TLS support: http endpoint, no certificates needed.
func TestStartTLSKeepsPlainServersPlain(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Endpoint(), "http://") {
		t.Fatalf("Start endpoint %q, want http://", s.Endpoint())
	}
	Put(t, s.Client(t), "/k", "v")
}
