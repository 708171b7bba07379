//go:build kubernetes

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch/api/v1alpha1"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/notation"
)

// TestServeKubernetesWorkloadWatch runs `vouch serve --kubernetes
// --watch-workloads` against a real kube-apiserver: creating a Deployment
// (no controller makes its Pods) has vouch verify its image, so that the
// admission of the Deployment's first Pod is a verdict cache hit with no
// miss; a Deployment that existed before vouch started is not verified.
func TestServeKubernetesWorkloadWatch(t *testing.T) {
	bed := newReloadBed(t)
	k := startKubeEnv(t)
	ctx := context.Background()
	create := func(obj client.Object) {
		t.Helper()
		if err := k.c.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}
	for _, ns := range []string{"vouch", "team-a"} {
		create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	files := configFiles("notation", bed.ca1)
	create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "vouch", Name: "notation-trust-policy"}, Data: map[string]string{"trustpolicy.json": string(files["trustpolicy.json"])}})
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "vouch", Name: "notation-ca"}, Data: map[string][]byte{"ca.crt": bed.ca1}})
	notationConfig := notation.Config{TrustPolicyRef: &trust.Ref{Kind: trust.KindConfigMap, Name: "notation-trust-policy", Key: "trustpolicy.json"}}
	create(&v1alpha1.ClusterVouchConfig{ObjectMeta: metav1.ObjectMeta{Name: "vouch"}, Spec: v1alpha1.ClusterVouchConfigSpec{Spec: config.Spec{TenantSpec: config.TenantSpec{
		TrustStores: []config.TrustStore{{Name: "ca:test", Refs: []trust.Ref{{Kind: trust.KindSecret, Name: "notation-ca", Key: "ca.crt"}}}},
		Verifiers:   []config.Verifier{{Name: "notation", Type: "notation", Notation: &notationConfig}},
	}}}})
	deployment := func(name, image string) *unstructured.Unstructured {
		labels := map[string]any{"app": name}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": name, "namespace": "team-a"},
			"spec": map[string]any{
				"selector": map[string]any{"matchLabels": labels},
				"template": map[string]any{
					"metadata": map[string]any{"labels": labels},
					"spec":     map[string]any{"containers": []any{map[string]any{"name": "main", "image": image}}},
				},
			},
		}}
	}
	create(deployment("before", bed.image("two")))

	s := launchServe(t, "--kubernetes", "--kubeconfig", k.kcPath, "--kubernetes-namespace", "vouch", "--watch-workloads")
	s.waitReady(t)
	workload := func(verdict string) float64 {
		return s.metric(t, `vouch_preverifications_total{source="workload",verdict="`+verdict+`"}`)
	}
	// The watches start with the server; give them a moment to list.
	time.Sleep(500 * time.Millisecond)

	create(deployment("web", bed.image("one")))
	deadline := time.Now().Add(20 * time.Second)
	for workload("allowed") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the Deployment's image was not pre-verified\n%s\n%s", s.metricsText(t), s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	hits := s.metric(t, `vouch_cache_lookups_total{kind="verdict",result="hit"}`)
	misses := s.metric(t, `vouch_cache_lookups_total{kind="verdict",result="miss"}`)
	if r := s.admit(t, "validate", "team-a", bed.image("one"), ""); !r.Allowed {
		t.Fatalf("the Deployment's Pod was denied: %+v", r)
	}
	if h, m := s.metric(t, `vouch_cache_lookups_total{kind="verdict",result="hit"}`), s.metric(t, `vouch_cache_lookups_total{kind="verdict",result="miss"}`); h != hits+1 || m != misses {
		t.Fatalf("the first Pod's admission: verdict hits %v → %v, misses %v → %v; want one hit, no miss", hits, h, misses, m)
	}
	if n := workload("denied"); n != 0 {
		t.Fatalf("the Deployment that existed before vouch started was verified (%v denials)", n)
	}

	// A status update changes no template: nothing is queued again.
	queued := s.metric(t, `vouch_preverify_events_total{result="queued",source="workload"}`)
	web := &unstructured.Unstructured{}
	web.SetAPIVersion("apps/v1")
	web.SetKind("Deployment")
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "web"}, web); err != nil {
		t.Fatal(err)
	}
	web.SetLabels(map[string]string{"touched": "yes"})
	if err := k.c.Update(ctx, web); err != nil {
		t.Fatal(err)
	}
	// A changed template is queued: its new image is verified (denied:
	// signed under the other CA).
	if err := unstructured.SetNestedSlice(web.Object, []any{map[string]any{"name": "main", "image": bed.image("two")}}, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	if err := k.c.Update(ctx, web); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for workload("denied") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the changed template was not pre-verified\n%s", s.metricsText(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := s.metric(t, `vouch_preverify_events_total{result="queued",source="workload"}`); got != queued+1 {
		t.Fatalf("queued %v → %v: the label change should queue nothing, the template change one image", queued, got)
	}
}

