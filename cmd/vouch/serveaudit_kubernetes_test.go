//go:build kubernetes

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/vouch-project/vouch/api/v1alpha1"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/notation"
)

// TestServeKubernetesAudit runs `vouch serve --kubernetes --audit-interval`
// against a real kube-apiserver holding Pods (no kubelet runs them) whose
// images, in a real registry, carry real Notary Project signatures under
// two CAs: the PolicyReport of their namespace says which pass under the
// CA of the trust Secret, and replacing the Secret's certificate turns
// the results around at once (the new configuration starts an audit),
// long before the hour-long interval.
func TestServeKubernetesAudit(t *testing.T) {
	bed := newReloadBed(t)
	k := startKubeEnv(t)
	if _, err := envtest.InstallCRDs(k.cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join("..", "..", "internal", "testbed", "crds")}, ErrorIfPathMissing: true}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create := func(obj client.Object) {
		t.Helper()
		if err := k.c.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}
	for _, ns := range []string{"vouch", "team-a"} {
		create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		create(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}})
	}
	files := configFiles("notation", bed.ca1)
	create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "vouch", Name: "notation-trust-policy"}, Data: map[string]string{"trustpolicy.json": string(files["trustpolicy.json"])}})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "vouch", Name: "notation-ca"}, Data: map[string][]byte{"ca.crt": bed.ca1}}
	create(secret)
	notationConfig := notation.Config{TrustPolicyRef: &trust.Ref{Kind: trust.KindConfigMap, Name: "notation-trust-policy", Key: "trustpolicy.json"}}
	create(&v1alpha1.ClusterVouchConfig{ObjectMeta: metav1.ObjectMeta{Name: "vouch"}, Spec: v1alpha1.ClusterVouchConfigSpec{Spec: config.Spec{TenantSpec: config.TenantSpec{
		TrustStores: []config.TrustStore{{Name: "ca:test", Refs: []trust.Ref{{Kind: trust.KindSecret, Name: "notation-ca", Key: "ca.crt"}}}},
		Verifiers:   []config.Verifier{{Name: "notation", Type: "notation", Notation: &notationConfig}},
	}}}})
	for _, name := range []string{"one", "two"} {
		create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: bed.image(name)}}}})
	}

	s := launchServe(t, "--kubernetes", "--kubeconfig", k.kcPath, "--kubernetes-namespace", "vouch", "--audit-interval", "1h", "--audit-rate", "50")
	s.waitReady(t)

	// results waits for team-a's PolicyReport to give want (pod name →
	// result) and returns how long that took.
	results := func(want map[string]string) time.Duration {
		t.Helper()
		start := time.Now()
		deadline := start.Add(60 * time.Second)
		var last string
		for {
			r := &unstructured.Unstructured{}
			r.SetGroupVersionKind(kube.PolicyReport)
			err := k.c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: kube.PolicyReportName}, r)
			if err == nil {
				got := map[string]string{}
				items, _, _ := unstructured.NestedSlice(r.Object, "results")
				for _, it := range items {
					res := it.(map[string]any)
					resources := res["resources"].([]any)
					name := resources[0].(map[string]any)["name"].(string)
					got[name] = res["result"].(string)
					if res["policy"] != kube.PolicyName || res["rule"] != "container-main" || res["source"] != "vouch" {
						t.Errorf("result %v", res)
					}
					if props := res["properties"].(map[string]any); props["image"] != bed.image(name) || !strings.HasPrefix(fmt.Sprint(props["digest"]), "sha256:") {
						t.Errorf("result properties %v", props)
					}
				}
				summary, _, _ := unstructured.NestedMap(r.Object, "summary")
				last = fmt.Sprintf("results %v summary %v labels %v", got, summary, r.GetLabels())
				pass, fail := 0, 0
				for _, v := range want {
					if v == "pass" {
						pass++
					} else {
						fail++
					}
				}
				if fmt.Sprint(got) == fmt.Sprint(want) && summary["pass"] == int64(pass) && summary["fail"] == int64(fail) && r.GetLabels()[kube.ManagedByLabel] == "vouch" {
					return time.Since(start)
				}
			} else {
				last = err.Error()
			}
			if time.Now().After(deadline) {
				t.Fatalf("PolicyReport team-a/%s: %s; want %v\n%s", kube.PolicyReportName, last, want, s.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	results(map[string]string{"one": "pass", "two": "fail"})
	requests := func() float64 {
		var n float64
		for _, l := range strings.Split(s.metricsText(t), "\n") {
			if strings.HasPrefix(l, "vouch_registry_requests_total{") {
				var v float64
				fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
				n += v
			}
		}
		return n
	}
	t.Logf("registry requests for the first audit (2 images, cold): %v", requests())

	// The certificate of CA1 leaves the trust Secret for CA2's.
	secret.Data["ca.crt"] = bed.ca2
	if err := k.c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	latency := results(map[string]string{"one": "fail", "two": "pass"})
	t.Logf("from the Secret's update to the PolicyReport's new results: %v (interval 1h; the new configuration starts the audit)", latency.Round(time.Millisecond))
	// The gauges follow the audit that published the results.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		allowed, denied := s.metric(t, `vouch_audit_images{namespace="team-a",verdict="allowed"}`), s.metric(t, `vouch_audit_images{namespace="team-a",verdict="denied"}`)
		if allowed == 1 && denied == 1 && s.metric(t, `vouch_audits_total{result="success"}`) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vouch_audit_images allowed %v denied %v, want 1 and 1", allowed, denied)
		}
	}
	// The Deployment-less Pod "one" was allowed and no longer is: an Event.
	var events corev1.EventList
	if err := k.c.List(ctx, &events, client.InNamespace("team-a")); err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 1 || events.Items[0].InvolvedObject.Name != "one" || events.Items[0].Reason != kube.ReasonImageNoLongerAllowed {
		t.Errorf("events %+v, want one ImageNoLongerAllowed on Pod one", events.Items)
	}
	if !slices.ContainsFunc(strings.Split(s.logs.String(), "\n"), func(l string) bool { return strings.Contains(l, `"msg":"audit done"`) }) {
		t.Errorf("no audit in the log:\n%s", s.logs.String())
	}
}

