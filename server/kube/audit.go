package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/audit/cluster"
	"github.com/vouch-project/vouch/server/admission"
)

// PolicyReport is the kind the in-server audit writes: the Kubernetes
// Policy Working Group's report (wgpolicyk8s.io/v1alpha2), as Kyverno
// writes it, one per namespace.
var PolicyReport = schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"}

// Names and labels of the PolicyReports the audit writes.
const (
	// PolicyReportName is the name of the audit's PolicyReport in each
	// namespace.
	PolicyReportName = "vouch-images"
	// ManagedByLabel marks the PolicyReports vouch writes, so that it
	// finds and deletes its own only.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "vouch"
	// PolicyName is the results' policy field.
	PolicyName = "vouch-image-verification"
)

// Defaults of AuditorOptions.
const (
	DefaultAuditInterval = 10 * time.Minute
	DefaultAuditRate     = 5.0
	// DefaultMaxResults bounds the results of one namespace's report
	// (etcd stores objects of about 1.5 MiB at most); failing results
	// are kept first.
	DefaultMaxResults = 1000
)

// AuditorOptions configure an Auditor.
type AuditorOptions struct {
	// Client lists Pods, reads their owners' metadata, reads, writes and
	// deletes PolicyReports, and creates Events (deploy/rbac/audit).
	// Required.
	Client client.Client
	// Verify decides an image in a namespace: the server's engine, whose
	// verdict cache admission shares. Required.
	Verify func(ctx context.Context, namespace, image string) (*vouch.Report, error)
	// Credentials reads each workload's images with its Pods' image pull
	// secrets, as admission does with --kubernetes-pull-secrets.
	// Optional.
	Credentials admission.CredentialsFunc
	// Interval is how often every running image is verified again.
	// Optional; default DefaultAuditInterval.
	Interval time.Duration
	// Rate bounds the verifications the audit starts per second, so that
	// it never crowds out admission. Optional; default DefaultAuditRate.
	Rate float64
	// MaxResults bounds one PolicyReport's results. Optional; default
	// DefaultMaxResults.
	MaxResults int
	// OnAudit is called after each audit with its report, or the error
	// that stopped it. Optional.
	OnAudit func(r *audit.Report, err error)
	// Logger logs each audit. Optional; default slog.Default().
	Logger *slog.Logger
	// Now is the clock of the results' timestamps. Optional; default
	// time.Now.
	Now func() time.Time
}

// Auditor verifies the images of the cluster's running Pods again,
// periodically and whenever Trigger is called (the configuration or its
// trust material changed), and publishes the verdicts as a PolicyReport
// per namespace. It implements Start(ctx) error, like the other
// long-running parts.
type Auditor struct {
	opts    AuditorOptions
	trigger chan struct{}
	// allowed holds the containers allowed at the last audit, by
	// namespace/kind/name/container/image: an Event marks those that are
	// not any more. Only Audit uses it, one audit at a time.
	allowed map[string]bool
}

// NewAuditor returns the Auditor for opts.
func NewAuditor(opts AuditorOptions) (*Auditor, error) {
	if opts.Client == nil {
		return nil, errors.New("kube: AuditorOptions.Client is required")
	}
	if opts.Verify == nil {
		return nil, errors.New("kube: AuditorOptions.Verify is required")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultAuditInterval
	}
	if opts.Rate <= 0 {
		opts.Rate = DefaultAuditRate
	}
	if opts.MaxResults <= 0 {
		opts.MaxResults = DefaultMaxResults
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Auditor{opts: opts, trigger: make(chan struct{}, 1)}, nil
}

// Trigger asks for an audit as soon as the one running (if any) ends;
// calls while one is pending are one. It never blocks.
func (a *Auditor) Trigger() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// Start audits until ctx ends: once a trigger arrives (the first
// configuration serving), then at every Interval and at every trigger.
func (a *Auditor) Start(ctx context.Context) error {
	timer := time.NewTimer(a.opts.Interval)
	defer timer.Stop()
	started := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.trigger:
		case <-timer.C:
			if !started {
				timer.Reset(a.opts.Interval)
				continue // no configuration serves yet
			}
		}
		started = true
		r, err := a.Audit(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			a.opts.Logger.Warn("audit failed; trying again at the next interval", "error", err.Error())
		} else {
			a.opts.Logger.Info("audit done", "verdict", string(r.Verdict), "workloads", len(r.Workloads), "verified", r.Verified)
		}
		if a.opts.OnAudit != nil {
			a.opts.OnAudit(r, err)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(a.opts.Interval)
	}
}

