package config

import (
	"fmt"

	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/cosign"
	"github.com/vouch-project/vouch/verifier/notation"
	"github.com/vouch-project/vouch/verifier/schema"
)

// Form is where a configuration is written, which decides how it names
// trust material: a config file names files; a custom resource names keys
// of Secrets and ConfigMaps (trust.Ref), since the files of vouch's
// container are not the cluster admin's to fill. Both may hold PEM inline.
type Form int

const (
	// FormFile is vouch's config file: files, no references.
	FormFile Form = iota
	// FormCluster is a ClusterVouchConfig: references (in any namespace),
	// no files.
	FormCluster
	// FormTenant is a VouchConfig: references to its own namespace only
	// (no namespace field), no files.
	FormTenant
)

// String names the form in messages.
func (f Form) String() string {
	switch f {
	case FormCluster:
		return KindCluster
	case FormTenant:
		return KindTenant
	}
	return "config file"
}

// source is one place a configuration names trust material: a file path
// or a reference, at path in the document.
type source struct {
	// path is where it is written ("verifiers[0].cosign.keys.files[1]").
	path string
	// file is a file path, or "" for a reference.
	file string
	// ref is the reference, when file is "".
	ref *trust.Ref
	// instead names the field that holds the other form, for messages: the
	// reference field for a file, the file field for a reference.
	instead string
}

// checkSources checks that sources fit form: no reference in a file, no
// file in a custom resource; references well formed.
func checkSources(form Form, sources []source) error {
	for _, s := range sources {
		switch {
		case s.ref == nil && form != FormFile:
			return fmt.Errorf("%s: files cannot be read from a custom resource; use a secret or configMap reference (%s) or inline PEM where the field has it", s.path, s.instead)
		case s.ref != nil && form == FormFile:
			return fmt.Errorf("%s: secret and configMap references need the Kubernetes source (a %s or %s); in a config file, name a file (%s)", s.path, KindCluster, KindTenant, s.instead)
		case s.ref != nil:
			if err := s.ref.Validate(s.path, form == FormTenant); err != nil {
				return err
			}
		}
	}
	return nil
}

// files returns the sources of paths, at path+".files[i]".
func files(path string, paths []string, instead string) []source {
	var out []source
	for i, p := range paths {
		out = append(out, source{path: fmt.Sprintf("%s[%d]", path, i), file: p, instead: instead})
	}
	return out
}

// refs returns the sources of references, at path+"[i]".
func refs(path string, rs []trust.Ref, instead string) []source {
	var out []source
	for i := range rs {
		out = append(out, source{path: fmt.Sprintf("%s[%d]", path, i), ref: &rs[i], instead: instead})
	}
	return out
}

// one returns the source of a single file field or reference field (none
// when both are empty).
func one(path, file, refPath string, ref *trust.Ref) []source {
	var out []source
	if file != "" {
		out = append(out, source{path: path, file: file, instead: refPath})
	}
	if ref != nil {
		out = append(out, source{path: refPath, ref: ref, instead: path})
	}
	return out
}

func registrySources(r *Registries, path string) []source {
	return one(path+".dockerConfig", r.DockerConfig, path+".dockerConfigRef", r.DockerConfigRef)
}

func storeSources(s *TrustStore, path string) []source {
	return append(files(path+".files", s.Files, path+".refs"), refs(path+".refs", s.Refs, path+".files")...)
}

func notationSources(c *notation.Config, path string) []source {
	out := one(path+".trustPolicy", c.TrustPolicy, path+".trustPolicyRef", c.TrustPolicyRef)
	if c.ConfigDir != "" {
		out = append(out, source{path: path + ".configDir", file: c.ConfigDir, instead: "trustStores with refs"})
	}
	return out
}

func cosignSources(c *cosign.Config, path string) []source {
	var out []source
	for _, s := range []struct {
		name string
		src  *cosign.PEMSource
	}{{"keys", &c.Keys}, {"certificateRoots", &c.CertificateRoots}} {
		p := path + "." + s.name
		out = append(out, files(p+".files", s.src.Files, p+".refs")...)
		out = append(out, refs(p+".refs", s.src.Refs, p+".files")...)
	}
	return append(out, one(path+".trustedRoot", c.TrustedRoot, path+".trustedRootRef", c.TrustedRootRef)...)
}

func schemaSources(c *schema.Config, path string) []source {
	out := one(path+".schema", c.Schema, path+".schemaRef", c.SchemaRef)
	out = append(out, one(path+".schemaFile", c.SchemaFile, path+".schemaFileRef", c.SchemaFileRef)...)
	for i, r := range c.Resources {
		p := fmt.Sprintf("%s.resources[%d]", path, i)
		out = append(out, one(p+".file", r.File, p+".ref", r.Ref)...)
	}
	return out
}
