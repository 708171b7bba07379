package testbed

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// Counted is an HTTP server on 127.0.0.1 that counts the TCP connections
// it accepts: how a test proves that vouch made no request to a host (not
// one connection), rather than that its requests failed.
type Counted struct {
	// Host is the server's "127.0.0.1:PORT".
	Host string
	// URL is "http://" + Host.
	URL   string
	conns atomic.Int64
}

// Conns returns the number of connections accepted so far.
func (c *Counted) Conns() int64 { return c.conns.Load() }

// ServeCounted serves h (nil: every request is answered 404) over plain
// HTTP on 127.0.0.1, counting connections, until the test ends.
func ServeCounted(t testing.TB, h http.Handler) *Counted {
	t.Helper()
	if h == nil {
		h = http.NotFoundHandler()
	}
	c := &Counted{}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = &countingListener{Listener: srv.Listener, n: &c.conns}
	srv.Start()
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	c.Host = strings.TrimPrefix(srv.URL, "http://")
	return c
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return conn, err
}

// Relay returns a handler that forwards every request to the plain-HTTP
// server at host ("127.0.0.1:PORT"): a real registry seen at another
// address.
func Relay(host string) http.Handler {
	return httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: host})
}
