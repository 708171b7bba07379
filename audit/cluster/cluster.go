// Package cluster is the cluster source of `vouch audit --kubernetes`: the
// images of a cluster's running Pods, grouped under the workload that owns
// each Pod. It links client-go (through controller-runtime's client), so
// the CLI has it only when built with -tags kubernetes.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/server/admission"
)

// Defaults of Options.
const (
	DefaultPageSize = 500
	DefaultMaxPods  = 100000
	// maxOwnerDepth bounds the owner references followed up from a Pod
	// (Pod → ReplicaSet → Deployment is two).
	maxOwnerDepth = 4
)

// Options configure Workloads.
type Options struct {
	// Client lists Pods (list pods) and reads the metadata of their owners
	// (get replicasets, jobs, ... ; an owner that cannot be read ends the
	// chain there). Required.
	Client client.Reader
	// Namespaces are the namespaces audited. Optional; default all.
	Namespaces []string
	// PageSize is how many Pods one list request asks for. Optional;
	// default DefaultPageSize.
	PageSize int64
	// MaxPods bounds the Pods read. Optional; default DefaultMaxPods.
	MaxPods int
}

// RESTConfig returns the configuration to reach the API server as kubectl
// finds it: the kubeconfig file when one is named, else $KUBECONFIG or
// ~/.kube/config, else in cluster (the pod's service account).
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "vouch-audit"
	return cfg, nil
}

// owner is a workload that owns Pods.
type owner struct {
	namespace, kind, name string
}

// Workloads lists the Pods of opts.Namespaces that have not terminated and
// returns one Workload per owning workload (the top of the Pods'
// controller owner references: ReplicaSet → Deployment, Job → CronJob;
// a Pod without one is its own workload), with the distinct images of
// their containers and, where a Pod's status reports it, the digest the
// node runs.
func Workloads(ctx context.Context, opts Options) ([]audit.Workload, error) {
	if opts.Client == nil {
		return nil, errors.New("cluster: Options.Client is required")
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.MaxPods <= 0 {
		opts.MaxPods = DefaultMaxPods
	}
	namespaces := opts.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""} // all
	}
	o := &owners{c: opts.Client, top: map[string]owner{}}
	byOwner := map[owner]*audit.Workload{}
	var order []owner
	seen := map[owner]map[audit.Container]bool{}
	pods := 0
	for _, ns := range namespaces {
		cont := ""
		for {
			var list corev1.PodList
			lo := []client.ListOption{client.Limit(opts.PageSize), client.Continue(cont)}
			if ns != "" {
				lo = append(lo, client.InNamespace(ns))
			}
			if err := opts.Client.List(ctx, &list, lo...); err != nil {
				return nil, fmt.Errorf("list pods: %w", err)
			}
			for i := range list.Items {
				pod := &list.Items[i]
				if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
					continue
				}
				if pods++; pods > opts.MaxPods {
					return nil, fmt.Errorf("more than %d pods: audit fewer namespaces (-n)", opts.MaxPods)
				}
				containers, ps, err := podContainers(pod)
				if err != nil {
					return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
				}
				top, err := o.of(ctx, pod)
				if err != nil {
					return nil, err
				}
				w, ok := byOwner[top]
				if !ok {
					w = &audit.Workload{Namespace: top.namespace, Kind: top.kind, Name: top.name, Source: "cluster", PullSecrets: ps}
					byOwner[top], seen[top] = w, map[audit.Container]bool{}
					order = append(order, top)
				}
				w.Pods++
				for _, c := range containers {
					if !seen[top][c] {
						seen[top][c] = true
						w.Containers = append(w.Containers, c)
					}
				}
			}
			if cont = list.Continue; cont == "" {
				break
			}
		}
	}
	out := make([]audit.Workload, 0, len(order))
	for _, k := range order {
		out = append(out, *byOwner[k])
	}
	return out, nil
}

// podContainers returns the Pod's containers as admission reads them,
// each with the digest its status reports running, if any, and the Pod's
// pull secrets.
func podContainers(pod *corev1.Pod) ([]audit.Container, *admission.PullSecrets, error) {
	data, err := json.Marshal(pod)
	if err != nil {
		return nil, nil, err
	}
	images, err := admission.Images("Pod", data)
	if err != nil {
		return nil, nil, err
	}
	ps, ok, err := admission.PodPullSecrets("Pod", pod.Namespace, data)
	if err != nil {
		return nil, nil, err
	}
	running := map[string]digest.Digest{}
	for _, list := range []struct {
		what     string
		statuses []corev1.ContainerStatus
	}{
		{"init container", pod.Status.InitContainerStatuses},
		{"container", pod.Status.ContainerStatuses},
		{"ephemeral container", pod.Status.EphemeralContainerStatuses},
	} {
		for _, s := range list.statuses {
			if d := imageIDDigest(s.ImageID); d != "" {
				running[fmt.Sprintf("%s %q", list.what, s.Name)] = d
			}
		}
	}
	out := make([]audit.Container, len(images))
	for i, im := range images {
		out[i] = audit.Container{Container: im.Where, Image: im.Image, Running: running[im.Where]}
	}
	if !ok {
		return out, nil, nil
	}
	return out, &ps, nil
}

// imageIDDigest returns the manifest digest of a container status's
// imageID ("docker-pullable://repo@sha256:…", "repo@sha256:…"); empty
// when it names none (Docker's "docker://sha256:…" is an image ID, not a
// manifest digest).
func imageIDDigest(imageID string) digest.Digest {
	_, d, ok := strings.Cut(imageID, "@")
	if !ok {
		return ""
	}
	dg := digest.Digest(d)
	if dg.Validate() != nil {
		return ""
	}
	return dg
}

// owners finds the workload at the top of Pods' controller owner
// references, reading each owner's metadata once.
type owners struct {
	c client.Reader
	// top maps an owner (by UID) to the top of its chain.
	top map[string]owner
}

// of returns the workload that owns pod: the top of its controller owner
// references, or the Pod itself.
func (o *owners) of(ctx context.Context, pod *corev1.Pod) (owner, error) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return owner{pod.Namespace, "Pod", pod.Name}, nil
	}
	return o.chain(ctx, pod.Namespace, *ref, 1)
}

// chain returns the top of the controller chain from ref, an owner in
// namespace.
func (o *owners) chain(ctx context.Context, namespace string, ref metav1.OwnerReference, depth int) (owner, error) {
	here := owner{namespace, ref.Kind, ref.Name}
	if t, ok := o.top[string(ref.UID)]; ok {
		return t, nil
	}
	top := here
	if depth < maxOwnerDepth {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err == nil {
			meta := &metav1.PartialObjectMetadata{}
			meta.SetGroupVersionKind(gv.WithKind(ref.Kind))
			err = o.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, meta)
			switch {
			case err == nil:
				if up := metav1.GetControllerOf(meta); up != nil {
					if top, err = o.chain(ctx, namespace, *up, depth+1); err != nil {
						return owner{}, err
					}
				}
			case apierrors.IsNotFound(err), apierrors.IsForbidden(err), apimeta.IsNoMatchError(err):
				// Gone, not readable, or a kind the API server does not
				// serve: the chain ends here.
			case ctx.Err() != nil:
				return owner{}, ctx.Err()
			default:
				return owner{}, fmt.Errorf("read %s %s/%s, owner of pods: %w", ref.Kind, namespace, ref.Name, err)
			}
		}
	}
	if ref.UID != "" {
		o.top[string(ref.UID)] = top
	}
	return top, nil
}
