package registry

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"sort"
	"sync"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	vouch "github.com/vouch-project/vouch"
)

// CredentialsID identifies a set of credentials per host without
// disclosing them: the hex SHA-256 of its hosts and credentials in a fixed
// order; "" for none. Equal sets have equal IDs.
func CredentialsID(creds map[string]auth.Credential) string {
	if len(creds) == 0 {
		return ""
	}
	hosts := make([]string, 0, len(creds))
	for h := range creds {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	h := sha256.New()
	for _, host := range hosts {
		c := creds[host]
		for _, s := range []string{host, c.Username, c.Password, c.RefreshToken, c.AccessToken} {
			// Length-prefixed, so that no two sets hash the same input.
			var n [8]byte
			for i, l := 0, uint64(len(s)); i < 8; i++ {
				n[i] = byte(l >> (8 * i))
			}
			h.Write(n[:])
			h.Write([]byte(s))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// RequestCredentials are credentials that travel with one request, in its
// context (WithCredentials): in vouch serve's admission webhook, those of
// the Pod's image pull secrets, which are its namespace's and may be used
// for no other request. A Store tries them before its own (Options.
// Credentials, the Docker config), and keeps what it learns with them
// apart from what it learns with its own (see WithCredentials).
type RequestCredentials struct {
	id    string
	hosts map[string]auth.Credential
}

// idKey keys the HMAC of RequestCredentials.ID: random per process, so
// that an ID written into a shared cache's keys is no unsalted hash of a
// password. Immutable after initialisation.
var idKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("registry: no randomness: " + err.Error())
	}
	return k
}()

// NewRequestCredentials returns the credentials per registry host
// ("host[:port]", as ParseDockerConfig returns them) of one request; nil
// when creds is empty.
func NewRequestCredentials(creds map[string]auth.Credential) *RequestCredentials {
	if len(creds) == 0 {
		return nil
	}
	mac := hmac.New(sha256.New, idKey)
	mac.Write([]byte(CredentialsID(creds)))
	return &RequestCredentials{id: hex.EncodeToString(mac.Sum(nil))[:32], hosts: maps.Clone(creds)}
}

// ID identifies the credentials within this process: equal sets have
// equal IDs; it discloses nothing of them.
func (c *RequestCredentials) ID() string { return c.id }

// credential returns the credential for hostport, trying Docker Hub's
// aliases for Docker Hub.
func (c *RequestCredentials) credential(hostport string) (auth.Credential, bool) {
	if c == nil {
		return auth.EmptyCredential, false
	}
	for _, k := range hostKeys(hostport) {
		if cred, ok := c.hosts[k]; ok {
			return cred, true
		}
	}
	return auth.EmptyCredential, false
}

type requestCredentialsKey struct{}

// WithCredentials returns ctx carrying c (nil: none) for every Store
// request made with it. For a host that c names:
//
//   - c's credential is used instead of the Store's own;
//   - bearer tokens and basic-auth state are cached apart, per ID;
//   - tag resolutions are cached apart, per ID.
//
// Resolving a reference (Resolve, by tag or digest) is how a request shows
// it has access to a repository: a Resolve by digest answers from the cache
// only content that was fetched with the same credentials (the same ID, or
// the Store's own), else it asks the registry. Content fetched by digest
// (Fetch, FetchReference by digest) stays shared by every request: it is
// the same, digest-checked, whoever fetched it; a caller that must not
// give one request what it could not read itself resolves the request's
// reference first. For a host that c does not name, the request is one of
// the Store's own.
func WithCredentials(ctx context.Context, c *RequestCredentials) context.Context {
	return context.WithValue(ctx, requestCredentialsKey{}, c)
}

// requestCredentials returns the RequestCredentials of ctx, or nil.
func requestCredentials(ctx context.Context) *RequestCredentials {
	c, _ := ctx.Value(requestCredentialsKey{}).(*RequestCredentials)
	return c
}

// Scope returns the identity of the credentials a request made with ctx
// uses for host ("host[:port]", as a reference names it): the ID of the
// RequestCredentials in ctx when they name host, else "" for the Store's
// own credentials, which every request shares. Callers that cache what a
// Store resolves (a tag's digest) cache it per scope.
func Scope(ctx context.Context, host string) string {
	c := requestCredentials(ctx)
	if _, ok := c.credential(host); ok {
		return c.id
	}
	return ""
}

// hostKeys are the keys that credentials for hostport may be stored
// under: hostport, and for Docker Hub its other names.
func hostKeys(hostport string) []string {
	keys := []string{hostport}
	if hostport == (registry.Reference{Registry: vouch.DockerHub}).Host() || hostport == vouch.DockerHub {
		keys = append(keys, vouch.DockerHub, "index.docker.io", "registry-1.docker.io", credentials.ServerAddressFromHostname(hostport))
	}
	return keys
}

// maxAuthPartitions bounds the token caches a Store keeps for request
// credentials.
const maxAuthPartitions = 1024

// authCache is the auth.Cache of a Store's client: one for the Store's own
// credentials and one per RequestCredentials ID, so that a token obtained
// with one request's credentials never serves another's.
type authCache struct {
	shared auth.Cache

	mu    sync.Mutex
	parts map[string]auth.Cache
}

func newAuthCache() *authCache {
	return &authCache{shared: auth.NewCache(), parts: map[string]auth.Cache{}}
}

// part returns the cache of the credentials that ctx uses for host.
func (a *authCache) part(ctx context.Context, host string) auth.Cache {
	id := Scope(ctx, host)
	if id == "" {
		return a.shared
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.parts[id]
	if c == nil {
		if len(a.parts) >= maxAuthPartitions {
			clear(a.parts) // tokens are fetched again; nothing is shared
		}
		c = auth.NewCache()
		a.parts[id] = c
	}
	return c
}

func (a *authCache) GetScheme(ctx context.Context, host string) (auth.Scheme, error) {
	return a.part(ctx, host).GetScheme(ctx, host)
}

func (a *authCache) GetToken(ctx context.Context, host string, scheme auth.Scheme, key string) (string, error) {
	return a.part(ctx, host).GetToken(ctx, host, scheme, key)
}

func (a *authCache) Set(ctx context.Context, host string, scheme auth.Scheme, key string, fetch func(context.Context) (string, error)) (string, error) {
	return a.part(ctx, host).Set(ctx, host, scheme, key, fetch)
}
