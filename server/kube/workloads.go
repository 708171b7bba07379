package kube

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch/server/admission"
)

// WatchedKinds are the workload kinds a WorkloadWatcher watches.
var WatchedKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
	{Group: "batch", Version: "v1", Kind: "Job"},
	{Group: "batch", Version: "v1", Kind: "CronJob"},
}

// maxSeenTemplates bounds the workloads whose images a WorkloadWatcher
// remembers, to tell a changed template from a status update.
const maxSeenTemplates = 1 << 16

// WorkloadWatcherOptions configure a WorkloadWatcher.
type WorkloadWatcherOptions struct {
	// Client lists and watches the workload kinds in every namespace
	// (deploy/rbac/preverify). Required.
	Client client.WithWatch
	// Enqueue receives the images of each new or changed pod template,
	// with the workload's namespace: the pre-verification queue, which
	// never blocks. Required.
	Enqueue func(namespace, image string)
	// Logger logs watches that fail. Optional; default slog.Default().
	Logger *slog.Logger
}

// WorkloadWatcher watches the workloads that make Pods (WatchedKinds) and
// hands the images of every pod template that appears or changes to
// pre-verification, so that the verdicts are cached before the first Pod
// reaches admission. Workloads that exist when it starts are not
// verified (the in-server audit covers running Pods). It implements
// Start(ctx) error.
type WorkloadWatcher struct {
	opts WorkloadWatcherOptions

	mu   sync.Mutex
	seen map[string]string // uid → the template's images, joined
}

// NewWorkloadWatcher returns the WorkloadWatcher for opts.
func NewWorkloadWatcher(opts WorkloadWatcherOptions) (*WorkloadWatcher, error) {
	if opts.Client == nil || opts.Enqueue == nil {
		return nil, errors.New("kube: WorkloadWatcherOptions.Client and Enqueue are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &WorkloadWatcher{opts: opts, seen: map[string]string{}}, nil
}

// Start watches every kind until ctx ends.
func (w *WorkloadWatcher) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, gvk := range WatchedKinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.watchKind(ctx, gvk)
		}()
	}
	wg.Wait()
	return nil
}

// watchKind lists gvk (for a resource version to start at: what exists
// already is not verified), then watches it from there, again after each
// watch ends, with a backoff while they fail.
func (w *WorkloadWatcher) watchKind(ctx context.Context, gvk schema.GroupVersionKind) {
	backoff := time.Second
	wait := func() {
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
	version := ""
	for ctx.Err() == nil {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if version == "" {
			if err := w.opts.Client.List(ctx, list, client.Limit(1)); err != nil {
				w.opts.Logger.Warn("cannot list workloads; pre-verification of their templates waits", "kind", gvk.Kind, "error", err.Error())
				wait()
				continue
			}
			version = list.GetResourceVersion()
		}
		wt, err := w.opts.Client.Watch(ctx, list, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: version, AllowWatchBookmarks: true}})
		if err != nil {
			w.opts.Logger.Warn("cannot watch workloads", "kind", gvk.Kind, "error", err.Error())
			version = ""
			wait()
			continue
		}
		started := time.Now()
		for ev := range wt.ResultChan() {
			if ev.Type == watch.Error {
				version = "" // expired: list again
				break
			}
			obj, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			if v := obj.GetResourceVersion(); v != "" {
				version = v
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				w.changed(gvk.Kind, obj)
			case watch.Deleted:
				w.mu.Lock()
				delete(w.seen, string(obj.GetUID()))
				w.mu.Unlock()
			}
		}
		wt.Stop()
		if time.Since(started) < time.Second {
			wait()
		} else {
			backoff = time.Second
		}
	}
}

// changed queues the images of obj's pod template when they differ from
// those last seen for it (a status update changes none).
func (w *WorkloadWatcher) changed(kind string, obj *unstructured.Unstructured) {
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return
	}
	images, err := admission.Images(kind, data)
	if err != nil || len(images) == 0 {
		return
	}
	names := make([]string, len(images))
	for i, im := range images {
		names[i] = im.Image
	}
	joined := strings.Join(names, "\n")
	uid := string(obj.GetUID())
	w.mu.Lock()
	if w.seen[uid] == joined {
		w.mu.Unlock()
		return
	}
	if len(w.seen) >= maxSeenTemplates {
		clear(w.seen)
	}
	w.seen[uid] = joined
	w.mu.Unlock()
	done := map[string]bool{}
	for _, name := range names {
		if !done[name] {
			done[name] = true
			w.opts.Enqueue(obj.GetNamespace(), name)
		}
	}
}
