// Package kube is the Kubernetes source of vouch serve's configuration
// (docs/kubernetes.md): a reload.Source that reads one ClusterVouchConfig,
// the VouchConfigs of every namespace and the Secrets and ConfigMaps they
// reference, composes them (config.ComposeFailClosed) and builds a whole
// reload.Generation from them when they changed, and says in each
// resource's status whether it serves.
//
// Every Interval, and promptly when a watch reports a change of a resource
// or of a referenced object, the Source GETs the ClusterVouchConfig, LISTs
// the VouchConfigs, and GETs each referenced Secret and ConfigMap
// (uncached reads of named objects: vouch needs no right to list or watch
// Secrets, and its RBAC can name each object; a tenant's in the tenant's
// namespace), and fingerprints the specs and the referenced values. A
// fingerprint neither serving nor rejected already is composed and built
// (Options.Build, from the Snapshot's Composition) and swapped in
// (reload.Holder.Swap) or rejected (Holder.Reject: the last good
// generation keeps serving). A broken VouchConfig rejects nothing: the
// composition refuses it, and its namespace fails closed (every image
// denied, naming it) while the cluster and the other namespaces are
// served. The Ready condition and observedGeneration of the
// ClusterVouchConfig, and while its spec serves, of each VouchConfig, are
// then written when they differ from what the resource says, so that
// replicas which agree never write.
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
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
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

// MaxTenants bounds the VouchConfigs a Source reads in the whole cluster.
// With more, a check changes nothing (the last good configuration keeps
// serving) and logs why.
const MaxTenants = 1024

// SpecPrefix prefixes the fields that errors name ("spec.verifiers[0]"):
// pass it to config.Spec.Build.
const SpecPrefix = "spec."

// Snapshot is what one check read: a validated cluster spec, the
// VouchConfigs of every namespace, the values they reference, and the
// composition of them all.
type Snapshot struct {
	// Name and Generation identify the ClusterVouchConfig read.
	Name       string
	Generation int64
	// Spec is its spec, validated in the cluster form.
	Spec *config.Spec
	// Resolver holds the values of every reference of Spec (references
	// without a namespace read Options.Namespace).
	Resolver trust.Resolver
	// Fingerprint hashes the cluster's spec and every value it
	// references: put it in the generation's policy hash, so that
	// verdicts are cached per effective configuration and trust. The
	// tenants' are not in it: each namespace's (Composition.Namespace)
	// covers its own, so a tenant's change invalidates its namespace's
	// verdicts only.
	Fingerprint string

	// Tenants are the VouchConfigs of every namespace, by namespace and
	// name, as read (Composition validated them).
	Tenants []Tenant
	// Composition is Spec composed with Tenants
	// (config.ComposeFailClosed): the cluster's verifiers and policy, and
	// what each namespace adds (Composition.Namespace, for
	// engine.NamespaceOptions.Namespace). A tenant it refused fails closed
	// in its namespace; its status says why.
	Composition *config.Composition

	// state hashes Fingerprint and every tenant's spec and referenced
	// values: what a check compares to see a change.
	state string
	// invalid holds the tenants whose spec fails validation, by key.
	invalid map[string]error
}

// Tenant is one namespace's VouchConfig, read (see Snapshot.Tenants).
type Tenant struct {
	// Namespace and Name identify the VouchConfig; Generation is its
	// spec's.
	Namespace, Name string
	Generation      int64
	// Spec is its spec.
	Spec *config.TenantSpec
	// Resolver holds the values of its references, read in Namespace.
	Resolver trust.Resolver
}

// key identifies t among the tenants: "namespace/name".
func (t *Tenant) key() string { return t.Namespace + "/" + t.Name }

// BuildFunc builds the generation of a snapshot from its Composition
// (verifiers, policy, and the Namespace hook of
// engine.NamespaceOptions): registries, limits and executors. Its errors
// name the field at fault after SpecPrefix; they go into the
// ClusterVouchConfig's status.
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

	// last is the state that serves; failed the last one rejected, and
	// failure why; rejected tells whether the Holder was last told of a
	// rejection.
	last, failed string
	failure      error
	rejected     bool
	// refused are the tenants that the state that serves refused, by key,
	// with why.
	refused map[string]error
	// uid and generation identify the newest ClusterVouchConfig read: a
	// read of the same object at a lower generation is stale (an API
	// server answering from a lagging cache) and is not applied.
	uid        types.UID
	generation int64
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

