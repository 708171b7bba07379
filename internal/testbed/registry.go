package testbed

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// Registry is a registry on 127.0.0.1 that a test or benchmark can push to.
type Registry struct {
	// Name says which implementation it is, for subtest names.
	Name string
	// Host is "127.0.0.1:PORT".
	Host string
	// ReferrersAPI tells whether the registry serves the OCI referrers API.
	ReferrersAPI bool

	proc *Process         // distribution
	srv  *httptest.Server // go-containerregistry
}

// DistributionOptions shape a distribution registry process.
type DistributionOptions struct {
	// Bin is the registry program. Optional; default LookBin("registry").
	Bin string
	// Dir holds the registry's config file and its storage. Required.
	Dir string
	// Htpasswd, when set, is the path of a bcrypt htpasswd file: the
	// registry then requires basic authentication.
	Htpasswd string
	// Notify, when set, is where the registry posts its notifications
	// (notifications.endpoints). Optional.
	Notify *Notify
}

// Notify is a notifications endpoint of a distribution registry.
type Notify struct {
	// URL receives the events. Required.
	URL string
	// Token is sent as "Authorization: Bearer TOKEN". Optional.
	Token string
	// CAFile is a PEM file of the CA that issued the certificate of an
	// https URL; the registry trusts it (SSL_CERT_FILE). Optional.
	CAFile string
}

// StartDistribution starts distribution v3's registry process on a free
// port, with filesystem storage under o.Dir and deletes enabled, and waits
// until it answers. It has no referrers API.
func StartDistribution(o DistributionOptions) (*Registry, error) {
	if o.Bin == "" {
		var err error
		if o.Bin, err = LookBin("registry"); err != nil {
			return nil, err
		}
	}
	host, err := PickAddr()
	if err != nil {
		return nil, err
	}
	var extra string
	if o.Htpasswd != "" {
		extra = fmt.Sprintf("auth:\n  htpasswd:\n    realm: vouch-test\n    path: %s\n", o.Htpasswd)
	}
	var env []string
	if n := o.Notify; n != nil {
		extra += fmt.Sprintf("notifications:\n  endpoints:\n    - name: vouch\n      url: %s\n      timeout: 2s\n      threshold: 3\n      backoff: 200ms\n", n.URL)
		if n.Token != "" {
			extra += fmt.Sprintf("      headers:\n        Authorization: [\"Bearer %s\"]\n", n.Token)
		}
		if n.CAFile != "" {
			env = append(env, "SSL_CERT_FILE="+n.CAFile)
		}
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(o.Dir, "data"), host, extra)
	cfgPath := filepath.Join(o.Dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p, err := Start(ProcessOptions{Name: "registry", Path: o.Bin, Args: []string{"serve", cfgPath}, Env: env})
	if err != nil {
		return nil, err
	}
	// 401: up, behind authentication.
	ready := func() error { return HTTPReady(nil, "http://"+host+"/v2/", http.StatusOK, http.StatusUnauthorized) }
	if err := Poll(20*time.Second, 50*time.Millisecond, p, ready); err != nil {
		p.Stop()
		return nil, fmt.Errorf("registry on %s: %w; output:\n%s", host, err, p.Output(4000))
	}
	return &Registry{Name: "distribution", Host: host, proc: p}, nil
}

// StartGGCR serves go-containerregistry's in-memory registry, with the
// referrers API, on 127.0.0.1. wrap, when non-nil, wraps its handler (to
// inject faults the way a misbehaving registry would).
func StartGGCR(wrap func(http.Handler) http.Handler) *Registry {
	var h http.Handler = ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	return &Registry{Name: "ggcr", Host: strings.TrimPrefix(srv.URL, "http://"), ReferrersAPI: true, srv: srv}
}

// Stop stops the registry: kills the process, or closes the server.
func (r *Registry) Stop() {
	if r.proc != nil {
		r.proc.Stop()
	}
	if r.srv != nil {
		r.srv.Close()
	}
}

// PID is the registry process's id; 0 for a registry in this process.
func (r *Registry) PID() int {
	if r.proc == nil {
		return 0
	}
	return r.proc.PID()
}

// Distribution starts distribution v3's registry process with filesystem
// storage in a temporary folder; it stops when the test ends. It has no
// referrers API.
func Distribution(t testing.TB) *Registry {
	t.Helper()
	return distribution(t, "")
}

// DistributionWithHtpasswd starts distribution v3 behind basic
// authentication: htpasswd is the path of a bcrypt htpasswd file.
func DistributionWithHtpasswd(t testing.TB, htpasswd string) *Registry {
	t.Helper()
	return distribution(t, htpasswd)
}

func distribution(t testing.TB, htpasswd string) *Registry {
	t.Helper()
	r, err := StartDistribution(DistributionOptions{Bin: Bin(t, "registry"), Dir: t.TempDir(), Htpasswd: htpasswd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// GGCR is StartGGCR for a test: the server closes when the test ends.
func GGCR(t testing.TB, wrap func(http.Handler) http.Handler) *Registry {
	t.Helper()
	r := StartGGCR(wrap)
	t.Cleanup(r.Stop)
	return r
}

// Both starts one registry of each kind, for table tests that must pass on
// either discovery path.
func Both(t testing.TB) []*Registry {
	t.Helper()
	return []*Registry{Distribution(t), GGCR(t, nil)}
}
