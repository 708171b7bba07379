package config_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/internal/testbed/testca"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/notation"
	"github.com/vouch-project/vouch/verifier/sbom"
)

const (
	notationSig = "application/vnd.cncf.notary.signature"
	spdxJSON    = "application/spdx+json"
)

// objects is a trust.Resolver over Secrets and ConfigMaps held in memory,
// keyed "namespace/name/key"; a reference without namespace reads "vouch".
type objects map[string]string

func (o objects) Resolve(ref trust.Ref, max int64) ([]byte, error) {
	ns := ref.Namespace
	if ns == "" {
		ns = "vouch"
	}
	v, ok := o[ns+"/"+ref.Name+"/"+ref.Key]
	if !ok {
		return nil, fmt.Errorf("%s %s/%s has no key %s", strings.ToLower(ref.Kind), ns, ref.Name, ref.Key)
	}
	return []byte(v), nil
}

// trustPolicy is a Notation trust policy trusting the store ca:NAME.
func trustPolicy(name string) string {
	return `{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:` + name + `"],"trustedIdentities":["*"]}]}`
}

// notationSpec is a spec with a trust store ca:store holding ca, and a
// notation verifier named verifier whose trust policy is the ConfigMap
// trust-policy (key tp.json) of the spec's namespace.
func notationSpec(store, verifier string, ca []byte) config.TenantSpec {
	return config.TenantSpec{
		TrustStores: []config.TrustStore{{Name: "ca:" + store, PEM: string(ca)}},
		Verifiers: []config.Verifier{{Name: verifier, Type: "notation", Notation: &notation.Config{
			TrustPolicyRef: &trust.Ref{Kind: trust.KindConfigMap, Name: "trust-policy", Key: "tp.json"},
		}}},
	}
}

// requireSigned is a policy scope over every repository requiring a
// notation signature, verified by verifier when it is not "", in mode.
func requireSigned(mode vouch.Mode, verifier string) *policy.Config {
	req := policy.Requirement{ArtifactType: notationSig}
	if verifier != "" {
		req.Verifiers = []string{verifier}
	}
	return &policy.Config{Scopes: []policy.Scope{{Name: "signed", Repositories: []string{"*"}, Mode: mode, Require: []policy.Requirement{req}}}}
}

