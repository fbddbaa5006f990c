package store

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// tlsFiles names the three files of a TLS connection by the configuration
// keys that set them.
func tlsFiles(cfg DialConfig) []struct{ key, path string } {
	return []struct{ key, path string }{
		{"etcdCertFile", cfg.CertFile}, {"etcdKeyFile", cfg.KeyFile}, {"etcdTrustedCAFileFile", cfg.CAFile},
	}
}

// CheckTLSFiles reports every TLS file of cfg that cannot be read, one
// *TLSFileError each; none when all can (or cfg.TLS is off). Dial fails
// on the first of them before connecting, and etcd-ipam validate lists
// them all without connecting.
func CheckTLSFiles(cfg DialConfig) []error {
	if !cfg.TLS {
		return nil
	}
	var errs []error
	for _, f := range tlsFiles(cfg) {
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, &TLSFileError{Key: f.key, Path: f.path, Err: err,
				Message: fmt.Sprintf("%s %q cannot be read: %v", f.key, f.path, err)})
		}
	}
	return errs
}

// loadTLSFiles checks cfg's TLS files and returns the client's TLS
// configuration. Every failure is a *TLSFileError.
func loadTLSFiles(cfg DialConfig, now time.Time) (*tls.Config, error) {
	if errs := CheckTLSFiles(cfg); len(errs) > 0 {
		return nil, errs[0] // the first unreadable file is enough to fail on
	}
	info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
	tlsConfig, err := info.ClientConfig()
	if err != nil {
		return nil, &TLSFileError{Key: "etcdCertFile", Path: cfg.CertFile, Err: err,
			Message: fmt.Sprintf("loading TLS files (etcdCertFile %q, etcdKeyFile %q, etcdTrustedCAFileFile %q): %v", cfg.CertFile, cfg.KeyFile, cfg.CAFile, err)}
	}
	if err := checkClientCertificate(cfg, now); err != nil {
		return nil, err
	}
	return tlsConfig, nil
}

// checkClientCertificate refuses, before any connection, TLS files that
// cannot work: a client certificate that etcd is bound to refuse (expired,
// not yet valid, or not meant for client authentication) or a CA file
// without a certificate. etcd would only close the connection, which a
// client cannot tell from a network failure.
func checkClientCertificate(cfg DialConfig, now time.Time) error {
	certErr := func(err error, format string, args ...any) error {
		return &TLSFileError{Key: "etcdCertFile", Path: cfg.CertFile, Err: err, Message: fmt.Sprintf(format, args...)}
	}
	pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return certErr(err, "etcdCertFile %q and etcdKeyFile %q: %v", cfg.CertFile, cfg.KeyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return certErr(err, "etcdCertFile %q: %v", cfg.CertFile, err)
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		return certErr(nil, "etcdCertFile %q expired on %s; renew the client certificate", cfg.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return certErr(nil, "etcdCertFile %q is not valid before %s; check this node's clock or the certificate", cfg.CertFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	ca, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return &TLSFileError{Key: "etcdTrustedCAFileFile", Path: cfg.CAFile, Err: err,
			Message: fmt.Sprintf("etcdTrustedCAFileFile %q cannot be read: %v", cfg.CAFile, err)}
	}
	if !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return &TLSFileError{Key: "etcdTrustedCAFileFile", Path: cfg.CAFile,
			Message: fmt.Sprintf("etcdTrustedCAFileFile %q holds no PEM certificate; give the CA certificate that signed etcd's server certificate", cfg.CAFile)}
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return certErr(nil, "etcdCertFile %q is not a client certificate (its extended key usage lacks client authentication); give the certificate issued for etcd clients", cfg.CertFile)
	}
	return nil
}