// TestServeKubernetesAuditPullSecrets: with --kubernetes-pull-secrets,
// the audit reads each Pod's images with its pull secrets (or its
// ServiceAccount's), as admission does, from a registry that requires
// them (the distribution registry behind basic authentication): a Pod
// with them passes, one without is an error that says why.
func TestServeKubernetesAuditPullSecrets(t *testing.T) {
	bed := newPrivateBed(t)
	k := startKubeEnv(t)
	if _, err := envtest.InstallCRDs(k.cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join("..", "..", "internal", "testbed", "crds")}, ErrorIfPathMissing: true}); err != nil {
		t.Fatal(err)
	}
	k.createNotationTrust(t, bed.ca)
	k.create(t, &v1alpha1.ClusterVouchConfig{ObjectMeta: metav1.ObjectMeta{Name: "vouch"}, Spec: v1alpha1.ClusterVouchConfigSpec{Spec: notationSpec()}})
	for _, ns := range []string{"team-a", "team-b", "team-c"} {
		k.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		k.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}})
	}
	secret := func(ns, name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: bed.dockerConfigJSON(bed.password)}}
	}
	k.create(t, secret("team-a", "regcred"))
	k.create(t, secret("team-c", "builder-pull"))
	k.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "builder"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "builder-pull"}}})
	pod := func(ns, sa string, secrets ...string) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "main", Image: bed.image()}}}}
		for _, s := range secrets {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		k.create(t, p)
	}
	pod("team-a", "", "regcred")
	pod("team-b", "")
	pod("team-c", "builder")

	s := launchServe(t, "--kubernetes", "--kubeconfig", k.kcPath, "--kubernetes-namespace", "vouch", "--kubernetes-pull-secrets", "--audit-interval", "1h")
	s.waitReady(t)
	want := map[string]string{"team-a": "pass", "team-b": "error", "team-c": "pass"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := map[string]string{}
		messages := map[string]string{}
		for ns := range want {
			r := &unstructured.Unstructured{}
			r.SetGroupVersionKind(kube.PolicyReport)
			if err := k.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: kube.PolicyReportName}, r); err != nil {
				continue
			}
			items, _, _ := unstructured.NestedSlice(r.Object, "results")
			if len(items) == 1 {
				got[ns] = items[0].(map[string]any)["result"].(string)
				messages[ns], _ = items[0].(map[string]any)["message"].(string)
			}
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			if !strings.Contains(messages["team-b"], "authentication failed for "+bed.host) {
				t.Errorf("team-b's result does not say why: %q", messages["team-b"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PolicyReport results %v, want %v (%v)\n%s", got, want, messages, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(s.logs.String(), bed.password) {
		t.Error("the logs disclose a credential")
	}
}
