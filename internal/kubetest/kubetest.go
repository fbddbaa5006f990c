// Package kubetest gives tests a real Kubernetes API server: kube-apiserver
// Version, built from the tools module internal/kubetest/apiserver, run as
// a process on loopback against a real etcd. Like internal/etcdtest, it
// exists because a fake would have to re-implement what the tests are
// meant to check (RBAC, admission, resource versions, watches).
//
// The API:
//
//	func Start(t testing.TB, opts ...Option) *Server
//	func WithEtcd(endpoint string) Option
//	func WithFlags(flags ...string) Option
//	func (s *Server) AdminConfig() *rest.Config
//	func (s *Server) AdminClient(t testing.TB) kubernetes.Interface
//	func (s *Server) Kubeconfig(t testing.TB) string
//	func (s *Server) ServiceAccountConfig(t testing.TB, namespace, name string) *rest.Config
//	func (s *Server) Stop()
//	func (s *Server) Restart(t testing.TB)
//	func Binary() (string, error)
//
// What the server is, and is not:
//
//   - It serves HTTPS on 127.0.0.1 at a free port, with a certificate from
//     a CA generated for it; the configs trust that CA.
//   - Authorization is RBAC alone. The admin identity (user AdminUser in
//     group system:masters, by client certificate) passes every check;
//     ServiceAccountConfig gives an identity that has only what the test
//     binds to it, with a token from the TokenRequest API.
//   - Only the API server runs: no controller-manager, scheduler or
//     kubelet. Pods stay Pending unless the test writes their status (the
//     admin may, as a kubelet would); deleted namespaces stay Terminating;
//     owner references collect nothing; and no "default" ServiceAccount
//     is made (the ServiceAccount admission plugin, which would require
//     it, is off). A pod with spec.nodeName set is deleted gracefully:
//     it keeps a deletionTimestamp, waiting for a kubelet that never
//     comes, until deleted again with GracePeriodSeconds 0. A pod with
//     no node goes at once.
//   - The configs have client-side rate limiting off (QPS -1), so test
//     setup is not throttled; a test of throttling sets its own.
//
// The binary is built once per machine into a cache (see Binary); the
// first build takes 8 to 16 minutes on two cores, so run a cold test with
// go test -timeout 40m. Start skips the test under -short.
package kubetest

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// AdminUser is the user name of AdminConfig's client certificate.
const AdminUser = "kubetest-admin"

const (
	// readyTimeout bounds the wait for /readyz after a start: a first
	// start against an empty etcd creates RBAC's bootstrap roles and
	// the priority-and-fairness objects, seconds on a busy machine.
	readyTimeout = 2 * time.Minute
	// stopTimeout bounds a graceful stop before the process is killed.
	stopTimeout = 15 * time.Second
	// logTailLines is how much of the server's log a failure shows.
	logTailLines = 40
)

// Option changes how Start runs the server.
type Option func(*options)

type options struct {
	etcd  string
	flags []string
}

// WithEtcd runs the server against the etcd at endpoint (a client URL such
// as "http://127.0.0.1:2379") instead of a fresh embedded one; the server
// keeps its objects under a prefix of its own there.
func WithEtcd(endpoint string) Option {
	return func(o *options) { o.etcd = endpoint }
}

// WithFlags passes more kube-apiserver flags, after Start's own, so that
// one of them given again here takes this value.
func WithFlags(flags ...string) Option {
	return func(o *options) { o.flags = append(o.flags, flags...) }
}

// Server is one kube-apiserver process and what its clients need.
type Server struct {
	bin  string
	args []string
	dir  string
	host string // https://127.0.0.1:<port>
	pki  *pki
	log  string // the server's output, across restarts

	mu         sync.Mutex
	proc       *exec.Cmd
	exited     chan struct{} // closed when proc has exited
	kubeconfig string
}