// TestComposeOverARegistry: the cluster requires a Notary Project
// signature under CA-cluster; tenants add theirs in their namespaces. Real
// signatures made with notation-go, a real registry, the real Executor
// behind engine.NamespaceExecutors wired as vouch serve wires it.
func TestComposeOverARegistry(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	ctx := context.Background()
	caCluster, err := testbed.NewNotary(testbed.NotaryOptions{CAName: "CA-cluster", SignerName: "cluster signer"})
	if err != nil {
		t.Fatal(err)
	}
	caA, err := testbed.NewNotary(testbed.NotaryOptions{CAName: "CA-a", SignerName: "team-a signer"})
	if err != nil {
		t.Fatal(err)
	}
	p := testbed.NewPusher(t, reg.Host, "tenants/app")
	sign := func(n *testbed.Notary, desc ocispec.Descriptor) {
		t.Helper()
		if err := n.Sign(ctx, p.Repo, desc); err != nil {
			t.Fatal(err)
		}
	}
	clusterOnly := p.Image("cluster-only", "1")
	sign(caCluster, clusterOnly)
	both := p.Image("both", "2")
	sign(caCluster, both)
	sign(caA, both)
	tenantOnly := p.Image("tenant-only", "3")
	sign(caA, tenantOnly)
	many := p.Image("many", "5")
	for range 4 {
		sign(caCluster, many)
	}
	sign(caA, many)
	withSBOM := p.Image("with-sbom", "4")
	sign(caCluster, withSBOM)
	sign(caA, withSBOM)
	p.Attach(withSBOM, spdxJSON, spdxJSON, []byte(`{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"app","documentNamespace":"https://example.com/app","creationInfo":{"created":"`+time.Now().UTC().Format(time.RFC3339)+`","creators":["Tool: test"]},"packages":[{"SPDXID":"SPDXRef-Package-0","name":"lib","versionInfo":"1.0","downloadLocation":"NOASSERTION","licenseConcluded":"MIT"}]}`))

	cluster := &config.Spec{TenantSpec: notationSpec("cluster", "notation", caCluster.CA.CertPEM())}
	// The cluster's requirement counts every verifier's results
	// (no verifiers filter): composed, that is its own verifiers' only.
	cluster.Policy = requireSigned("", "")
	// The tenants' verifiers carry the cluster's names, on purpose: they
	// must not be confused with the cluster's. team-a's requirement names
	// its verifier, team-w's and team-c's do not.
	strict := func(ns string, mode vouch.Mode) config.Tenant {
		t := config.Tenant{Namespace: ns, Name: "strict", Spec: notationSpec("team-a", "notation", caA.CA.CertPEM())}
		t.Spec.Policy = requireSigned(mode, "")
		if ns == "team-a" {
			t.Spec.Policy = requireSigned(mode, "notation")
		}
		return t
	}
	sbomTenant := config.Tenant{Namespace: "team-c", Name: "sbom", Spec: config.TenantSpec{
		Verifiers: []config.Verifier{{Name: "sbom", Type: "sbom", SBOM: &sbom.Config{DeniedLicenses: []string{"AGPL-3.0-only"}}}},
		Policy: &policy.Config{Scopes: []policy.Scope{{Name: "sbom", Repositories: []string{reg.Host + "/tenants/*"},
			Require: []policy.Requirement{{ArtifactType: spdxJSON, Verifiers: []string{"sbom"}}}}}},
	}}
	tenants := []config.Tenant{strict("team-a", ""), strict("team-w", vouch.ModeWarn), strict("team-c", ""), sbomTenant}
	res := objects{"vouch/trust-policy/tp.json": trustPolicy("cluster")}
	for _, ns := range []string{"team-a", "team-w", "team-c"} {
		res[ns+"/trust-policy/tp.json"] = trustPolicy("team-a")
	}
	comp, err := config.Compose(cluster, tenants, res)
	if err != nil {
		t.Fatal(err)
	}

	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	executors, err := engine.NewNamespaceExecutors(engine.NamespaceOptions{
		// One check at a time, so that what early stopping spares is
		// predictable.
		Base: vouch.Executor{Store: st, Verifiers: comp.Verifiers, Concurrency: 1}, Policy: comp.Policy, PolicyHash: "h",
		Namespace: func(ns string) (*engine.Namespace, error) {
			n, err := comp.Namespace(ns)
			if n == nil || err != nil {
				return nil, err
			}
			return &engine.Namespace{Policy: n.Policy, Verifiers: n.Verifiers, Fingerprint: n.Fingerprint}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	const tenantA = "tenant VouchConfig team-a/strict: "
	tests := []struct {
		ns, tag string
		verdict vouch.Verdict
		mode    vouch.Mode
		waived  bool
		// reason must start with prefix and contain has.
		prefix, has string
	}{
		{"team-a", "cluster-only", vouch.Denied, vouch.ModeEnforce, false, tenantA + `scope "signed": no ` + notationSig + " verified", "team-a/strict/notation: "},
		{"team-a", "both", vouch.Allowed, vouch.ModeEnforce, false, `cluster: scope "signed"`, "; " + tenantA},
		// CA-a's signature is valid, but not for the cluster's requirement.
		{"team-a", "tenant-only", vouch.Denied, vouch.ModeEnforce, false, `cluster: scope "signed": no ` + notationSig + " verified", "failed: notation: untrusted signer"},
		{"team-b", "cluster-only", vouch.Allowed, vouch.ModeEnforce, false, `scope "signed"`, ""},
		{"team-b", "tenant-only", vouch.Denied, vouch.ModeEnforce, false, `scope "signed"`, ""},
		{"", "cluster-only", vouch.Allowed, vouch.ModeEnforce, false, `scope "signed"`, ""},
		// A tenant in warn mode waives its own requirement, not the
		// cluster's.
		{"team-w", "cluster-only", vouch.Allowed, vouch.ModeWarn, true, `cluster: scope "signed"`, "tenant VouchConfig team-w/strict: allowed in warn mode, would deny"},
		{"team-w", "tenant-only", vouch.Denied, vouch.ModeEnforce, false, `cluster: scope "signed"`, ""},
		// Two tenants in one namespace both apply.
		{"team-c", "both", vouch.Denied, vouch.ModeEnforce, false, `tenant VouchConfig team-c/sbom: scope "sbom": no ` + spdxJSON + " found", ""},
		{"team-c", "cluster-only", vouch.Denied, vouch.ModeEnforce, false, "tenant VouchConfig team-c/sbom: ", "; tenant VouchConfig team-c/strict: "},
		{"team-c", "with-sbom", vouch.Allowed, vouch.ModeEnforce, false, "cluster: ", "tenant VouchConfig team-c/sbom: scope \"sbom\": " + spdxJSON + " verified"},
	}
	for _, tt := range tests {
		t.Run(tt.ns+"/"+tt.tag, func(t *testing.T) {
			ex, _ := executors.Executor(tt.ns)
			rep, err := ex.Verify(ctx, testbed.Ref(t, reg.Host+"/tenants/app:"+tt.tag))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict != tt.verdict || rep.Mode != tt.mode || rep.Waived != tt.waived {
				t.Errorf("%s mode %s waived %v, want %s %s %v: %s", rep.Verdict, rep.Mode, rep.Waived, tt.verdict, tt.mode, tt.waived, rep.Reason)
			}
			if !strings.HasPrefix(rep.Reason, tt.prefix) || !strings.Contains(rep.Reason, tt.has) {
				t.Errorf("reason %q, want it to start with %q and contain %q", rep.Reason, tt.prefix, tt.has)
			}
		})
	}

	// Early stopping: without a tenant, the first signature that passes
	// settles the verdict; with one, every signature is checked (each
	// fails under one of the two trusts), and the tenant's is found.
	for _, ns := range []string{"team-a", "team-b"} {
		ex, _ := executors.Executor(ns)
		rep, err := ex.Verify(ctx, testbed.Ref(t, reg.Host+"/tenants/app:many"))
		if err != nil || rep.Verdict != vouch.Allowed {
			t.Fatalf("%s: many signatures: %v %+v", ns, err, rep)
		}
		skipped := 0
		for _, r := range rep.Root.Referrers {
			if r.Outcome == vouch.Skipped {
				skipped++
			}
		}
		// In team-b, 4 when a cluster signature comes first, 3 when the
		// tenant's does (signatures sort by digest).
		if ns == "team-a" && skipped != 0 || ns == "team-b" && skipped < 3 {
			t.Errorf("%s: %d of %d signatures skipped", ns, skipped, len(rep.Root.Referrers))
		}
	}

	// Namespaces without a VouchConfig share the cluster's executor and
	// hash; those with one have theirs, changing with the tenant.
	all, hash := executors.Executor("")
	if ex, h := executors.Executor("team-b"); ex != all || h != hash || len(ex.Verifiers) != 1 {
		t.Errorf("team-b: hash %s, %d verifiers; want the cluster's executor", h, len(ex.Verifiers))
	}
	exA, hashA := executors.Executor("team-a")
	if len(exA.Verifiers) != 2 || exA.Verifiers[1].Name() != "team-a/strict/notation" || !strings.HasPrefix(hashA, "h/ns=team-a/") {
		t.Errorf("team-a: hash %s, verifiers %v", hashA, exA.Verifiers)
	}
	res["team-a/trust-policy/tp.json"] = trustPolicy("team-a") + " "
	again, err := config.Compose(cluster, tenants, res)
	if err != nil {
		t.Fatal(err)
	}
	na, _ := again.Namespace("team-a")
	nb, _ := again.Namespace("team-b")
	if first, _ := comp.Namespace("team-a"); na.Fingerprint == first.Fingerprint || nb != nil {
		t.Errorf("a tenant's trust policy changed: fingerprint %s, was %s; team-b %+v", na.Fingerprint, first.Fingerprint, nb)
	}
}

// TestComposeErrors: what a tenant cannot do, with messages that name the
// resource and the field.
func TestComposeErrors(t *testing.T) {
	ca, err := testbed.NewNotary(testbed.NotaryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pem := ca.CA.CertPEM()
	cluster := func() *config.Spec {
		s := &config.Spec{TenantSpec: notationSpec("cluster", "cluster-notation", pem)}
		s.Policy = requireSigned("", "cluster-notation")
		return s
	}
	tenant := func(edit func(*config.Tenant)) config.Tenant {
		tn := config.Tenant{Namespace: "team-a", Name: "strict", Spec: notationSpec("team-a", "notation", pem)}
		tn.Spec.Policy = requireSigned("", "notation")
		if edit != nil {
			edit(&tn)
		}
		return tn
	}
	res := objects{"vouch/trust-policy/tp.json": trustPolicy("cluster"), "team-a/trust-policy/tp.json": trustPolicy("team-a"), "team-b/trust-policy/tp.json": trustPolicy("team-a")}
	tests := []struct {
		name    string
		cluster *config.Spec
		tenants []config.Tenant
		want    string
	}{
		{"a tenant names a cluster verifier", cluster(), []config.Tenant{tenant(func(tn *config.Tenant) {
			tn.Spec.Policy.Scopes[0].Require[0].Verifiers = []string{"cluster-notation"}
		})}, `VouchConfig team-a/strict: spec.policy.scopes[0].require[0].verifiers[0]: "cluster-notation" is not a verifier of this VouchConfig`},
		{"nested, in anyOf", cluster(), []config.Tenant{tenant(func(tn *config.Tenant) {
			tn.Spec.Policy.Scopes[0].Require[0] = policy.Requirement{AnyOf: []policy.Requirement{{ArtifactType: notationSig, Verifiers: []string{"notation", "team-b/x/notation"}}}}
		})}, `VouchConfig team-a/strict: spec.policy.scopes[0].require[0].anyOf[0].verifiers[1]: "team-b/x/notation" is not a verifier`},
		{"a tenant reads its own namespace only", cluster(), []config.Tenant{tenant(func(tn *config.Tenant) { tn.Namespace = "team-c" })},
			`VouchConfig team-c/strict: spec.verifiers[0].notation.trustPolicyRef: configmap team-c/trust-policy has no key tp.json`},
		{"a tenant's reference names a namespace", cluster(), []config.Tenant{tenant(func(tn *config.Tenant) {
			tn.Spec.Verifiers[0].Notation.TrustPolicyRef.Namespace = "vouch"
		})}, `VouchConfig team-a/strict: spec.verifiers[0].notation.trustPolicyRef.namespace: a VouchConfig reads Secrets and ConfigMaps of its own namespace only`},
		{"a tenant's scope names namespaces", cluster(), []config.Tenant{tenant(func(tn *config.Tenant) {
			tn.Spec.Policy.Scopes[0].Namespaces = []string{"team-b"}
		})}, `VouchConfig team-a/strict: spec.policy.scopes[0].namespaces: a VouchConfig applies to its own namespace only`},
		{"an empty tenant", cluster(), []config.Tenant{{Namespace: "team-a", Name: "empty"}}, `VouchConfig team-a/empty: spec: no verifiers and no policy`},
		{"a verifier name with a slash", cluster(), []config.Tenant{tenant(func(tn *config.Tenant) {
			tn.Spec.Verifiers[0].Name = "x/notation"
			tn.Spec.Policy.Scopes[0].Require[0].Verifiers = nil
		})}, `VouchConfig team-a/strict: spec.verifiers[0].name: "x/notation": a custom resource's verifier names have no "/"`},
		{"a cluster verifier that looks like a tenant's", func() *config.Spec {
			s := cluster()
			s.Verifiers[0].Name = "team-a/strict/notation"
			s.Policy.Scopes[0].Require[0].Verifiers = nil
			return s
		}(), nil, `spec.verifiers[0].name: "team-a/strict/notation": a custom resource's verifier names have no "/"`},
		{"the same tenant twice", cluster(), []config.Tenant{tenant(nil), tenant(nil)}, `VouchConfig team-a/strict: given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Compose(tt.cluster, tt.tenants, res)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compose: %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("every tenant at fault is named", func(t *testing.T) {
		bad := func(ns string) config.Tenant {
			return tenant(func(tn *config.Tenant) {
				tn.Namespace = ns
				tn.Spec.Policy.Scopes[0].Require[0].Verifiers = []string{"cluster-notation"}
			})
		}
		_, err := config.Compose(cluster(), []config.Tenant{bad("team-a"), tenant(func(tn *config.Tenant) { tn.Name = "fine" }), bad("team-b")}, res)
		var te *config.TenantError
		if !errors.As(err, &te) || te.Namespace != "team-a" || !strings.Contains(err.Error(), "VouchConfig team-b/strict: ") || strings.Contains(err.Error(), "fine") {
			t.Fatalf("Compose: %v", err)
		}
	})
}

// TestComposeExamples: the worked example of docs/kubernetes.md composes,
// with the verifier names it gives, and changes nothing outside team-a.
func TestComposeExamples(t *testing.T) {
	read := func(name string) config.Resource {
		data, err := os.ReadFile("../examples/kubernetes/" + name)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := config.ParseResources(data)
		if err != nil {
			t.Fatal(err)
		}
		return rs[0]
	}
	cluster, tenant := read("cluster.yaml"), read("tenant.yaml")
	file := func(p string) string {
		data, err := os.ReadFile("../examples/config/" + p)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	pub := func() string {
		k, err := testca.NewKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		return string(k.Public)
	}
	res := objects{
		"vouch/example-ca/ca.crt":                      file("certs/example-ca.pem"),
		"vouch/notation-trust-policy/trustpolicy.json": file("trustpolicy.json"),
		"vouch/cosign-pub/cosign.pub":                  pub(),
		"team-a/team-a-cosign-pub/cosign.pub":          pub(),
	}
	comp, err := config.Compose(&cluster.Spec, []config.Tenant{{Namespace: tenant.Namespace, Name: tenant.Name, Spec: tenant.Spec.TenantSpec}}, res)
	if err != nil {
		t.Fatal(err)
	}
	n, err := comp.Namespace("team-a")
	if err != nil || n == nil {
		t.Fatalf("team-a: %+v %v", n, err)
	}
	var names []string
	for _, v := range n.Verifiers {
		names = append(names, v.Name())
	}
	if strings.Join(names, " ") != "team-a/team-a/team-a-cosign team-a/team-a/team-a-sbom" {
		t.Errorf("team-a's verifiers: %v", names)
	}
	if n, err := comp.Namespace("team-b"); n != nil || err != nil {
		t.Errorf("team-b: %+v %v, want nothing added", n, err)
	}
}

// TestComposeFailClosed: a broken tenant does not break the cluster nor
// other tenants; its namespace denies every subject, naming it, whatever
// the cluster says; the other namespaces are served as Compose serves
// them. The tenant's own resolver reads its references.
func TestComposeFailClosed(t *testing.T) {
	ca, err := testbed.NewNotary(testbed.NotaryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pem := ca.CA.CertPEM()
	cluster := &config.Spec{TenantSpec: notationSpec("cluster", "notation", pem)}
	good := config.Tenant{Namespace: "team-b", Name: "fine", Spec: notationSpec("team-b", "notation", pem)}
	broken := config.Tenant{Namespace: "team-a", Name: "broken", Spec: notationSpec("team-a", "notation", pem)}
	alsoGood := config.Tenant{Namespace: "team-a", Name: "fine", Spec: notationSpec("team-a", "notation", pem),
		Resolver: objects{"team-a/trust-policy/tp.json": trustPolicy("team-a")}}
	res := objects{"vouch/trust-policy/tp.json": trustPolicy("cluster"), "team-b/trust-policy/tp.json": trustPolicy("team-b")}
	if _, err := config.Compose(cluster, []config.Tenant{good, broken, alsoGood}, res); err == nil || !strings.Contains(err.Error(), "VouchConfig team-a/broken: ") {
		t.Fatalf("Compose: %v, want team-a/broken refused", err)
	}
	comp, refused, err := config.ComposeFailClosed(cluster, []config.Tenant{good, broken, alsoGood}, res)
	if err != nil {
		t.Fatal(err)
	}
	const why = "spec.verifiers[0].notation.trustPolicyRef: configmap team-a/trust-policy has no key tp.json"
	if len(refused) != 1 || refused[0].Name != "broken" || refused[0].Err.Error() != why || len(comp.Refused()) != 1 {
		t.Fatalf("refused %v", refused)
	}
	// team-a denies, naming the refused tenant, whatever the cluster's
	// part says.
	root := &vouch.Node{MediaType: ocispec.MediaTypeImageManifest}
	ref := vouch.Reference{}
	na, err := comp.Namespace("team-a")
	if err != nil || na == nil || len(na.Verifiers) != 1 || na.Verifiers[0].Name() != "team-a/fine/notation" {
		t.Fatalf("team-a: %+v %v", na, err)
	}
	d, err := na.Policy.Decide(context.Background(), ref, root)
	want := "tenant VouchConfig team-a/broken: not applied (" + why + "), so vouch denies every image in namespace team-a until this VouchConfig is fixed or deleted"
	if err != nil || d.Verdict != vouch.Denied || d.Mode != vouch.ModeEnforce || !strings.Contains(d.Reason, want) {
		t.Errorf("team-a: %+v %v, want denied with %q", d, err, want)
	}
	nb, err := comp.Namespace("team-b")
	if err != nil || nb == nil || strings.Contains(fmt.Sprint(nb.Policy), "broken") || len(nb.Verifiers) != 1 {
		t.Fatalf("team-b: %+v %v", nb, err)
	}
	if n, err := comp.Namespace("team-c"); n != nil || err != nil {
		t.Errorf("team-c: %+v %v, want nothing added", n, err)
	}
	// The namespace's fingerprint changes with why its tenant is refused.
	res["team-a/trust-policy/tp.json"] = "{"
	again, _, err := config.ComposeFailClosed(cluster, []config.Tenant{good, broken, alsoGood}, res)
	if err != nil {
		t.Fatal(err)
	}
	if na2, _ := again.Namespace("team-a"); na2.Fingerprint == na.Fingerprint {
		t.Error("team-a's fingerprint did not change with why its tenant is refused")
	}
}