// Check reads the resource, the VouchConfigs of every namespace and what
// they reference once, hands h what changed (a generation to swap in, or
// why the change is rejected) and writes the statuses that do not say so
// already: the ClusterVouchConfig's, and while its spec serves, each
// VouchConfig's.
func (s *Source) Check(ctx context.Context, h *reload.Holder) {
	var cr v1alpha1.ClusterVouchConfig
	err := s.opts.Client.Get(ctx, client.ObjectKey{Name: s.opts.Name}, &cr)
	if ctx.Err() != nil {
		return // stopping: a cancelled read is no rejected change
	}
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
	if cr.UID == s.uid && cr.Generation < s.generation {
		// An older spec than one read already: serving it would step
		// back to an older configuration. The next check reads again.
		s.opts.Logger.Debug("ClusterVouchConfig read at an older generation than already seen; ignored", "generation", cr.Generation, "seen", s.generation)
		return
	}
	s.uid, s.generation = cr.UID, cr.Generation
	vcs, err := s.listTenants(ctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		// No verdict on any resource, no status; the next check reads
		// again.
		s.watch(ctx, nil)
		h.Reject("", err)
		return
	}
	snap, watched, err := s.read(ctx, &cr, vcs)
	if ctx.Err() != nil {
		return
	}
	s.watch(ctx, watched)
	var re *RefError
	var se *specError
	if err != nil && !errors.As(err, &re) && !errors.As(err, &se) {
		// The API server could not answer: no verdict on the resource,
		// no status; the next check reads again.
		h.Reject("", err)
		return
	}
	var state string
	if snap != nil {
		state = snap.state
	}
	switch {
	case err != nil:
		s.failed, s.failure, s.rejected = "", err, true
		h.Reject(state, err)
	case state == s.last:
		if s.rejected && h.Current() != nil {
			// Back to the configuration that serves (a broken change
			// reverted): the Holder's failure is over.
			s.rejected = false
			h.Swap(h.Current())
		}
	case state == s.failed:
		err = s.failure
	default:
		g, refused, buildErr := s.build(ctx, snap)
		if buildErr != nil {
			s.failed, s.failure, s.rejected, err = state, buildErr, true, buildErr
			h.Reject(state, buildErr)
		} else {
			s.last, s.failed, s.failure, s.rejected, s.refused = state, "", nil, false, refused
			for _, t := range snap.Tenants {
				if why := refused[t.key()]; why != nil {
					s.opts.Logger.Warn("VouchConfig refused: its namespace fails closed (every image denied) until it is fixed or deleted",
						"namespace", t.Namespace, "name", t.Name, "error", why.Error())
				}
			}
			h.Swap(g)
		}
	}
	applied := fmt.Sprintf("serving spec generation %d", cr.Generation)
	s.writeStatus(ctx, &cr, &cr.Status, condition(err, applied))
	if err != nil {
		// The tenants were not composed with this cluster spec: their
		// statuses stay as they are (observedGeneration says which spec
		// they describe).
		return
	}
	for i := range vcs {
		vc := &vcs[i]
		why := s.refused[vc.Namespace+"/"+vc.Name]
		s.writeStatus(ctx, vc, &vc.Status, condition(why, fmt.Sprintf("serving spec generation %d in namespace %s", vc.Generation, vc.Namespace)))
	}
}

// build composes snap's cluster spec with its tenants and builds the
// generation; it returns why each refused tenant was, by key (a
// *specError for a spec that fails validation).
func (s *Source) build(ctx context.Context, snap *Snapshot) (*reload.Generation, map[string]error, error) {
	tenants := make([]config.Tenant, len(snap.Tenants))
	for i, t := range snap.Tenants {
		tenants[i] = config.Tenant{Namespace: t.Namespace, Name: t.Name, Spec: *t.Spec, Resolver: t.Resolver}
	}
	comp, refusedErrs, err := config.ComposeFailClosed(snap.Spec, tenants, snap.Resolver)
	if err != nil {
		return nil, nil, err
	}
	snap.Composition = comp
	g, err := s.opts.Build(ctx, snap)
	if err != nil {
		return nil, nil, err
	}
	refused := map[string]error{}
	for _, e := range refusedErrs {
		key := e.Namespace + "/" + e.Name
		if invalid := snap.invalid[key]; invalid != nil {
			refused[key] = &specError{invalid}
		} else {
			refused[key] = e.Err
		}
	}
	return g, refused, nil
}

// writeStatus writes obj's status (st, within obj) when it does not say
// want already, and logs what happened.
func (s *Source) writeStatus(ctx context.Context, obj client.Object, st *v1alpha1.Status, want metav1.Condition) {
	written, err := writeStatus(ctx, s.opts.Client, obj, st, want, s.opts.FieldManager)
	switch {
	case err != nil && apierrors.IsConflict(err):
		s.opts.Logger.Debug("status written by another replica first; looking again at the next check", "error", err.Error())
	case err != nil:
		s.opts.Logger.Warn("cannot write a status", "error", err.Error())
	case written:
		s.opts.Logger.Info("status written", "resource", describe(obj), "generation", obj.GetGeneration(), "ready", want.Status == metav1.ConditionTrue)
	}
}

