// Package config reads vouch's config file (YAML or JSON, versioned,
// strict: an unknown field is an error that names its path) and builds what
// it describes: registry options, limits, verifiers and the policy.
//
// docs/configuration.md documents every field; examples/config holds
// configs that the tests load.
package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/notaryproject/notation-go/verifier/trustpolicy"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/untrusted"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/verifier/cosign"
	"github.com/vouch-project/vouch/verifier/notation"
	"github.com/vouch-project/vouch/verifier/plugin"
	"github.com/vouch-project/vouch/verifier/sbom"
	"github.com/vouch-project/vouch/verifier/schema"
	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// Version is the config format this package reads.
const Version = "v1"

// MaxFileBytes bounds a config file.
const MaxFileBytes = 4 << 20

// File is vouch's config file.
type File struct {
	// Version must be "v1". Required.
	Version string `json:"version"`
	// Registries says how to reach registries. Optional.
	Registries Registries `json:"registries,omitempty"`
	// Limits bound what is read from outside. Optional; defaults as in
	// vouch.Limits.
	Limits Limits `json:"limits,omitempty"`
	// TrustStores are named certificate stores, named "TYPE:NAME" as Notation
	// trust policies name them (ca, signingAuthority, tsa). Optional.
	TrustStores []TrustStore `json:"trustStores,omitempty"`
	// Verifiers check nodes of the graph. Optional, but with none every
	// subject is denied.
	Verifiers []Verifier `json:"verifiers,omitempty"`
	// Policy decides. Optional; default: a subject is allowed when one of
	// its referrers verified and nothing failed.
	Policy *policy.Config `json:"policy,omitempty"`

	// dir is the folder relative paths are resolved against.
	dir string
}

// Registries says how registries are reached.
type Registries struct {
	// PlainHTTP talks plain HTTP to every registry (insecure). Optional;
	// default false.
	PlainHTTP bool `json:"plainHTTP,omitempty"`
	// Insecure lists registries ("host[:port]") reached over plain HTTP or
	// TLS without verification. Optional.
	Insecure []string `json:"insecure,omitempty"`
	// DockerConfig is a Docker config.json with credentials and credential
	// helpers. Optional; default $DOCKER_CONFIG/config.json or
	// ~/.docker/config.json.
	DockerConfig string `json:"dockerConfig,omitempty"`
}

// Limits bound what vouch reads; a zero or absent field takes its default.
type Limits struct {
	MaxManifestBytes int64 `json:"maxManifestBytes,omitempty"`
	MaxBlobBytes     int64 `json:"maxBlobBytes,omitempty"`
	MaxReferrerPages int   `json:"maxReferrerPages,omitempty"`
	MaxDepth         int   `json:"maxDepth,omitempty"`
	MaxNodes         int   `json:"maxNodes,omitempty"`
}

// TrustStore is a named set of certificates.
type TrustStore struct {
	// Name is "TYPE:NAME" with TYPE ca, signingAuthority or tsa. Required.
	Name string `json:"name"`
	// Files are certificate files, PEM or DER, relative to the config
	// file's folder. Optional.
	Files []string `json:"files,omitempty"`
	// PEM holds certificates inline. Optional.
	PEM string `json:"pem,omitempty"`
}

// Verifier configures one verifier: its name, its type, and the section
// named after the type holding its parameters.
type Verifier struct {
	// Name identifies the verifier in reports and policies. Required,
	// unique.
	Name string `json:"name"`
	// Type is the kind of verifier: notation, cosign, sbom, vulnreport,
	// schema or plugin. Required.
	Type string `json:"type"`
	// Notation holds the parameters of a notation verifier.
	Notation *Notation `json:"notation,omitempty"`
	// Cosign holds the parameters of a cosign verifier
	// (docs/verifiers/cosign.md).
	Cosign *cosign.Config `json:"cosign,omitempty"`
	// SBOM holds the parameters of an sbom verifier (docs/verifiers/sbom.md).
	SBOM *sbom.Config `json:"sbom,omitempty"`
	// VulnReport holds the parameters of a vulnreport verifier
	// (docs/verifiers/vulnreport.md).
	VulnReport *vulnreport.Config `json:"vulnreport,omitempty"`
	// Schema holds the parameters of a schema verifier
	// (docs/verifiers/schema.md).
	Schema *schema.Config `json:"schema,omitempty"`
	// Plugin holds the parameters of a plugin verifier (docs/plugins.md).
	Plugin *plugin.Config `json:"plugin,omitempty"`
}

