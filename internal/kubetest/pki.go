package kubetest

import (
	"crypto"
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
	"time"
)

// pki is what one server's identities need: a CA that signs both the
// serving certificate and the admin's client certificate (so one CA file
// is the server's --client-ca-file and the clients' trust root), and the
// key that signs and verifies service account tokens.
type pki struct {
	caPEM        []byte
	adminCertPEM []byte
	adminKeyPEM  []byte
	// Files the server reads.
	caFile, serverCertFile, serverKeyFile string
	// The service account token keys: the server signs with the private
	// key and verifies with the public one.
	serviceAccountKeyFile, serviceAccountPublicKeyFile string
}

// certValidity outlives any test; the certificates die with the temp dir.
const certValidity = 24 * time.Hour

// newPKI generates every key and certificate of a server into dir.
func newPKI(dir string) (*pki, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubetest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p := &pki{
		caPEM:                       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		caFile:                      filepath.Join(dir, "ca.crt"),
		serverCertFile:              filepath.Join(dir, "server.crt"),
		serverKeyFile:               filepath.Join(dir, "server.key"),
		serviceAccountKeyFile:       filepath.Join(dir, "service-account.key"),
		serviceAccountPublicKeyFile: filepath.Join(dir, "service-account.pub"),
	}

	serverCert, serverKey, err := issue(ca, caKey, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}, now)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	// The API server maps a client certificate's CN to the user name and
	// each O to a group; system:masters is bound to cluster-admin and
	// passes every authorization check, so RBAC never stands in the way
	// of the admin client.
	p.adminCertPEM, p.adminKeyPEM, err = issue(ca, caKey, &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: AdminUser, Organization: []string{"system:masters"}},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, now)
	if err != nil {
		return nil, fmt.Errorf("admin certificate: %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saKeyPEM, err := keyPEM(saKey)
	if err != nil {
		return nil, err
	}
	// The server reads a PKCS #8 "PRIVATE KEY" to sign but not to verify,
	// so the verifying key is a public key file of its own.
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}

	for name, data := range map[string][]byte{
		p.caFile:                      p.caPEM,
		p.serverCertFile:              serverCert,
		p.serverKeyFile:               serverKey,
		p.serviceAccountKeyFile:       saKeyPEM,
		p.serviceAccountPublicKeyFile: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// issue signs a fresh key's certificate from tmpl with the CA and returns
// both in PEM.
func issue(ca *x509.Certificate, caKey crypto.Signer, tmpl *x509.Certificate, now time.Time) (certPEM, keyPEMBytes []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(certValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	keyBytes, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyBytes, nil
}

// keyPEM encodes key in SEC1 ("EC PRIVATE KEY"), not PKCS #8: the API
// server reads --service-account-key-file's public key from an EC private
// key only in SEC1, and refuses a PKCS #8 one.
func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}
