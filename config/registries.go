package config

import (
	"fmt"
	"slices"
	"strings"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/trust"
)

// RegistryCredentials reads the Docker config that registries.dockerConfigRef
// names through r (at most registry.MaxDockerConfigBytes) and returns its
// credentials per registry host, for registry.Options.Credentials; nil
// when s names none. Only the config's auths are read: a Secret cannot
// name credential helpers (registry.ParseDockerConfig says why). Errors
// name the field after prefix, as Build's do, and never quote a
// credential.
func (s *Spec) RegistryCredentials(r trust.Resolver, prefix string) (map[string]auth.Credential, error) {
	ref := s.Registries.DockerConfigRef
	if ref == nil {
		return nil, nil
	}
	path := prefix + "registries.dockerConfigRef"
	data, err := trust.Referenced(*ref, r).Read(registry.MaxDockerConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	creds, err := registry.ParseDockerConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", path, ref, err)
	}
	return creds, nil
}

// NamedRegistries returns the registry hosts ("host[:port]") that s names
// explicitly: in the registries of its policy's scopes ("host/team/*",
// "host/app"; not "*") and in registries.insecure. `vouch serve` reaches
// these even when they are loopback, link-local or cluster-internal
// (registry.Targets); a tenant's VouchConfig names none, since only the
// cluster's configuration may open the way to internal hosts.
func (s *Spec) NamedRegistries() []string {
	var hosts []string
	add := func(h string) {
		if h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	if s.Policy != nil {
		for _, sc := range s.Policy.Scopes {
			for _, p := range sc.Repositories {
				if p == "*" || strings.HasPrefix(p, vouch.LayoutPrefix) {
					continue
				}
				// The first component names a host when Docker reads it
				// as one; otherwise the pattern is on Docker Hub.
				host, _, ok := strings.Cut(p, "/")
				if host = strings.ToLower(host); ok && (strings.ContainsAny(host, ".:") || host == "localhost") {
					add(host)
				}
			}
		}
	}
	for _, h := range s.Registries.Insecure {
		add(strings.ToLower(h))
	}
	return hosts
}