// listTenants lists the VouchConfigs of every namespace, in pages, at
// most MaxTenants.
func (s *Source) listTenants(ctx context.Context) ([]v1alpha1.VouchConfig, error) {
	var out []v1alpha1.VouchConfig
	opts := []client.ListOption{client.Limit(250)}
	for {
		var list v1alpha1.VouchConfigList
		if err := s.opts.Client.List(ctx, &list, opts...); err != nil {
			return nil, fmt.Errorf("listing VouchConfigs: %w", err)
		}
		out = append(out, list.Items...)
		if len(out) > MaxTenants {
			return nil, fmt.Errorf("listing VouchConfigs: more than %d in the cluster", MaxTenants)
		}
		if list.Continue == "" {
			break
		}
		opts = []client.ListOption{client.Limit(250), client.Continue(list.Continue)}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// read validates cr's spec, reads what it and each of vcs reference, and
// fingerprints it all. It returns a *specError for a cluster spec that
// fails validation, a *RefError for too many references, and any other
// error when the API server did not answer; and the objects to watch.
// A tenant's invalid spec or references are not errors of read: the
// composition refuses that tenant.
func (s *Source) read(ctx context.Context, cr *v1alpha1.ClusterVouchConfig, vcs []v1alpha1.VouchConfig) (*Snapshot, []objectKey, error) {
	spec := cr.Spec.Spec.DeepCopy()
	if err := spec.Validate(config.FormCluster, SpecPrefix); err != nil {
		return nil, nil, &specError{err}
	}
	r := &resolver{namespace: s.opts.Namespace}
	if err := r.read(ctx, s.opts.Client, spec.Refs()); err != nil {
		return nil, nil, err
	}
	watched := r.watched()
	doc, err := json.Marshal(spec)
	if err != nil {
		return nil, watched, &specError{err}
	}
	fp := trust.NewFingerprinter()
	fp.Add("spec", string(doc))
	fp.Add("namespace", s.opts.Namespace)
	r.fingerprint(fp)
	snap := &Snapshot{Name: cr.Name, Generation: cr.Generation, Spec: spec, Resolver: r, Fingerprint: fp.Sum(), invalid: map[string]error{}}

	state := trust.NewFingerprinter()
	state.Add("cluster", snap.Fingerprint)
	for i := range vcs {
		vc := &vcs[i]
		t := Tenant{Namespace: vc.Namespace, Name: vc.Name, Generation: vc.Generation, Spec: vc.Spec.TenantSpec.DeepCopy()}
		tr := &resolver{namespace: vc.Namespace, objects: map[objectKey]*object{}, tenant: true}
		if err := t.Spec.Validate(config.FormTenant, SpecPrefix); err != nil {
			snap.invalid[t.key()] = err
		} else if err := tr.read(ctx, s.opts.Client, (&config.Spec{TenantSpec: *t.Spec}).Refs()); err != nil {
			var re *RefError
			if !errors.As(err, &re) {
				return nil, watched, err
			}
			tr.problem = re
		}
		t.Resolver = tr
		watched = append(watched, tr.watched()...)
		doc, err := json.Marshal(t.Spec)
		if err != nil {
			return nil, watched, err
		}
		state.Add("tenant "+t.key(), string(doc))
		tr.fingerprint(state)
		if tr.problem != nil {
			state.Add("problem", tr.problem.Error())
		}
		snap.Tenants = append(snap.Tenants, t)
	}
	snap.state = state.Sum()
	return snap, watched, nil
}

// watch keeps one watch by name on the resource and on each of objects,
// and stops the others. Watches only trigger checks; nothing is read from
// them.
func (s *Source) watch(ctx context.Context, objects []objectKey) {
	if s.opts.NoWatch || ctx.Err() != nil {
		return
	}
	want := map[objectKey]bool{{kind: "ClusterVouchConfig", name: s.opts.Name}: true, {kind: "VouchConfig"}: true}
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
// metadata.name, which RBAC's resourceNames allows), or the VouchConfigs
// of every namespace (k.kind "VouchConfig", no name), until ctx ends, and
// triggers a check on every event, starting again when the watch ends.
func (s *Source) watchNamed(ctx context.Context, k objectKey) {
	var list client.ObjectList
	var opts []client.ListOption
	if k.name != "" {
		opts = append(opts, client.MatchingFields{"metadata.name": k.name})
	}
	switch k.kind {
	case "VouchConfig":
		list = &v1alpha1.VouchConfigList{}
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
