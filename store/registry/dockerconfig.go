package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"oras.land/oras-go/v2/registry/remote/auth"
)

// MaxDockerConfigBytes bounds a Docker config read from outside (a
// Secret's .dockerconfigjson): the API server stores at most 1 MiB.
const MaxDockerConfigBytes = 1 << 20

// maxDockerConfigAuths bounds the registries of one Docker config.
const maxDockerConfigAuths = 1024

// ParseDockerConfig reads the auths of a Docker config.json, as the
// .dockerconfigjson key of a kubernetes.io/dockerconfigjson Secret holds
// it (https://kubernetes.io/docs/concepts/configuration/secret/#docker-config-secrets),
// into credentials per registry host ("host[:port]", as Options.Credentials
// takes them). Each entry has "auth" (base64 of "username:password") or
// "username" and "password", or an "identitytoken" (a refresh token) or
// "registrytoken" (an access token). Keys may be written as URLs
// ("https://index.docker.io/v1/"): scheme and path are dropped.
//
// Credential helpers (credsStore, credHelpers) are an error: a helper is an
// executable that vouch would run in its own container, named by whoever
// writes the document; from a Secret that would let its writer run
// programs there, and vouch's image ships none. Mount a config.json file
// (registries.dockerConfig) to use helpers.
//
// Errors never quote a credential.
func ParseDockerConfig(data []byte) (map[string]auth.Credential, error) {
	if len(data) > MaxDockerConfigBytes {
		return nil, fmt.Errorf("docker config: more than %d bytes", MaxDockerConfigBytes)
	}
	var doc struct {
		Auths       map[string]dockerAuth `json:"auths"`
		CredsStore  string                `json:"credsStore"`
		CredHelpers map[string]string     `json:"credHelpers"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		// The decoder's messages name offsets and types, never values.
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, fmt.Errorf("docker config: not JSON (offset %d)", syntax.Offset)
		}
		return nil, fmt.Errorf("docker config: not a Docker config.json: %v", typeOnly(err))
	}
	if doc.CredsStore != "" || len(doc.CredHelpers) > 0 {
		return nil, errors.New("docker config: credsStore and credHelpers name programs to run; vouch runs none from a Secret (mount a config.json file as registries.dockerConfig to use credential helpers)")
	}
	if len(doc.Auths) > maxDockerConfigAuths {
		return nil, fmt.Errorf("docker config: more than %d registries in auths", maxDockerConfigAuths)
	}
	out := make(map[string]auth.Credential, len(doc.Auths))
	keys := make([]string, 0, len(doc.Auths))
	for k := range doc.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first of two keys for one host wins, whatever the map order
	for _, k := range keys {
		host := dockerConfigHost(k)
		if host == "" {
			return nil, fmt.Errorf("docker config: auths: %q is not a registry host", k)
		}
		c, err := doc.Auths[k].credential()
		if err != nil {
			return nil, fmt.Errorf("docker config: auths[%q]: %w", k, err)
		}
		if c == auth.EmptyCredential {
			continue
		}
		if _, dup := out[host]; !dup {
			out[host] = c
		}
	}
	return out, nil
}

// typeOnly returns an unmarshalling error's message without the value it
// quotes, if any.
func typeOnly(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s is %s, want %s", te.Field, te.Value, te.Type)
	}
	return "malformed"
}

// dockerAuth is one entry of a Docker config's auths.
type dockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

func (a dockerAuth) credential() (auth.Credential, error) {
	c := auth.Credential{Username: a.Username, Password: a.Password, RefreshToken: a.IdentityToken, AccessToken: a.RegistryToken}
	if a.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return auth.EmptyCredential, errors.New("auth: not base64")
		}
		user, password, ok := strings.Cut(string(raw), ":")
		if !ok {
			return auth.EmptyCredential, errors.New("auth: not base64 of username:password")
		}
		c.Username, c.Password = user, password
	}
	if c.RefreshToken != "" {
		// A refresh token goes with the username "<token>" (Docker's
		// convention), whatever the entry says.
		c.Username, c.Password = "", ""
	}
	return c, nil
}

// dockerConfigHost returns the "host[:port]" of a key of a Docker config's
// auths: "registry.example", "registry.example:5000",
// "https://index.docker.io/v1/" (then "index.docker.io").
func dockerConfigHost(key string) string {
	k := strings.TrimSpace(key)
	if strings.Contains(k, "://") {
		u, err := url.Parse(k)
		if err != nil {
			return ""
		}
		k = u.Host
	} else if i := strings.IndexByte(k, '/'); i >= 0 {
		k = k[:i]
	}
	if k == "" || strings.ContainsAny(k, " \t@") {
		return ""
	}
	return k
}
