package ratify

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/cosign"
	"github.com/vouch-project/vouch/verifier/notation"
	"github.com/vouch-project/vouch/verifier/sbom"
	"github.com/vouch-project/vouch/verifier/schema"
	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// Convert converts the Ratify resources of inputs. An input that cannot be
// read as Kubernetes manifests is an *InputError; a Ratify resource that
// cannot be converted is not an error but an entry of the report, and the
// rest is converted without it.
func Convert(inputs []Input, opts Options) (*Result, error) {
	if opts.Name == "" {
		opts.Name = "default"
	}
	if opts.Namespace == "" {
		opts.Namespace = "vouch"
	}
	c := &converter{opts: opts, targets: map[string]*target{}, kmps: map[string]*kmp{}}
	var docs []*document
	for _, in := range inputs {
		ds, es, err := parseInput(in, len(c.report))
		if err != nil {
			return nil, err
		}
		docs = append(docs, ds...)
		c.report = append(c.report, es...)
	}
	byKind := func(kinds ...string) []*document {
		var out []*document
		for _, d := range docs {
			if !d.entry.failed() && slices.Contains(kinds, d.kind) {
				out = append(out, d)
			}
		}
		return out
	}
	for _, d := range byKind(KindKMP, KindCertificateStore) {
		c.addKMP(d)
	}
	for _, d := range byKind(KindStore) {
		c.store(d)
	}
	for _, d := range byKind(KindVerifier) {
		c.verifier(d)
	}
	for _, d := range byKind(KindPolicy) {
		c.policy(d)
	}
	c.finish()
	for _, d := range byKind(KindKMP, KindCertificateStore) {
		k := c.kmps[kmpKey(d)]
		if k == nil || d.entry.failed() {
			continue
		}
		if len(k.usedBy) == 0 {
			d.entry.change("no converted verifier uses it, so nothing of it was written")
		} else {
			d.entry.Into = "inline PEM in " + strings.Join(k.usedBy, ", ")
		}
	}
	for _, d := range docs {
		if d.assumedNamespace && !d.entry.failed() {
			d.entry.change("no metadata.namespace: namespace %s assumed, as kubectl apply would", defaultNamespace)
		}
	}
	res := &Result{Report: c.report}
	if err := c.write(res); err != nil {
		return nil, err
	}
	return res, nil
}

// converter holds a conversion in progress.
type converter struct {
	opts    Options
	report  []*Entry
	targets map[string]*target
	// kmps are the key management providers and certificate stores, by
	// kmpKey.
	kmps map[string]*kmp
}

// target is one resource being written: the ClusterVouchConfig
// (namespace "") or a namespace's VouchConfig.
type target struct {
	namespace string
	spec      config.Spec
	// storeOwner names the resource that defined each trust store.
	storeOwner map[string]string
	// verifiers are the converted verifiers, with the Ratify artifact
	// types they check, in the order converted.
	verifiers []converted
	// configMap holds the keys of its ConfigMapName ConfigMap.
	configMap map[string]string
	// registriesFrom names the Store that set registries.
	registriesFrom string
	// policyFrom names the Policy converted into it.
	policyFrom string
}

// converted is a converted verifier: the artifact types Ratify sent it
// that vouch's verifier checks too, and the nested references Ratify
// verified below them.
type converted struct {
	entry  *Entry
	name   string
	types  []string
	nested []string
}

// String names the target: "ClusterVouchConfig default", "VouchConfig
// team-a/default".
func (t *target) String(name string) string {
	if t.namespace == "" {
		return config.KindCluster + " " + name
	}
	return config.KindTenant + " " + t.namespace + "/" + name
}

func (t *target) form() config.Form {
	if t.namespace == "" {
		return config.FormCluster
	}
	return config.FormTenant
}

func (c *converter) target(d *document) *target {
	ns := ""
	if d.namespaced {
		ns = d.namespace
	}
	t := c.targets[ns]
	if t == nil {
		t = &target{namespace: ns, storeOwner: map[string]string{}, configMap: map[string]string{}}
		c.targets[ns] = t
	}
	return t
}

func (c *converter) into(d *document, t *target, what string) string {
	return t.String(c.opts.Name) + ": " + what
}

// decode decodes d's spec, or its parameters, strictly into out; an error
// marks d not converted.
func decode(d *document, raw any, out any, path string) bool {
	if raw == nil {
		raw = map[string]any{}
	}
	if err := config.DecodeStrict(raw, out, path); err != nil {
		d.entry.fail("%v", err)
		return false
	}
	return true
}

// kmp is a key management provider or certificate store: the PEM it
// holds, or why it cannot be used.
type kmp struct {
	doc   *document
	certs string
	keys  string
	// unusable says why its content cannot be converted; "" when it can.
	unusable string
	usedBy   []string
}

// kmpKey names a provider: "/NAME" for a cluster KeyManagementProvider,
// "NAMESPACE/NAME" for a NamespacedKeyManagementProvider, and
// "certstore:NAMESPACE/NAME" for a CertificateStore.
func kmpKey(d *document) string {
	switch {
	case d.kind == KindCertificateStore:
		return "certstore:" + d.namespace + "/" + d.name
	case d.namespaced:
		return d.namespace + "/" + d.name
	}
	return "/" + d.name
}

