package kube_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/vouch-project/vouch/api/v1alpha1"
	"github.com/vouch-project/vouch/server/admission"
	"github.com/vouch-project/vouch/server/kube"
)

// tenantSpec requires, in its namespace, a Notary Project signature
// verified by its own verifier under the CA of its Secret tenant-ca
// (CA2 in these tests) and the trust policy of its ConfigMap
// tenant-trust-policy.
const tenantSpec = `
trustStores:
  - name: ca:team
    refs: [{kind: Secret, name: tenant-ca, key: ca.crt}]
verifiers:
  - name: notation
    type: notation
    notation:
      trustPolicyRef: {kind: ConfigMap, name: tenant-trust-policy, key: trustpolicy.json}
policy:
  scopes:
    - name: team-signed
      repositories: ["*"]
      require:
        - artifactType: application/vnd.cncf.notary.signature
          verifiers: [notation]
`

// tenantNamespace creates namespace ns with the Secret tenant-ca (CA2) and
// the ConfigMap tenant-trust-policy; with grant, it also gives vouch the
// right to read them, as a tenant does: deploy/rbac/tenant/role.yaml with
// its namespace and resourceNames edited, and a configmaps rule added as
// the file says.
func (b *bed) tenantNamespace(t *testing.T, ns string, grant bool) {
	t.Helper()
	b.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	b.create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant-ca"}, Data: map[string][]byte{"ca.crt": b.ca2}})
	b.create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant-trust-policy"},
		Data: map[string]string{"trustpolicy.json": strings.ReplaceAll(trustPolicy, "ca:test", "ca:team")}})
	if grant {
		b.grant(t, ns)
	}
}

// grant applies deploy/rbac/tenant/role.yaml in ns, naming tenant-ca and
// tenant-trust-policy.
func (b *bed) grant(t *testing.T, ns string) {
	t.Helper()
	path := filepath.Join("..", "..", "deploy", "rbac", "tenant", "role.yaml")
	for _, doc := range strings.Split(string(readFile(t, path)), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		u.SetNamespace(ns)
		if u.GetKind() == "Role" {
			rules, _ := u.Object["rules"].([]any)
			secrets, ok := rules[0].(map[string]any)
			if len(rules) != 1 || !ok || secrets["resources"].([]any)[0] != "secrets" {
				t.Fatalf("%s: rules %v, want one for secrets", path, rules)
			}
			secrets["resourceNames"] = []any{"tenant-ca"}
			configMaps := map[string]any{"apiGroups": secrets["apiGroups"], "verbs": secrets["verbs"],
				"resources": []any{"configmaps"}, "resourceNames": []any{"tenant-trust-policy"}}
			u.Object["rules"] = []any{secrets, configMaps}
		}
		b.create(t, &u)
	}
}

// setTenant creates or updates the VouchConfig ns/name with the spec
// written in YAML, and returns its generation.
func (b *bed) setTenant(t *testing.T, ns, name, spec string) int64 {
	t.Helper()
	ctx := context.Background()
	var s v1alpha1.VouchConfigSpec
	if err := yaml.UnmarshalStrict([]byte(spec), &s); err != nil {
		t.Fatal(err)
	}
	var vc v1alpha1.VouchConfig
	if err := b.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &vc); err != nil {
		vc = v1alpha1.VouchConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: s}
		b.create(t, &vc)
		return vc.Generation
	}
	vc.Spec = s
	if err := b.admin.Update(ctx, &vc); err != nil {
		t.Fatal(err)
	}
	return vc.Generation
}

func (b *bed) tenant(t *testing.T, ns, name string) *v1alpha1.VouchConfig {
	t.Helper()
	var vc v1alpha1.VouchConfig
	if err := b.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &vc); err != nil {
		t.Fatal(err)
	}
	return &vc
}