// sections lists the verifier's parameter sections by type name, with
// whether each is set.
func (v *Verifier) sections() map[string]bool {
	return map[string]bool{
		"notation":   v.Notation != nil,
		"cosign":     v.Cosign != nil,
		"sbom":       v.SBOM != nil,
		"vulnreport": v.VulnReport != nil,
		"schema":     v.Schema != nil,
		"plugin":     v.Plugin != nil,
	}
}

// Notation configures a Notary Project signature verifier.
type Notation struct {
	// TrustPolicy is a trust policy file in Notation's own format
	// (trustpolicy.json), read as-is. Required.
	TrustPolicy string `json:"trustPolicy"`
	// ConfigDir is a Notation configuration folder holding
	// truststore/x509/TYPE/NAME/ certificates, such as
	// ~/.config/notation. Optional.
	ConfigDir string `json:"configDir,omitempty"`
	// Revocation configures OCSP and CRL checks. Optional.
	Revocation *Revocation `json:"revocation,omitempty"`
}

// Revocation configures certificate revocation checks.
type Revocation struct {
	// Timeout bounds each OCSP request and CRL download. Optional;
	// default 2s.
	Timeout Duration `json:"timeout,omitempty"`
	// CRLCacheDir caches CRLs on disk. Optional; default in memory.
	CRLCacheDir string `json:"crlCacheDir,omitempty"`
	// DisableUnsafe turns revocation checks off: a revoked certificate is
	// then trusted. Optional; default false.
	DisableUnsafe bool `json:"disableUnsafe,omitempty"`
}

