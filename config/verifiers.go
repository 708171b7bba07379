package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/notaryproject/notation-go/verifier/trustpolicy"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/cosign"
	"github.com/vouch-project/vouch/verifier/notation"
	"github.com/vouch-project/vouch/verifier/plugin"
	"github.com/vouch-project/vouch/verifier/sbom"
	"github.com/vouch-project/vouch/verifier/schema"
	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// kind is one verifier type: the section of a verifier entry that holds its
// parameters, and what config does with that section.
type kind struct {
	// name is the type's name, as Verifier.Type and the section's key.
	name string
	// set reports whether v has this type's section.
	set func(v *Verifier) bool
	// validate checks v's section, named by path ("verifiers[0].cosign"),
	// without reading files.
	validate func(v *Verifier, path string) error
	// resolve rewrites the paths in v's section with abs.
	resolve func(v *Verifier, abs func(string) string)
	// files lists the files and folders that v's section names and whose
	// content the verifier reads (not caches).
	files func(v *Verifier) []string
	// sources lists the files and references that v's section names, at
	// path ("verifiers[0].cosign"), for checkSources.
	sources func(v *Verifier, path string) []source
	// build builds the verifier of v, the entry at path ("verifiers[0]").
	build func(b *building, path string, v *Verifier) (vouch.Verifier, error)
}

// kinds is the table of verifier types, in the order messages list them.
// It is read-only.
var kinds = []kind{
	sectionKind("notation", func(v *Verifier) **notation.Config { return &v.Notation },
		(*notation.Config).Validate, resolveNotation, notationFiles, notationSources, buildNotation),
	sectionKind("cosign", func(v *Verifier) **cosign.Config { return &v.Cosign },
		required((*cosign.Config).Validate), resolveCosign, cosignFiles, cosignSources, buildCosign),
	sectionKind("sbom", func(v *Verifier) **sbom.Config { return &v.SBOM },
		required((*sbom.Config).Validate), nil, nil, nil, builder(sbom.New)),
	sectionKind("vulnreport", func(v *Verifier) **vulnreport.Config { return &v.VulnReport },
		required((*vulnreport.Config).Validate), nil, nil, nil, builder(vulnreport.New)),
	sectionKind("schema", func(v *Verifier) **schema.Config { return &v.Schema },
		required((*schema.Config).Validate), resolveSchema, schemaFiles, schemaSources, buildSchema),
	// Plugin executables stay paths in every form: they live in vouch's
	// container image, not in the cluster's Secrets.
	sectionKind("plugin", func(v *Verifier) **plugin.Config { return &v.Plugin },
		required((*plugin.Config).Validate), resolvePlugin, pluginFiles, nil, builder(plugin.New)),
}

// kindOf returns the kind named name.
func kindOf(name string) (kind, bool) {
	i := slices.IndexFunc(kinds, func(k kind) bool { return k.name == name })
	if i < 0 {
		return kind{}, false
	}
	return kinds[i], true
}

// kindNames lists the verifier types.
func kindNames() []string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.name
	}
	return names
}

// sectionKind makes the kind of a type whose section is a *C in Verifier:
// section returns the address of that field. resolve, files and sources may
// be nil for sections that name no files; the others are called with a
// non-nil section, except validate, which gets it as it is.
func sectionKind[C any](name string, section func(*Verifier) **C,
	validate func(c *C, path string) error,
	resolve func(c *C, abs func(string) string),
	files func(c *C) []string,
	sources func(c *C, path string) []source,
	build func(b *building, path, name string, c *C) (vouch.Verifier, error),
) kind {
	k := kind{
		name:     name,
		set:      func(v *Verifier) bool { return *section(v) != nil },
		validate: func(v *Verifier, path string) error { return validate(*section(v), path) },
		resolve:  func(*Verifier, func(string) string) {},
		files:    func(*Verifier) []string { return nil },
		sources:  func(*Verifier, string) []source { return nil },
		build: func(b *building, path string, v *Verifier) (vouch.Verifier, error) {
			return build(b, path, v.Name, *section(v))
		},
	}
	if sources != nil {
		k.sources = func(v *Verifier, path string) []source { return sources(*section(v), path) }
	}
	if resolve != nil {
		k.resolve = func(v *Verifier, abs func(string) string) { resolve(*section(v), abs) }
	}
	if files != nil {
		k.files = func(v *Verifier) []string { return files(*section(v)) }
	}
	return k
}

