package store

import (
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// DialConfig says how to reach etcd. It mirrors the plugin's etcdConfig,
// already checked by the configuration loader.
type DialConfig struct {
	Endpoints                 []string
	TLS                       bool // https:// endpoints: verify etcd, present the client certificate
	CertFile, KeyFile, CAFile string
	Username, Password        string
	Timeout                   time.Duration // bounds logging in (Username) inside Dial
}

// Dial returns an etcd client. With TLS it verifies the server against
// CAFile and presents the client certificate; it never falls back to
// plaintext. Without TLS the files are not read. Without Username, Dial
// itself does not wait for etcd: the first request does, bounded by its
// context; with it, clientv3 authenticates inside Dial, bounded by
// cfg.Timeout.
//
// A TLS failure that retrying cannot fix on every endpoint ends the
// waiting requests at once with a *TLSError that says which (see
// tls_watch.go), instead of letting them run into their deadline as if
// etcd were unreachable.
//
// extra dial options are for instrumentation, such as the tests' counting
// of round trips.
func Dial(cfg DialConfig, extra ...grpc.DialOption) (*clientv3.Client, error) {
	cc := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.Timeout,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zap.NewNop(),
		DialOptions: extra,
	}
	if cfg.TLS {
		tlsConfig, err := loadTLSFiles(cfg, time.Now())
		if err != nil {
			return nil, err
		}
		cc.TLS = tlsConfig
		// Options given last win, so these credentials replace the
		// ones clientv3 makes from cc.TLS (the same TLS config,
		// wrapped to notice permanent failures).
		watch := newTLSWatch(credentials.NewTLS(tlsConfig), cfg)
		cc.DialOptions = append(append([]grpc.DialOption(nil), extra...),
			grpc.WithTransportCredentials(watch), grpc.WithChainUnaryInterceptor(watch.state.unary))
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, &DialError{Endpoints: cfg.Endpoints, Err: err}
	}
	return cli, nil
}