func (c *converter) addKMP(d *document) {
	k := &kmp{doc: d}
	c.kmps[kmpKey(d)] = k
	var typ string
	var params any
	if d.kind == KindCertificateStore {
		var s certStoreSpec
		if !decode(d, d.spec, &s, "spec") {
			k.unusable = d.String() + " is not valid"
			return
		}
		typ, params = s.Provider, s.Parameters
		d.entry.change("CertificateStore is deprecated in Ratify since 1.2; its certificates are used where verifiers name it")
	} else {
		var s kmpSpec
		if !decode(d, d.spec, &s, "spec") {
			k.unusable = d.String() + " is not valid"
			return
		}
		typ, params = s.Type, s.Parameters
		if s.RefreshInterval != "" && typ == "inline" {
			d.entry.change("refreshInterval dropped: inline content does not change")
		}
	}
	switch typ {
	case "inline":
	case "azurekeyvault":
		k.unusable = fmt.Sprintf("%s reads Azure Key Vault, which vouch does not: download the certificates or keys (az keyvault certificate download) into a Secret or ConfigMap and name it in trustStores[].refs or cosign keys.refs", d)
		d.entry.fail("type azurekeyvault: vouch reads no key vault; download the certificates or keys (az keyvault certificate download) into a Secret or ConfigMap and name it in trustStores[].refs (notation) or cosign keys.refs")
		return
	case "":
		k.unusable = d.String() + " has no type"
		d.entry.fail("spec.type: required (inline)")
		return
	default:
		k.unusable = fmt.Sprintf("%s is of type %s, which vouch cannot read", d, typ)
		d.entry.fail("type %s: only inline providers can be converted; put the certificates or keys in a Secret or ConfigMap and name it in trustStores[].refs or cosign keys.refs", typ)
		return
	}
	contentType, value := "certificate", ""
	if d.kind == KindCertificateStore {
		var p inlineCertStoreParams
		if !decode(d, params, &p, "spec.parameters") {
			k.unusable = d.String() + " is not valid"
			return
		}
		value = p.Value
	} else {
		var p inlineKMPParams
		if !decode(d, params, &p, "spec.parameters") {
			k.unusable = d.String() + " is not valid"
			return
		}
		contentType, value = p.ContentType, p.Value
	}
	var err error
	switch contentType {
	case "certificate":
		k.certs, err = certificatesPEM(value)
	case "key":
		k.keys, err = keysPEM(value)
	case "":
		err = fmt.Errorf("spec.parameters.contentType: required (certificate or key)")
	default:
		err = fmt.Errorf("spec.parameters.contentType: %q is not certificate or key", contentType)
	}
	if err != nil {
		k.unusable = fmt.Sprintf("%s is not valid (%v)", d, err)
		d.entry.fail("%v", err)
	}
}

// certificatesPEM checks that value holds X.509 certificates in PEM and
// returns them re-encoded, one block each.
func certificatesPEM(value string) (string, error) {
	rest := []byte(value)
	var out bytes.Buffer
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return "", fmt.Errorf("spec.parameters.value: a %s block where certificates are expected", b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "", fmt.Errorf("spec.parameters.value: %v", err)
		}
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})
	}
	if out.Len() == 0 {
		return "", fmt.Errorf("spec.parameters.value: no PEM certificate")
	}
	return out.String(), nil
}

// keysPEM checks that value holds public keys in PEM.
func keysPEM(value string) (string, error) {
	blocks, err := trust.PEMBlocks([]byte(value))
	if err != nil {
		return "", fmt.Errorf("spec.parameters.value: %v", err)
	}
	var out bytes.Buffer
	for _, b := range blocks {
		if _, err := x509.ParsePKIXPublicKey(b.Bytes); err != nil {
			return "", fmt.Errorf("spec.parameters.value: a %s block that is not a public key: %v", b.Type, err)
		}
		_ = pem.Encode(&out, &pem.Block{Type: "PUBLIC KEY", Bytes: b.Bytes})
	}
	return out.String(), nil
}