// Load reads and validates the config file at path.
func Load(path string) (*File, error) {
	data, err := untrusted.ReadFile(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	file, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return file, nil
}

// Parse decodes and validates a config document; dir is the folder that
// relative paths in it are resolved against.
func Parse(data []byte, dir string) (*File, error) {
	var f File
	if err := decodeStrict(data, &f); err != nil {
		return nil, err
	}
	f.dir = dir
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks the file without reading any file it names.
func (f *File) Validate() error {
	if f.Version != Version {
		if f.Version == "" {
			return fmt.Errorf("version: required (%q)", Version)
		}
		return fmt.Errorf("version: %q is not supported; this vouch reads %q", f.Version, Version)
	}
	l := f.Limits
	if l.MaxManifestBytes < 0 || l.MaxBlobBytes < 0 || l.MaxReferrerPages < 0 || l.MaxDepth < 0 || l.MaxNodes < 0 {
		return fmt.Errorf("limits: a limit cannot be negative")
	}
	stores := map[string]bool{}
	for i, s := range f.TrustStores {
		path := fmt.Sprintf("trustStores[%d]", i)
		typ, name, ok := strings.Cut(s.Name, ":")
		if !ok || name == "" || (typ != "ca" && typ != "signingAuthority" && typ != "tsa") {
			return fmt.Errorf("%s.name: %q is not TYPE:NAME with TYPE ca, signingAuthority or tsa", path, s.Name)
		}
		if stores[s.Name] {
			return fmt.Errorf("%s.name: %q is used twice", path, s.Name)
		}
		stores[s.Name] = true
		if len(s.Files) == 0 && strings.TrimSpace(s.PEM) == "" {
			return fmt.Errorf("%s: needs files or pem", path)
		}
	}
	names := map[string]bool{}
	for i, v := range f.Verifiers {
		path := fmt.Sprintf("verifiers[%d]", i)
		if v.Name == "" {
			return fmt.Errorf("%s.name: required", path)
		}
		if names[v.Name] {
			return fmt.Errorf("%s.name: %q is used twice", path, v.Name)
		}
		names[v.Name] = true
		sections := v.sections()
		if v.Type == "" {
			return fmt.Errorf("%s.type: required", path)
		}
		if _, ok := sections[v.Type]; !ok {
			return fmt.Errorf("%s.type: %q is not a verifier type this vouch knows (notation, cosign, sbom, vulnreport, schema, plugin)", path, v.Type)
		}
		for section, set := range sections {
			if set && section != v.Type {
				return fmt.Errorf("%s.%s: set, but the verifier's type is %s", path, section, v.Type)
			}
		}
		var err error
		switch v.Type {
		case "notation":
			if v.Notation == nil || v.Notation.TrustPolicy == "" {
				return fmt.Errorf("%s.notation.trustPolicy: required for a notation verifier", path)
			}
		case "cosign":
			err = validateSection(v.Cosign, path+".cosign")
		case "sbom":
			err = validateSection(v.SBOM, path+".sbom")
		case "vulnreport":
			err = validateSection(v.VulnReport, path+".vulnreport")
		case "schema":
			err = validateSection(v.Schema, path+".schema")
		case "plugin":
			err = validateSection(v.Plugin, path+".plugin")
		}
		if err != nil {
			return err
		}
	}
	if f.Policy != nil {
		if err := f.Policy.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// validator is a verifier parameter section.
type validator interface{ Validate(prefix string) error }

// validateSection validates a required section.
func validateSection[T any, P interface {
	*T
	validator
}](section P, path string) error {
	if section == nil {
		return fmt.Errorf("%s: required for this verifier type", path)
	}
	return section.Validate(path)
}

// path resolves a path from the file against its folder.
func (f *File) path(p string) string {
	if p == "" || filepath.IsAbs(p) || f.dir == "" {
		return p
	}
	return filepath.Join(f.dir, p)
}

// VouchLimits returns the limits as the engine takes them.
func (f *File) VouchLimits() vouch.Limits {
	l := f.Limits
	return vouch.Limits{MaxManifestBytes: l.MaxManifestBytes, MaxBlobBytes: l.MaxBlobBytes, MaxReferrerPages: l.MaxReferrerPages, MaxDepth: l.MaxDepth, MaxNodes: l.MaxNodes}
}

// trustStores returns the file's stores that doc names, in the notation
// verifier's form.
func (f *File) trustStores(doc *trustpolicy.Document, dir string) notation.TrustStores {
	named := map[string]bool{}
	for _, st := range doc.TrustPolicies {
		for _, n := range st.TrustStores {
			named[n] = true
		}
	}
	ts := notation.TrustStores{Dir: dir, Files: map[string][]string{}, Inline: map[string][]string{}}
	for _, s := range f.TrustStores {
		if !named[s.Name] {
			continue
		}
		for _, p := range s.Files {
			ts.Files[s.Name] = append(ts.Files[s.Name], f.path(p))
		}
		if strings.TrimSpace(s.PEM) != "" {
			ts.Inline[s.Name] = append(ts.Inline[s.Name], s.PEM)
		}
	}
	return ts
}

// NamespacePolicy returns the policy that applies in a Kubernetes
// namespace, for verifiers named verifierNames (see policy.Config.ForNamespace);
// without a policy section it is the default policy.
func (f *File) NamespacePolicy(ns string, verifierNames []string) (vouch.Policy, error) {
	if f.Policy == nil {
		return policy.Default(verifierNames), nil
	}
	return policy.New(*f.Policy, verifierNames, policy.InNamespace(ns))
}

// Build constructs the verifiers and the policy the file describes, reading
// the trust material it names.
func (f *File) Build() ([]vouch.Verifier, vouch.Policy, error) {
	var verifiers []vouch.Verifier
	var names []string
	for i, vc := range f.Verifiers {
		var v vouch.Verifier
		var err error
		switch vc.Type {
		case "notation":
			n := vc.Notation
			doc, err := notation.LoadTrustPolicy(f.path(n.TrustPolicy))
			if err != nil {
				return nil, nil, fmt.Errorf("verifiers[%d].notation.trustPolicy: %w", i, err)
			}
			opts := notation.Options{Name: vc.Name, TrustPolicy: doc, TrustStores: f.trustStores(doc, f.path(n.ConfigDir))}
			if r := n.Revocation; r != nil {
				opts.Revocation = notation.Revocation{Timeout: r.Timeout.Duration, CRLCacheDir: f.path(r.CRLCacheDir), DisableUnsafe: r.DisableUnsafe}
			}
			nv, err := notation.New(opts)
			if err != nil {
				return nil, nil, fmt.Errorf("verifiers[%d] (%s): %w", i, vc.Name, err)
			}
			v = nv
		case "cosign":
			v, err = cosign.New(vc.Name, *vc.Cosign, f.dir)
		case "sbom":
			v, err = sbom.New(vc.Name, *vc.SBOM, f.dir)
		case "vulnreport":
			v, err = vulnreport.New(vc.Name, *vc.VulnReport, f.dir)
		case "schema":
			v, err = schema.New(vc.Name, *vc.Schema, f.dir)
		case "plugin":
			v, err = plugin.New(vc.Name, *vc.Plugin, f.dir)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("verifiers[%d] (%s): %w", i, vc.Name, err)
		}
		verifiers = append(verifiers, v)
		names = append(names, vc.Name)
	}
	if f.Policy == nil {
		return verifiers, policy.Default(names), nil
	}
	p, err := policy.New(*f.Policy, names)
	if err != nil {
		return nil, nil, err
	}
	return verifiers, p, nil
}
