// Package registry is a vouch.Store over OCI registries, built on oras-go's
// remote client: authentication (static credentials, Docker's config.json
// and its credential helpers, basic and bearer token auth), retries with
// Retry-After, a per-host bound on concurrent requests, size and digest
// checks on everything read, and an in-memory cache of immutable content.
//
// Referrers are listed by the OCI referrers API with pagination, falling
// back to the referrers tag schema on registries without the API, as the
// distribution spec describes:
// https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#listing-referrers
// A Store learns once per host whether it has the API: the first listing
// on a host reads the referrers tag while it probes the API, in one round
// trip, and listings started meanwhile wait for that one probe.
package registry

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	vouch "github.com/vouch-project/vouch"
)

// Defaults of Options; see the field of the same name for what each sets.
const (
	DefaultMaxConcurrency = 64              // requests in flight per host
	DefaultMaxRetries     = 4               // retries of one request
	DefaultMaxRetryWait   = 5 * time.Second // cap on one wait between retries
	DefaultCacheBytes     = 64 << 20        // 64 MiB of cached content
	DefaultUserAgent      = "vouch"         // the User-Agent header
)

// maxRepositories bounds the repository clients a Store keeps.
const maxRepositories = 4096

// Options configure a Store. The zero value is a usable, secure default:
// HTTPS with certificate verification, credentials from Docker's config.
type Options struct {
	// PlainHTTP talks plain HTTP, without TLS, to every registry (the CLI's
	// --plain-http). Optional; default false.
	PlainHTTP bool
	// InsecureRegistries are hosts ("host[:port]") reached over TLS without
	// certificate verification, or over plain HTTP when they answer HTTP, as
	// Docker's insecure-registries (the CLI's --insecure-registry).
	// Optional.
	InsecureRegistries []string
	// DockerConfig is the path of a Docker config.json whose auths,
	// credsStore and credHelpers supply credentials. Optional; default
	// $DOCKER_CONFIG/config.json or ~/.docker/config.json when it exists. An
	// explicit path that does not exist is an error.
	DockerConfig string
	// Credentials are static credentials per registry host ("host[:port]"),
	// tried before the Docker config: a username and password (basic auth, or
	// exchanged for a bearer token), a RefreshToken or an AccessToken.
	// Optional.
	Credentials map[string]auth.Credential
	// Limits bound what is read: MaxManifestBytes, MaxBlobBytes and
	// MaxReferrerPages are used here. Zero fields take vouch's defaults.
	Limits vouch.Limits
	// MaxConcurrency bounds the HTTP requests in flight to one host; a slot
	// is held until the response body is closed. Optional; default
	// DefaultMaxConcurrency.
	MaxConcurrency int
	// MaxRetries bounds the retries of one request on 408, 429, 502, 503,
	// 504, dial timeouts and connection resets. Optional; 0 means
	// DefaultMaxRetries, a negative value disables retries.
	MaxRetries int
	// MaxRetryWait caps one wait between retries, Retry-After included.
	// Optional; default DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// CacheBytes bounds the in-memory cache of content fetched by digest
	// (and, with TagTTL, of tag resolutions and referrer listings).
	// Optional; 0 means DefaultCacheBytes, a negative value disables it.
	CacheBytes int64
	// TagTTL is how long tag resolutions and whole referrer listings are
	// cached, within the CacheBytes budget. Optional; default 0, not cached
	// (right for a one-shot CLI; a long-running server sets seconds).
	TagTTL time.Duration
	// Transport is the base HTTP transport. Optional; default a clone of
	// http.DefaultTransport. When it is not an *http.Transport, TLS
	// verification cannot be turned off for InsecureRegistries.
	Transport http.RoundTripper
	// UserAgent is sent with every request. Optional; default
	// DefaultUserAgent.
	UserAgent string
	// OnResponse, when set, is called once per HTTP response received (each
	// attempt of a retried request counts), for metrics. It must not block.
	OnResponse func(host, method string, status int)
	// Targets, when set, refuse connections to loopback, link-local and
	// cluster-internal hosts that Targets.Allow does not name: what a
	// server whose image names come from Pod specs sets (see Targets).
	// Cannot be combined with Transport. Optional; default nil: every
	// host is reached (the CLI: its user names the registries).
	Targets *Targets
}

