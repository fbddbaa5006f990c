package e2e

import (
	"crypto/tls"
	"testing"

	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// pki is a test CA with a certificate for the etcd server and one for its
// client, as PEM files in one directory that is also mounted into the etcd
// container at /certs (as ca.pem, server.pem and server-key.pem).
type pki struct {
	Dir                           string
	CAFile                        string
	ServerCertFile, ServerKeyFile string
	ClientCertFile, ClientKeyFile string
	clientTLS                     *tls.Config
}

// newPKI writes a fresh CA, a server certificate valid for 127.0.0.1 (where
// the container's port is published), localhost and names, and a client
// certificate, all signed by the CA: the same files the embedded etcd of
// the unit tests uses.
func newPKI(t *testing.T, names ...string) *pki {
	t.Helper()
	dir := t.TempDir()
	files, server, err := etcdtest.WriteTLSFiles(dir, names...)
	if err != nil {
		t.Fatal(err)
	}
	clientTLS, err := (&transport.TLSInfo{CertFile: files.CertFile, KeyFile: files.KeyFile, TrustedCAFile: files.CAFile}).ClientConfig()
	if err != nil {
		t.Fatalf("loading the client's TLS files: %v", err)
	}
	return &pki{
		Dir:            dir,
		CAFile:         files.CAFile,
		ServerCertFile: server.CertFile,
		ServerKeyFile:  server.KeyFile,
		ClientCertFile: files.CertFile,
		ClientKeyFile:  files.KeyFile,
		clientTLS:      clientTLS,
	}
}
