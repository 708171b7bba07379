package config

import (
	"fmt"

	"oras.land/oras-go/v2/registry/remote/auth"

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
