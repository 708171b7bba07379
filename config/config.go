// Package config reads vouch's config file (YAML or JSON, versioned,
// strict: an unknown field is an error that names its path), resolves the
// paths in it against its folder, and builds what it describes: registry
// options, limits, verifiers (one table from verifier type to its section
// and constructor) and the policy. It also builds the verifiers of the
// CLI's quick flags (Quick), lists and fingerprints the trust files a
// configuration reads (File.TrustFiles, File.Fingerprint), and composes a
// ClusterVouchConfig with the VouchConfigs of its namespaces (Compose).
//
// docs/configuration.md documents every field; examples/config holds
// configs that the tests load.
package config

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/untrusted"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/trust"
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

// File is vouch's config file: a version and a Spec.
type File struct {
	// Version must be "v1". Required.
	Version string `json:"version"`
	// Spec is everything else; a ClusterVouchConfig's spec is the same.
	Spec `json:",inline"`

	// Vault hands out the key-vault material the file names (VaultURIs):
	// cosign KMS keys and Azure Key Vault certificates, as fetched by
	// trust/kms. Optional; without it, naming such material is an error
	// (trust.ErrNoVault). Not read from the file.
	Vault trust.Vault `json:"-"`

	// data is the document the file was parsed from.
	data []byte
}

// Spec is vouch's configuration: the config file without its version,
// and the spec of a ClusterVouchConfig (docs/kubernetes.md). In a file it
// names trust material by files; in a custom resource, by Secret and
// ConfigMap references (trust.Ref) or inline, as Form says.
//
// +kubebuilder:object:generate=true
type Spec struct {
	// Registries says how to reach registries. Optional.
	Registries Registries `json:"registries,omitempty"`
	// Limits bound what is read from outside. Optional; defaults as in
	// vouch.Limits.
	Limits vouch.Limits `json:"limits,omitempty"`
	// TenantSpec holds the trust stores, verifiers and policy.
	TenantSpec `json:",inline"`
}

// TenantSpec is what a tenant's VouchConfig may set: trust stores,
// verifiers and a policy, which only add requirements in its namespace.
// Registries and limits are the cluster's.
//
// +kubebuilder:object:generate=true
type TenantSpec struct {
	// TrustStores are named certificate stores, named "TYPE:NAME" as Notation
	// trust policies name them (ca, signingAuthority, tsa). Optional.
	// +listType=map
	// +listMapKey=name
	TrustStores []TrustStore `json:"trustStores,omitempty"`
	// Verifiers check nodes of the graph. Optional, but with none every
	// subject is denied.
	// +listType=map
	// +listMapKey=name
	Verifiers []Verifier `json:"verifiers,omitempty"`
	// Policy decides. Optional; default: a subject is allowed when one of
	// its referrers verified and nothing failed.
	Policy *policy.Config `json:"policy,omitempty"`
}

// Registries says how registries are reached.
//
// +kubebuilder:object:generate=true
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
	// Config file only.
	DockerConfig string `json:"dockerConfig,omitempty"`
	// DockerConfigRef is a Secret holding a Docker config.json (the
	// .dockerconfigjson key of a kubernetes.io/dockerconfigjson Secret).
	// Optional; custom resources only.
	DockerConfigRef *trust.Ref `json:"dockerConfigRef,omitempty"`
}

// TrustStore is a named set of certificates.
//
// +kubebuilder:object:generate=true
type TrustStore struct {
	// Name is "TYPE:NAME" with TYPE ca, signingAuthority or tsa. Required.
	// +kubebuilder:validation:Pattern=`^(ca|signingAuthority|tsa):.+$`
	Name string `json:"name"`
	// Files are certificate files, PEM or DER, relative to the config
	// file's folder. Optional; config file only.
	Files []string `json:"files,omitempty"`
	// Refs are Secret or ConfigMap keys holding certificates (PEM).
	// Optional; custom resources only.
	Refs []trust.Ref `json:"refs,omitempty"`
	// PEM holds certificates inline. Optional.
	PEM string `json:"pem,omitempty"`
	// AzureKeyVault reads certificates from an Azure Key Vault, fetched
	// when vouch starts and refreshed (docs/key-management.md). Optional;
	// config file only; needs a vouch built with -tags kms (the container
	// image is).
	AzureKeyVault *trust.AzureKeyVault `json:"azureKeyVault,omitempty"`
}

