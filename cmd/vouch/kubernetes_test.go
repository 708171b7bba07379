//go:build kubernetes

package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch/api/v1alpha1"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/notation"
)

// TestServeKubernetes runs `vouch serve --kubernetes --kubeconfig` (built
// with -tags kubernetes) against a real kube-apiserver and etcd: not
// ready while its ClusterVouchConfig is invalid (the status says why),
// ready once it is valid, deciding under the trust of a Secret, and
// under a rotated Secret's without a restart; a tenant's VouchConfig adds
// its requirement in its namespace, until it is deleted.
func TestServeKubernetes(t *testing.T) {
	k := startKubeEnv(t)
	kcPath, c := k.kcPath, k.c
	ctx := context.Background()
	create := func(obj client.Object) {
		t.Helper()
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}

	bed := newReloadBed(t)
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vouch"}})
	files := configFiles("notation", bed.ca1)
	create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "vouch", Name: "notation-trust-policy"}, Data: map[string]string{"trustpolicy.json": string(files["trustpolicy.json"])}})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "vouch", Name: "notation-ca"}, Data: map[string][]byte{"ca.crt": bed.ca1}}
	create(secret)
	notationConfig := notation.Config{TrustPolicyRef: &trust.Ref{Kind: trust.KindConfigMap, Name: "notation-trust-policy", Key: "trustpolicy.json"}}
	spec := config.Spec{TenantSpec: config.TenantSpec{
		TrustStores: []config.TrustStore{{Name: "ca:test", Refs: []trust.Ref{{Kind: trust.KindSecret, Name: "notation-ca", Key: "nope"}}}},
		Verifiers:   []config.Verifier{{Name: "notation", Type: "notation", Notation: &notationConfig}},
	}}
	cr := &v1alpha1.ClusterVouchConfig{ObjectMeta: metav1.ObjectMeta{Name: "vouch"}, Spec: v1alpha1.ClusterVouchConfigSpec{Spec: spec}}
	create(cr)

	s := launchServe(t, "--kubernetes", "--kubeconfig", kcPath, "--kubernetes-namespace", "vouch")
	ready := func(status metav1.ConditionStatus) *metav1.Condition {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := c.Get(ctx, client.ObjectKey{Name: "vouch"}, cr); err != nil {
				t.Fatal(err)
			}
			if cond := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady); cond != nil && cond.Status == status && cond.ObservedGeneration == cr.Generation {
				return cond
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %+v, want Ready=%s\n%s", cr.Status, status, s.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cond := ready(metav1.ConditionFalse)
	if want := "spec.trustStores[0].refs[0]: secret vouch/notation-ca has no key nope"; cond.Message != want || cond.Reason != kube.ReasonInvalidReference {
		t.Errorf("Ready=False %s %q, want InvalidReference %q", cond.Reason, cond.Message, want)
	}
	if code := s.readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d before a valid configuration, want 503", code)
	}

	cr.Spec.TrustStores[0].Refs[0].Key = "ca.crt"
	if err := c.Update(ctx, cr); err != nil {
		t.Fatal(err)
	}
	s.waitReady(t)
	ready(metav1.ConditionTrue)
	if !s.allowed(t, bed.image("one")) || s.allowed(t, bed.image("two")) {
		t.Fatal("under CA1: want one allowed, two denied")
	}

	start := time.Now()
	secret.Data["ca.crt"] = bed.ca2
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	latency := s.waitFor(t, bed.image("two"), true, start)
	t.Logf("reload latency (vouch serve --kubernetes, default interval, watches): %v from the Secret's update to the first verdict under CA2", latency.Round(time.Millisecond))
	if s.allowed(t, bed.image("one")) {
		t.Fatal("under CA2, the image signed under CA1 is still allowed")
	}

	// A tenant's VouchConfig in team-a requires a signature under CA1
	// (inline), besides the cluster's under CA2: "two" is denied in team-a
	// only, until the VouchConfig is deleted.
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})
	create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "notation-trust-policy"}, Data: map[string]string{"trustpolicy.json": string(files["trustpolicy.json"])}})
	tenant := &v1alpha1.VouchConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "team-a"}, Spec: v1alpha1.VouchConfigSpec{TenantSpec: config.TenantSpec{
		TrustStores: []config.TrustStore{{Name: "ca:test", PEM: string(bed.ca1)}},
		Verifiers:   []config.Verifier{{Name: "notation", Type: "notation", Notation: &notationConfig}},
	}}}
	create(tenant)
	s.waitFor(t, "[team-a]"+bed.image("two"), false, time.Now())
	if !s.allowed(t, "[team-b]"+bed.image("two")) || !s.allowed(t, bed.image("two")) {
		t.Error("team-a's VouchConfig changed the verdict outside team-a")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(tenant), tenant); err != nil {
			t.Fatal(err)
		}
		cond := meta.FindStatusCondition(tenant.Status.Conditions, v1alpha1.ConditionReady)
		if cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == tenant.Generation {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VouchConfig status %+v, want Ready=True\n%s", tenant.Status, s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Delete(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "[team-a]"+bed.image("two"), true, time.Now())
}
