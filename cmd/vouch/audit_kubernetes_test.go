//go:build kubernetes

package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/audit"
)

// TestAuditKubernetes runs `vouch audit --kubernetes` against a real
// kube-apiserver and etcd holding Pods (no kubelet runs them; the test
// writes the status a kubelet would) and the workloads that own them, as
// the controllers would have made them: Deployment → ReplicaSet → Pods,
// CronJob → Job → Pod. The images are real, in a real registry, signed
// or not.
func TestAuditKubernetes(t *testing.T) {
	b := newAuditBed(t)
	// "moved" was signed, then its tag moved to an unsigned image: a Pod
	// whose node runs the signed digest is fine.
	old := b.p.Image("moved", "moved-old")
	b.signer.Sign(b.p, old)
	b.p.Image("moved", "moved-new")

	k := startKubeEnv(t)
	c, err := client.New(k.cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create := func(obj client.Object) client.Object {
		t.Helper()
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
		return obj
	}
	for _, ns := range []string{"team-a", "relaxed"} {
		create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		create(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}})
	}
	labels := map[string]string{"app": "x"}
	template := func(image string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image}}}}
	}
	jobTemplate := func(image string) corev1.PodTemplateSpec {
		tpl := template(image)
		tpl.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		return tpl
	}
	controller := func(obj client.Object, kind, apiVersion string) []metav1.OwnerReference {
		yes := true
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: obj.GetName(), UID: obj.GetUID(), Controller: &yes}}
	}
	pod := func(ns, name, image string, owners []metav1.OwnerReference) *corev1.Pod {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, OwnerReferences: owners}, Spec: template(image).Spec}
		create(p)
		return p
	}

	deploy := create(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template(b.image("signed"))}})
	rs := create(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web-5d4f", OwnerReferences: controller(deploy, "Deployment", "apps/v1")},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template(b.image("signed"))}})
	pod("team-a", "web-5d4f-a", b.image("signed"), controller(rs, "ReplicaSet", "apps/v1"))
	pod("team-a", "web-5d4f-b", b.image("signed"), controller(rs, "ReplicaSet", "apps/v1"))

	cron := create(&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "@daily", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTemplate(b.image("unsigned"))}}}})
	manual := false
	job := create(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "nightly-290", OwnerReferences: controller(cron, "CronJob", "batch/v1")},
		Spec: batchv1.JobSpec{ManualSelector: &manual, Template: corev1.PodTemplateSpec{Spec: jobTemplate(b.image("unsigned")).Spec}}})
	pod("team-a", "nightly-290-x", b.image("unsigned"), controller(job, "Job", "batch/v1"))

	// A Pod whose ReplicaSet is gone: the ReplicaSet is its workload.
	yes := true
	pod("team-a", "orphan", b.image("signed"), []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "gone", UID: types.UID("0e0e0e0e-0000-4000-8000-000000000000"), Controller: &yes}})

	// A ReplicaSet of an operator's kind that this API server does not
	// serve (Argo Rollouts): the Rollout is the workload.
	canary := create(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "canary-7f",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "canary", UID: types.UID("1e1e1e1e-0000-4000-8000-000000000000"), Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template(b.image("signed"))}})
	pod("team-a", "canary-7f-a", b.image("signed"), controller(canary, "ReplicaSet", "apps/v1"))

	// A Pod whose node reports running the signed digest of "moved".
	pinned := pod("team-a", "pinned", b.image("moved"), nil)
	pinned.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "main", Image: b.image("moved"), ImageID: b.host + "/audit/app@" + old.Digest.String(), Ready: true,
	}}}
	if err := c.Status().Update(ctx, pinned); err != nil {
		t.Fatal(err)
	}
	// A Pod that has terminated is not audited.
	done := pod("team-a", "done", "registry.invalid/never:1", nil)
	done.Status = corev1.PodStatus{Phase: corev1.PodSucceeded}
	if err := c.Status().Update(ctx, done); err != nil {
		t.Fatal(err)
	}
	pod("relaxed", "try", b.image("unsigned"), nil)

	auditJSON := func(args ...string) (int, *audit.Report) {
		t.Helper()
		code, out, stderr := vouchRun(t, append([]string{"audit", "--config", b.config, "--kubernetes", "-o", "json"}, args...)...)
		var r audit.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("exit %d: %v\n%s%s", code, err, out, stderr)
		}
		return code, &r
	}
	code, r := auditJSON("--kubeconfig", k.kcPath)
	type row struct {
		workload string
		pods     int
		verdict  vouch.Verdict
		digest   string
	}
	var got []row
	for _, w := range r.Workloads {
		for _, im := range w.Images {
			got = append(got, row{w.Namespace + "/" + w.Kind + "/" + w.Name, w.Pods, im.Verdict, im.Digest.String()})
		}
	}
	unsigned := ""
	for _, g := range got {
		if g.workload == "team-a/CronJob/nightly" {
			unsigned = g.digest
		}
	}
	want := []row{
		{"relaxed/Pod/try", 1, vouch.Allowed, unsigned},
		{"team-a/CronJob/nightly", 1, vouch.Denied, unsigned},
		{"team-a/Deployment/web", 2, vouch.Allowed, b.signed},
		{"team-a/Pod/pinned", 1, vouch.Allowed, old.Digest.String()},
		{"team-a/ReplicaSet/gone", 1, vouch.Allowed, b.signed},
		{"team-a/Rollout/canary", 1, vouch.Allowed, b.signed},
	}
	if code != exitDenied || r.Verdict != vouch.Denied || len(got) != len(want) || unsigned == "" {
		t.Fatalf("exit %d, verdict %s, rows %+v; want 1, denied, %+v", code, r.Verdict, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// signed, unsigned and moved@old under the cluster's policy, unsigned
	// under relaxed's: four, for seven Pods.
	if r.Verified != 4 {
		t.Errorf("%d verifications, want 4", r.Verified)
	}
	if im := r.Workloads[1].Images[0]; !strings.Contains(im.Reason, "no application/vnd.cncf.notary.signature found") {
		t.Errorf("the CronJob's reason: %q", im.Reason)
	}

	// One namespace, the kubeconfig from $KUBECONFIG, text.
	t.Setenv("KUBECONFIG", k.kcPath)
	code, out, stderr := vouchRun(t, "audit", "--config", b.config, "--kubernetes", "-n", "relaxed")
	if code != exitAllowed || !strings.Contains(out, "namespace relaxed\n  Pod try  (1 pod)  [cluster]\n") || strings.Contains(out, "team-a") || !strings.Contains(out, "(mode audit)") {
		t.Errorf("-n relaxed: exit %d\n%s%s", code, out, stderr)
	}
}
