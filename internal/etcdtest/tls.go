package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
)

// TLSFiles are the PEM files a client of a StartTLS server needs, all in a
// directory from t.TempDir.
type TLSFiles struct {
	// CAFile is the CA that signed both the server's and the client's
	// certificate.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key, which
	// the server accepts.
	CertFile string
	KeyFile  string
	// OtherCAFile is an unrelated CA that signed nothing the server
	// presents, for tests of a wrongly configured trust anchor.
	OtherCAFile string
	// ExpiredCertFile and ExpiredKeyFile are a client certificate signed
	// by CAFile that expired an hour ago, and its key; ExpiredKeyFile
	// with CertFile is a certificate and a key that do not match.
	ExpiredCertFile string
	ExpiredKeyFile  string
	// ServerOnlyCertFile and ServerOnlyKeyFile are signed by CAFile but
	// allowed for server authentication only.
	ServerOnlyCertFile string
	ServerOnlyKeyFile  string
}

// StartTLS is Start for a server that listens on https://127.0.0.1:PORT
// only, with a certificate for 127.0.0.1 signed by a fresh test CA, and
// that requires every client to present a certificate signed by that CA.
// Peer traffic stays plaintext (a single member has no peers). The
// returned files are what a client needs; Server.Client already uses them.
func StartTLS(t testing.TB) (*Server, TLSFiles) {
	t.Helper()
	files, serverInfo, err := WriteTLSFiles(t.TempDir())
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	clientTLS, err := (&transport.TLSInfo{
		CertFile: files.CertFile, KeyFile: files.KeyFile, TrustedCAFile: files.CAFile,
	}).ClientConfig()
	if err != nil {
		t.Fatalf("etcdtest: loading the test client's TLS files: %v", err)
	}
	d, err := devetcd.StartTLS(t.TempDir(), serverInfo)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(d.Stop)
	return &Server{Server: d, clientTLS: clientTLS}, files
}

// WriteTLSFiles creates a CA, a server certificate signed by it for
// 127.0.0.1, ::1, localhost and serverNames (the host names of etcd
// containers, for e2e), a client certificate and the other files of
// TLSFiles, as PEM files in dir (ca.pem, server.pem, server-key.pem,
// client.pem, client-key.pem, ...). It returns the client's files and the
// server's TLS settings.
func WriteTLSFiles(dir string, serverNames ...string) (TLSFiles, transport.TLSInfo, error) {
	files := TLSFiles{
		CAFile:      filepath.Join(dir, "ca.pem"),
		CertFile:    filepath.Join(dir, "client.pem"),
		KeyFile:     filepath.Join(dir, "client-key.pem"),
		OtherCAFile: filepath.Join(dir, "other-ca.pem"),

		ExpiredCertFile:    filepath.Join(dir, "expired.pem"),
		ExpiredKeyFile:     filepath.Join(dir, "expired-key.pem"),
		ServerOnlyCertFile: filepath.Join(dir, "server-only.pem"),
		ServerOnlyKeyFile:  filepath.Join(dir, "server-only-key.pem"),
	}
	server := transport.TLSInfo{
		CertFile:       filepath.Join(dir, "server.pem"),
		KeyFile:        filepath.Join(dir, "server-key.pem"),
		TrustedCAFile:  files.CAFile,
		ClientCertAuth: true,
	}

	ca, caKey, err := newCA("etcdtest CA")
	if err != nil {
		return TLSFiles{}, transport.TLSInfo{}, err
	}
	other, _, err := newCA("etcdtest unrelated CA")
	if err != nil {
		return TLSFiles{}, transport.TLSInfo{}, err
	}
	// etcd's own gRPC gateway dials the client port with the server's
	// certificate as its client certificate, so it needs both usages.
	serverDER, serverKey, err := newLeaf(ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "etcdtest server"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    append([]string{"localhost"}, serverNames...),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return TLSFiles{}, transport.TLSInfo{}, err
	}
	clientDER, clientKey, err := newLeaf(ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "etcdtest client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return TLSFiles{}, transport.TLSInfo{}, err
	}

	expiredDER, expiredKey, err := newLeaf(ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "etcdtest expired client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore:   time.Now().Add(-48 * time.Hour),
		NotAfter:    time.Now().Add(-time.Hour),
	})
	if err != nil {
		return TLSFiles{}, transport.TLSInfo{}, err
	}
	serverOnlyDER, serverOnlyKey, err := newLeaf(ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "etcdtest server-only"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return TLSFiles{}, transport.TLSInfo{}, err
	}

	for _, f := range []struct {
		path, kind string
		der        []byte
	}{
		{files.ExpiredCertFile, "CERTIFICATE", expiredDER},
		{files.ExpiredKeyFile, "PRIVATE KEY", expiredKey},
		{files.ServerOnlyCertFile, "CERTIFICATE", serverOnlyDER},
		{files.ServerOnlyKeyFile, "PRIVATE KEY", serverOnlyKey},
		{files.CAFile, "CERTIFICATE", ca.Raw},
		{files.OtherCAFile, "CERTIFICATE", other.Raw},
		{server.CertFile, "CERTIFICATE", serverDER},
		{server.KeyFile, "PRIVATE KEY", serverKey},
		{files.CertFile, "CERTIFICATE", clientDER},
		{files.KeyFile, "PRIVATE KEY", clientKey},
	} {
		data := pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der})
		if err := os.WriteFile(f.path, data, 0o600); err != nil {
			return TLSFiles{}, transport.TLSInfo{}, fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return files, server, nil
}

// certTemplate fills in what every test certificate shares: a random
// serial number and, unless tmpl sets one, a validity from an hour ago
// (clock skew) to a day from now.
func certTemplate(tmpl *x509.Certificate) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("drawing a certificate serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	if tmpl.NotAfter.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	return tmpl, nil
}

// newCA returns a self-signed CA certificate and its key.
func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the %s key: %w", name, err)
	}
	tmpl, err := certTemplate(&x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	})
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the %s certificate: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the %s certificate: %w", name, err)
	}
	return cert, key, nil
}

// newLeaf returns a certificate for tmpl signed by ca, in DER, and its new
// key in PKCS #8 DER.
func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (der, keyDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating a key for %s: %w", tmpl.Subject.CommonName, err)
	}
	tmpl, err = certTemplate(tmpl)
	if err != nil {
		return nil, nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the certificate for %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the key for %s: %w", tmpl.Subject.CommonName, err)
	}
	return der, keyDER, nil
}
