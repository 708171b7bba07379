package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/net/dns/dnsmessage"
	"oras.land/oras-go/v2/registry/remote/auth"

	vouch "github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

// TestTargetsRefuseInternalHosts: with Targets, loopback, link-local and
// cluster-internal hosts are refused before a connection is made unless
// Allow names them; without Targets (the CLI) they are reached. The
// registry is a real one on 127.0.0.1 that counts connections.
func TestTargetsRefuseInternalHosts(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	testbed.NewPusher(t, reg.Host, "team/app").Image("v1", "targets")
	counted := testbed.ServeCounted(t, testbed.Relay(reg.Host))
	_, port, _ := net.SplitHostPort(counted.Host)

	resolve := func(t *testing.T, opts registry.Options, host string) error {
		t.Helper()
		opts.PlainHTTP = true
		_, err := open(t, newStore(t, opts), host, "team/app").Resolve(t.Context(), "v1")
		return err
	}
	refused := func(t *testing.T, err error, why string) {
		t.Helper()
		var te *registry.TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "configuration names it") {
			t.Fatalf("err = %v, want a TargetError: %s", err, why)
		}
	}

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct{ host, why string }{
			{counted.Host, "loopback"},
			{"localhost:" + port, "cluster-internal name (*.localhost)"},
			{"[::1]:" + port, "loopback"},
			{"169.254.169.254", "link-local"},
			{"[fe80::1]:5000", "link-local"},
			{"[fd00:ec2::254]", "metadata"},
			{"100.100.100.200", "metadata"},
			{"0.0.0.0:" + port, "unspecified"},
			{"kubernetes.default.svc", "*.svc"},
			{"registry.kube-system.svc.cluster.local:5000", "*.cluster.local"},
			{"metadata.google.internal", "*.internal"},
		} {
			t.Run(tc.host, func(t *testing.T) {
				refused(t, resolve(t, registry.Options{Targets: &registry.Targets{Allow: []string{"other.example:5000", "127.0.0.1:1"}}}, tc.host), tc.why)
			})
		}
		if n := counted.Conns(); n != 0 {
			t.Fatalf("%d connections to a refused target", n)
		}
	})

	// A name that the rules above do not catch but that resolves to a
	// loopback address is refused at the dial: the address is checked
	// after resolution, as a DNS rebinding attack needs. The name is
	// resolved by a real DNS server on 127.0.0.1 that answers 127.0.0.1
	// to every A query, as a rebinding attacker's does.
	t.Run("resolves to loopback", func(t *testing.T) {
		dns := rebindingDNS(t)
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", dns)
		}}
		const name = "registry.attacker.example"
		refused(t, resolve(t, registry.Options{Targets: registry.TargetsResolvingWith(r)}, name+":"+port), "loopback")
		if n := counted.Conns(); n != 0 {
			t.Fatalf("%d connections to a name that resolves to loopback", n)
		}
		// Named by the configuration, it is reached.
		if err := resolve(t, registry.Options{Targets: registry.TargetsResolvingWith(r, name)}, name+":"+port); err != nil {
			t.Fatalf("allowed name: %v", err)
		}
		if counted.Conns() == 0 {
			t.Fatal("the allowed name made no connection")
		}
	})

	t.Run("allowed", func(t *testing.T) {
		for _, allow := range []string{counted.Host, "127.0.0.1"} {
			before := counted.Conns()
			if err := resolve(t, registry.Options{Targets: &registry.Targets{Allow: []string{allow}}}, counted.Host); err != nil {
				t.Fatalf("allow %s: %v", allow, err)
			}
			if counted.Conns() == before {
				t.Fatalf("allow %s: no connection", allow)
			}
		}
		// Without Targets (the CLI), a user's 127.0.0.1 is reached.
		if err := resolve(t, registry.Options{}, counted.Host); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("redirect to a refused host", func(t *testing.T) {
		front := testbed.ServeCounted(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://169.254.169.254"+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		}))
		refused(t, resolve(t, registry.Options{Targets: &registry.Targets{Allow: []string{front.Host}}}, front.Host), "link-local")
	})

	if _, err := registry.New(registry.Options{Targets: &registry.Targets{}, Transport: http.DefaultTransport}); err == nil {
		t.Error("Targets with a Transport of the caller's: no error")
	}
	if _, err := registry.New(registry.Options{Targets: &registry.Targets{Allow: []string{"host/repo"}}}); err == nil || !strings.Contains(err.Error(), "Targets.Allow") {
		t.Errorf("Allow of a repository: %v", err)
	}
}

// rebindingDNS serves DNS on 127.0.0.1 (UDP), answering 127.0.0.1 to
// every A query and nothing to others, and returns its address.
func rebindingDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			b.EnableCompression()
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
			}
			if msg, err := b.Finish(); err == nil {
				_, _ = pc.WriteTo(msg, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// fetchFirstBlob fetches the manifest subject names, then its config blob.
func fetchFirstBlob(t *testing.T, repo vouch.Repository, subject ocispec.Descriptor) error {
	data, err := repo.Fetch(t.Context(), subject)
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	_, err = repo.Fetch(t.Context(), m.Config)
	return err
}

// headerLog records the Authorization headers a server receives.
type headerLog struct {
	mu   sync.Mutex
	auth []string
}

func (l *headerLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			l.mu.Lock()
			l.auth = append(l.auth, a)
			l.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (l *headerLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.auth)
}

// TestCredentialsDoNotFollowRedirects: a registry's credentials never
// reach another host (another port of the same address included, which
// net/http alone would let through) when a request is redirected. The
// other host is a real registry behind basic auth, on 127.0.0.1, behind a
// relay that records the Authorization headers it receives; it would
// accept the credentials.
func TestCredentialsDoNotFollowRedirects(t *testing.T) {
	const user, password = "alice", "s3cret-Pa55word"
	host := distributionWithHtpasswd(t, user, password)
	p := testbed.NewPusher(t, host, "private/app")
	p.Repo.Client = &auth.Client{Credential: auth.StaticCredential(host, auth.Credential{Username: user, Password: password})}
	subject, _ := pushSubject(t, p, 1, func(int) string { return sigType })

	var other headerLog
	elsewhere := testbed.ServeCounted(t, other.wrap(testbed.Relay(host)))
	creds := auth.Credential{Username: user, Password: password}

	// The recorder sees credentials sent to its own host: its count of
	// zero below can fail.
	direct := newStore(t, registry.Options{PlainHTTP: true, Credentials: map[string]auth.Credential{elsewhere.Host: creds}})
	if _, err := open(t, direct, elsewhere.Host, "private/app").Resolve(t.Context(), "v1"); err != nil {
		t.Fatal(err)
	}
	if other.count() == 0 {
		t.Fatal("the recorder saw no credentials sent to its own host")
	}

	for _, tc := range []struct {
		name     string
		redirect func(r *http.Request) bool
	}{
		// Every request is redirected: the other host's 401 must not make
		// vouch answer with the first host's credentials.
		{"every request", func(*http.Request) bool { return true }},
		// The registry API is relayed (and authenticated) on the first
		// host, blobs are redirected, as registries do to storage.
		{"blobs", func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/blobs/") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other.mu.Lock()
			other.auth = nil
			other.mu.Unlock()
			var mine headerLog
			relay := testbed.Relay(host)
			front := testbed.ServeCounted(t, mine.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.redirect(r) {
					http.Redirect(w, r, "http://"+elsewhere.Host+r.URL.RequestURI(), http.StatusTemporaryRedirect)
					return
				}
				relay.ServeHTTP(w, r)
			})))
			for _, targets := range []*registry.Targets{nil, {Allow: []string{front.Host, elsewhere.Host}}} {
				s := newStore(t, registry.Options{PlainHTTP: true, Targets: targets, Credentials: map[string]auth.Credential{front.Host: creds}})
				repo := open(t, s, front.Host, "private/app")
				if err := fetchFirstBlob(t, repo, subject); err == nil {
					t.Error("fetched through a redirect to a host the credentials are not for")
				}
			}
			if n := other.count(); n != 0 {
				t.Fatalf("the other host received %d Authorization headers", n)
			}
			if tc.name == "blobs" && mine.count() == 0 {
				t.Fatal("the first host saw no credentials: the test does not authenticate")
			}
		})
	}
}
