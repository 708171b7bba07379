package ratify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vouch-project/vouch/config"
)

// Ratify v1's custom resources, as its CRDs (api/v1beta1 in
// github.com/ratify-project/ratify, branch v1) and its documentation
// define them.
const (
	// Group is the API group of Ratify v1's configuration resources.
	Group = "config.ratify.deislabs.io"
	// APIVersion is the version this package converts (Ratify 1.1 and
	// later).
	APIVersion = Group + "/v1beta1"
)

// Kinds of Ratify resources.
const (
	KindVerifier            = "Verifier"
	KindStore               = "Store"
	KindKMP                 = "KeyManagementProvider"
	KindPolicy              = "Policy"
	KindCertificateStore    = "CertificateStore"
	namespacedPrefix        = "Namespaced"
	KindNamespacedVerifier  = namespacedPrefix + KindVerifier
	KindNamespacedStore     = namespacedPrefix + KindStore
	KindNamespacedKMP       = namespacedPrefix + KindKMP
	KindNamespacedPolicy    = namespacedPrefix + KindPolicy
	defaultNamespace        = "default"
	maxInputBytes           = config.MaxFileBytes
	maxDocuments            = config.MaxResources
	notaryArtifactType      = "application/vnd.cncf.notary.signature"
	ratifyPolicyDefaultName = "default"
)

// document is one resource of the input.
type document struct {
	// where names it in messages: "ratify.yaml: document 2".
	where string
	// kind is its kind without "Namespaced"; namespaced says whether it had
	// it.
	kind       string
	namespaced bool
	name       string
	// namespace is the namespace of a namespaced resource (default when
	// the manifest has none, as kubectl apply assumes); "" otherwise.
	namespace string
	// assumedNamespace is true when namespace was not written.
	assumedNamespace bool
	spec             any
	// entry is its line in the report.
	entry *Entry
}

// String names the resource: "Verifier verifier-notation",
// "NamespacedVerifier team-a/verifier-notation".
func (d *document) String() string {
	kind := d.kind
	if d.namespaced {
		kind = namespacedPrefix + kind
	}
	if d.namespace != "" && (d.namespaced || d.kind == KindCertificateStore) {
		return kind + " " + d.namespace + "/" + d.name
	}
	return kind + " " + d.name
}

// InputError is input that cannot be read as Kubernetes manifests: not
// YAML, or a document without apiVersion, kind or metadata.name. It names
// the input and the document.
type InputError struct {
	// Where names the input and the document: "ratify.yaml: document 2".
	Where string
	// Err says what is wrong.
	Err error
}

func (e *InputError) Error() string { return e.Where + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// envelope is a Kubernetes object's envelope. Only apiVersion, kind and
// metadata are read here; spec is decoded strictly by kind; status and
// the fields kubectl get adds are ignored.
type envelope struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       any            `json:"spec"`
}

// parseInput splits one input into its documents. Documents that are not
// Ratify configuration resources get an Ignored entry.
func parseInput(in Input, first int) ([]*document, []*Entry, error) {
	if len(in.Data) > maxInputBytes {
		return nil, nil, &InputError{Where: in.Name, Err: fmt.Errorf("more than %d bytes", maxInputBytes)}
	}
	var docs []*document
	var entries []*Entry
	dec := yaml.NewDecoder(bytes.NewReader(in.Data))
	for n := 1; ; n++ {
		where := fmt.Sprintf("%s: document %d", in.Name, n)
		var raw any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, nil, &InputError{Where: where, Err: fmt.Errorf("not YAML: %v", err)}
		}
		if raw == nil {
			continue
		}
		if first+len(entries) >= maxDocuments {
			return nil, nil, &InputError{Where: in.Name, Err: fmt.Errorf("more than %d documents", maxDocuments)}
		}
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, nil, &InputError{Where: where, Err: errors.New("not a Kubernetes object (expected a mapping with apiVersion, kind and metadata)")}
		}
		if list, ok := m["items"].([]any); ok && isListKind(m["kind"]) {
			// kubectl get -o yaml writes a List of the objects.
			for i, item := range list {
				d, e, err := parseObject(item, fmt.Sprintf("%s, items[%d]", where, i))
				if err != nil {
					return nil, nil, err
				}
				entries = append(entries, e)
				if d != nil {
					docs = append(docs, d)
				}
			}
			continue
		}
		d, e, err := parseObject(raw, where)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs, entries, nil
}

func isListKind(kind any) bool {
	s, _ := kind.(string)
	return strings.HasSuffix(s, "List")
}

