package bmc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/cookiejar"
	"sync"
	"time"
)

// gofish (under bmclib's Redfish providers) sends every request with
// context.Background(), bounded only by an http.Client timeout fixed at
// Open. So neither cancelling the caller's context nor the per-call timeout
// would stop a request to a hung BMC, and Close's Logout would inherit the
// Open-time timeout. bmclib insists on an *http.Transport (it clones it per
// provider), so we cannot wrap the RoundTripper; instead the transport's
// DialContext ties each new connection (keep-alives are off, so one per
// request) to the context of the call in progress, closing the connection
// when that context ends.

// callScope holds the context of the BMC call in progress.
type callScope struct {
	mu  sync.Mutex
	ctx context.Context
}

// enter makes ctx the current call context until the returned func is called.
func (s *callScope) enter(ctx context.Context) (leave func()) {
	s.mu.Lock()
	prev := s.ctx
	s.ctx = ctx
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.ctx = prev
		s.mu.Unlock()
	}
}

func (s *callScope) current() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx
}

// scopedConn closes itself when its call context ends.
type scopedConn struct {
	net.Conn
	stop func() bool
}

func (c *scopedConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// newHTTPClient builds the client bmclib's HTTP providers copy: bmclib's
// own defaults (no keep-alives, cookie jar, certificate checks off unless
// asked) plus the call-scoped dialer. With verify, pool nil means the
// system roots.
func newHTTPClient(scope *callScope, verify bool, pool *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: !verify, RootCAs: pool}, //nolint:gosec // BMCs ship self-signed certificates; Target.TLSVerify turns checks on
		DisableKeepAlives:     true,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			call := scope.current()
			if call == nil {
				return d.DialContext(ctx, network, addr)
			}
			dctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stopDial := context.AfterFunc(call, cancel)
			defer stopDial()
			conn, err := d.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &scopedConn{Conn: conn, stop: context.AfterFunc(call, func() { _ = conn.Close() })}, nil
		},
	}
	jar, _ := cookiejar.New(nil) // never fails with nil options
	return &http.Client{Transport: tr, Jar: jar, Timeout: 2 * time.Minute}
}
