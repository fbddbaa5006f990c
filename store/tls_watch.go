package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// tlsWatch is the TLS transport credentials of a client with https
// endpoints, watched: every handshake, and every read after it, reports to
// the shared state, which keeps per endpoint the last failure that no retry
// can fix until a later handshake with that endpoint succeeds.
type tlsWatch struct {
	credentials.TransportCredentials
	state *tlsState
}

func newTLSWatch(inner credentials.TransportCredentials, cfg DialConfig) *tlsWatch {
	st := &tlsState{cfg: cfg, failed: map[string]error{}, down: make(chan struct{})}
	for _, ep := range cfg.Endpoints {
		st.endpoints = append(st.endpoints, endpointAuthority(ep))
	}
	return &tlsWatch{TransportCredentials: inner, state: st}
}

// endpointAuthority is what clientv3 hands a handshake as the authority of
// endpoint ep: the host:port of a URL, or ep itself.
func endpointAuthority(ep string) string {
	if strings.Contains(ep, "://") {
		if u, err := url.Parse(ep); err == nil {
			return u.Host
		}
	}
	return ep
}

func (w *tlsWatch) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := w.TransportCredentials.ClientHandshake(ctx, authority, raw)
	w.state.record(authority, err)
	if err != nil {
		return nil, nil, err
	}
	return &watchedConn{Conn: conn, authority: authority, state: w.state}, info, nil
}

func (w *tlsWatch) Clone() credentials.TransportCredentials {
	return &tlsWatch{TransportCredentials: w.TransportCredentials.Clone(), state: w.state}
}

// watchedConn reports read errors: with TLS 1.3 a server that rejects the
// client certificate says so only after the client's handshake is done.
type watchedConn struct {
	net.Conn
	authority string
	state     *tlsState
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.state.record(c.authority, err)
	}
	return n, err
}

// tlsState is what a client's handshakes have shown so far.
type tlsState struct {
	cfg       DialConfig
	endpoints []string // authorities, in etcdURL order

	mu     sync.Mutex
	failed map[string]error // by authority: the last permanent failure
	down   chan struct{}    // closed while every endpoint has failed for good
}

// record notes the outcome of a handshake or read with authority: nil is a
// successful handshake; an error counts only if no retry can fix it.
func (s *tlsState) record(authority string, err error) {
	if err != nil && !permanentTLSError(err) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wasDown := s.allFailedLocked()
	if err == nil {
		delete(s.failed, authority)
	} else {
		s.failed[authority] = err
	}
	switch isDown := s.allFailedLocked(); {
	case isDown && !wasDown:
		close(s.down)
	case !isDown && wasDown:
		s.down = make(chan struct{})
	}
}

func (s *tlsState) allFailedLocked() bool {
	for _, ep := range s.endpoints {
		if _, ok := s.failed[ep]; !ok {
			return false
		}
	}
	return len(s.endpoints) > 0
}

// check returns the configuration error while every endpoint has failed
// for good, or else a channel that is closed once they all have.
func (s *tlsState) check() (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.allFailedLocked() {
		return nil, s.errorLocked()
	}
	return s.down, nil
}

// unary ends a request that waits for a connection (clientv3 waits for a
// ready connection until the request's deadline) as soon as every endpoint
// has failed for good, and returns the configuration error instead.
func (s *tlsState) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	down, err := s.check()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-down:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = invoker(ctx, method, req, reply, cc, opts...)
	if err != nil {
		if _, tlsErr := s.check(); tlsErr != nil {
			return tlsErr
		}
	}
	return err
}

// errorLocked describes the failures as a *TLSError: no retry helps, the
// configuration (or etcd's certificates) must change.
func (s *tlsState) errorLocked() *TLSError {
	e := &TLSError{}
	for _, ep := range s.endpoints {
		err := s.failed[ep]
		e.Failures = append(e.Failures, fmt.Sprintf("%s: %v", ep, err))
		if h := s.hint(err); !slices.Contains(e.Hints, h) {
			e.Hints = append(e.Hints, h)
		}
	}
	return e
}

func (s *tlsState) hint(err error) string {
	var hostErr x509.HostnameError
	var verifyErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.As(err, &hostErr):
		return "etcd's certificate does not name the host of its etcdURL endpoint; use a name or address the certificate lists"
	case errors.As(err, &verifyErr):
		return fmt.Sprintf("etcd's certificate does not verify against etcdTrustedCAFileFile %q; give the CA that signed etcd's server certificate", s.cfg.CAFile)
	case errors.As(err, &recordErr):
		return "the endpoint does not speak TLS; use http:// for a plaintext etcd, or point etcdURL at etcd's https client port"
	}
	return fmt.Sprintf("etcd refused the handshake, usually the client certificate; check that etcdCertFile %q (with etcdKeyFile %q) is a client certificate signed by a CA etcd trusts", s.cfg.CertFile, s.cfg.KeyFile)
}

// rejectingAlerts are the TLS alerts by which a server refuses a client's
// certificate or parameters; repeating the same handshake gets the same.
var rejectingAlerts = []tls.AlertError{
	40,  // handshake failure
	42,  // bad certificate
	43,  // unsupported certificate
	44,  // revoked certificate
	45,  // expired certificate
	46,  // unknown certificate
	48,  // unknown certificate authority
	49,  // access denied
	70,  // protocol version not supported
	71,  // insufficient security level
	116, // certificate required
}

// permanentTLSError reports whether err is a TLS failure that the same
// handshake would meet again: the server's certificate does not verify, the
// server does not speak TLS, or the server refused ours.
func permanentTLSError(err error) bool {
	var verifyErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	if errors.As(err, &verifyErr) || errors.As(err, &recordErr) {
		return true
	}
	// crypto/tls reports a received alert as a net.OpError "remote
	// error" around an unexported alert type whose text AlertError shares.
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "remote error" || opErr.Err == nil {
		return false
	}
	for _, a := range rejectingAlerts {
		if opErr.Err.Error() == a.Error() {
			return true
		}
	}
	return false
}