// Store opens repositories on OCI registries. It is safe for concurrent use
// and meant to be long-lived: bearer tokens, referrers capabilities and
// cached content are shared by all the repositories it opens.
type Store struct {
	opts     Options
	limits   vouch.Limits
	insecure map[string]bool
	client   *auth.Client
	docker   credentials.Store
	cache    *lru
	flight   singleflight.Group

	mu    sync.Mutex
	repos map[string]*repoClients
	hosts map[string]*hostState
}

// hostState is what a Store learns about one registry host.
type hostState struct {
	// plain is set once an insecure host answered HTTP to HTTPS.
	plain atomic.Bool
	// referrers is the host's referrers API capability, one of the
	// referrers* constants; it changes once, from referrersUnknown. Each
	// repository client is told it before listing referrers.
	referrers atomic.Int32

	mu sync.Mutex
	// probing is closed when the probe of the referrers API in flight
	// ends; nil when there is none.
	probing chan struct{}
}

const (
	referrersUnknown   int32 = iota // not known yet
	referrersAPI                    // the host has the referrers API
	referrersTagSchema              // it has not: use the referrers tag schema
)

// startProbe tells the caller to probe the host's referrers API (lead;
// it must call endProbe when done), or returns a channel closed when the
// probe in flight ends, or neither when the capability is known by now.
func (h *hostState) startProbe() (lead bool, done <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.referrers.Load() != referrersUnknown:
		return false, nil
	case h.probing != nil:
		return false, h.probing
	}
	h.probing = make(chan struct{})
	return true, nil
}

// endProbe records what the probe learned (maybe referrersUnknown: the
// next caller probes again) and wakes the callers waiting for it.
func (h *hostState) endProbe(learned int32) {
	if learned != referrersUnknown {
		h.referrers.CompareAndSwap(referrersUnknown, learned)
	}
	h.mu.Lock()
	close(h.probing)
	h.probing = nil
	h.mu.Unlock()
}

// repoClients are the oras-go clients of one repository: over HTTPS (or
// plain HTTP with Options.PlainHTTP), and over plain HTTP for an insecure
// host that turned out to speak only HTTP.
type repoClients struct {
	tls, plain *remote.Repository
}

// New returns a Store configured by opts, after validating them and loading
// the Docker config.
func New(opts Options) (*Store, error) {
	if err := validate(opts); err != nil {
		return nil, err
	}
	if opts.MaxConcurrency == 0 {
		opts.MaxConcurrency = DefaultMaxConcurrency
	}
	switch {
	case opts.MaxRetries == 0:
		opts.MaxRetries = DefaultMaxRetries
	case opts.MaxRetries < 0:
		opts.MaxRetries = 0
	}
	if opts.MaxRetryWait == 0 {
		opts.MaxRetryWait = DefaultMaxRetryWait
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	s := &Store{
		opts:     opts,
		limits:   opts.Limits.WithDefaults(),
		insecure: map[string]bool{},
		repos:    map[string]*repoClients{},
		hosts:    map[string]*hostState{},
	}
	for _, h := range opts.InsecureRegistries {
		s.insecure[h] = true
		if h == vouch.DockerHub {
			s.insecure[registry.Reference{Registry: h}.Host()] = true
		}
	}
	if opts.CacheBytes > 0 {
		s.cache = newLRU(opts.CacheBytes)
	}
	docker, err := dockerStore(opts.DockerConfig)
	if err != nil {
		return nil, err
	}
	s.docker = docker
	s.client = &auth.Client{
		Client:     &http.Client{Transport: newTransport(opts, s.insecure)},
		Header:     http.Header{"User-Agent": {opts.UserAgent}},
		Credential: s.credential,
		Cache:      newAuthCache(),
	}
	return s, nil
}

func validate(opts Options) error {
	l := opts.Limits
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Limits.MaxManifestBytes", l.MaxManifestBytes},
		{"Limits.MaxBlobBytes", l.MaxBlobBytes},
		{"Limits.MaxReferrerPages", int64(l.MaxReferrerPages)},
		{"MaxConcurrency", int64(opts.MaxConcurrency)},
		{"MaxRetryWait", int64(opts.MaxRetryWait)},
		{"TagTTL", int64(opts.TagTTL)},
	} {
		if f.v < 0 {
			return fmt.Errorf("registry options: %s must not be negative", f.name)
		}
	}
	for _, h := range opts.InsecureRegistries {
		if h == "" || strings.ContainsAny(h, "/ \t") {
			return fmt.Errorf("registry options: InsecureRegistries: %q is not a host[:port]", h)
		}
	}
	if opts.Targets != nil {
		if opts.Transport != nil {
			return fmt.Errorf("registry options: Targets cannot be combined with Transport: the Store dials through its own checked dialer")
		}
		for _, h := range opts.Targets.Allow {
			if h == "" || strings.ContainsAny(h, "/ \t") {
				return fmt.Errorf("registry options: Targets.Allow: %q is not a host[:port]", h)
			}
		}
	}
	return nil
}

