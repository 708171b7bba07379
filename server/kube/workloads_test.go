package kube_test

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch/server/kube"
)

// TestWorkloadWatcher watches a real kube-apiserver as vouch's service
// account: with deploy/rbac/preverify, every watched kind's new pod
// template hands its images over, once per change of its images; a
// workload that existed before the watch started is not handed over.
func TestWorkloadWatcher(t *testing.T) {
	b := newBed(t)
	b.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})
	template := func(image string) map[string]any {
		return map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "x"}},
			"spec":     map[string]any{"restartPolicy": "OnFailure", "containers": []any{map[string]any{"name": "main", "image": image}}},
		}
	}
	selector := map[string]any{"matchLabels": map[string]any{"app": "x"}}
	object := func(apiVersion, kind, name, image string) *unstructured.Unstructured {
		spec := map[string]any{"selector": selector, "template": template(image)}
		switch kind {
		case "StatefulSet":
			spec["serviceName"] = name
		case "Job":
			spec = map[string]any{"template": template(image)}
		case "CronJob":
			spec = map[string]any{"schedule": "0 * * * *", "jobTemplate": map[string]any{"spec": map[string]any{"template": template(image)}}}
		}
		if kind == "Deployment" || kind == "ReplicaSet" || kind == "DaemonSet" || kind == "StatefulSet" {
			spec["template"].(map[string]any)["spec"].(map[string]any)["restartPolicy"] = "Always"
		}
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind,
			"metadata": map[string]any{"name": name, "namespace": "team-a"}, "spec": spec}}
	}
	b.apply(t, filepath.Join("..", "..", "deploy", "rbac", "preverify", "clusterrole.yaml"))
	if err := b.admin.Create(context.Background(), object("apps/v1", "Deployment", "old", "registry.example/old:1")); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var got []string
	w, err := kube.NewWorkloadWatcher(kube.WorkloadWatcherOptions{Client: b.as(t, serviceAccount), Enqueue: func(ns, image string) {
		mu.Lock()
		got = append(got, ns+" "+image)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Start(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(time.Second) // the watches list, then watch; the authorizer sees the new RBAC objects

	var want []string
	for _, k := range []struct{ apiVersion, kind string }{
		{"apps/v1", "Deployment"}, {"apps/v1", "StatefulSet"}, {"apps/v1", "DaemonSet"}, {"apps/v1", "ReplicaSet"}, {"batch/v1", "Job"}, {"batch/v1", "CronJob"},
	} {
		image := "registry.example/" + k.kind + ":1"
		if err := b.admin.Create(context.Background(), object(k.apiVersion, k.kind, "new", image)); err != nil {
			t.Fatalf("%s: %v", k.kind, err)
		}
		want = append(want, "team-a "+image)
	}
	// A change of labels only: nothing more.
	dep := object("apps/v1", "Deployment", "new", "")
	if err := b.admin.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "new"}, dep); err != nil {
		t.Fatal(err)
	}
	dep.SetLabels(map[string]string{"touched": "yes"})
	if err := b.admin.Update(context.Background(), dep); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	var last []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		last = slices.Sorted(slices.Values(got))
		mu.Unlock()
		if slices.Equal(last, want) {
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // anything more would show now
	mu.Lock()
	last = slices.Sorted(slices.Values(got))
	mu.Unlock()
	if !slices.Equal(last, want) {
		t.Fatalf("handed over %q\nwant %q", last, want)
	}
}
