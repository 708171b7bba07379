package registry

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"
)

// Targets restrict the hosts a Store connects to. In a server, image
// names are chosen by whoever writes a Pod spec, and vouch calls the host
// an image names: "169.254.169.254/x" or "kubernetes.default.svc/x" would
// make it probe the cloud's metadata service or the cluster's own
// services. With Targets, a Store refuses, before connecting:
//
//   - addresses that are loopback, link-local (169.254.0.0/16, fe80::/10,
//     and link-local multicast), unspecified, multicast, or a cloud
//     metadata service's (auth.DefaultBlockedRealmPrefixes: fd00:ec2::254,
//     100.100.100.200, …);
//   - cluster-internal names: "localhost", "*.localhost", "*.svc",
//     "*.svc.cluster.local", "*.cluster.local" (kubernetes.default.svc
//     among them), "*.internal" and "*.local";
//
// and it checks the address each connection is made to, after name
// resolution, so that a name that resolves to a refused address (DNS
// rebinding, a wildcard DNS service) is refused too. A host that is not
// allowed is resolved as an absolute name: the resolver's search domains
// (a Pod's "svc.cluster.local") do not turn "kubernetes.default" into the
// API server. Redirects are checked as any request is.
//
// (Credentials never follow a redirect to another host, with or without
// Targets: oras-go's auth.Client drops Authorization once a redirect
// leaves the first request's scheme, host and port, and does not answer
// another host's challenge with them.)
//
// A connection through an HTTP proxy (HTTPS_PROXY) is checked by the
// request's host name only: the proxy resolves it.
type Targets struct {
	// Allow lists the registries ("host" or "host:port") that the
	// configuration names: they are reached whatever their name and
	// address. A "host" entry allows every port of the host. Optional.
	Allow []string

	// resolver resolves the names dialed; nil: Go's own resolver (tests
	// set one that answers what a rebinding DNS server would).
	resolver *net.Resolver
}

// TargetError is the error for a connection that Targets refuse.
type TargetError struct {
	// Host is the host (and port) the request named.
	Host string
	// Address is the address it resolved to, when that is what is refused.
	Address string
	// Why says what the target is: "a loopback address", ….
	Why string
}

func (e *TargetError) Error() string {
	what := e.Host
	if e.Address != "" && e.Address != e.Host {
		what = fmt.Sprintf("%s (%s)", e.Host, e.Address)
	}
	return fmt.Sprintf("refusing to connect to %s: %s; vouch serve reaches such a registry only when its configuration names it", what, e.Why)
}

// targetFilter applies Targets to requests and connections.
type targetFilter struct {
	hosts    map[string]bool // "host" and "host:port", lowercase
	resolver *net.Resolver
	// proxies are the proxy addresses the transport chose: the operator's,
	// not the request's, so dialing them is not checked.
	proxies sync.Map
}

func newTargetFilter(t *Targets) *targetFilter {
	f := &targetFilter{hosts: map[string]bool{}, resolver: t.resolver}
	if f.resolver == nil {
		// Go's own resolver, as in every Go program built without cgo.
		f.resolver = &net.Resolver{PreferGo: true}
	}
	for _, h := range t.Allow {
		f.hosts[strings.ToLower(strings.TrimSuffix(h, "."))] = true
	}
	return f
}

// allowed reports whether the configuration names host (from a URL's
// Host, or a dial address) with its port.
func (f *targetFilter) allowed(hostport, defaultPort string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), defaultPort
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return f.hosts[host] || f.hosts[net.JoinHostPort(host, port)] || (strings.Contains(host, ":") && f.hosts["["+host+"]"])
}

// checkRequest refuses a request whose URL names a refused host, before
// anything is sent.
func (f *targetFilter) checkRequest(u *url.URL) error {
	port := "443"
	if u.Scheme == "http" {
		port = "80"
	}
	if f.allowed(u.Host, port) {
		return nil
	}
	return checkHost(u.Host, u.Hostname())
}

// checkHost refuses a host name or literal address by what it says.
func checkHost(hostport, host string) error {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if a, err := netip.ParseAddr(host); err == nil {
		if why := refusedAddr(a); why != "" {
			return &TargetError{Host: hostport, Why: why}
		}
		return nil
	}
	for _, suffix := range []string{"localhost", "svc", "cluster.local", "internal", "local"} {
		if host == suffix || strings.HasSuffix(host, "."+suffix) {
			return &TargetError{Host: hostport, Why: fmt.Sprintf("a cluster-internal name (*.%s)", suffix)}
		}
	}
	return nil
}

// refusedAddr says why a is refused, or "".
func refusedAddr(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return "a link-local address (cloud metadata services live there)"
	case a.IsUnspecified():
		return "an unspecified address"
	case a.IsMulticast():
		return "a multicast address"
	}
	// oras-go's list for bearer realms adds the cloud metadata services
	// outside link-local (fd00:ec2::254, 100.100.100.200, …).
	for _, p := range auth.DefaultBlockedRealmPrefixes() {
		if p.Contains(a) {
			return "a cloud metadata service's address"
		}
	}
	return ""
}

// dialContext dials addr for the transport: as it is when the
// configuration names it (or it is the proxy), else as an absolute name,
// refusing every address it resolves to that refusedAddr refuses.
func (f *targetFilter) dialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	plain := *d
	plain.Resolver = f.resolver
	checked := plain
	checked.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &TargetError{Host: address, Why: "not an IP address and port"}
		}
		if why := refusedAddr(ap.Addr()); why != "" {
			return &TargetError{Host: address, Address: ap.Addr().Unmap().String(), Why: why}
		}
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if _, proxy := f.proxies.Load(addr); proxy || f.allowed(addr, "") {
			return plain.DialContext(ctx, network, addr)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if err := checkHost(addr, host); err != nil {
			return nil, err
		}
		if _, err := netip.ParseAddr(host); err != nil && !strings.HasSuffix(host, ".") {
			host += "." // absolute: no search domains
		}
		return checked.DialContext(ctx, network, net.JoinHostPort(host, port))
	}
}

// restrict makes ht, a transport of the Store's own, apply f to every
// connection it makes, and remembers the proxies it chooses.
func (f *targetFilter) restrict(ht *http.Transport) {
	// The settings of http.DefaultTransport's dialer.
	ht.DialContext = f.dialContext(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
	if proxy := ht.Proxy; proxy != nil {
		ht.Proxy = func(req *http.Request) (*url.URL, error) {
			u, err := proxy(req)
			if u != nil {
				f.proxies.Store(proxyAddr(u), true)
			}
			return u, err
		}
	}
}

// proxyAddr is the address a transport dials for the proxy u.
func proxyAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
