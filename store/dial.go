package store

import (
	"fmt"
	"os"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/etcd-cni/etcd-ipam/config"
)

// Dial returns an etcd client. With https:// endpoints it verifies the
// server against CAFile and presents the client certificate; it never falls
// back to plaintext. With http:// endpoints the TLS files are not read.
// Dial itself does not wait for etcd: the first request does, bounded by its
// context.
//
// extra dial options are for instrumentation, such as the tests' counting
// of round trips.
func Dial(cfg config.Etcd, extra ...grpc.DialOption) (*clientv3.Client, error) {
	cc := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.Timeout,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zap.NewNop(),
		DialOptions: extra,
	}
	if cfg.Secure() {
		for _, f := range []struct{ key, path string }{
			{"etcdCertFile", cfg.CertFile}, {"etcdKeyFile", cfg.KeyFile}, {"etcdTrustedCAFileFile", cfg.CAFile},
		} {
			if _, err := os.Stat(f.path); err != nil {
				return nil, fmt.Errorf("%s %q cannot be read: %w", f.key, f.path, err)
			}
		}
		info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
		tlsConfig, err := info.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("loading TLS files (etcdCertFile %q, etcdKeyFile %q, etcdTrustedCAFileFile %q): %w", cfg.CertFile, cfg.KeyFile, cfg.CAFile, err)
		}
		cc.TLS = tlsConfig
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd at %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return cli, nil
}