// lookupKMP finds the provider a verifier of namespace ns (""
// cluster) names: "NAMESPACE/NAME" names a namespaced one; NAME the
// verifier's namespace's, then the cluster's, then a CertificateStore of
// that name.
func (c *converter) lookupKMP(ref, ns string) (*kmp, error) {
	if n, name, ok := strings.Cut(ref, "/"); ok {
		if k := c.kmps[n+"/"+name]; k != nil {
			return k, nil
		}
		if k := c.kmps["certstore:"+n+"/"+name]; k != nil {
			return k, nil
		}
		return nil, fmt.Errorf("%s: no NamespacedKeyManagementProvider %s in namespace %s among the input", ref, name, n)
	}
	if ns != "" {
		if k := c.kmps[ns+"/"+ref]; k != nil {
			return k, nil
		}
	}
	if k := c.kmps["/"+ref]; k != nil {
		return k, nil
	}
	var found []*kmp
	for key, k := range c.kmps {
		if strings.HasPrefix(key, "certstore:") && k.doc.name == ref {
			found = append(found, k)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return nil, fmt.Errorf("%s: no KeyManagementProvider of that name among the input", ref)
}

func (c *converter) store(d *document) {
	t := c.target(d)
	if d.namespaced {
		d.entry.fail("a VouchConfig cannot set registries: they are the cluster's (ClusterVouchConfig spec.registries); convert the cluster's Store instead")
		return
	}
	var s storeSpec
	if !decode(d, d.spec, &s, "spec") {
		return
	}
	typ := s.Type
	if typ == "" {
		typ = s.Name
	}
	if s.Source != nil || s.Address != "" || typ != "oras" {
		d.entry.fail("store %q is a Ratify store plugin; vouch reads registries (and OCI layouts) itself", typ)
		return
	}
	var p orasParams
	if !decode(d, s.Parameters, &p, "spec.parameters") {
		return
	}
	reg := t.spec.Registries
	var what []string
	if p.UseHTTP {
		reg.PlainHTTP = true
		what = append(what, "registries.plainHTTP")
	}
	if p.LocalCachePath != "" {
		d.entry.change("localCachePath dropped: vouch caches content in memory by digest")
	}
	if p.AuthProvider != nil {
		auth, ok := p.AuthProvider.(map[string]any)
		if !ok {
			d.entry.fail("spec.parameters.authProvider: expected an object")
			return
		}
		name, _ := auth["name"].(string)
		switch name {
		case "", "dockerConfig":
			var a dockerConfigAuth
			if !decode(d, auth, &a, "spec.parameters.authProvider") {
				return
			}
			if a.ConfigPath != "" {
				reg.DockerConfigRef = &trust.Ref{Kind: trust.KindSecret, Name: DockerConfigSecretName, Key: ".dockerconfigjson"}
				what = append(what, "registries.dockerConfigRef")
				d.entry.change("authProvider dockerConfig: %s is a file in Ratify's container; create the Secret %s from it (kubectl create secret generic %s --namespace %s --type=kubernetes.io/dockerconfigjson --from-file=.dockerconfigjson=FILE)", a.ConfigPath, DockerConfigSecretName, DockerConfigSecretName, c.opts.Namespace)
			}
		case "k8Secrets":
			var a k8sSecretsAuth
			if !decode(d, auth, &a, "spec.parameters.authProvider") {
				return
			}
			if a.ServiceAccountName != "" {
				d.entry.change("authProvider.serviceAccountName %s dropped: name its image pull secret in registries.dockerConfigRef", a.ServiceAccountName)
			}
			for i, sec := range a.Secrets {
				if i > 0 {
					d.entry.change("authProvider.secrets[%d] (%s) dropped: vouch reads one Docker config Secret; merge its auths into %s", i, sec.SecretName, a.Secrets[0].SecretName)
					continue
				}
				if sec.SecretName == "" {
					d.entry.fail("spec.parameters.authProvider.secrets[%d].secretName: required", i)
					return
				}
				reg.DockerConfigRef = &trust.Ref{Kind: trust.KindSecret, Namespace: sec.Namespace, Name: sec.SecretName, Key: ".dockerconfigjson"}
				what = append(what, "registries.dockerConfigRef")
				if sec.Namespace == "" {
					d.entry.change("authProvider.secrets[0] %s: read from vouch's namespace (Ratify read Ratify's); it must be of type kubernetes.io/dockerconfigjson", sec.SecretName)
				}
			}
		default:
			d.entry.fail("authProvider %s: vouch has no cloud credential providers; put the registry credentials in a kubernetes.io/dockerconfigjson Secret and name it in registries.dockerConfigRef", name)
			return
		}
	}
	if t.registriesFrom != "" && reg.DockerConfigRef != nil && t.spec.Registries.DockerConfigRef != nil && *reg.DockerConfigRef != *t.spec.Registries.DockerConfigRef {
		d.entry.fail("%s already set registries.dockerConfigRef to %s; vouch reads one Docker config", t.registriesFrom, t.spec.Registries.DockerConfigRef)
		return
	}
	t.spec.Registries = reg
	t.registriesFrom = d.String()
	if len(what) == 0 {
		what = []string{"nothing to set: vouch reads registries over HTTPS with its container's Docker config by default"}
	}
	d.entry.Into = c.into(d, t, strings.Join(what, ", "))
}

// artifactTypes splits Ratify's comma-separated artifactTypes.
func artifactTypes(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// nestedReferences reads Ratify's nestedReferences parameter: artifact
// types, comma-separated.
func nestedReferences(s string) []string { return artifactTypes(s) }

// handles reports whether vouch's verifier of type typ checks artifactType,
// asking the verifier itself.
func handles(typ, artifactType string) bool {
	switch typ {
	case "notation":
		return (&notation.Verifier{}).Handles(artifactType)
	case "cosign":
		return (&cosign.Verifier{}).Handles(artifactType)
	case "sbom":
		return (&sbom.Verifier{}).Handles(artifactType)
	case "vulnreport":
		return (&vulnreport.Verifier{}).Handles(artifactType)
	}
	return true // schema: the types it is given
}

// conversion is what one Ratify verifier becomes.
type conversion struct {
	verifiers []config.Verifier
	stores    []config.TrustStore
	files     map[string]string
	nested    []string
}

func (c *converter) verifier(d *document) {
	t := c.target(d)
	var s verifierSpec
	if !decode(d, d.spec, &s, "spec") {
		return
	}
	typ := s.Type
	if typ == "" {
		typ = s.Name
	}
	if s.Source != nil || s.Address != "" {
		d.entry.fail("verifier %q is an external Ratify plugin; vouch runs no Ratify plugins (its plugin verifiers speak vouch's protocol, docs/plugins.md)", typ)
		return
	}
	for _, v := range t.spec.Verifiers {
		if v.Name == d.name {
			d.entry.fail("a verifier named %s is already in %s", d.name, t.String(c.opts.Name))
			return
		}
	}
	if s.Version != "" {
		d.entry.change("version %s dropped: vouch's verifiers are built in", s.Version)
	}
	var conv *conversion
	var vouchType string
	switch typ {
	case "notation":
		vouchType, conv = "notation", c.notation(d, t, s)
	case "cosign":
		vouchType, conv = "cosign", c.cosign(d, t, s)
	case "sbom":
		vouchType, conv = "sbom", c.sbom(d, s)
	case "vulnerabilityreport":
		vouchType, conv = "vulnreport", c.vulnreport(d, s)
	case "schemavalidator":
		vouchType, conv = "schema", c.schema(d, s)
	case "licensechecker":
		d.entry.fail("licensechecker allows a list of licenses; vouch's sbom verifier denies licenses instead (deniedLicenses, requireLicenses): write the licenses to deny in an sbom verifier")
	case "":
		d.entry.fail("spec.name: required (the verifier type)")
	default:
		d.entry.fail("verifier type %q has no counterpart in vouch (notation, cosign, sbom, vulnerabilityreport and schemavalidator can be converted)", typ)
	}
	if conv == nil || d.entry.failed() {
		return
	}
	// Check the pieces alone, so that a bad value names this resource.
	check := config.Spec{TenantSpec: config.TenantSpec{TrustStores: conv.stores, Verifiers: conv.verifiers}}
	if err := check.Validate(t.form(), "spec."); err != nil {
		d.entry.fail("the converted verifier is not valid: %v", err)
		return
	}
	var stores []config.TrustStore
	for _, ts := range conv.stores {
		if owner, ok := t.storeOwner[ts.Name]; ok {
			i := slices.IndexFunc(t.spec.TrustStores, func(o config.TrustStore) bool { return o.Name == ts.Name })
			if t.spec.TrustStores[i].PEM != ts.PEM {
				d.entry.fail("trust store %s is already defined by %s with other certificates; rename the store in one of the trust policies", ts.Name, owner)
				return
			}
			continue
		}
		stores = append(stores, ts)
	}
	for _, ts := range stores {
		t.storeOwner[ts.Name] = d.String()
	}
	t.spec.TrustStores = append(t.spec.TrustStores, stores...)
	var names []string
	for _, v := range conv.verifiers {
		names = append(names, v.Name)
		var types []string
		for _, at := range artifactTypes(s.ArtifactTypes) {
			if handles(vouchType, at) {
				types = append(types, at)
			} else {
				d.entry.change("artifact type %s: vouch's %s verifier does not check it; left out of the policy", at, vouchType)
			}
		}
		t.verifiers = append(t.verifiers, converted{entry: d.entry, name: v.Name, types: types, nested: conv.nested})
	}
	t.spec.Verifiers = append(t.spec.Verifiers, conv.verifiers...)
	for k, v := range conv.files {
		t.configMap[k] = v
	}
	what := "verifier " + strings.Join(names, ", ")
	for _, ts := range stores {
		what += ", trust store " + ts.Name
	}
	d.entry.Into = c.into(d, t, what)
}

// storeTypes maps the trust store types of verificationCertStores, as
// Ratify reads them, to Notation's.
var storeTypes = map[string]string{"ca": "ca", "signingauthority": "signingAuthority", "tsa": "tsa"}

func (c *converter) notation(d *document, t *target, s verifierSpec) *conversion {
	var p notationParams
	if !decode(d, s.Parameters, &p, "spec.parameters") {
		return nil
	}
	nested := nestedReferences(p.NestedReferences)
	if p.TrustPolicyDoc == nil {
		d.entry.fail("spec.parameters.trustPolicyDoc: required")
		return nil
	}
	doc, err := json.MarshalIndent(p.TrustPolicyDoc, "", "  ")
	if err != nil {
		d.entry.fail("spec.parameters.trustPolicyDoc: %v", err)
		return nil
	}
	policyDoc, err := notation.ParseTrustPolicy(doc, "spec.parameters.trustPolicyDoc")
	if err != nil {
		d.entry.fail("%v", err)
		return nil
	}
	// verificationCertStores: {TYPE: {NAME: [providers]}}, or the legacy
	// {NAME: [providers]}.
	typed := map[string][]string{}
	legacy := map[string][]string{}
	certStores, ok := p.VerificationCertStores.(map[string]any)
	if !ok && p.VerificationCertStores != nil {
		d.entry.fail("spec.parameters.verificationCertStores: expected an object")
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(certStores)) {
		path := "spec.parameters.verificationCertStores." + k
		switch v := certStores[k].(type) {
		case map[string]any:
			typ, ok := storeTypes[strings.ToLower(k)]
			if !ok {
				d.entry.fail("%s: %q is not a trust store type (ca, signingAuthority, tsa)", path, k)
				return nil
			}
			for _, name := range slices.Sorted(maps.Keys(v)) {
				list, ok := stringList(v[name])
				if !ok {
					d.entry.fail("%s.%s: expected a list of key management provider names", path, name)
					return nil
				}
				typed[typ+":"+name] = list
			}
		case []any:
			list, ok := stringList(v)
			if !ok {
				d.entry.fail("%s: expected a list of key management provider names", path)
				return nil
			}
			legacy[k] = list
		default:
			d.entry.fail("%s: expected {NAME: [providers]} under a trust store type, or a list of providers", path)
			return nil
		}
	}
	if len(p.VerificationCerts) > 0 {
		d.entry.change("verificationCerts %s dropped: folders in Ratify's container cannot be read; name the certificates in verificationCertStores", strings.Join(p.VerificationCerts, ", "))
	}
	conv := &conversion{nested: nested, files: map[string]string{}}
	seen := map[string]bool{}
	for _, stmt := range policyDoc.TrustPolicies {
		for _, name := range stmt.TrustStores {
			if seen[name] {
				continue
			}
			seen[name] = true
			_, storeName, _ := strings.Cut(name, ":")
			providers, ok := typed[name]
			if !ok {
				providers, ok = legacy[storeName]
			}
			if !ok {
				d.entry.fail("trust store %s, named by trustPolicyDoc statement %s, has no providers in verificationCertStores", name, stmt.Name)
				return nil
			}
			ts := config.TrustStore{Name: name}
			for _, ref := range providers {
				k, err := c.lookupKMP(ref, t.namespace)
				if err != nil {
					d.entry.fail("trust store %s: %v", name, err)
					return nil
				}
				if k.unusable != "" {
					d.entry.fail("trust store %s: %s", name, k.unusable)
					return nil
				}
				if k.certs == "" {
					d.entry.fail("trust store %s: %s holds keys, not certificates", name, k.doc)
					return nil
				}
				ts.PEM = appendPEM(ts.PEM, k.certs)
				k.usedBy = appendUnique(k.usedBy, t.String(c.opts.Name)+" trust store "+name)
			}
			if ts.PEM == "" {
				d.entry.fail("trust store %s: no certificates", name)
				return nil
			}
			conv.stores = append(conv.stores, ts)
		}
	}
	key := d.name + ".trustpolicy.json"
	conv.files[key] = string(doc) + "\n"
	conv.verifiers = []config.Verifier{{Name: d.name, Type: "notation", Notation: &notation.Config{
		TrustPolicyRef: &trust.Ref{Kind: trust.KindConfigMap, Name: ConfigMapName, Key: key},
	}}}
	return conv
}

// defaultRekor is the Rekor of Sigstore's public-good instance, which
// Ratify uses when rekorURL is not set.
const defaultRekor = "https://rekor.sigstore.dev"

func (c *converter) cosign(d *document, t *target, s verifierSpec) *conversion {
	var p cosignParams
	if !decode(d, s.Parameters, &p, "spec.parameters") {
		return nil
	}
	nested := nestedReferences(p.NestedReferences)
	nested = append(nested, p.NestedArtifactTypes...)
	switch {
	case len(p.TrustPolicies) == 0 && p.Key != "":
		d.entry.fail("key %s is a file in Ratify's container (legacy configuration): put the public key in a KeyManagementProvider of type inline (contentType: key) and name it in trustPolicies[].keys", p.Key)
		return nil
	case len(p.TrustPolicies) == 0:
		d.entry.fail("legacy keyless configuration (no trustPolicies): Ratify accepted any Fulcio certificate; vouch requires the signers' identities: use trustPolicies with keyless.certificateIdentity and keyless.certificateOIDCIssuer")
		return nil
	case len(p.TrustPolicies) > 1:
		d.entry.fail("%d trust policies: a vouch cosign verifier has one trust; write one cosign verifier per trust policy, and policy scopes for their repositories whose requirements name them (verifiers)", len(p.TrustPolicies))
		return nil
	}
	tp := p.TrustPolicies[0]
	path := "spec.parameters.trustPolicies[0]"
	if !(len(tp.Scopes) == 1 && tp.Scopes[0] == "*") {
		d.entry.change("%s.scopes %s: the verifier applies to every repository; restrict it with policy scopes", path, strings.Join(tp.Scopes, ", "))
	}
	var cfg cosign.Config
	for i, k := range tp.Keys {
		kp := fmt.Sprintf("%s.keys[%d]", path, i)
		switch {
		case k.File != "":
			d.entry.fail("%s.file %s is a file in Ratify's container: put the public key in a KeyManagementProvider of type inline (contentType: key)", kp, k.File)
			return nil
		case k.Provider == "":
			d.entry.fail("%s.provider: required", kp)
			return nil
		}
		prov, err := c.lookupKMP(k.Provider, t.namespace)
		if err != nil {
			d.entry.fail("%s: %v", kp, err)
			return nil
		}
		if prov.unusable != "" {
			d.entry.fail("%s: %s", kp, prov.unusable)
			return nil
		}
		if prov.keys == "" {
			d.entry.fail("%s: %s holds certificates, not keys", kp, prov.doc)
			return nil
		}
		if k.Name != "" || k.Version != "" {
			d.entry.change("%s.name/version ignored: an inline provider holds its keys without names", kp)
		}
		cfg.Keys.PEM = appendPEM(cfg.Keys.PEM, prov.keys)
		prov.usedBy = appendUnique(prov.usedBy, t.String(c.opts.Name)+" verifier "+d.name+" keys")
	}
	kl := tp.Keyless
	keyless := kl.CertificateIdentity != "" || kl.CertificateIdentityRegExp != "" || kl.CertificateOIDCIssuer != "" || kl.CertificateOIDCIssuerRegExp != ""
	switch {
	case keyless && len(tp.Keys) > 0:
		d.entry.fail("%s: both keys and keyless; Ratify uses one: keep one of them", path)
		return nil
	case !keyless && len(tp.Keys) == 0:
		d.entry.fail("%s: neither keys nor keyless identities: nothing to trust", path)
		return nil
	case keyless:
		cfg.Identities = []cosign.Identity{{
			Issuer: kl.CertificateOIDCIssuer, IssuerRegExp: kl.CertificateOIDCIssuerRegExp,
			Subject: kl.CertificateIdentity, SubjectRegExp: kl.CertificateIdentityRegExp,
		}}
		// Ratify (cosign) anchors nothing; vouch's regular expressions are
		// not anchored either, so they mean the same.
		if kl.CTLogVerify != nil && !*kl.CTLogVerify {
			cfg.IgnoreSCTUnsafe = true
		}
	}
	tlog := tp.TLogVerify == nil || *tp.TLogVerify
	if !tlog {
		cfg.IgnoreTlogUnsafe = true
	}
	if tlog || keyless {
		cfg.TrustedRootRef = &trust.Ref{Kind: trust.KindConfigMap, Name: SigstoreConfigMapName, Key: SigstoreKey}
		ns := c.opts.Namespace
		if t.namespace != "" {
			ns = t.namespace
		}
		d.entry.change("vouch checks transparency-log entries and Fulcio certificates offline against a Sigstore trusted root: create the ConfigMap %s/%s with key %s (Sigstore's public-good trusted_root.json, which cosign caches under ~/.sigstore/root/tuf-repo-cdn.sigstore.dev/targets/)", ns, SigstoreConfigMapName, SigstoreKey)
	}
	for _, r := range []string{p.RekorURL, tp.RekorURL} {
		if r != "" && strings.TrimSuffix(r, "/") != defaultRekor && tlog {
			d.entry.change("rekorURL %s: vouch asks no Rekor server; the trusted root must hold that Rekor's public key (cosign trusted-root create)", r)
		}
	}
	return &conversion{nested: nested, verifiers: []config.Verifier{{Name: d.name, Type: "cosign", Cosign: &cfg}}}
}

func (c *converter) sbom(d *document, s verifierSpec) *conversion {
	var p sbomParams
	if !decode(d, s.Parameters, &p, "spec.parameters") {
		return nil
	}
	nested := nestedReferences(p.NestedReferences)
	cfg := &sbom.Config{DeniedLicenses: p.DisallowedLicenses}
	for i, pkg := range p.DisallowedPackages {
		if pkg.Name == "" {
			d.entry.fail("spec.parameters.disallowedPackages[%d].name: required", i)
			return nil
		}
		if pkg.Version != "" {
			cfg.DeniedPackages = append(cfg.DeniedPackages, pkg.Name+"@"+pkg.Version)
		} else {
			cfg.DeniedPackages = append(cfg.DeniedPackages, pkg.Name)
		}
	}
	if len(p.DisallowedLicenses) > 0 {
		d.entry.change("disallowedLicenses became deniedLicenses, which vouch evaluates as SPDX expressions: a package under \"A OR B\" passes when only A is denied (Ratify failed it), and a license that is not a valid SPDX expression fails (allowUnparsableLicenses: true lets it pass)")
	}
	if len(cfg.DeniedLicenses) == 0 && len(cfg.DeniedPackages) == 0 {
		d.entry.change("no disallowedLicenses or disallowedPackages: the verifier checks that the SBOM is well formed")
	}
	return &conversion{nested: nested, verifiers: []config.Verifier{{Name: d.name, Type: "sbom", SBOM: cfg}}}
}

func (c *converter) vulnreport(d *document, s verifierSpec) *conversion {
	var p vulnParams
	if !decode(d, s.Parameters, &p, "spec.parameters") {
		return nil
	}
	nested := nestedReferences(p.NestedReferences)
	cfg := &vulnreport.Config{DeniedCVEs: p.DenylistCVEs, MaxAge: p.MaximumAge, CreatedAnnotation: p.CreatedAnnotationName}
	for _, sev := range p.DisallowedSeverities {
		cfg.DeniedSeverities = append(cfg.DeniedSeverities, strings.ToLower(sev))
	}
	if p.Passthrough {
		d.entry.change("passthrough dropped: Ratify left the decision to a Rego policy; vouch's verifier decides with the settings converted")
	}
	if p.SchemaURL != "" {
		d.entry.change("schemaURL dropped: vouch checks SARIF 2.1.0 itself")
	}
	return &conversion{nested: nested, verifiers: []config.Verifier{{Name: d.name, Type: "vulnreport", VulnReport: cfg}}}
}

func (c *converter) schema(d *document, s verifierSpec) *conversion {
	var p schemaParams
	if !decode(d, s.Parameters, &p, "spec.parameters") {
		return nil
	}
	nested := nestedReferences(p.NestedReferences)
	if len(p.Schemas) != 1 {
		d.entry.fail("spec.parameters.schemas: %d schemas; a vouch schema verifier checks one layer media type: write one schema verifier per media type", len(p.Schemas))
		return nil
	}
	var mediaType, schemaURL string
	for mediaType, schemaURL = range p.Schemas {
	}
	u, err := url.Parse(schemaURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		d.entry.fail("spec.parameters.schemas[%s]: %s is not an http(s) URL (a file in Ratify's container cannot be read): put the schema in a ConfigMap and write a schema verifier with schemaRef", mediaType, schemaURL)
		return nil
	}
	d.entry.change("allowNetworkFetch: true, as Ratify downloaded the schema %s too; pin a copy with schemaFileRef to verify without the network", schemaURL)
	cfg := &schema.Config{ArtifactTypes: artifactTypes(s.ArtifactTypes), SchemaURL: schemaURL, AllowNetworkFetch: true, LayerMediaType: mediaType}
	return &conversion{nested: nested, verifiers: []config.Verifier{{Name: d.name, Type: "schema", Schema: cfg}}}
}

func (c *converter) policy(d *document) {
	t := c.target(d)
	var s policySpec
	if !decode(d, d.spec, &s, "spec") {
		return
	}
	switch s.Type {
	case "config-policy", "configpolicy":
	case "rego-policy", "regopolicy":
		d.entry.fail("rego-policy: vouch has no Rego policy yet (planned, over vouch's report tree); write the requirements as policy.scopes[].require (docs/configuration.md)")
		return
	case "":
		d.entry.fail("spec.type: required (config-policy)")
		return
	default:
		d.entry.fail("spec.type: %q is not config-policy or rego-policy", s.Type)
		return
	}
	var p configPolicyParams
	if !decode(d, s.Parameters, &p, "spec.parameters") {
		return
	}
	if t.policyFrom != "" {
		d.entry.fail("%s already gave %s its policy; Ratify reads one Policy (named ratify-policy)", t.policyFrom, t.String(c.opts.Name))
		return
	}
	avp := p.ArtifactVerificationPolicies
	def := policy.MatchAll
	for _, k := range slices.Sorted(maps.Keys(avp)) {
		v := avp[k]
		if v != policy.MatchAny && v != policy.MatchAll {
			d.entry.fail("spec.parameters.artifactVerificationPolicies[%s]: %q is not any or all", k, v)
			return
		}
		if k == ratifyPolicyDefaultName {
			def = v
		}
	}
	match := func(at string) string {
		if m, ok := avp[at]; ok {
			return m
		}
		return def
	}
	nestedOf := map[string][]string{}
	var handled []string
	for _, v := range t.verifiers {
		for _, at := range v.types {
			handled = appendUnique(handled, at)
			for _, n := range v.nested {
				nestedOf[at] = appendUnique(nestedOf[at], n)
			}
		}
	}
	var reqFor func(at string, depth int) policy.Requirement
	reqFor = func(at string, depth int) policy.Requirement {
		r := policy.Requirement{ArtifactType: at, Match: match(at)}
		if depth < 4 {
			for _, n := range nestedOf[at] {
				r.Require = append(r.Require, reqFor(n, depth+1))
			}
		}
		return r
	}
	var require []policy.Requirement
	var named []string
	for _, at := range slices.Sorted(maps.Keys(avp)) {
		if at == ratifyPolicyDefaultName {
			continue
		}
		named = append(named, at)
		require = append(require, reqFor(at, 0))
	}
	var others []string
	for _, at := range handled {
		if _, ok := avp[at]; !ok {
			others = append(others, at)
		}
	}
	switch {
	case len(named) == 0 && len(others) == 0:
		d.entry.fail("nothing to require: the policy names no artifact type and no converted verifier of %s checks one", t.String(c.opts.Name))
		return
	case len(named) == 0 && len(others) == 1:
		// Ratify needs one report, so the one type must be present.
		require = append(require, reqFor(others[0], 0))
	default:
		for _, at := range others {
			r := reqFor(at, 0)
			r.Optional = true
			require = append(require, r)
		}
		if len(named) == 0 {
			// Ratify needs one verified report of some type.
			var alts []policy.Requirement
			for _, at := range others {
				r := reqFor(at, 0)
				r.Match = policy.MatchAny
				alts = append(alts, r)
			}
			require = append(require, policy.Requirement{AnyOf: alts})
		}
	}
	if len(others) > 0 && !(len(named) == 0 && len(others) == 1) {
		d.entry.change("default: %s became optional requirements (match: %s) for the types the verifiers check that the policy does not name (%s), as vouch has no catch-all requirement", def, def, strings.Join(others, ", "))
	}
	if p.PassthroughEnabled {
		d.entry.change("passthroughEnabled dropped: Ratify left the decision to the Gatekeeper template; vouch decides (to observe without denying, set the scope's mode to audit)")
	}
	if t.namespace != "" {
		d.entry.change("a VouchConfig adds to the cluster's requirements in namespace %s, where Ratify's NamespacedPolicy replaced the cluster's Policy", t.namespace)
	}
	pol := &policy.Config{Scopes: []policy.Scope{{Name: "ratify", Repositories: []string{"*"}, Require: require}}}
	if err := pol.Validate(); err != nil {
		d.entry.fail("the converted policy is not valid: %v", err)
		return
	}
	t.spec.Policy = pol
	t.policyFrom = d.String()
	d.entry.Into = c.into(d, t, "policy scope ratify")
}

// finish notes what depends on the whole input.
func (c *converter) finish() {
	for _, t := range c.targets {
		if t.policyFrom != "" {
			continue
		}
		for _, v := range t.verifiers {
			if len(v.nested) > 0 {
				v.entry.change("nestedReferences %s: vouch expresses them as nested policy requirements, and no Policy was converted for %s: add them to its policy", strings.Join(v.nested, ", "), t.String(c.opts.Name))
			}
		}
	}
}

// write writes the resources and ConfigMaps of res, and reads the
// resources back with config.ParseResources.
func (c *converter) write(res *Result) error {
	namespaces := make([]string, 0, len(c.targets))
	for ns := range c.targets {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces) // "" (the cluster) first
	var manifest, maps bytes.Buffer
	for _, ns := range namespaces {
		t := c.targets[ns]
		if len(t.spec.Verifiers) == 0 && len(t.spec.TrustStores) == 0 && t.spec.Policy == nil && t.registriesFrom == "" {
			continue
		}
		var doc []byte
		var err error
		if ns == "" {
			doc, err = resourceManifest(config.KindCluster, c.opts.Name, "", &t.spec)
		} else {
			doc, err = resourceManifest(config.KindTenant, c.opts.Name, ns, &t.spec.TenantSpec)
		}
		if err != nil {
			return err
		}
		if manifest.Len() > 0 {
			manifest.WriteString("---\n")
		}
		manifest.Write(doc)
		if len(t.configMap) > 0 {
			cmNS := ns
			if cmNS == "" {
				cmNS = c.opts.Namespace
			}
			doc, err := configMapManifest(ConfigMapName, cmNS, t.configMap)
			if err != nil {
				return err
			}
			if maps.Len() > 0 {
				maps.WriteString("---\n")
			}
			maps.Write(doc)
		}
	}
	if manifest.Len() > 0 {
		if _, err := config.ParseResources(manifest.Bytes()); err != nil {
			return fmt.Errorf("the converted resources are not valid (a bug in the converter): %w", err)
		}
	}
	res.Manifest, res.ConfigMaps = manifest.Bytes(), maps.Bytes()
	return nil
}

// resourceManifest writes one of vouch's resources: its spec's fields in
// the order of the Go types (name and type first in a verifier), without
// empty objects.
func resourceManifest(kind, name, namespace string, spec any) ([]byte, error) {
	n, err := jsonNode(spec)
	if err != nil {
		return nil, err
	}
	meta := mapping("name", scalar(name))
	if namespace != "" {
		meta = mapping("name", scalar(name), "namespace", scalar(namespace))
	}
	return encodeNode(mapping(
		"apiVersion", scalar(config.APIVersion),
		"kind", scalar(kind),
		"metadata", meta,
		"spec", n,
	))
}

// configMapManifest writes a ConfigMap.
func configMapManifest(name, namespace string, data map[string]string) ([]byte, error) {
	var kv []any
	for _, k := range slices.Sorted(maps.Keys(data)) {
		kv = append(kv, k, scalar(data[k]))
	}
	return encodeNode(mapping(
		"apiVersion", scalar("v1"),
		"kind", scalar("ConfigMap"),
		"metadata", mapping("name", scalar(name), "namespace", scalar(namespace)),
		"data", mapping(kv...),
	))
}

// jsonNode is v's JSON form as a YAML node, keys in the order of v's
// fields, scalars in plain or literal style.
func jsonNode(v any) (*yaml.Node, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(j, &doc); err != nil {
		return nil, err
	}
	n := doc.Content[0]
	var restyle func(n *yaml.Node)
	restyle = func(n *yaml.Node) {
		// The encoder quotes a string that would read as another type.
		n.Style = 0
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "\n") {
			n.Style = yaml.LiteralStyle
		}
		if n.Kind == yaml.MappingNode {
			// Drop empty objects (keys: {}), which encoding/json writes for
			// struct fields, but not a verifier's section (sbom: {}).
			var kept []*yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				v := n.Content[i+1]
				if v.Kind == yaml.MappingNode && len(v.Content) == 0 && !sections[n.Content[i].Value] {
					continue
				}
				kept = append(kept, n.Content[i], v)
			}
			n.Content = kept
		}
		for _, c := range n.Content {
			restyle(c)
		}
	}
	restyle(n)
	return n, nil
}

// sections are the keys of verifiers' sections, which stay when empty.
var sections = map[string]bool{"notation": true, "cosign": true, "sbom": true, "vulnreport": true, "schema": true, "plugin": true}

func scalar(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
	}
	return n
}

// mapping builds a mapping node from keys and nodes.
func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Content = append(n.Content, scalar(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return n
}

func encodeNode(n *yaml.Node) ([]byte, error) {
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

func stringList(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok || s == "" {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func appendPEM(text, block string) string {
	if text == "" {
		return block
	}
	return strings.TrimRight(text, "\n") + "\n" + block
}

func appendUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
