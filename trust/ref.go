package trust

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of object a Ref names.
const (
	// KindSecret is a Kubernetes Secret; its key's value is in data.
	KindSecret = "Secret"
	// KindConfigMap is a Kubernetes ConfigMap; its key's value is in data
	// or binaryData.
	KindConfigMap = "ConfigMap"
)

// Ref names one key of a Kubernetes Secret or ConfigMap: where trust
// material comes from in vouch's custom resources, instead of a file.
//
// +kubebuilder:object:generate=true
type Ref struct {
	// Kind is Secret or ConfigMap. Required.
	// +kubebuilder:validation:Enum=Secret;ConfigMap
	Kind string `json:"kind"`
	// Namespace is the object's namespace. Optional, and only in a
	// ClusterVouchConfig; default the namespace vouch runs in. A
	// VouchConfig reads its own namespace only and must leave it empty.
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// Name is the object's name. Required.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key is the key in the object's data. Required.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// String names the reference in messages: "secret vouch/cosign-pub key
// cosign.pub" (without the namespace when it has none).
func (r Ref) String() string {
	kind := "secret"
	if r.Kind == KindConfigMap {
		kind = "configMap"
	}
	name := r.Name
	if r.Namespace != "" {
		name = r.Namespace + "/" + r.Name
	}
	return fmt.Sprintf("%s %s key %s", kind, name, r.Key)
}

// dnsLabel reports whether s is an RFC 1123 label, as Kubernetes names
// namespaces: lower-case letters, digits and '-', starting and ending
// with a letter or digit, at most 63 characters.
func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// dnsSubdomain reports whether s is an RFC 1123 subdomain, as Kubernetes
// names objects: dot-separated labels, at most 253 characters.
func dnsSubdomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !dnsLabel(l) {
			return false
		}
	}
	return true
}

// configKey reports whether s is a valid Secret or ConfigMap key: letters,
// digits, '-', '_' and '.', at most 253 characters, not "." or "..".
func configKey(s string) bool {
	if s == "" || len(s) > 253 || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Validate checks the reference's shape, without reading it; errors name
// the field below path. namespaced is true for a reference in a
// namespaced resource (a tenant's), which cannot name a namespace.
func (r Ref) Validate(path string, namespaced bool) error {
	switch r.Kind {
	case KindSecret, KindConfigMap:
	case "":
		return fmt.Errorf("%s.kind: required (Secret or ConfigMap)", path)
	default:
		return fmt.Errorf("%s.kind: %q is not Secret or ConfigMap", path, r.Kind)
	}
	if r.Name == "" {
		return fmt.Errorf("%s.name: required", path)
	}
	if !dnsSubdomain(r.Name) {
		return fmt.Errorf("%s.name: %q is not a Kubernetes object name", path, r.Name)
	}
	if r.Key == "" {
		return fmt.Errorf("%s.key: required", path)
	}
	if !configKey(r.Key) {
		return fmt.Errorf("%s.key: %q is not a Secret or ConfigMap key", path, r.Key)
	}
	if r.Namespace != "" {
		if namespaced {
			return fmt.Errorf("%s.namespace: a VouchConfig reads Secrets and ConfigMaps of its own namespace only; remove namespace", path)
		}
		if !dnsLabel(r.Namespace) {
			return fmt.Errorf("%s.namespace: %q is not a namespace name", path, r.Namespace)
		}
	}
	return nil
}

// Resolver reads the key that a Ref names: in vouch serve, from the
// Secrets and ConfigMaps that its Kubernetes source watches. Resolve works
// on what the resolver already holds in memory (it does no I/O of its
// own, so it takes no context); a missing object or key is an error that
// names the Ref ("secret vouch/cosign-pub has no key cosign.pub"), and so
// is a value longer than max bytes.
type Resolver interface {
	Resolve(ref Ref, max int64) ([]byte, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ref Ref, max int64) ([]byte, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ref Ref, max int64) ([]byte, error) { return f(ref, max) }

// ErrNoResolver is the error of reading a Ref without a Resolver: outside
// Kubernetes (a config file, the CLI) references cannot be read.
var ErrNoResolver = errors.New("secret and configMap references need the Kubernetes source (vouch serve with its custom resources)")