// dockerStore opens the Docker config at path or, when path is empty, at
// Docker's default place if there is one. Only an explicit path must exist.
func dockerStore(path string) (credentials.Store, error) {
	explicit := path != ""
	if !explicit {
		dir := os.Getenv("DOCKER_CONFIG")
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, nil // no home: anonymous
			}
			dir = filepath.Join(home, ".docker")
		}
		path = filepath.Join(dir, "config.json")
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("registry options: DockerConfig: %w", err)
	}
	st, err := credentials.NewStore(path, credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("registry options: Docker config: %w", err)
	}
	return st, nil
}

// credential finds the credential for a host: the request's
// (WithCredentials) first, then Options.Credentials, then the Docker
// config, else anonymous.
func (s *Store) credential(ctx context.Context, hostport string) (auth.Credential, error) {
	if c, ok := requestCredentials(ctx).credential(hostport); ok {
		return c, nil
	}
	for _, k := range hostKeys(hostport) {
		if c, ok := s.opts.Credentials[k]; ok {
			return c, nil
		}
	}
	if s.docker == nil {
		return auth.EmptyCredential, nil
	}
	c, err := credentials.Credential(s.docker)(ctx, hostport)
	if err != nil {
		return auth.EmptyCredential, fmt.Errorf("credentials for %s from the Docker config: %w", hostport, err)
	}
	return c, nil
}

// Repository returns the registry repository that ref names; it also
// implements vouch.FetchReferencer. It does no I/O. References to an OCI
// image layout are an error.
func (s *Store) Repository(_ context.Context, ref vouch.Reference) (vouch.Repository, error) {
	if ref.IsLayout() {
		return nil, fmt.Errorf("%s is an OCI image layout, not a registry reference", ref)
	}
	rr := registry.Reference{Registry: ref.Registry, Repository: ref.Repository}
	if err := rr.ValidateRegistry(); err != nil {
		return nil, err
	}
	if err := rr.ValidateRepository(); err != nil {
		return nil, err
	}
	host, clients := s.clients(rr)
	return &repository{
		s:       s,
		name:    rr.Registry + "/" + rr.Repository,
		host:    rr.Registry,
		state:   host,
		clients: clients,
	}, nil
}

// clients returns the oras-go clients of a repository, shared by every
// Repository call for the same name, and the state of its host.
func (s *Store) clients(ref registry.Reference) (*hostState, *repoClients) {
	s.mu.Lock()
	defer s.mu.Unlock()
	host := s.hosts[ref.Registry]
	if host == nil {
		host = &hostState{}
		s.hosts[ref.Registry] = host
	}
	key := ref.Registry + "/" + ref.Repository
	if c := s.repos[key]; c != nil {
		return host, c
	}
	if len(s.repos) >= maxRepositories {
		for k := range s.repos { // drop an arbitrary one
			delete(s.repos, k)
			break
		}
	}
	c := &repoClients{tls: s.newRemote(ref, s.opts.PlainHTTP)}
	if s.insecure[ref.Registry] && !s.opts.PlainHTTP {
		c.plain = s.newRemote(ref, true)
	}
	s.repos[key] = c
	return host, c
}

func (s *Store) newRemote(ref registry.Reference, plain bool) *remote.Repository {
	return &remote.Repository{
		Client:               s.client,
		Reference:            ref,
		PlainHTTP:            plain,
		ReferrerListMaxPages: s.limits.MaxReferrerPages,
		MaxMetadataBytes:     s.limits.MaxManifestBytes,
	}
}