// Verifier configures one verifier: its name, its type, and the section
// named after the type holding its parameters.
//
// +kubebuilder:object:generate=true
type Verifier struct {
	// Name identifies the verifier in reports and policies. Required,
	// unique. In a custom resource it has no "/": reports name a
	// VouchConfig's verifiers NAMESPACE/NAME/VERIFIER.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[^/]+$`
	Name string `json:"name"`
	// Type is the kind of verifier: notation, cosign, sbom, vulnreport,
	// schema or plugin. Required.
	// +kubebuilder:validation:Enum=notation;cosign;sbom;vulnreport;schema;plugin
	Type string `json:"type"`
	// Notation holds the parameters of a notation verifier
	// (docs/verifiers/notation.md).
	Notation *notation.Config `json:"notation,omitempty"`
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

// Parse decodes and validates a config document, then resolves the
// relative paths in it against dir, the config file's folder ("" leaves them
// as they are, relative to the working directory).
func Parse(data []byte, dir string) (*File, error) {
	var f File
	if err := decodeStrict(data, &f); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f.data = data
	f.resolvePaths(dir)
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
	return f.Spec.Validate(FormFile, "")
}

// Validate checks s, written in form, without reading any file or
// reference it names; errors name the field by its path after prefix
// ("spec." in a custom resource, "" in a file).
func (s *Spec) Validate(form Form, prefix string) error {
	l := s.Limits
	if l.MaxManifestBytes < 0 || l.MaxBlobBytes < 0 || l.MaxReferrerPages < 0 || l.MaxDepth < 0 || l.MaxNodes < 0 {
		return fmt.Errorf("%slimits: a limit cannot be negative", prefix)
	}
	if err := checkSources(form, registrySources(&s.Registries, prefix+"registries")); err != nil {
		return err
	}
	return s.TenantSpec.Validate(form, prefix)
}

// Validate checks t, written in form, as Spec.Validate does.
func (t *TenantSpec) Validate(form Form, prefix string) error {
	stores := map[string]bool{}
	for i, s := range t.TrustStores {
		path := fmt.Sprintf("%strustStores[%d]", prefix, i)
		typ, name, ok := strings.Cut(s.Name, ":")
		if !ok || name == "" || (typ != "ca" && typ != "signingAuthority" && typ != "tsa") {
			return fmt.Errorf("%s.name: %q is not TYPE:NAME with TYPE ca, signingAuthority or tsa", path, s.Name)
		}
		if stores[s.Name] {
			return fmt.Errorf("%s.name: %q is used twice", path, s.Name)
		}
		stores[s.Name] = true
		if err := checkSources(form, storeSources(&s, path)); err != nil {
			return err
		}
		if s.AzureKeyVault != nil {
			if form != FormFile {
				return fmt.Errorf("%s.azureKeyVault: key vaults are read from a config file only, for now; download the certificates into a Secret or ConfigMap and name it in refs", path)
			}
			if err := s.AzureKeyVault.Validate(path + ".azureKeyVault"); err != nil {
				return err
			}
		}
		if len(s.Files) == 0 && len(s.Refs) == 0 && strings.TrimSpace(s.PEM) == "" && s.AzureKeyVault == nil {
			if form == FormFile {
				return fmt.Errorf("%s: needs files, pem or azureKeyVault", path)
			}
			return fmt.Errorf("%s: needs refs or pem", path)
		}
	}
	names := map[string]bool{}
	for i := range t.Verifiers {
		v := &t.Verifiers[i]
		path := fmt.Sprintf("%sverifiers[%d]", prefix, i)
		if v.Name == "" {
			return fmt.Errorf("%s.name: required", path)
		}
		if names[v.Name] {
			return fmt.Errorf("%s.name: %q is used twice", path, v.Name)
		}
		if form != FormFile && strings.Contains(v.Name, "/") {
			return fmt.Errorf("%s.name: %q: a custom resource's verifier names have no \"/\", which is reserved for the names of VouchConfigs' verifiers in reports (NAMESPACE/NAME/VERIFIER)", path, v.Name)
		}
		names[v.Name] = true
		if v.Type == "" {
			return fmt.Errorf("%s.type: required", path)
		}
		k, ok := kindOf(v.Type)
		if !ok {
			return fmt.Errorf("%s.type: %q is not a verifier type this vouch knows (%s)", path, v.Type, strings.Join(kindNames(), ", "))
		}
		if form == FormTenant && v.Type == "plugin" {
			// A plugin is an executable in vouch's container: a tenant
			// naming one would run programs of its choosing there.
			return fmt.Errorf("%s.type: a %s cannot run plugins (they execute inside vouch's container); ask the cluster admin to add the plugin to the %s", path, KindTenant, KindCluster)
		}
		if form == FormTenant && v.Notation != nil && v.Notation.Plugins != nil {
			return fmt.Errorf("%s.notation.plugins: a %s cannot run notation verification plugins (they execute inside vouch's container); ask the cluster admin to set them in the %s", path, KindTenant, KindCluster)
		}
		for _, other := range kinds {
			if other.set(v) && other.name != v.Type {
				return fmt.Errorf("%s.%s: set, but the verifier's type is %s", path, other.name, v.Type)
			}
		}
		if k.set(v) {
			if err := checkSources(form, k.sources(v, path+"."+k.name)); err != nil {
				return err
			}
		}
		if err := k.validate(v, path+"."+k.name); err != nil {
			return err
		}
		if form != FormFile && v.Cosign != nil && len(v.Cosign.Keys.KMS) > 0 {
			return fmt.Errorf("%s.cosign.keys.kms: KMS keys are read from a config file only, for now; put the public key into a Secret or ConfigMap and name it in keys.refs", path)
		}
	}
	types := make(map[string]string, len(t.Verifiers))
	for _, v := range t.Verifiers {
		types[v.Name] = v.Type
	}
	for i, v := range t.Verifiers {
		if v.VulnReport == nil || v.VulnReport.VEX == nil {
			continue
		}
		for j, n := range v.VulnReport.VEX.TrustedBy {
			path := fmt.Sprintf("%sverifiers[%d].vulnreport.vex.trustedBy[%d]", prefix, i, j)
			switch {
			case n == v.Name:
				return fmt.Errorf("%s: %q is this verifier; name the signature verifier that must pass a VEX document's signature", path, n)
			case !names[n]:
				return fmt.Errorf("%s: no verifier is named %q", path, n)
			case types[n] != "notation" && types[n] != "cosign" && types[n] != "plugin":
				return fmt.Errorf("%s: %q is a %s verifier, which checks no signatures; name a notation, cosign or plugin verifier", path, n, types[n])
			}
		}
	}
	if t.Policy != nil {
		if form == FormTenant {
			for i, sc := range t.Policy.Scopes {
				if len(sc.Namespaces) > 0 {
					return fmt.Errorf("%spolicy.scopes[%d].namespaces: a %s applies to its own namespace only; remove namespaces", prefix, i, KindTenant)
				}
			}
		}
		if form != FormFile {
			for i, sc := range t.Policy.Scopes {
				if sc.Rego != nil && len(sc.Rego.Files) > 0 {
					return fmt.Errorf("%spolicy.scopes[%d].rego.files: a %s names no files; write the module in rego.inline", prefix, i, form)
				}
			}
		}
		if err := t.Policy.Validate(); err != nil {
			// The policy's messages start at "policy.".
			return fmt.Errorf("%s%w", prefix, err)
		}
	}
	return nil
}

// resolvePaths makes the relative paths in f relative to dir, once, so that
// everything built from f reads the files the config file means. Paths
// shown in reports (cosign key files, a schema file) keep their written form
// as their name. The Docker config path is left as it is: it has always been
// read relative to the working directory.
func (f *File) resolvePaths(dir string) {
	if dir == "" {
		return
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for i := range f.TrustStores {
		for j, p := range f.TrustStores[i].Files {
			f.TrustStores[i].Files[j] = abs(p)
		}
	}
	for i := range f.Verifiers {
		v := &f.Verifiers[i]
		if k, ok := kindOf(v.Type); ok && k.set(v) {
			k.resolve(v, abs)
		}
	}
	if f.Policy != nil {
		for i := range f.Policy.Scopes {
			if r := f.Policy.Scopes[i].Rego; r != nil {
				for j, p := range r.Files {
					r.Files[j] = abs(p)
				}
			}
		}
	}
}

// NamespacePolicies returns the policy of each Kubernetes namespace, for
// verifiers named verifierNames (see policy.InNamespace), when the file's
// policy has scopes for some namespaces or a Rego or CEL policy (which
// reads the namespace); nil when one policy applies to every namespace (f
// nil, no policy section, or none of those).
func (f *File) NamespacePolicies(verifierNames []string) func(namespace string) (vouch.Policy, error) {
	if f == nil || f.Policy == nil {
		return nil
	}
	for _, s := range f.Policy.Scopes {
		// A Rego or CEL policy reads the namespace (input.namespace): its
		// decision may differ from one namespace to the next.
		if len(s.Namespaces) > 0 || s.Rego != nil || s.CEL != nil {
			// The Rego and CEL policies are compiled once, here, and
			// shared by every namespace's policy.
			progs, progErr := policy.Compile(context.Background(), *f.Policy)
			return func(ns string) (vouch.Policy, error) {
				if progErr != nil {
					return nil, progErr
				}
				return policy.New(*f.Policy, verifierNames, policy.InNamespace(ns), policy.WithPrograms(progs))
			}
		}
	}
	return nil
}

// Build constructs the verifiers and the policy the file describes, reading
// the trust material it names. A file has no references to resolve.
func (f *File) Build() ([]vouch.Verifier, vouch.Policy, error) {
	return f.Spec.build(nil, f.Vault, "")
}

// Build constructs the verifiers and the policy s describes (s validated
// first), reading the trust material it names: files, and references
// through r (nil: a reference is an error, trust.ErrNoResolver). Errors
// name fields after prefix, as Validate does.
func (s *Spec) Build(r trust.Resolver, prefix string) ([]vouch.Verifier, vouch.Policy, error) {
	return s.build(r, nil, prefix)
}

// build is Build, reading key-vault material through v (nil: an error).
func (s *Spec) build(r trust.Resolver, v trust.Vault, prefix string) ([]vouch.Verifier, vouch.Policy, error) {
	verifiers, names, err := s.TenantSpec.buildVerifiers(r, v, prefix, nil)
	if err != nil {
		return nil, nil, err
	}
	if s.Policy == nil {
		return verifiers, policy.Default(names), nil
	}
	p, err := policy.New(*s.Policy, names)
	if err != nil {
		return nil, nil, fmt.Errorf("%s%w", prefix, err)
	}
	return verifiers, p, nil
}

// buildVerifiers constructs t's verifiers, reading their trust material
// (files, and references through r), and returns them with their names.
// rename, when not nil, gives each verifier the name it reports under
// (a tenant's, see Tenant.VerifierName); errors name fields after prefix.
func (t *TenantSpec) buildVerifiers(r trust.Resolver, v trust.Vault, prefix string, rename func(string) string) ([]vouch.Verifier, []string, error) {
	b := &building{spec: t, resolver: r, vault: v, prefix: prefix}
	var verifiers []vouch.Verifier
	var names []string
	for i := range t.Verifiers {
		vc := &t.Verifiers[i]
		k, ok := kindOf(vc.Type)
		if !ok || !k.set(vc) {
			return nil, nil, fmt.Errorf("%sverifiers[%d] (%s): not validated", prefix, i, vc.Name)
		}
		if rename != nil {
			named := *vc
			named.Name = rename(vc.Name)
			vc = &named
		}
		v, err := k.build(b, fmt.Sprintf("%sverifiers[%d]", prefix, i), vc)
		if err != nil {
			return nil, nil, err
		}
		verifiers = append(verifiers, v)
		names = append(names, vc.Name)
	}
	// A verifier that uses others (vulnreport's vex.trustedBy) gets them
	// by their names in t.
	byName := make(map[string]vouch.Verifier, len(verifiers))
	for i, v := range verifiers {
		byName[t.Verifiers[i].Name] = v
	}
	for i, v := range verifiers {
		l, ok := v.(interface {
			Link(func(string) (vouch.Verifier, bool)) error
		})
		if !ok {
			continue
		}
		err := l.Link(func(name string) (vouch.Verifier, bool) { v, ok := byName[name]; return v, ok })
		if err != nil {
			return nil, nil, fmt.Errorf("%sverifiers[%d]: %w", prefix, i, err)
		}
	}
	return verifiers, names, nil
}

// building is what building one spec's verifiers needs.
type building struct {
	spec     *TenantSpec
	resolver trust.Resolver
	// vault hands out key-vault material; nil: naming some is an error.
	vault  trust.Vault
	prefix string
}

// material reads the key-vault material uri names, at most max bytes;
// without a Vault it is trust.ErrNoVault.
func (b *building) material(uri string, max int64) ([]byte, error) {
	if b.vault == nil {
		return nil, trust.ErrNoVault
	}
	return b.vault.Material(uri, max)
}
