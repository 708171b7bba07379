package notation

import (
	"fmt"
	"strings"

	"github.com/vouch-project/vouch/internal/duration"
	"github.com/vouch-project/vouch/trust"
)

// Config is the `notation:` section of a verifier in vouch's config file
// (docs/configuration.md). Paths in it are read as they are: vouch's config
// package resolves relative ones against the config file's folder before it
// builds the verifier. The certificates come from the config file's
// trustStores and from ConfigDir; see Options. In vouch's custom resources,
// TrustPolicyRef replaces TrustPolicy and ConfigDir is not available.
//
// +kubebuilder:object:generate=true
type Config struct {
	// TrustPolicy is a trust policy file in Notation's own format
	// (trustpolicy.json), read as-is by LoadTrustPolicy. Required in a
	// config file (or TrustPolicyRef in a custom resource).
	TrustPolicy string `json:"trustPolicy,omitempty"`
	// TrustPolicyRef is a Secret or ConfigMap key holding the trust
	// policy document. Required in a custom resource.
	TrustPolicyRef *trust.Ref `json:"trustPolicyRef,omitempty"`
	// ConfigDir is a Notation configuration folder holding
	// truststore/x509/TYPE/NAME/ certificates, such as
	// ~/.config/notation: TrustStores.Dir. Optional; config file only.
	ConfigDir string `json:"configDir,omitempty"`
	// Revocation configures OCSP and CRL checks. Optional.
	Revocation *RevocationConfig `json:"revocation,omitempty"`
	// Plugins configures the verification plugins that signatures may
	// name. Optional; default none: plugins are disabled. Not in a
	// VouchConfig: plugins run inside vouch's container.
	Plugins *PluginsConfig `json:"plugins,omitempty"`
}

// PluginsConfig is the `plugins:` part of a notation section: the
// config-file form of Plugins.
//
// +kubebuilder:object:generate=true
type PluginsConfig struct {
	// Dir is the plugin folder, laid out as notation's:
	// DIR/NAME/notation-NAME. Optional; default none: a signature that
	// names a verification plugin is errored.
	Dir string `json:"dir,omitempty"`
	// Timeout bounds each call of a plugin. Optional; default 10s.
	Timeout Duration `json:"timeout,omitempty"`
	// Config is passed to plugins as pluginConfig, as `notation verify
	// --plugin-config` does. Optional.
	Config map[string]string `json:"config,omitempty"`
	// Env names the variables of vouch's environment that plugins get;
	// they get no others, except PATH. Optional.
	Env []string `json:"env,omitempty"`
}

// RevocationConfig is the `revocation:` part of a notation section: the
// config-file form of Revocation.
//
// +kubebuilder:object:generate=true
type RevocationConfig struct {
	// Timeout bounds each OCSP request and CRL download. Optional;
	// default 2s.
	Timeout Duration `json:"timeout,omitempty"`
	// CRLCacheDir caches CRLs on disk. Optional; default in memory.
	CRLCacheDir string `json:"crlCacheDir,omitempty"`
	// DisableUnsafe turns revocation checks off: a revoked certificate is
	// then trusted. Optional; default false.
	DisableUnsafe bool `json:"disableUnsafe,omitempty"`
}

// Duration is a time.Duration written as a string ("2s", "1m30s").
type Duration = duration.Duration

// Validate checks c without reading the files it names; errors name the
// field by its path below prefix, such as prefix+".trustPolicy". A nil c
// is an error too: a notation verifier needs its section.
func (c *Config) Validate(prefix string) error {
	if c == nil || (c.TrustPolicy == "" && c.TrustPolicyRef == nil) {
		return fmt.Errorf("%s.trustPolicy: required for a notation verifier (trustPolicyRef in a custom resource)", prefix)
	}
	if p := c.Plugins; p != nil {
		if p.Dir == "" && (len(p.Config) > 0 || len(p.Env) > 0 || p.Timeout.Duration != 0) {
			return fmt.Errorf("%s.plugins.dir: required when other plugins fields are set", prefix)
		}
		for i, name := range p.Env {
			if name == "" || strings.ContainsAny(name, "=\x00") {
				return fmt.Errorf("%s.plugins.env[%d]: %q is not a variable name", prefix, i, name)
			}
		}
	}
	return nil
}

// Options returns p as Options.Plugins takes it; a nil p disables plugins.
func (p *PluginsConfig) Options() Plugins {
	if p == nil {
		return Plugins{}
	}
	return Plugins{Dir: p.Dir, Timeout: p.Timeout.Duration, Config: p.Config, Env: p.Env}
}

// Revocation returns r as Options.Revocation takes it; a nil r is the
// default.
func (r *RevocationConfig) Revocation() Revocation {
	if r == nil {
		return Revocation{}
	}
	return Revocation{Timeout: r.Timeout.Duration, CRLCacheDir: r.CRLCacheDir, DisableUnsafe: r.DisableUnsafe}
}
