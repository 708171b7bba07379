package config

import (
	"encoding/pem"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/cosign"
)

// Names that Cluster gives the objects holding what cannot be inline.
const (
	// ConvertConfigMap is the ConfigMap for files that are not PEM (trust
	// policies, trusted roots, schemas).
	ConvertConfigMap = "vouch-trust"
	// ConvertDockerSecret is the kubernetes.io/dockerconfigjson Secret for
	// registries.dockerConfig.
	ConvertDockerSecret = "vouch-registry"
)

// Conversion is a config file turned into a ClusterVouchConfig's spec.
type Conversion struct {
	// Spec is the spec: certificates and public keys inline (PEM), other
	// files replaced by references to ConvertConfigMap and
	// ConvertDockerSecret in vouch's namespace.
	Spec Spec
	// ConfigMapFiles maps the keys of ConvertConfigMap to the files that
	// must fill them.
	ConfigMapFiles map[string]string
	// DockerConfig is the file that must fill ConvertDockerSecret's
	// .dockerconfigjson key, or "".
	DockerConfig string
}

// Cluster converts f, loaded from a file (its paths resolved), into a
// ClusterVouchConfig's spec. Certificate and key files are read and
// written inline as PEM (a DER certificate is re-encoded), so the resource
// holds them itself; they are public material. Files that are not PEM are
// replaced by references to keys of the ConvertConfigMap ConfigMap (the
// Docker config: the ConvertDockerSecret Secret), which the caller must
// create from the files Conversion lists. A Notation configDir has no
// counterpart and is an error: name its certificates in trustStores.
func (f *File) Cluster() (*Conversion, error) {
	c := &Conversion{Spec: *f.Spec.DeepCopy(), ConfigMapFiles: map[string]string{}}
	s := &c.Spec
	ref := func(path string) *trust.Ref {
		key := configMapKey(filepath.Base(path), c.ConfigMapFiles)
		c.ConfigMapFiles[key] = path
		return &trust.Ref{Kind: trust.KindConfigMap, Name: ConvertConfigMap, Key: key}
	}
	if p := s.Registries.DockerConfig; p != "" {
		c.DockerConfig = p
		s.Registries.DockerConfig = ""
		s.Registries.DockerConfigRef = &trust.Ref{Kind: trust.KindSecret, Name: ConvertDockerSecret, Key: ".dockerconfigjson"}
	}
	for i := range s.TrustStores {
		ts := &s.TrustStores[i]
		for j, p := range ts.Files {
			certs, err := trust.ReadCertificates(trust.File(p), MaxFileBytes)
			if err != nil {
				return nil, fmt.Errorf("trustStores[%d].files[%d]: %w", i, j, err)
			}
			for _, cert := range certs {
				ts.PEM = appendPEM(ts.PEM, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
			}
		}
		ts.Files = nil
	}
	for i := range s.Verifiers {
		v := &s.Verifiers[i]
		path := fmt.Sprintf("verifiers[%d]", i)
		switch {
		case v.Notation != nil:
			n := v.Notation
			if n.ConfigDir != "" {
				return nil, fmt.Errorf("%s.notation.configDir: a Notation configuration folder has no counterpart in a custom resource; name its certificates in trustStores", path)
			}
			if n.TrustPolicy != "" {
				n.TrustPolicyRef, n.TrustPolicy = ref(n.TrustPolicy), ""
			}
		case v.Cosign != nil:
			cs := v.Cosign
			for _, src := range []struct {
				name string
				s    *cosign.PEMSource
			}{{"keys", &cs.Keys}, {"certificateRoots", &cs.CertificateRoots}} {
				for j, p := range src.s.Files {
					data, err := trust.File(p).Read(cosign.MaxTrustFileBytes)
					if err == nil {
						_, err = trust.PEMBlocks(data)
					}
					if err != nil {
						return nil, fmt.Errorf("%s.cosign.%s.files[%d]: %w", path, src.name, j, err)
					}
					src.s.PEM = appendPEM(src.s.PEM, string(data))
				}
				src.s.Files, src.s.Names = nil, nil
			}
			if cs.TrustedRoot != "" {
				cs.TrustedRootRef, cs.TrustedRoot = ref(cs.TrustedRoot), ""
			}
		case v.Schema != nil:
			sc := v.Schema
			if sc.Schema != "" {
				sc.SchemaRef, sc.Schema, sc.SchemaName = ref(sc.Schema), "", ""
			}
			if sc.SchemaFile != "" {
				sc.SchemaFileRef, sc.SchemaFile = ref(sc.SchemaFile), ""
			}
			for j := range sc.Resources {
				if r := &sc.Resources[j]; r.File != "" {
					r.Ref, r.File = ref(r.File), ""
				}
			}
		}
	}
	if err := s.Validate(FormCluster, "spec."); err != nil {
		return nil, fmt.Errorf("the converted resource is not valid: %w", err)
	}
	return c, nil
}

// Commands returns the kubectl commands that create the objects c refers
// to, in namespace.
func (c *Conversion) Commands(namespace string) []string {
	var cmds []string
	if len(c.ConfigMapFiles) > 0 {
		keys := make([]string, 0, len(c.ConfigMapFiles))
		for k := range c.ConfigMapFiles {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		cmd := fmt.Sprintf("kubectl create configmap %s --namespace %s", ConvertConfigMap, namespace)
		for _, k := range keys {
			cmd += fmt.Sprintf(" --from-file=%s=%s", k, c.ConfigMapFiles[k])
		}
		cmds = append(cmds, cmd)
	}
	if c.DockerConfig != "" {
		cmds = append(cmds, fmt.Sprintf("kubectl create secret generic %s --namespace %s --type=kubernetes.io/dockerconfigjson --from-file=.dockerconfigjson=%s", ConvertDockerSecret, namespace, c.DockerConfig))
	}
	return cmds
}

// configMapKey makes base a ConfigMap key not in used.
func configMapKey(base string, used map[string]string) string {
	base = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, base)
	key := base
	for i := 2; used[key] != ""; i++ {
		ext := filepath.Ext(base)
		key = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(base, ext), i, ext)
	}
	return key
}

