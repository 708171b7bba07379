package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/trust"
)

func TestParseResourcesExamples(t *testing.T) {
	for _, name := range []string{"cluster.yaml", "tenant.yaml"} {
		data, err := os.ReadFile("../examples/kubernetes/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !config.IsManifest(data) {
			t.Errorf("%s: not recognised as a manifest", name)
		}
		rs, err := config.ParseResources(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(rs) != 1 {
			t.Fatalf("%s: %d resources", name, len(rs))
		}
	}
	if data, _ := os.ReadFile("../examples/config/vouch.yaml"); config.IsManifest(data) {
		t.Error("a config file recognised as a manifest")
	}
}

const cosignKeyRef = `
  verifiers:
    - name: c
      type: cosign
      cosign:
        ignoreTlogUnsafe: true
        keys:
`

func TestParseResourcesErrors(t *testing.T) {
	const cluster = "apiVersion: config.vouch.dev/v1alpha1\nkind: ClusterVouchConfig\nmetadata: {name: default}\nspec:\n"
	const tenant = "apiVersion: config.vouch.dev/v1alpha1\nkind: VouchConfig\nmetadata: {name: t, namespace: team-a}\nspec:\n"
	for _, tc := range []struct {
		name, doc, err string
	}{
		{"a file in a custom resource", cluster + cosignKeyRef + "          files: [cosign.pub]\n",
			"document 1 (ClusterVouchConfig default): spec.verifiers[0].cosign.keys.files[0]: files cannot be read from a custom resource; use a secret or configMap reference (spec.verifiers[0].cosign.keys.refs)"},
		{"a trust store file", cluster + "  trustStores: [{name: 'ca:x', files: [ca.pem]}]\n",
			"spec.trustStores[0].files[0]: files cannot be read from a custom resource"},
		{"a notation trust policy file", cluster + "  verifiers: [{name: n, type: notation, notation: {trustPolicy: tp.json}}]\n",
			"spec.verifiers[0].notation.trustPolicy: files cannot be read from a custom resource; use a secret or configMap reference (spec.verifiers[0].notation.trustPolicyRef)"},
		{"a docker config file", cluster + "  registries: {dockerConfig: /root/.docker/config.json}\n",
			"spec.registries.dockerConfig: files cannot be read"},
		{"a bad reference", cluster + cosignKeyRef + "          refs: [{kind: Pod, name: a, key: b}]\n",
			`spec.verifiers[0].cosign.keys.refs[0].kind: "Pod" is not Secret or ConfigMap`},
		{"an unknown verifier type", cluster + "  verifiers: [{name: g, type: gpg}]\n",
			`spec.verifiers[0].type: "gpg" is not a verifier type this vouch knows`},
		{"a tenant setting registries", tenant + "  registries: {plainHTTP: true}\n",
			"document 1 (VouchConfig team-a/t): spec.registries: unknown field (known fields: policy, trustStores, verifiers); a VouchConfig cannot set registries or limits"},
		{"a tenant naming a namespace", tenant + cosignKeyRef + "          refs: [{kind: Secret, namespace: vouch, name: a, key: b}]\n",
			"spec.verifiers[0].cosign.keys.refs[0].namespace: a VouchConfig reads Secrets and ConfigMaps of its own namespace only"},
		{"a tenant scoping namespaces", tenant + "  policy: {scopes: [{name: s, repositories: ['*'], namespaces: [other], require: [{artifactType: x}]}]}\n",
			"spec.policy.scopes[0].namespaces: a VouchConfig applies to its own namespace only"},
		{"a tenant running a plugin", tenant + "  verifiers: [{name: p, type: plugin, plugin: {path: /bin/true}}]\n",
			"spec.verifiers[0].type: a VouchConfig cannot run plugins"},
		{"a tenant running a notation plugin", tenant + "  verifiers: [{name: n, type: notation, notation: {trustPolicyRef: {kind: ConfigMap, name: a, key: b}, plugins: {dir: /plugins}}}]\n",
			"spec.verifiers[0].notation.plugins: a VouchConfig cannot run notation verification plugins"},
		{"a policy error", cluster + "  policy: {scopes: [{name: s, repositories: ['*']}]}\n",
			"spec.policy.scopes[0].require: at least one requirement is required"},
		{"a cluster resource with a namespace", strings.Replace(cluster, "{name: default}", "{name: default, namespace: x}", 1) + "  limits: {}\n",
			"metadata.namespace: a ClusterVouchConfig is cluster-scoped"},
		{"another kind", "apiVersion: config.vouch.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\n", `kind: "Policy" is not ClusterVouchConfig or VouchConfig`},
		{"another version", "apiVersion: config.vouch.dev/v1\nkind: VouchConfig\nmetadata: {name: p}\n", `apiVersion: "config.vouch.dev/v1" is not config.vouch.dev/v1alpha1`},
		{"the second document", cluster + "  limits: {}\n---\n" + tenant + "  verifiers: [{name: x}]\n", "document 2 (VouchConfig team-a/t): spec.verifiers[0].type: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.ParseResources([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v\nwant it to contain %q", err, tc.err)
			}
		})
	}
}