// parseObject reads the envelope of one object. It returns no document,
// and an Ignored entry, for objects that are not Ratify configuration.
func parseObject(raw any, where string) (*document, *Entry, error) {
	var env envelope
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, nil, &InputError{Where: where, Err: errors.New("not a Kubernetes object (expected a mapping with apiVersion, kind and metadata)")}
	}
	// The envelope's own fields are checked for their types only: kubectl
	// adds status and other fields that Ratify's resources may carry.
	head := map[string]any{}
	for _, k := range []string{"apiVersion", "kind", "metadata", "spec"} {
		if v, ok := m[k]; ok {
			head[k] = v
		}
	}
	if err := config.DecodeStrict(head, &env, ""); err != nil {
		return nil, nil, &InputError{Where: where, Err: err}
	}
	if env.APIVersion == "" {
		return nil, nil, &InputError{Where: where, Err: errors.New("apiVersion: required")}
	}
	if env.Kind == "" {
		return nil, nil, &InputError{Where: where, Err: errors.New("kind: required")}
	}
	meta := env.Metadata
	name, _ := meta["name"].(string)
	if name == "" {
		return nil, nil, &InputError{Where: where, Err: fmt.Errorf("metadata.name: required (%s %s)", env.Kind, env.APIVersion)}
	}
	namespace, _ := meta["namespace"].(string)
	e := &Entry{Where: where, Resource: env.Kind + " " + name}
	group, version, _ := strings.Cut(env.APIVersion, "/")
	if group != Group {
		e.Outcome = Ignored
		e.Notes = []string{fmt.Sprintf("not a Ratify configuration resource (%s)", env.APIVersion)}
		return nil, e, nil
	}
	d := &document{where: where, name: name, spec: env.Spec, entry: e}
	d.kind = env.Kind
	if k, ok := strings.CutPrefix(d.kind, namespacedPrefix); ok && k != KindCertificateStore {
		d.kind, d.namespaced = k, true
	}
	if d.namespaced || d.kind == KindCertificateStore {
		d.namespace = namespace
		if d.namespace == "" {
			d.namespace, d.assumedNamespace = defaultNamespace, true
		}
	}
	e.Resource = d.String()
	switch {
	case version != "v1beta1":
		e.fail("apiVersion %s: this converter reads %s (Ratify 1.1 and later); apply the resource to Ratify 1.x to have it upgraded, then export it with kubectl get -o yaml", env.APIVersion, APIVersion)
	case d.kind != KindVerifier && d.kind != KindStore && d.kind != KindKMP && d.kind != KindPolicy && d.kind != KindCertificateStore:
		e.fail("kind %s is not a Ratify v1 configuration kind this converter knows (Verifier, Store, KeyManagementProvider, Policy, CertificateStore and their Namespaced forms)", env.Kind)
	}
	return d, e, nil
}

// Specs of Ratify's kinds (api/v1beta1). Parameters are decoded by type.

type verifierSpec struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	Version       string `json:"version"`
	ArtifactTypes string `json:"artifactTypes"`
	Address       string `json:"address"`
	Source        any    `json:"source"`
	Parameters    any    `json:"parameters"`
}

type storeSpec struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Version    string `json:"version"`
	Address    string `json:"address"`
	Source     any    `json:"source"`
	Parameters any    `json:"parameters"`
}

type kmpSpec struct {
	Type            string `json:"type"`
	RefreshInterval string `json:"refreshInterval"`
	Parameters      any    `json:"parameters"`
}

type certStoreSpec struct {
	Provider   string `json:"provider"`
	Parameters any    `json:"parameters"`
}

type policySpec struct {
	Type       string `json:"type"`
	Parameters any    `json:"parameters"`
}

// Parameters of the verifiers, stores, key management providers and
// policies (pkg/verifier/notation, pkg/verifier/cosign, plugins/verifier/*,
// pkg/referrerstore/oras, pkg/keymanagementprovider/inline,
// pkg/policyprovider/configpolicy in Ratify's v1 branch). Ratify passes
// name, type and artifactTypes down with the parameters, so they are
// accepted here too. Fields typed any hold documents of several shapes
// (or another tool's, such as a Notation trust policy): the strict decoder
// leaves them as they are, and the converter checks them itself.

type notationParams struct {
	Name                   string   `json:"name"`
	Type                   string   `json:"type"`
	ArtifactTypes          string   `json:"artifactTypes"`
	NestedReferences       string   `json:"nestedReferences"`
	VerificationCerts      []string `json:"verificationCerts"`
	VerificationCertStores any      `json:"verificationCertStores"`
	TrustPolicyDoc         any      `json:"trustPolicyDoc"`
}