// TestServeKubernetesEventsTenant runs `vouch serve --kubernetes
// --events-token-file` against a real kube-apiserver, where team-a's
// VouchConfig requires a signature under its own CA (CA2) besides the
// cluster's (CA1): an image signed under CA1 only is allowed outside
// team-a and denied in team-a, and the denial is cached for an hour. CI
// signs it under CA2 and posts the subject to /events/v1/subjects, naming
// no namespace: vouch verifies it again under team-a's policy too (it had
// a verdict cached there), and the admission of a Pod in team-a is then
// allowed, from the cache.
func TestServeKubernetesEventsTenant(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	s1, s2 := testbed.NewNotationSigner(t), testbed.NewNotationSigner(t)
	p := testbed.NewPusher(t, reg.Host, "events/app")
	desc := p.Image("v1", "signed under CA1, later CA2")
	s1.Sign(p, desc)
	image := reg.Host + "/events/app:v1"
	ca1, ca2 := readFile(t, s1.CAFile), readFile(t, s2.CAFile)

	k := startKubeEnv(t)
	ctx := context.Background()
	create := func(obj client.Object) {
		t.Helper()
		if err := k.c.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}
	for _, ns := range []string{"vouch", "team-a", "team-b"} {
		create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	files := configFiles("notation", ca1)
	for _, ns := range []string{"vouch", "team-a"} {
		create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notation-trust-policy"}, Data: map[string]string{"trustpolicy.json": string(files["trustpolicy.json"])}})
	}
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "vouch", Name: "notation-ca"}, Data: map[string][]byte{"ca.crt": ca1}})
	notationConfig := notation.Config{TrustPolicyRef: &trust.Ref{Kind: trust.KindConfigMap, Name: "notation-trust-policy", Key: "trustpolicy.json"}}
	create(&v1alpha1.ClusterVouchConfig{ObjectMeta: metav1.ObjectMeta{Name: "vouch"}, Spec: v1alpha1.ClusterVouchConfigSpec{Spec: config.Spec{TenantSpec: config.TenantSpec{
		TrustStores: []config.TrustStore{{Name: "ca:test", Refs: []trust.Ref{{Kind: trust.KindSecret, Name: "notation-ca", Key: "ca.crt"}}}},
		Verifiers:   []config.Verifier{{Name: "notation", Type: "notation", Notation: &notationConfig}},
	}}}})
	create(&v1alpha1.VouchConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "team-a"}, Spec: v1alpha1.VouchConfigSpec{TenantSpec: config.TenantSpec{
		TrustStores: []config.TrustStore{{Name: "ca:test", PEM: string(ca2)}},
		Verifiers:   []config.Verifier{{Name: "notation", Type: "notation", Notation: &notationConfig}},
	}}})

	token := "events-token-0123456789abcdef"
	tokenFile := filepath.Join(t.TempDir(), "events-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := launchServe(t, "--kubernetes", "--kubeconfig", k.kcPath, "--kubernetes-namespace", "vouch",
		"--events-token-file", tokenFile, "--deny-cache-ttl", "1h", "--tag-ttl", "1h", "--tag-max-stale", "2h")
	s.waitReady(t)
	// The tenant's VouchConfig applies once vouch has read it.
	s.waitFor(t, "[team-a]"+image, false, time.Now())

	hits := func() float64 { return s.metric(t, `vouch_cache_lookups_total{kind="verdict",result="hit"}`) }
	misses := func() float64 { return s.metric(t, `vouch_cache_lookups_total{kind="verdict",result="miss"}`) }
	for _, ns := range []string{"team-a", "team-b"} {
		s.admit(t, "validate", ns, image, "")
	}
	h, m := hits(), misses()
	if r := s.admit(t, "validate", "team-a", image, ""); r.Allowed {
		t.Fatalf("team-a admitted an image without its tenant's signature: %+v", r)
	}
	if r := s.admit(t, "validate", "team-b", image, ""); !r.Allowed {
		t.Fatalf("team-b denied: %+v", r)
	}
	if hits() != h+2 || misses() != m {
		t.Fatalf("the verdicts should be cached: hits %v → %v, misses %v → %v", h, hits(), m, misses())
	}

	// CI signs under CA2 and tells vouch, naming no namespace.
	s2.Sign(p, desc)
	before := s.metric(t, `vouch_preverifications_total{source="subjects",verdict="allowed"}`)
	body := fmt.Sprintf(`{"subject": %q}`, reg.Host+"/events/app@"+desc.Digest.String())
	req, _ := http.NewRequest(http.MethodPost, s.url+"/events/v1/subjects", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("/events/v1/subjects: %d", resp.StatusCode)
	}
	// One verification under the cluster's policy (requests without a
	// namespace, and team-b, share it), one under team-a's.
	deadline := time.Now().Add(20 * time.Second)
	for s.metric(t, `vouch_preverifications_total{source="subjects",verdict="allowed"}`) < before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("the subject was not verified under team-a's policy\n%s\n%s", s.metricsText(t), s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	h, m = hits(), misses()
	if r := s.admit(t, "validate", "team-a", image, ""); !r.Allowed {
		t.Fatalf("team-a still denies after the event: %+v", r)
	}
	if hits() != h+1 || misses() != m {
		t.Fatalf("team-a's allow should come from the cache: hits %v → %v, misses %v → %v", h, hits(), m, misses())
	}
}