func TestFileRefusesReferences(t *testing.T) {
	for _, tc := range []struct{ doc, err string }{
		{"version: v1\ntrustStores: [{name: 'ca:x', refs: [{kind: Secret, name: a, key: b}]}]\n",
			"trustStores[0].refs[0]: secret and configMap references need the Kubernetes source (a ClusterVouchConfig or VouchConfig); in a config file, name a file (trustStores[0].files)"},
		{"version: v1\nverifiers: [{name: c, type: cosign, cosign: {ignoreTlogUnsafe: true, keys: {refs: [{kind: Secret, name: a, key: b}]}}}]\n",
			"verifiers[0].cosign.keys.refs[0]: secret and configMap references need the Kubernetes source"},
	} {
		if _, err := config.Parse([]byte(tc.doc), ""); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("err = %v\nwant it to contain %q", err, tc.err)
		}
	}
}

// TestBuildResolvesReferences builds a cluster spec whose trust material
// comes from references, through a resolver and without one.
func TestBuildResolvesReferences(t *testing.T) {
	keyPEM, err := os.ReadFile("../verifier/cosign/testdata/cosign.pub")
	if err != nil {
		t.Skip("no cosign key in testdata:", err)
	}
	doc := "apiVersion: config.vouch.dev/v1alpha1\nkind: ClusterVouchConfig\nmetadata: {name: default}\nspec:\n" + cosignKeyRef +
		"          refs: [{kind: Secret, name: cosign-pub, key: cosign.pub}]\n"
	rs, err := config.ParseResources([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	spec := rs[0].Spec
	if _, _, err := spec.Build(nil, "spec."); err == nil || !strings.Contains(err.Error(), "spec.verifiers[0].cosign.keys.refs[0]: secret cosign-pub key cosign.pub: secret and configMap references need the Kubernetes source") {
		t.Errorf("without a resolver: %v", err)
	}
	secrets := map[trust.Ref][]byte{{Kind: "Secret", Name: "cosign-pub", Key: "cosign.pub"}: keyPEM}
	resolver := trust.ResolverFunc(func(r trust.Ref, max int64) ([]byte, error) {
		if data, ok := secrets[r]; ok {
			return data, nil
		}
		return nil, &missingError{r}
	})
	vs, _, err := spec.Build(resolver, "spec.")
	if err != nil || len(vs) != 1 {
		t.Fatalf("Build = %d verifiers, %v", len(vs), err)
	}
	// What a reference holds is named by its field and the reference.
	secrets[trust.Ref{Kind: "Secret", Name: "cosign-pub", Key: "cosign.pub"}] = []byte("not a key")
	if _, _, err := spec.Build(resolver, "spec."); err == nil || !strings.Contains(err.Error(), "cosign.keys.refs[0] (secret cosign-pub key cosign.pub): ") {
		t.Errorf("a reference holding no key: %v", err)
	}
	delete(secrets, trust.Ref{Kind: "Secret", Name: "cosign-pub", Key: "cosign.pub"})
	if _, _, err := spec.Build(resolver, "spec."); err == nil || !strings.Contains(err.Error(), "spec.verifiers[0].cosign.keys.refs[0]: secret cosign-pub has no key cosign.pub") {
		t.Errorf("a missing key: %v", err)
	}
}

type missingError struct{ r trust.Ref }

func (e *missingError) Error() string {
	return strings.ToLower(e.r.Kind[:1]) + e.r.Kind[1:] + " " + e.r.Name + " has no key " + e.r.Key
}

// TestSpecRefs lists every reference of the cluster example, in order.
func TestSpecRefs(t *testing.T) {
	data, err := os.ReadFile("../examples/kubernetes/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := config.ParseResources(data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs[0].Spec.Refs() {
		got = append(got, r.String())
	}
	want := "secret registry-credentials key .dockerconfigjson, configMap example-ca key ca.crt, " +
		"configMap notation-trust-policy key trustpolicy.json, secret vouch/cosign-pub key cosign.pub"
	if strings.Join(got, ", ") != want {
		t.Errorf("Refs = %s\nwant   %s", strings.Join(got, ", "), want)
	}
}