// required wraps a section's Validate: an absent section is an error.
func required[C any](validate func(c *C, path string) error) func(*C, string) error {
	return func(c *C, path string) error {
		if c == nil {
			return fmt.Errorf("%s: required for this verifier type", path)
		}
		return validate(c, path)
	}
}

// builder adapts a verifier package's New(name, Config).
func builder[C any, V vouch.Verifier](newVerifier func(name string, c C) (V, error)) func(*building, string, string, *C) (vouch.Verifier, error) {
	return func(_ *building, path, name string, c *C) (vouch.Verifier, error) {
		v, err := newVerifier(name, *c)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", path, name, err)
		}
		return v, nil
	}
}

func resolveNotation(c *notation.Config, abs func(string) string) {
	c.TrustPolicy, c.ConfigDir = abs(c.TrustPolicy), abs(c.ConfigDir)
	if c.Revocation != nil {
		c.Revocation.CRLCacheDir = abs(c.Revocation.CRLCacheDir)
	}
	if c.Plugins != nil {
		c.Plugins.Dir = abs(c.Plugins.Dir)
	}
}

func resolveCosign(c *cosign.Config, abs func(string) string) {
	for _, src := range []*cosign.PEMSource{&c.Keys, &c.CertificateRoots} {
		if len(src.Files) == 0 {
			continue
		}
		if len(src.Names) == 0 {
			src.Names = slices.Clone(src.Files)
		}
		for i, p := range src.Files {
			src.Files[i] = abs(p)
		}
	}
	c.TrustedRoot = abs(c.TrustedRoot)
}

func resolveSchema(c *schema.Config, abs func(string) string) {
	if c.Schema != "" && c.SchemaName == "" {
		c.SchemaName = c.Schema
	}
	c.Schema, c.SchemaFile = abs(c.Schema), abs(c.SchemaFile)
	for i := range c.Resources {
		c.Resources[i].File = abs(c.Resources[i].File)
	}
}

func resolvePlugin(c *plugin.Config, abs func(string) string) { c.Path = abs(c.Path) }

// buildNotation reads the trust policy and builds the notation verifier
// with the spec's trust stores that the policy names.
func buildNotation(b *building, path, name string, n *notation.Config) (vouch.Verifier, error) {
	var doc *trustpolicy.Document
	var err error
	if n.TrustPolicyRef != nil {
		var data []byte
		data, err = trust.Referenced(*n.TrustPolicyRef, b.resolver).Read(notation.MaxTrustPolicyBytes)
		if err == nil {
			doc, err = notation.ParseTrustPolicy(data, n.TrustPolicyRef.String())
		}
		if err != nil {
			return nil, fmt.Errorf("%s.notation.trustPolicyRef: %w", path, err)
		}
	} else if doc, err = notation.LoadTrustPolicy(n.TrustPolicy); err != nil {
		return nil, fmt.Errorf("%s.notation.trustPolicy: %w", path, err)
	}
	stores, err := b.trustStores(doc, n.ConfigDir)
	if err != nil {
		return nil, err
	}
	v, err := notation.New(notation.Options{
		Name:        name,
		TrustPolicy: doc,
		TrustStores: stores,
		Revocation:  n.Revocation.Revocation(),
		Plugins:     n.Plugins.Options(),
	})
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", path, name, err)
	}
	return v, nil
}

