// Package kube is the Kubernetes source of vouch serve's configuration
// (docs/kubernetes.md): a reload.Source that reads one ClusterVouchConfig
// and the Secrets and ConfigMaps it references, builds a whole
// reload.Generation from them when they changed, and says in the
// resource's status whether it serves.
//
// Every Interval, and promptly when a watch reports a change of the
// resource or of a referenced object, the Source GETs the resource and
// each referenced Secret and ConfigMap (uncached reads of named objects:
// vouch needs no right to list or watch Secrets cluster-wide, and its RBAC
// can name each object), and fingerprints the spec and the referenced
// values. A fingerprint neither serving nor rejected already is built
// (Options.Build, through config.Spec.Build with a resolver holding what
// was read) and swapped in (reload.Holder.Swap) or rejected (Holder.Reject:
// the last good generation keeps serving). The resource's Ready condition
// and observedGeneration are then written when they differ from what the
// resource says, so that replicas which agree never write.
//
// The periodic check works alone; watches only make it prompt.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch/api/v1alpha1"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/server/reload"
	"github.com/vouch-project/vouch/trust"
)

// DefaultName is the ClusterVouchConfig a Source reads by default.
const DefaultName = "vouch"

// SpecPrefix prefixes the fields that errors name ("spec.verifiers[0]"):
// pass it to config.Spec.Build.
const SpecPrefix = "spec."

// Snapshot is what one check read: a validated spec, the values it
// references, and their fingerprint.
type Snapshot struct {
	// Name and Generation identify the ClusterVouchConfig read.
	Name       string
	Generation int64
	// Spec is its spec, validated in the cluster form.
	Spec *config.Spec
	// Resolver holds the values of every reference of Spec (references
	// without a namespace read Options.Namespace); build with
	// Spec.Build(Resolver, SpecPrefix).
	Resolver trust.Resolver
	// Fingerprint hashes the spec and every referenced value: put it in
	// the generation's policy hash, so that verdicts are cached per
	// effective configuration and trust.
	Fingerprint string

	// Tenants will hold the VouchConfigs of every namespace, each with
	// its resolver, once config composes a cluster spec with tenants'
	// (issue 12, item 2); the Source then lists them here and Build
	// passes them to that composition. Nil today: tenants' resources are
	// not read.
	Tenants []Tenant
}

// Tenant is one namespace's VouchConfig, read (see Snapshot.Tenants).
type Tenant struct {
	// Namespace and Name identify the VouchConfig.
	Namespace, Name string
	// Spec is its validated spec.
	Spec *config.TenantSpec
	// Resolver reads its references, in its namespace.
	Resolver trust.Resolver
}

// BuildFunc builds the generation of a snapshot. Its errors name the
// field at fault after SpecPrefix; they go into the resource's status.
type BuildFunc func(ctx context.Context, s *Snapshot) (*reload.Generation, error)

// Options configure a Source.
type Options struct {
	// Client reads the resource and the objects it references, watches
	// them and writes the status; uncached (NewClient). Required.
	Client client.WithWatch
	// Name is the ClusterVouchConfig to serve. Optional; default
	// DefaultName.
	Name string
	// Namespace is vouch's own namespace, where references without a
	// namespace are read. Required.
	Namespace string
	// Build builds a generation from what was read. Required.
	Build BuildFunc
	// Interval is the time between two periodic checks. Optional;
	// default reload.DefaultInterval.
	Interval time.Duration
	// NoWatch disables the watches, leaving the periodic check alone.
	// Optional; default false (watch the resource and the referenced
	// objects by name).
	NoWatch bool
	// FieldManager names vouch in the status patches. Optional; default
	// "vouch".
	FieldManager string
	// Logger logs what the Holder does not (status writes, watches).
	// Optional; default slog.Default().
	Logger *slog.Logger
}

// Source is the Kubernetes reload.Source. Its Check and Start run in one
// goroutine.
type Source struct {
	opts Options

	// last is the fingerprint that serves; failed the last one rejected,
	// and failure why; rejected tells whether the Holder was last told of
	// a rejection.
	last, failed string
	failure      error
	rejected     bool
	// watches are the watches by name, each with its cancel function.
	watches map[objectKey]context.CancelFunc
	trigger chan struct{}
}

