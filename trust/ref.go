package trust

import (
	"errors"
	"fmt"
	"regexp"
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

// dnsSubdomain and dnsLabel are Kubernetes' rules for object names (RFC
// 1123 subdomains) and namespaces (RFC 1123 labels); configKey is its rule
// for Secret and ConfigMap keys.
var (
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	configKey    = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

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
	if len(r.Name) > 253 || !dnsSubdomain.MatchString(r.Name) {
		return fmt.Errorf("%s.name: %q is not a Kubernetes object name", path, r.Name)
	}
	if r.Key == "" {
		return fmt.Errorf("%s.key: required", path)
	}
	if len(r.Key) > 253 || !configKey.MatchString(r.Key) {
		return fmt.Errorf("%s.key: %q is not a Secret or ConfigMap key", path, r.Key)
	}
	if r.Namespace != "" {
		if namespaced {
			return fmt.Errorf("%s.namespace: a VouchConfig reads Secrets and ConfigMaps of its own namespace only; remove namespace", path)
		}
		if len(r.Namespace) > 63 || !dnsLabel.MatchString(r.Namespace) {
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
