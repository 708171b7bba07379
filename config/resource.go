package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// vouch's custom resources (docs/kubernetes.md). The Go types that
// Kubernetes clients use are in api/v1alpha1; this package reads the same
// documents without Kubernetes' libraries, so that the CLI links none.
const (
	// Group is the API group of vouch's custom resources.
	Group = "config.vouch.dev"
	// APIVersion is the apiVersion of the resources this vouch reads.
	APIVersion = Group + "/v1alpha1"
	// KindCluster is the cluster-scoped resource: a Spec, owned by the
	// cluster admin, for every namespace.
	KindCluster = "ClusterVouchConfig"
	// KindTenant is the namespaced resource: a TenantSpec that adds
	// requirements in its own namespace.
	KindTenant = "VouchConfig"
)

// MaxResources bounds the documents of one manifest.
const MaxResources = 1000

// Resource is one of vouch's custom resources, as read from a manifest.
type Resource struct {
	// Kind is KindCluster or KindTenant.
	Kind string
	// Name and Namespace are the object's (Namespace is empty for a
	// ClusterVouchConfig).
	Name, Namespace string
	// Spec is the resource's spec; for a VouchConfig only its TenantSpec
	// is set.
	Spec Spec
}

// Form is the form the resource's spec is written in.
func (r *Resource) Form() Form {
	if r.Kind == KindTenant {
		return FormTenant
	}
	return FormCluster
}

// String names the resource in messages: "ClusterVouchConfig default",
// "VouchConfig team-a/extra".
func (r *Resource) String() string {
	if r.Namespace != "" {
		return r.Kind + " " + r.Namespace + "/" + r.Name
	}
	return r.Kind + " " + r.Name
}

// manifest is the envelope of a Kubernetes object.
type manifest struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       any            `json:"spec"`
	Status     any            `json:"status"`
}

// IsManifest reports whether data looks like a Kubernetes manifest (its
// first document has apiVersion and kind) rather than a config file.
func IsManifest(data []byte) bool {
	var head struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return false
		}
		if doc == nil {
			continue // an empty document, as "---" at the top makes
		}
		b, _ := yaml.Marshal(doc)
		_ = yaml.Unmarshal(b, &head)
		return head.APIVersion != "" && head.Kind != ""
	}
}

// ParseResources reads the YAML (or JSON) documents of a manifest, each a
// ClusterVouchConfig or a VouchConfig, strictly as Parse reads a config
// file (an unknown field is an error that names its path, such as
// "spec.registries" in a VouchConfig), and validates each in its form:
// references are checked for their shape, not read. Errors name the
// document ("document 2 (VouchConfig team-a/extra): spec.verifiers[0]...").
func ParseResources(data []byte) ([]Resource, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("manifest: more than %d bytes", MaxFileBytes)
	}
	var out []Resource
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for n := 1; ; n++ {
		var raw any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("document %d: parse: %v", n, err)
		}
		if raw == nil {
			continue
		}
		if len(out) == MaxResources {
			return nil, fmt.Errorf("manifest: more than %d documents", MaxResources)
		}
		r, err := parseResource(raw)
		if err != nil {
			if r.Kind != "" && r.Name != "" {
				return nil, fmt.Errorf("document %d (%s): %w", n, r.String(), err)
			}
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("manifest: no documents")
	}
	return out, nil
}

// parseResource decodes and validates one document. The Resource it
// returns has its kind and name even when it is invalid, for messages.
func parseResource(raw any) (Resource, error) {
	var m manifest
	if err := decodeValue(raw, &m, ""); err != nil {
		return Resource{}, err
	}
	r := Resource{Kind: m.Kind}
	r.Name, _ = m.Metadata["name"].(string)
	r.Namespace, _ = m.Metadata["namespace"].(string)
	if m.APIVersion != APIVersion {
		return r, fmt.Errorf("apiVersion: %q is not %s", m.APIVersion, APIVersion)
	}
	if r.Name == "" {
		return r, errors.New("metadata.name: required")
	}
	var err error
	switch m.Kind {
	case KindCluster:
		if r.Namespace != "" {
			return r, fmt.Errorf("metadata.namespace: a %s is cluster-scoped; remove namespace", KindCluster)
		}
		err = decodeValue(orEmpty(m.Spec), &r.Spec, "spec")
	case KindTenant:
		err = decodeValue(orEmpty(m.Spec), &r.Spec.TenantSpec, "spec")
		if err != nil && (strings.HasPrefix(err.Error(), "spec.registries:") || strings.HasPrefix(err.Error(), "spec.limits:")) {
			err = fmt.Errorf("%w; a %s cannot set registries or limits: they are the cluster's (%s)", err, KindTenant, KindCluster)
		}
	default:
		return r, fmt.Errorf("kind: %q is not %s or %s", m.Kind, KindCluster, KindTenant)
	}
	if err != nil {
		return r, err
	}
	return r, r.Spec.Validate(r.Form(), "spec.")
}

func orEmpty(spec any) any {
	if spec == nil {
		return map[string]any{}
	}
	return spec
}

// Manifest returns a ClusterVouchConfig named name whose spec is s, as
// YAML.
func (s *Spec) Manifest(name string) ([]byte, error) {
	spec, err := toYAMLValue(s)
	if err != nil {
		return nil, err
	}
	m, _ := spec.(map[string]any)
	dropEmpty(m)
	specDoc, err := marshalOrderedNode(nil, m, "registries", "limits", "trustStores", "verifiers", "policy")
	if err != nil {
		return nil, err
	}
	return marshalOrdered([]any{"apiVersion", APIVersion, "kind", KindCluster, "metadata", map[string]string{"name": name}, "spec", specDoc}, nil)
}

// dropEmpty removes the empty objects of m (registries: {}, limits: {}),
// which encoding/json writes for struct fields.
func dropEmpty(m map[string]any) {
	for k, v := range m {
		if o, ok := v.(map[string]any); ok && len(o) == 0 {
			delete(m, k)
		}
	}
}

// marshalOrdered writes the pairs of head (key, value, key, value...),
// then the keys of m named in order, then m's other keys, as YAML.
func marshalOrdered(head []any, m map[string]any, order ...string) ([]byte, error) {
	n, err := marshalOrderedNode(head, m, order...)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func marshalOrderedNode(head []any, m map[string]any, order ...string) (*yaml.Node, error) {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v any) error {
		var kn, vn yaml.Node
		kn.SetString(k)
		if n, ok := v.(*yaml.Node); ok {
			vn = *n
		} else if err := vn.Encode(v); err != nil {
			return err
		}
		doc.Content = append(doc.Content, &kn, &vn)
		return nil
	}
	for i := 0; i+1 < len(head); i += 2 {
		if err := add(head[i].(string), head[i+1]); err != nil {
			return nil, err
		}
	}
	done := map[string]bool{}
	for _, k := range order {
		if v, ok := m[k]; ok {
			if err := add(k, v); err != nil {
				return nil, err
			}
			done[k] = true
		}
	}
	rest := make([]string, 0, len(m))
	for k := range m {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		if err := add(k, m[k]); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// toYAMLValue turns v into the generic value of its JSON form.
func toYAMLValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return numbers(out), nil
}

// numbers turns the json.Numbers in v into int64 or float64, so that
// integers are written as integers.
func numbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	}
	return v
}