func appendPEM(text, block string) string {
	if strings.TrimSpace(text) == "" {
		return block
	}
	return strings.TrimRight(text, "\n") + "\n" + block
}

// File converts a ClusterVouchConfig back into a config file (version v1
// and its spec). Inline PEM stays inline; a reference has no counterpart in
// a file, so a resource with references is an error that lists each of
// them: write the key's value to a file and name it in the field the
// error names.
func (r *Resource) File() (*File, error) {
	if r.Kind != KindCluster {
		return nil, fmt.Errorf("%s: only a %s has a config-file form (a %s's requirements apply to its namespace only)", r, KindCluster, KindTenant)
	}
	var refs []string
	for _, src := range r.Spec.sources("spec.") {
		if src.ref != nil {
			refs = append(refs, fmt.Sprintf("  %s: %s (write it to a file and name the file in %s)", src.path, src.ref, src.instead))
		}
	}
	if len(refs) > 0 {
		return nil, fmt.Errorf("%s: a config file cannot read Secrets or ConfigMaps:\n%s", r, strings.Join(refs, "\n"))
	}
	f := &File{Version: Version, Spec: *r.Spec.DeepCopy()}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// sources lists every file and reference s names, fields after prefix.
func (s *Spec) sources(prefix string) []source {
	out := registrySources(&s.Registries, prefix+"registries")
	for i := range s.TrustStores {
		out = append(out, storeSources(&s.TrustStores[i], fmt.Sprintf("%strustStores[%d]", prefix, i))...)
	}
	for i := range s.Verifiers {
		v := &s.Verifiers[i]
		if k, ok := kindOf(v.Type); ok && k.set(v) {
			out = append(out, k.sources(v, fmt.Sprintf("%sverifiers[%d].%s", prefix, i, k.name))...)
		}
	}
	return out
}

// YAML returns the file as YAML, fields in the order of the config file's
// documentation (version first).
func (f *File) YAML() ([]byte, error) {
	v, err := toYAMLValue(f)
	if err != nil {
		return nil, err
	}
	m := v.(map[string]any)
	delete(m, "version")
	dropEmpty(m)
	return marshalOrdered([]any{"version", f.Version}, m, "registries", "limits", "trustStores", "verifiers", "policy")
}