type cosignParams struct {
	Name                string              `json:"name"`
	Type                string              `json:"type"`
	ArtifactTypes       string              `json:"artifactTypes"`
	NestedReferences    string              `json:"nestedReferences"`
	NestedArtifactTypes []string            `json:"nestedArtifactTypes"`
	Key                 string              `json:"key"`
	RekorURL            string              `json:"rekorURL"`
	TrustPolicies       []cosignTrustPolicy `json:"trustPolicies"`
}

type cosignTrustPolicy struct {
	Version    string        `json:"version"`
	Name       string        `json:"name"`
	Scopes     []string      `json:"scopes"`
	Keys       []cosignKey   `json:"keys"`
	Keyless    cosignKeyless `json:"keyless"`
	TLogVerify *bool         `json:"tLogVerify"`
	RekorURL   string        `json:"rekorURL"`
}

type cosignKey struct {
	Provider string `json:"provider"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	File     string `json:"file"`
}

type cosignKeyless struct {
	CTLogVerify                 *bool  `json:"ctLogVerify"`
	CertificateIdentity         string `json:"certificateIdentity"`
	CertificateIdentityRegExp   string `json:"certificateIdentityRegExp"`
	CertificateOIDCIssuer       string `json:"certificateOIDCIssuer"`
	CertificateOIDCIssuerRegExp string `json:"certificateOIDCIssuerRegExp"`
}

type sbomParams struct {
	Name               string        `json:"name"`
	Type               string        `json:"type"`
	ArtifactTypes      string        `json:"artifactTypes"`
	NestedReferences   string        `json:"nestedReferences"`
	DisallowedLicenses []string      `json:"disallowedLicenses"`
	DisallowedPackages []sbomPackage `json:"disallowedPackages"`
}

type sbomPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type vulnParams struct {
	Name                  string   `json:"name"`
	Type                  string   `json:"type"`
	ArtifactTypes         string   `json:"artifactTypes"`
	NestedReferences      string   `json:"nestedReferences"`
	SchemaURL             string   `json:"schemaURL"`
	CreatedAnnotationName string   `json:"createdAnnotationName"`
	MaximumAge            string   `json:"maximumAge"`
	DisallowedSeverities  []string `json:"disallowedSeverities"`
	Passthrough           bool     `json:"passthrough"`
	DenylistCVEs          []string `json:"denylistCVEs"`
}

type schemaParams struct {
	Name             string            `json:"name"`
	Type             string            `json:"type"`
	ArtifactTypes    string            `json:"artifactTypes"`
	NestedReferences string            `json:"nestedReferences"`
	Schemas          map[string]string `json:"schemas"`
}

type licenseParams struct {
	Name             string   `json:"name"`
	Type             string   `json:"type"`
	ArtifactTypes    string   `json:"artifactTypes"`
	NestedReferences string   `json:"nestedReferences"`
	AllowedLicenses  []string `json:"allowedLicenses"`
}

type orasParams struct {
	Name           string `json:"name"`
	UseHTTP        bool   `json:"useHttp"`
	CosignEnabled  bool   `json:"cosignEnabled"`
	AuthProvider   any    `json:"authProvider"`
	LocalCachePath string `json:"localCachePath"`
	// Fields of earlier releases that Ratify 1.x still accepts and ignores
	// (its samples set them).
	CacheEnabled bool `json:"cacheEnabled"`
	TTL          int  `json:"ttl"`
	Capacity     int  `json:"capacity"`
	KeyNumber    int  `json:"keyNumber"`
}

type k8sSecretsAuth struct {
	Name               string `json:"name"`
	ServiceAccountName string `json:"serviceAccountName"`
	Secrets            []struct {
		SecretName string `json:"secretName"`
		Namespace  string `json:"namespace"`
	} `json:"secrets"`
}

type dockerConfigAuth struct {
	Name       string `json:"name"`
	ConfigPath string `json:"configPath"`
}

type inlineKMPParams struct {
	Type        string `json:"type"`
	ContentType string `json:"contentType"`
	Value       string `json:"value"`
}

type inlineCertStoreParams struct {
	Value string `json:"value"`
}

type configPolicyParams struct {
	Name                         string            `json:"name"`
	Type                         string            `json:"type"`
	ArtifactVerificationPolicies map[string]string `json:"artifactVerificationPolicies"`
	PassthroughEnabled           bool              `json:"passthroughEnabled"`
}