// Start runs a kube-apiserver for one test and returns when its /readyz
// answers ok (within 2 minutes), building the binary first if needed (see
// Binary). Without WithEtcd it starts a fresh embedded etcd with
// internal/etcdtest. t.Cleanup stops the server, and when the test failed
// logs the end of the server's output.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("kubetest: a real kube-apiserver is not short")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	if o.etcd == "" {
		o.etcd = etcdtest.Start(t).Endpoint()
	}
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	s := &Server{
		bin:  bin,
		dir:  dir,
		host: "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		pki:  p,
		log:  filepath.Join(dir, "kube-apiserver.log"),
	}
	s.args = append([]string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + dir,
		"--tls-cert-file=" + p.serverCertFile,
		"--tls-private-key-file=" + p.serverKeyFile,
		"--client-ca-file=" + p.caFile,
		"--etcd-servers=" + o.etcd,
		// Servers sharing one etcd (WithEtcd) must not see each
		// other's objects.
		"--etcd-prefix=/kubetest-" + randomHex(8),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + p.serviceAccountPublicKeyFile,
		"--service-account-signing-key-file=" + p.serviceAccountKeyFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		// The kubernetes Service's endpoints would be 127.0.0.1,
		// which the API server refuses to write.
		"--endpoint-reconciler-type=none",
		// It requires every namespace's "default" ServiceAccount,
		// which only the controller-manager creates.
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	}, o.flags...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubetest: the end of kube-apiserver's output (%s):\n%s", s.log, s.logTail())
		}
		s.Stop()
	})
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Stop stops the server: SIGTERM, then SIGKILL if it has not exited within
// 15 s. Afterwards its port refuses connections until Restart. It is
// idempotent and safe to call from several goroutines.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = s.proc.Process.Kill()
		<-s.exited
	}
	s.proc = nil
}

// Restart stops the server if it runs and starts it again on the same
// port, against the same etcd and prefix, with the same keys: clients and
// tokens from before keep working once it is ready again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// start runs the process and waits until it is ready, or stops it.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	defer logFile.Close() // the process has its own descriptor
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A test process that dies (go test's -timeout, a panic) must not
	// leave a server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.proc, s.exited = cmd, exited
	if err := s.waitReady(); err != nil {
		s.stopLocked()
		return fmt.Errorf("kubetest: kube-apiserver at %s: %v; the end of its output (%s):\n%s", s.host, err, s.log, s.logTail())
	}
	return nil
}

// waitReady polls /readyz as the admin until it answers ok, the process
// exits or readyTimeout passes.
func (s *Server) waitReady() error {
	cert, err := tls.X509KeyPair(s.pki.adminCertPEM, s.pki.adminKeyPEM)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.pki.caPEM)
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      roots,
			Certificates: []tls.Certificate{cert},
		}},
	}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(readyTimeout)
	last := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		resp, err := client.Get(s.host + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz: %s", resp.Status)
		}
		last = err
		select {
		case <-s.exited:
			return fmt.Errorf("exited before it was ready (%v)", s.proc.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready within %v: %v", readyTimeout, last)
}

// AdminConfig returns a new client config of the admin identity, which
// passes every authorization check.
func (s *Server) AdminConfig() *rest.Config {
	return &rest.Config{
		Host: s.host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   s.pki.caPEM,
			CertData: s.pki.adminCertPEM,
			KeyData:  s.pki.adminKeyPEM,
		},
		QPS: -1,
	}
}

// AdminClient returns a clientset of AdminConfig.
func (s *Server) AdminClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.AdminConfig())
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return c
}

// Kubeconfig returns the path of a kubeconfig file of AdminConfig (written
// on the first call, removed with the server's directory), for programs
// that take --kubeconfig.
func (s *Server) Kubeconfig(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kubeconfig != "" {
		return s.kubeconfig
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: s.host, CertificateAuthorityData: s.pki.caPEM}
	cfg.AuthInfos[AdminUser] = &clientcmdapi.AuthInfo{ClientCertificateData: s.pki.adminCertPEM, ClientKeyData: s.pki.adminKeyPEM}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: AdminUser}
	cfg.CurrentContext = "kubetest"
	path := filepath.Join(s.dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	s.kubeconfig = path
	return path
}

// logTail returns the last lines of the server's output.
func (s *Server) logTail() string {
	f, err := os.Open(s.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*logTailLines {
			lines = lines[len(lines)-logTailLines:]
		}
	}
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
