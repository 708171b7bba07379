package kube_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/store/registry"
)

// TestAuditor audits a real kube-apiserver's Pods as vouch's service
// account, verifying their images (a real registry, real Notary Project
// signatures) under CA1: refused without deploy/rbac/audit; with it, a
// PolicyReport per namespace whose results say which workload runs what
// and why it fails; a namespace whose Pods are gone loses vouch's report
// but keeps another tool's; MaxResults keeps the failing results.
func TestAuditor(t *testing.T) {
	b := newBed(t)
	if _, err := envtest.InstallCRDs(b.cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join("..", "..", "internal", "testbed", "crds")}, ErrorIfPathMissing: true}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []string{"team-a", "team-b"} {
		b.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
		b.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: "default"}})
	}
	// A Deployment's Pod, as its ReplicaSet made it (no controller runs).
	labels := map[string]string{"app": "web"}
	spec := func(tag string) corev1.PodSpec {
		return corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: b.image(tag)}}}
	}
	apps, err := client.New(b.cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec("one")}}}
	if err := apps.Create(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	yes := true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web-1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: deploy.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec("one")}}}
	if err := apps.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	b.create(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web-1-x", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: rs.UID, Controller: &yes}}}, Spec: spec("one")})
	b.create(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "batch"}, Spec: spec("two")})
	lone := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "lone"}, Spec: spec("unsigned")}
	b.create(t, lone)
	// Another tool's report in team-b: vouch leaves it alone.
	other := &unstructured.Unstructured{Object: map[string]any{"results": []any{}}}
	other.SetGroupVersionKind(kube.PolicyReport)
	other.SetNamespace("team-b")
	other.SetName("kyverno-something")
	if err := b.admin.Create(ctx, other); err != nil {
		t.Fatal(err)
	}

	caFile := filepath.Join(t.TempDir(), "ca1.pem")
	if err := os.WriteFile(caFile, b.ca1, 0o600); err != nil {
		t.Fatal(err)
	}
	verifiers, pol, err := config.Build(nil, config.Quick{NotationCerts: []string{caFile}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	exec := &vouch.Executor{Store: st, Verifiers: verifiers, Policy: pol}
	verify := func(ctx context.Context, _ string, image string) (*vouch.Report, error) {
		ref, err := vouch.ParseReference(image)
		if err != nil {
			return nil, err
		}
		return exec.Verify(ctx, ref)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	auditor := func(maxResults int) *kube.Auditor {
		a, err := kube.NewAuditor(kube.AuditorOptions{Client: b.as(t, serviceAccount), Verify: verify, MaxResults: maxResults, Rate: 100,
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	if _, err := auditor(0).Audit(ctx); err == nil || !apierrors.IsForbidden(err) {
		t.Fatalf("without deploy/rbac/audit: %v, want forbidden", err)
	}
	b.apply(t, filepath.Join("..", "..", "deploy", "rbac", "audit", "clusterrole.yaml"))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// The authorizer sees new RBAC objects through its informers.
		_, err = auditor(0).Audit(ctx)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("with deploy/rbac/audit: %v", err)
	}

	report := func(namespace string) (results []map[string]any, summary map[string]any, found bool) {
		t.Helper()
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(kube.PolicyReport)
		if err := b.admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: kube.PolicyReportName}, obj); apierrors.IsNotFound(err) {
			return nil, nil, false
		} else if err != nil {
			t.Fatal(err)
		}
		items, _, _ := unstructured.NestedSlice(obj.Object, "results")
		for _, it := range items {
			results = append(results, it.(map[string]any))
		}
		summary, _, _ = unstructured.NestedMap(obj.Object, "summary")
		return results, summary, true
	}
	line := func(res map[string]any) string {
		resource := res["resources"].([]any)[0].(map[string]any)
		props := res["properties"].(map[string]any)
		return fmt.Sprintf("%s %s/%s %s %s %s", res["result"], resource["apiVersion"], resource["kind"], resource["name"], props["image"], res["rule"])
	}
	results, summary, _ := report("team-a")
	var got []string
	for _, res := range results {
		got = append(got, line(res))
	}
	want := []string{
		"fail v1/Pod batch " + b.image("two") + " container-main",
		"pass apps/v1/Deployment web " + b.image("one") + " container-main",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || summary["pass"] != int64(1) || summary["fail"] != int64(1) {
		t.Fatalf("team-a: %v %v, want %v", got, summary, want)
	}
	if ts := results[0]["timestamp"].(map[string]any); ts["seconds"] != now.Unix() {
		t.Errorf("timestamp %v", ts)
	}
	if msg := results[0]["message"].(string); !strings.Contains(msg, "untrusted signer") {
		t.Errorf("the failing result's message does not say why: %q", msg)
	}
	if results, _, ok := report("team-b"); !ok || len(results) != 1 || results[0]["result"] != "fail" {
		t.Fatalf("team-b: %v", results)
	}

	// team-b's Pod is gone: its report goes, the other tool's stays.
	if err := b.admin.Delete(ctx, lone); err != nil {
		t.Fatal(err)
	}
	a := auditor(1)
	if _, err := a.Audit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := report("team-b"); ok {
		t.Error("team-b's PolicyReport outlived its last Pod")
	}
	if err := b.admin.Get(ctx, client.ObjectKeyFromObject(other), other); err != nil {
		t.Errorf("another tool's PolicyReport: %v", err)
	}
	// MaxResults 1: the failing result stays, the summary counts both.
	if results, summary, _ := report("team-a"); len(results) != 1 || results[0]["result"] != "fail" || summary["pass"] != int64(1) {
		t.Errorf("MaxResults 1: %v %v", results, summary)
	}

	// Trust moves from CA1 to CA2: the Deployment's running image is no
	// longer allowed, an Event on the Deployment says so; the Pod whose
	// image now passes gets none.
	caFile2 := filepath.Join(t.TempDir(), "ca2.pem")
	if err := os.WriteFile(caFile2, b.ca2, 0o600); err != nil {
		t.Fatal(err)
	}
	verifiers2, pol2, err := config.Build(nil, config.Quick{NotationCerts: []string{caFile2}})
	if err != nil {
		t.Fatal(err)
	}
	exec = &vouch.Executor{Store: st, Verifiers: verifiers2, Policy: pol2}
	if _, err := a.Audit(ctx); err != nil {
		t.Fatal(err)
	}
	var events corev1.EventList
	if err := b.admin.List(ctx, &events, client.InNamespace("team-a")); err != nil {
		t.Fatal(err)
	}
	var got2 []string
	for _, e := range events.Items {
		got2 = append(got2, fmt.Sprintf("%s %s %s/%s %s", e.Type, e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.InvolvedObject.APIVersion))
		if !strings.Contains(e.Message, `container "main" runs `+b.image("one")+", which vouch no longer allows (denied)") {
			t.Errorf("event message %q", e.Message)
		}
	}
	if want := []string{"Warning ImageNoLongerAllowed Deployment/web apps/v1"}; strings.Join(got2, "\n") != strings.Join(want, "\n") {
		t.Errorf("events %v, want %v", got2, want)
	}
	// Still denied at the next audit: no second Event.
	if _, err := a.Audit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.admin.List(ctx, &events, client.InNamespace("team-a")); err != nil || len(events.Items) != 1 {
		t.Errorf("after another audit: %d events (%v), want still 1", len(events.Items), err)
	}

	// Periodic audits (Start, every Interval), no trigger after the first:
	// trust moves back to CA1 without telling the auditor, and the first
	// audit that starts after the change (within one interval) publishes
	// it: the Pod batch, allowed under CA2, fails, with an Event. Counted
	// in audits, not in time: the audit running at the change, if one
	// was, may have verified before it; the next one must see it.
	var current atomic.Pointer[vouch.Executor]
	current.Store(exec)
	var audits atomic.Int64
	p, err := kube.NewAuditor(kube.AuditorOptions{Client: b.as(t, serviceAccount), Rate: 100, Interval: 100 * time.Millisecond,
		Verify: func(ctx context.Context, _ string, image string) (*vouch.Report, error) {
			ref, err := vouch.ParseReference(image)
			if err != nil {
				return nil, err
			}
			return current.Load().Verify(ctx, ref)
		},
		OnAudit: func(_ *audit.Report, err error) {
			if err == nil {
				audits.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = p.Start(runCtx) }()
	defer func() { stop(); <-stopped }()
	waitAudits := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); audits.Load() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d audits, waited for %d", audits.Load(), n)
			}
		}
	}
	p.Trigger() // the first configuration serves
	waitAudits(2)
	if results, _, _ := report("team-a"); len(results) != 2 || line(results[0]) != "fail apps/v1/Deployment web "+b.image("one")+" container-main" {
		t.Fatalf("under CA2: %v", results)
	}
	current.Store(&vouch.Executor{Store: st, Verifiers: verifiers, Policy: pol})
	waitAudits(audits.Load() + 2)
	results, _, _ = report("team-a")
	got = nil
	for _, res := range results {
		got = append(got, line(res))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after a periodic audit under CA1: %v, want %v", got, want)
	}
	if err := b.admin.List(ctx, &events, client.InNamespace("team-a")); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events.Items {
		found = found || (e.Reason == kube.ReasonImageNoLongerAllowed && e.InvolvedObject.Kind == "Pod" && e.InvolvedObject.Name == "batch")
	}
	if !found {
		t.Errorf("no ImageNoLongerAllowed Event on Pod batch after the periodic audit: %+v", events.Items)
	}
}