// New returns a Source for opts.
func New(opts Options) (*Source, error) {
	if opts.Client == nil || opts.Build == nil || opts.Namespace == "" {
		return nil, errors.New("kube: Options.Client, Build and Namespace are required")
	}
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.Interval <= 0 {
		opts.Interval = reload.DefaultInterval
	}
	if opts.FieldManager == "" {
		opts.FieldManager = "vouch"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Source{opts: opts, watches: map[objectKey]context.CancelFunc{}, trigger: make(chan struct{}, 1)}, nil
}

// Start checks at once, then every Interval and whenever a watch sees a
// change, until ctx ends; it returns nil then.
func (s *Source) Start(ctx context.Context, h *reload.Holder) error {
	defer func() {
		for k, cancel := range s.watches {
			cancel()
			delete(s.watches, k)
		}
	}()
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		s.Check(ctx, h)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.trigger:
		}
	}
}

// Check reads the resource and its references once, hands h what changed
// (a generation to swap in, or why the change is rejected) and writes the
// resource's status when it does not say so already.
func (s *Source) Check(ctx context.Context, h *reload.Holder) {
	var cr v1alpha1.ClusterVouchConfig
	err := s.opts.Client.Get(ctx, client.ObjectKey{Name: s.opts.Name}, &cr)
	if err != nil {
		s.watch(ctx, nil)
		if apierrors.IsNotFound(err) {
			err = fmt.Errorf("ClusterVouchConfig %s not found: create it (docs/kubernetes.md)", s.opts.Name)
		} else {
			err = fmt.Errorf("reading ClusterVouchConfig %s: %w", s.opts.Name, err)
		}
		h.Reject("", err)
		return
	}
	snap, r, err := s.read(ctx, &cr)
	if r != nil {
		s.watch(ctx, r.watched())
	}
	var re *RefError
	var se *specError
	if err != nil && !errors.As(err, &re) && !errors.As(err, &se) {
		// The API server could not answer: no verdict on the resource,
		// no status; the next check reads again.
		h.Reject("", err)
		return
	}
	var fp string
	if snap != nil {
		fp = snap.Fingerprint
	}
	switch {
	case err != nil:
		s.failed, s.failure, s.rejected = "", err, true
		h.Reject(fp, err)
	case fp == s.last:
		if s.rejected && h.Current() != nil {
			// Back to the configuration that serves (a broken change
			// reverted): the Holder's failure is over.
			s.rejected = false
			h.Swap(h.Current())
		}
	case fp == s.failed:
		err = s.failure
	default:
		g, buildErr := s.opts.Build(ctx, snap)
		if buildErr != nil {
			s.failed, s.failure, s.rejected, err = fp, buildErr, true, buildErr
			h.Reject(fp, buildErr)
		} else {
			s.last, s.failed, s.failure, s.rejected = fp, "", nil, false
			h.Swap(g)
		}
	}
	applied := fmt.Sprintf("serving spec generation %d", cr.Generation)
	if written, werr := writeStatus(ctx, s.opts.Client, &cr, condition(err, applied), s.opts.FieldManager); werr != nil {
		if apierrors.IsConflict(werr) {
			s.opts.Logger.Debug("status written by another replica first; looking again at the next check", "error", werr.Error())
		} else {
			s.opts.Logger.Warn("cannot write the ClusterVouchConfig's status", "error", werr.Error())
		}
	} else if written {
		s.opts.Logger.Info("ClusterVouchConfig status written", "name", cr.Name, "generation", cr.Generation, "ready", err == nil)
	}
}