// trustStores returns the spec's stores that doc names, in the notation
// verifier's form, with dir as the Notation configuration folder. The
// stores' references are read through the resolver, as inline PEM.
func (b *building) trustStores(doc *trustpolicy.Document, dir string) (notation.TrustStores, error) {
	named := map[string]bool{}
	for _, st := range doc.TrustPolicies {
		for _, n := range st.TrustStores {
			named[n] = true
		}
	}
	ts := notation.TrustStores{Dir: dir, Files: map[string][]string{}, Inline: map[string][]string{}}
	for i, s := range b.spec.TrustStores {
		if !named[s.Name] {
			continue
		}
		if len(s.Files) > 0 {
			ts.Files[s.Name] = append(ts.Files[s.Name], s.Files...)
		}
		if strings.TrimSpace(s.PEM) != "" {
			ts.Inline[s.Name] = append(ts.Inline[s.Name], s.PEM)
		}
		for j, r := range s.Refs {
			data, err := trust.Referenced(r, b.resolver).Read(notation.MaxCertificateFileBytes)
			if err != nil {
				return ts, fmt.Errorf("%strustStores[%d].refs[%d]: %w", b.prefix, i, j, err)
			}
			ts.Inline[s.Name] = append(ts.Inline[s.Name], string(data))
		}
		if kv := s.AzureKeyVault; kv != nil {
			for j, uri := range kv.URIs() {
				data, err := b.material(uri, notation.MaxCertificateFileBytes)
				switch {
				case errors.Is(err, trust.ErrGone):
					// The vault no longer has it: trusted no more.
					if !slices.Contains(ts.Emptied, s.Name) {
						ts.Emptied = append(ts.Emptied, s.Name)
					}
					continue
				case err != nil:
					return ts, fmt.Errorf("%strustStores[%d].azureKeyVault.certificates[%d]: %w", b.prefix, i, j, err)
				}
				ts.Inline[s.Name] = append(ts.Inline[s.Name], string(data))
			}
		}
	}
	return ts, nil
}

// buildCosign reads the section's references into the in-memory forms the
// cosign verifier takes (PEM text, trusted-root JSON), then builds it.
func buildCosign(b *building, path, name string, c *cosign.Config) (vouch.Verifier, error) {
	cc := *c.DeepCopy()
	for _, s := range []struct {
		name string
		src  *cosign.PEMSource
	}{{"keys", &cc.Keys}, {"certificateRoots", &cc.CertificateRoots}} {
		s.src.RefsPEM = nil
		for i, r := range s.src.Refs {
			data, err := trust.Referenced(r, b.resolver).Read(cosign.MaxTrustFileBytes)
			if err != nil {
				return nil, fmt.Errorf("%s.cosign.%s.refs[%d]: %w", path, s.name, i, err)
			}
			s.src.RefsPEM = append(s.src.RefsPEM, string(data))
		}
	}
	cc.Keys.KMSPEM = nil
	for i, uri := range cc.Keys.KMS {
		data, err := b.material(uri, cosign.MaxTrustFileBytes)
		switch {
		case errors.Is(err, trust.ErrGone):
			// The service no longer has the key: it is trusted no more.
			data = nil
		case err != nil:
			return nil, fmt.Errorf("%s.cosign.keys.kms[%d]: %w", path, i, err)
		}
		cc.Keys.KMSPEM = append(cc.Keys.KMSPEM, string(data))
	}
	if r := cc.TrustedRootRef; r != nil {
		data, err := trust.Referenced(*r, b.resolver).Read(cosign.MaxTrustFileBytes)
		if err != nil {
			return nil, fmt.Errorf("%s.cosign.trustedRootRef: %w", path, err)
		}
		cc.TrustedRootJSON, cc.TrustedRootRef = data, nil
	}
	return builder(cosign.New)(b, path, name, &cc)
}

// buildSchema builds a schema verifier; schemas from references are not
// read yet (the Kubernetes source will).
func buildSchema(b *building, path, name string, c *schema.Config) (vouch.Verifier, error) {
	for _, s := range schemaSources(c, path+".schema") {
		if s.ref != nil {
			return nil, fmt.Errorf("%s: %s: schemas from references are not supported yet; mount the schema in vouch's container and use a config file", s.path, s.ref)
		}
	}
	return builder(schema.New)(b, path, name, c)
}