// waitTenantStatus waits until the VouchConfig's status describes
// generation gen with a Ready condition of status and reason, and
// returns the condition.
func (b *bed) waitTenantStatus(t *testing.T, ns, name string, gen int64, status metav1.ConditionStatus, reason string, v *vouchServer) metav1.Condition {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		vc := b.tenant(t, ns, name)
		c := meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionReady)
		if c != nil && vc.Status.ObservedGeneration == gen && c.ObservedGeneration == gen && c.Status == status && c.Reason == reason {
			return *c
		}
		if time.Now().After(deadline) {
			t.Fatalf("VouchConfig %s/%s: status %+v; want generation %d, Ready %s %s\n%s", ns, name, vc.Status, gen, status, reason, v.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDecision asks about key until its verdict is allowed and its reason
// contains has, and returns the reason.
func (v *vouchServer) waitDecision(t *testing.T, key string, allowed bool, has string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, reason, undecided := v.gatekeeper(t, key)
		if undecided == "" && ok == allowed && strings.Contains(reason, has) {
			return reason
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: allowed=%v %q %s; want allowed=%v with %q\n%s", key, ok, reason, undecided, allowed, has, v.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// admit asks the admission webhook about a Pod running image in namespace
// ns.
func (v *vouchServer) admit(t *testing.T, ns, image string) *admission.Response {
	t.Helper()
	pod, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "app", "namespace": ns},
		"spec": map[string]any{"containers": []map[string]any{{"name": "app", "image": image}}}})
	if err != nil {
		t.Fatal(err)
	}
	req := admission.Review{APIVersion: admission.APIVersion, Kind: "AdmissionReview", Request: &admission.Request{
		UID: "uid-" + ns, Kind: admission.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: ns, Name: "app", Operation: "CREATE", Object: pod,
	}}
	status, body := v.stack.Post(t, "/admission/v1/validate", req)
	var out admission.Review
	if err := json.Unmarshal(body, &out); err != nil || status != http.StatusOK || out.Response == nil {
		t.Fatalf("admission: %d %s (%v)\n%s", status, body, err, v.logs.String())
	}
	return out.Response
}

// TestSourceTenants runs the Kubernetes source with tenants' VouchConfigs
// on a real kube-apiserver and etcd, as the service account of
// deploy/rbac (impersonated) with the tenants' grants of
// deploy/rbac/tenant, deciding through the Gatekeeper provider
// ("[namespace]" keys) and the admission webhook on real Notary Project
// signatures. The cluster trusts CA1; team-a's VouchConfig requires its
// own signature, under CA2. A tenant adds a requirement in its namespace
// only, cannot relax the cluster's, a broken VouchConfig says why in its
// status and fails closed in its namespace only, and deleting a
// VouchConfig removes its requirement.
func TestSourceTenants(t *testing.T) {
	b := newBed(t)
	sa := b.as(t, serviceAccount)
	b.create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notation-trust-policy"}, Data: map[string]string{"trustpolicy.json": trustPolicy}})
	b.setSecret(t, "notation-ca", map[string][]byte{"ca.crt": b.ca1})
	gen := b.setSpec(t, validSpec)
	v := startVouch(t, sa, kube.Options{})
	b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
	b.tenantNamespace(t, "team-a", true)
	b.tenantNamespace(t, "team-b", true)
	b.tenantNamespace(t, "team-c", false) // vouch may not read its Secret
	b.tenantNamespace(t, "team-d", true)
	one, two, both := b.image("one"), b.image("two"), b.image("both")

	genA := b.setTenant(t, "team-a", "team-a", tenantSpec)
	c := b.waitTenantStatus(t, "team-a", "team-a", genA, metav1.ConditionTrue, kube.ReasonApplied, v)
	if want := "serving spec generation 1 in namespace team-a"; c.Message != want {
		t.Errorf("Ready=True message %q, want %q", c.Message, want)
	}
	t.Run("a tenant adds a requirement in its namespace only", func(t *testing.T) {
		// Allowed by the cluster (signed under CA1), denied in team-a
		// with the tenant's reason, allowed in team-b and without a
		// namespace.
		reason := v.waitDecision(t, "[team-a]"+one, false, `tenant VouchConfig team-a/team-a: scope "team-signed": no application/vnd.cncf.notary.signature verified`)
		if strings.Contains(reason, "cluster:") {
			t.Errorf("team-a: reason %q names the cluster, which allows the image", reason)
		}
		for _, key := range []string{"[team-b]" + one, one, "[team-a]" + both} {
			if ok, reason := v.decide(t, key); !ok {
				t.Errorf("%s denied: %s", key, reason)
			}
		}
		if r := v.admit(t, "team-a", one); r.Allowed || r.Status == nil || !strings.Contains(r.Status.Message, "tenant VouchConfig team-a/team-a: ") {
			t.Errorf("admission in team-a: %+v, want denied with the tenant's reason", r)
		}
		if r := v.admit(t, "team-b", one); !r.Allowed {
			t.Errorf("admission in team-b: %+v, want allowed", r)
		}
	})

	t.Run("a tenant cannot relax the cluster's requirement", func(t *testing.T) {
		// Trusting its own CA: "two" (CA2) meets the tenant's requirement,
		// not the cluster's.
		if ok, reason := v.decide(t, "[team-a]"+two); ok || !strings.HasPrefix(reason, `cluster: `) {
			t.Errorf("team-a, two: allowed=%v %q; want denied by the cluster", ok, reason)
		}
		if r := v.admit(t, "team-a", two); r.Allowed {
			t.Errorf("admission of two in team-a: %+v, want denied", r)
		}
		// In audit mode the tenant waives its own requirement ("one" is
		// allowed again), never the cluster's.
		audit := strings.Replace(tenantSpec, "- name: team-signed\n", "- name: team-signed\n      mode: audit\n", 1)
		genA = b.setTenant(t, "team-a", "team-a", audit)
		b.waitTenantStatus(t, "team-a", "team-a", genA, metav1.ConditionTrue, kube.ReasonApplied, v)
		v.waitDecision(t, "[team-a]"+one, true, "tenant VouchConfig team-a/team-a: allowed in audit mode")
		for _, image := range []string{two, b.image("unsigned")} {
			if ok, reason := v.decide(t, "[team-a]"+image); ok || !strings.HasPrefix(reason, "cluster: ") {
				t.Errorf("team-a in audit mode, %s: allowed=%v %q; want denied by the cluster", image, ok, reason)
			}
		}
		genA = b.setTenant(t, "team-a", "team-a", tenantSpec)
		v.waitDecision(t, "[team-a]"+one, false, "tenant VouchConfig team-a/team-a: ")
	})

	clusterBefore := meta.FindStatusCondition(b.get(t).Status.Conditions, v1alpha1.ConditionReady)
	t.Run("a broken VouchConfig fails closed in its namespace only", func(t *testing.T) {
		// team-c did not let vouch read its Secret.
		genC := b.setTenant(t, "team-c", "strict", tenantSpec)
		c := b.waitTenantStatus(t, "team-c", "strict", genC, metav1.ConditionFalse, kube.ReasonInvalidReference, v)
		const why = "spec.verifiers[0].notation.trustPolicyRef: configMap team-c/tenant-trust-policy may not be read by vouch (forbidden"
		if !strings.HasPrefix(c.Message, why) {
			t.Errorf("Ready=False message %q, want it to start with %q", c.Message, why)
		}
		// Even an image that every requirement allows is denied there,
		// with a reason naming the VouchConfig.
		reason := v.waitDecision(t, "[team-c]"+both, false, "tenant VouchConfig team-c/strict: not applied ("+why)
		t.Logf("team-c: %s", reason)
		if r := v.admit(t, "team-c", both); r.Allowed || !strings.Contains(r.Status.Message, "VouchConfig team-c/strict") {
			t.Errorf("admission in team-c: %+v, want denied naming the VouchConfig", r)
		}

		// A spec that vouch's validation refuses, in team-d.
		typo := strings.Replace(tenantSpec, "key: trustpolicy.json}\n", "key: trustpolicy.json}\n    sbom: {}\n", 1)
		genD := b.setTenant(t, "team-d", "typo", typo)
		c = b.waitTenantStatus(t, "team-d", "typo", genD, metav1.ConditionFalse, kube.ReasonInvalidSpec, v)
		if want := "spec.verifiers[0].sbom: set, but the verifier's type is notation"; c.Message != want {
			t.Errorf("Ready=False message %q, want %q", c.Message, want)
		}
		v.waitDecision(t, "[team-d]"+both, false, "tenant VouchConfig team-d/typo: not applied (spec.verifiers[0].sbom")

		// The cluster and the other namespaces keep working.
		if ok, reason := v.decide(t, "[team-b]"+one); !ok {
			t.Errorf("team-b, one: denied: %s", reason)
		}
		if ok, _ := v.decide(t, "[team-a]"+both); !ok {
			t.Error("team-a, both: denied")
		}
		if ok, _ := v.decide(t, "[team-a]"+one); ok {
			t.Error("team-a, one: allowed; team-a's requirement is lost")
		}
		cr := b.get(t)
		if after := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady); after == nil || *after != *clusterBefore {
			t.Errorf("the ClusterVouchConfig's status changed: %+v, was %+v", after, clusterBefore)
		}

		// team-c grants vouch its Secret (the documented step): its
		// VouchConfig applies.
		b.grant(t, "team-c")
		b.waitTenantStatus(t, "team-c", "strict", genC, metav1.ConditionTrue, kube.ReasonApplied, v)
		v.waitDecision(t, "[team-c]"+both, true, "")
		v.waitDecision(t, "[team-c]"+one, false, "tenant VouchConfig team-c/strict: scope")
	})

	t.Run("replicas do not fight", func(t *testing.T) {
		versions := func() map[string]string {
			out := map[string]string{"cluster": b.get(t).ResourceVersion}
			var list v1alpha1.VouchConfigList
			if err := b.admin.List(context.Background(), &list); err != nil {
				t.Fatal(err)
			}
			for _, vc := range list.Items {
				out[vc.Namespace+"/"+vc.Name] = vc.ResourceVersion
			}
			return out
		}
		before := versions()
		r2 := startVouch(t, sa, kube.Options{Interval: 100 * time.Millisecond, NoWatch: true})
		r2.waitDecision(t, "[team-d]"+both, false, "tenant VouchConfig team-d/typo: not applied")
		time.Sleep(time.Second)
		after := versions()
		for k, rv := range before {
			if after[k] != rv {
				t.Errorf("%s was written (resourceVersion %s → %s)", k, rv, after[k])
			}
		}
	})

	t.Run("deleting a VouchConfig removes its requirement", func(t *testing.T) {
		for _, vc := range []*v1alpha1.VouchConfig{b.tenant(t, "team-a", "team-a"), b.tenant(t, "team-d", "typo")} {
			if err := b.admin.Delete(context.Background(), vc); err != nil {
				t.Fatal(err)
			}
		}
		v.waitDecision(t, "[team-a]"+one, true, "")
		v.waitDecision(t, "[team-d]"+one, true, "")
		if ok, _ := v.decide(t, "[team-c]"+one); ok {
			t.Error("team-c, one: allowed; team-c's requirement is lost")
		}
	})

	// What the service account may do: no Secret may be listed, and none
	// read that a namespace did not grant.
	ctx := context.Background()
	var secrets corev1.SecretList
	if err := sa.List(ctx, &secrets, client.InNamespace("team-a")); err == nil {
		t.Error("the service account may list team-a's Secrets: the RBAC is not the least")
	}
	var s corev1.Secret
	if err := sa.Get(ctx, client.ObjectKey{Namespace: "team-d", Name: "other"}, &s); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("reading a Secret team-d did not name: %v, want forbidden", err)
	}
	for _, line := range strings.Split(v.logs.String(), "\n") {
		if strings.Contains(line, "cannot watch") && !strings.Contains(line, `"namespace":"team-c"`) {
			t.Errorf("a watch was refused: %s", line)
		}
	}
}