// Audit verifies the images of the running Pods once, at most Rate per
// second, and writes each namespace's PolicyReport; it deletes the
// reports it wrote in namespaces where no Pod runs any more, and writes a
// Warning Event (ImageNoLongerAllowed) on each workload whose running
// image the previous audit allowed and this one does not. Audits run one
// at a time (Start runs them so).
func (a *Auditor) Audit(ctx context.Context) (*audit.Report, error) {
	workloads, err := cluster.Workloads(ctx, cluster.Options{Client: a.opts.Client})
	if err != nil {
		return nil, err
	}
	pace := time.NewTicker(time.Duration(float64(time.Second) / a.opts.Rate))
	defer pace.Stop()
	r, err := audit.Run(ctx, workloads, audit.Options{
		Verify:      a.opts.Verify,
		Credentials: a.opts.Credentials,
		Parallel:    2,
		Wait: func(ctx context.Context) error {
			select {
			case <-pace.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	err = errors.Join(a.publish(ctx, r), a.events(ctx, r))
	return r, err
}

// Event reasons.
const (
	// ReasonImageNoLongerAllowed is the reason of the Warning Event on a
	// workload whose running image passed the last audit and fails this
	// one.
	ReasonImageNoLongerAllowed = "ImageNoLongerAllowed"
)

// events writes a Warning Event on each workload whose running image was
// allowed at the previous audit and is not at this one, and remembers
// what is allowed now.
func (a *Auditor) events(ctx context.Context, r *audit.Report) error {
	allowed := map[string]bool{}
	var errs []error
	now := metav1.NewTime(a.opts.Now())
	for _, w := range r.Workloads {
		for _, im := range w.Images {
			key := strings.Join([]string{w.Namespace, w.Kind, w.Name, im.Container, im.Image}, "/")
			if im.Verdict == vouch.Allowed {
				allowed[key] = true
				continue
			}
			if !a.allowed[key] {
				continue
			}
			ev := &corev1.Event{
				ObjectMeta:          metav1.ObjectMeta{Namespace: w.Namespace, GenerateName: strings.ToLower(w.Name) + ".vouch-"},
				InvolvedObject:      corev1.ObjectReference{APIVersion: apiVersionOf(w.Kind), Kind: w.Kind, Name: w.Name, Namespace: w.Namespace},
				Reason:              ReasonImageNoLongerAllowed,
				Message:             truncate(fmt.Sprintf("%s runs %s, which vouch no longer allows (%s): %s", im.Container, im.Image, im.Verdict, im.Reason)),
				Type:                corev1.EventTypeWarning,
				Source:              corev1.EventSource{Component: managedBy},
				FirstTimestamp:      now,
				LastTimestamp:       now,
				Count:               1,
				ReportingController: "vouch.dev/audit",
				ReportingInstance:   managedBy,
			}
			if err := a.opts.Client.Create(ctx, ev); err != nil {
				errs = append(errs, fmt.Errorf("event on %s %s/%s: %w", w.Kind, w.Namespace, w.Name, err))
			}
		}
	}
	a.allowed = allowed
	return errors.Join(errs...)
}

// apiVersionOf is the API version of the workload kinds audit reports.
func apiVersionOf(kind string) string {
	return map[string]string{"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "ReplicaSet": "apps/v1",
		"Job": "batch/v1", "CronJob": "batch/v1", "Pod": "v1", "ReplicationController": "v1"}[kind]
}

// publish writes one PolicyReport per namespace of r, and deletes vouch's
// PolicyReports in the other namespaces.
func (a *Auditor) publish(ctx context.Context, r *audit.Report) error {
	byNS := map[string][]*audit.WorkloadReport{}
	for _, w := range r.Workloads {
		byNS[w.Namespace] = append(byNS[w.Namespace], w)
	}
	now := a.opts.Now()
	var errs []error
	for ns, ws := range byNS {
		if err := a.write(ctx, ns, ws, now); err != nil {
			errs = append(errs, err)
		}
	}
	var list unstructured.UnstructuredList
	list.SetGroupVersionKind(PolicyReport.GroupVersion().WithKind(PolicyReport.Kind + "List"))
	if err := a.opts.Client.List(ctx, &list, client.MatchingLabels{ManagedByLabel: managedBy}); err != nil {
		errs = append(errs, fmt.Errorf("list PolicyReports: %w", err))
	}
	for i := range list.Items {
		old := &list.Items[i]
		if _, ok := byNS[old.GetNamespace()]; ok || old.GetName() != PolicyReportName {
			continue
		}
		if err := a.opts.Client.Delete(ctx, old); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete PolicyReport %s/%s: %w", old.GetNamespace(), old.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// write creates or replaces namespace's PolicyReport.
func (a *Auditor) write(ctx context.Context, namespace string, ws []*audit.WorkloadReport, now time.Time) error {
	results, summary := a.results(ws, now)
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(PolicyReport)
	err := a.opts.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: PolicyReportName}, obj)
	create := apierrors.IsNotFound(err)
	if err != nil && !create {
		return fmt.Errorf("read PolicyReport %s/%s: %w", namespace, PolicyReportName, err)
	}
	if create {
		obj = &unstructured.Unstructured{Object: map[string]any{}}
		obj.SetGroupVersionKind(PolicyReport)
		obj.SetNamespace(namespace)
		obj.SetName(PolicyReportName)
	}
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ManagedByLabel] = managedBy
	obj.SetLabels(labels)
	obj.Object["summary"] = summary
	obj.Object["results"] = results
	if create {
		err = a.opts.Client.Create(ctx, obj)
	} else {
		err = a.opts.Client.Update(ctx, obj)
	}
	if err != nil {
		return fmt.Errorf("write PolicyReport %s/%s: %w", namespace, PolicyReportName, err)
	}
	return nil
}

// resultOf maps a verdict to a PolicyReport result: pass, fail, warn
// (allowed by a warn or audit scope although its requirements failed),
// error (undecided).
func resultOf(im audit.ImageReport) string {
	switch {
	case im.Verdict == vouch.Allowed && im.Waived:
		return "warn"
	case im.Verdict == vouch.Allowed:
		return "pass"
	case im.Verdict == vouch.Denied:
		return "fail"
	}
	return "error"
}

// results returns the PolicyReport results of a namespace's workloads,
// one per container (failing ones first when MaxResults cuts), and their
// summary.
func (a *Auditor) results(ws []*audit.WorkloadReport, now time.Time) ([]any, map[string]any) {
	type result struct {
		rank int
		v    map[string]any
	}
	rank := map[string]int{"fail": 0, "error": 1, "warn": 2, "pass": 3}
	summary := map[string]any{"pass": int64(0), "fail": int64(0), "warn": int64(0), "error": int64(0), "skip": int64(0)}
	var all []result
	for _, w := range ws {
		apiVersion := apiVersionOf(w.Kind)
		resource := map[string]any{"kind": w.Kind, "name": w.Name, "namespace": w.Namespace}
		if apiVersion != "" {
			resource["apiVersion"] = apiVersion
		}
		for _, im := range w.Images {
			res := resultOf(im)
			summary[res] = summary[res].(int64) + 1
			props := map[string]any{"container": im.Container, "image": im.Image, "verdict": string(im.Verdict)}
			if im.Digest != "" {
				props["digest"] = im.Digest.String()
			}
			if im.Mode != "" {
				props["mode"] = string(im.Mode)
			}
			all = append(all, result{rank[res], map[string]any{
				"policy":     PolicyName,
				"rule":       containerName(im.Container),
				"result":     res,
				"message":    im.Reason,
				"source":     "vouch",
				"scored":     true,
				"category":   "Supply chain",
				"resources":  []any{resource},
				"properties": props,
				"timestamp":  map[string]any{"seconds": now.Unix(), "nanos": int64(0)},
			}})
		}
	}
	slices.SortStableFunc(all, func(x, y result) int { return cmp.Compare(x.rank, y.rank) })
	if len(all) > a.opts.MaxResults {
		a.opts.Logger.Warn("PolicyReport results cut", "results", len(all), "max", a.opts.MaxResults)
		all = all[:a.opts.MaxResults]
	}
	out := make([]any, len(all))
	for i, r := range all {
		out[i] = r.v
	}
	return out, summary
}

// containerName is the name in `container "web"`, for a result's rule.
func containerName(where string) string {
	if i := strings.IndexByte(where, '"'); i >= 0 && strings.HasSuffix(where, `"`) && len(where) > i+1 {
		return strings.ReplaceAll(where[:i], " ", "-") + where[i+1:len(where)-1]
	}
	return where
}