// read validates cr's spec and reads what it references. It returns a
// *specError for a spec that fails validation, a *RefError for too many
// references, and any other error when the API server did not answer; the
// resolver whenever references were read.
func (s *Source) read(ctx context.Context, cr *v1alpha1.ClusterVouchConfig) (*Snapshot, *resolver, error) {
	spec := cr.Spec.Spec.DeepCopy()
	if err := spec.Validate(config.FormCluster, SpecPrefix); err != nil {
		return nil, nil, &specError{err}
	}
	r := &resolver{namespace: s.opts.Namespace}
	if err := r.read(ctx, s.opts.Client, spec.Refs()); err != nil {
		return nil, nil, err
	}
	doc, err := json.Marshal(spec)
	if err != nil {
		return nil, r, &specError{err}
	}
	fp := trust.NewFingerprinter()
	fp.Add("spec", string(doc))
	fp.Add("namespace", s.opts.Namespace)
	r.fingerprint(fp)
	return &Snapshot{Name: cr.Name, Generation: cr.Generation, Spec: spec, Resolver: r, Fingerprint: fp.Sum()}, r, nil
}

// watch keeps one watch by name on the resource and on each of objects,
// and stops the others. Watches only trigger checks; nothing is read from
// them.
func (s *Source) watch(ctx context.Context, objects []objectKey) {
	if s.opts.NoWatch || ctx.Err() != nil {
		return
	}
	want := map[objectKey]bool{{kind: "ClusterVouchConfig", name: s.opts.Name}: true}
	for _, k := range objects {
		want[k] = true
	}
	for k, cancel := range s.watches {
		if !want[k] {
			cancel()
			delete(s.watches, k)
		}
	}
	for k := range want {
		if _, ok := s.watches[k]; !ok {
			wctx, cancel := context.WithCancel(ctx)
			s.watches[k] = cancel
			go s.watchNamed(wctx, k)
		}
	}
}

// watchNamed watches one object by name (a field selector on
// metadata.name, which RBAC's resourceNames allows) until ctx ends, and
// triggers a check on every event, starting again when the watch ends.
func (s *Source) watchNamed(ctx context.Context, k objectKey) {
	var list client.ObjectList
	opts := []client.ListOption{client.MatchingFields{"metadata.name": k.name}}
	switch k.kind {
	case trust.KindSecret:
		list = &corev1.SecretList{}
	case trust.KindConfigMap:
		list = &corev1.ConfigMapList{}
	default:
		list = &v1alpha1.ClusterVouchConfigList{}
	}
	if k.namespace != "" {
		opts = append(opts, client.InNamespace(k.namespace))
	}
	backoff := time.Second
	wait := func() {
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, max(s.opts.Interval, time.Second))
	}
	for ctx.Err() == nil {
		w, err := s.opts.Client.Watch(ctx, list, opts...)
		if err != nil {
			s.opts.Logger.Debug("cannot watch; the periodic check still sees changes", "kind", k.kind, "namespace", k.namespace, "name", k.name, "error", err.Error())
			wait()
			continue
		}
		started := time.Now()
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break
			}
			select {
			case s.trigger <- struct{}{}:
			default:
			}
		}
		w.Stop()
		if time.Since(started) < time.Second {
			wait() // a watch that ends at once is not started again at once
		} else {
			backoff = time.Second
		}
	}
}

// NewClient returns an uncached client for cfg that knows vouch's
// resources and core v1 (Secrets, ConfigMaps).
func NewClient(cfg *rest.Config) (client.WithWatch, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.NewWithWatch(cfg, client.Options{Scheme: scheme})
}

// RESTConfig returns the configuration to reach the API server: from the
// kubeconfig file when one is named, else in cluster (the pod's service
// account).
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		if cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
	} else if cfg, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("in-cluster configuration (outside a pod, name a kubeconfig file): %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "vouch"
	return cfg, nil
}

// serviceAccountNamespace is where a pod finds its namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// DefaultNamespace returns vouch's namespace when it runs in a pod: the
// service account's namespace file, else $POD_NAMESPACE; "" when neither
// says.
func DefaultNamespace() string {
	if data, err := os.ReadFile(serviceAccountNamespace); err == nil {
		if ns := strings.TrimSpace(string(data)); ns != "" {
			return ns
		}
	}
	return os.Getenv("POD_NAMESPACE")
}
