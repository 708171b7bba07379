// Package audit verifies the images of Kubernetes workloads, each under the
// policy of its namespace: those of manifests before they are deployed
// (ReadManifests: `helm template … | vouch audit -f -`), or those of a
// cluster's running Pods (package audit/cluster). Each distinct image is
// verified once under each distinct policy, however many containers use
// it; the Report groups the verdicts by namespace and workload.
//
// Containers are found by the admission webhook's own reading of pod
// specs (admission.Images), so an audit checks what admission checks.
package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/server/admission"
)

// ReportVersion is the version of the JSON document `vouch audit -o json`
// prints; it changes only when a field changes meaning or goes away.
const ReportVersion = "vouch.audit/v1"

// DefaultParallel is Options.Parallel's default.
const DefaultParallel = 4

// Workload is an object that runs containers: a Pod, or a workload whose
// pod template makes Pods (Deployment, StatefulSet, DaemonSet, Job,
// CronJob, ReplicaSet, ReplicationController).
type Workload struct {
	// Namespace is the workload's namespace; its policy applies.
	Namespace string `json:"namespace"`
	// Kind is the workload's kind: Deployment, Pod, ...
	Kind string `json:"kind"`
	// Name is the workload's name.
	Name string `json:"name"`
	// Source says where the workload was read: "deploy.yaml: document 2",
	// or "cluster". Optional.
	Source string `json:"source,omitempty"`
	// Pods counts the running Pods of the workload that were read (the
	// cluster source); 0 for manifests.
	Pods int `json:"pods,omitempty"`
	// Containers are the workload's containers, init containers and
	// ephemeral containers.
	Containers []Container `json:"containers"`
	// PullSecrets are the image pull secrets of the workload's Pods (the
	// cluster source), which Options.Credentials reads. Optional.
	PullSecrets *admission.PullSecrets `json:"-"`
}

// Container is one container's image in a workload.
type Container struct {
	// Container names the container: `container "app"`, `init container
	// "setup"`, `ephemeral container "debug"`.
	Container string `json:"container"`
	// Image is the image as the pod spec writes it.
	Image string `json:"image"`
	// Running is the digest of the image the node runs (from the Pod's
	// status); it is what is verified, in the repository of Image. Empty
	// when unknown (manifests, Pods not yet started).
	Running digest.Digest `json:"running,omitempty"`
}

// Options configure Run.
type Options struct {
	// Executor returns the executor that decides in a namespace, and a key
	// naming its policy: verdicts are shared by namespaces whose key is
	// the same. An error makes every image of the namespace undecided.
	// Required.
	Executor func(namespace string) (exec *vouch.Executor, policyKey string, err error)
	// Verify, set instead of Executor, decides image in namespace: a
	// server's engine, whose verdict cache is shared with admission. Each
	// distinct image is then verified once per namespace (the engine
	// shares verdicts between namespaces of the same policy). Optional.
	Verify func(ctx context.Context, namespace, image string) (*vouch.Report, error)
	// Credentials returns the context a workload's images are verified
	// in, carrying the registry credentials of its pull secrets, as the
	// admission webhook reads a Pod's images with them
	// (--kubernetes-pull-secrets); with it, images are verified once per
	// distinct pull secrets too. Optional; default the caller's
	// credentials only.
	Credentials admission.CredentialsFunc
	// Wait is called before each verification and may block to pace them
	// (a rate limit); an error ends the audit's remaining verifications,
	// which become undecided. Optional.
	Wait func(ctx context.Context) error
	// Parallel is how many images are verified at once. Optional; default
	// DefaultParallel.
	Parallel int
}

// Report is the outcome of an audit: `vouch audit -o json` prints it.
type Report struct {
	// Version is ReportVersion.
	Version string `json:"version"`
	// Verdict is allowed when every image is, denied when any is, else
	// undecided.
	Verdict vouch.Verdict `json:"verdict"`
	// Verified counts the verifications run: one per distinct image and
	// policy.
	Verified int `json:"verified"`
	// Workloads are the workloads, sorted by namespace, kind and name.
	Workloads []*WorkloadReport `json:"workloads"`
}

// WorkloadReport is one workload's verdicts.
type WorkloadReport struct {
	// Namespace, Kind, Name, Source and Pods are the workload's (see
	// Workload).
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Source    string `json:"source,omitempty"`
	Pods      int    `json:"pods,omitempty"`
	// Verdict sums up the workload's images as Report.Verdict sums up
	// all.
	Verdict vouch.Verdict `json:"verdict"`
	// Images holds one verdict per container, in Containers' order.
	Images []ImageReport `json:"images"`
}

// ImageReport is the verdict on one container's image.
type ImageReport struct {
	// Container and Image are the container's (see Container).
	Container string `json:"container"`
	Image     string `json:"image"`
	// Reference is the reference verified, pinned to the digest when it
	// was resolved.
	Reference string `json:"reference,omitempty"`
	// Digest is the digest verified; empty when it could not be resolved.
	Digest digest.Digest `json:"digest,omitempty"`
	// Verdict is allowed, denied or undecided.
	Verdict vouch.Verdict `json:"verdict"`
	// Reason explains the verdict.
	Reason string `json:"reason"`
	// Mode is the policy mode that applied (enforce, warn, audit).
	Mode vouch.Mode `json:"mode,omitempty"`
	// Waived is true when the requirements were not met but the mode let
	// the image through; Reason says what failed.
	Waived bool `json:"waived,omitempty"`
}

// job is one verification, shared by the containers that need it.
type job struct {
	exec        *vouch.Executor // or Options.Verify in namespace
	namespace   string
	ref         vouch.Reference
	pullSecrets *admission.PullSecrets // with Options.Credentials
	report      *vouch.Report
}

// Run verifies the images of workloads, each distinct image once per
// distinct policy, up to opts.Parallel at once, and returns the report.
// Verification failures and errors are verdicts in the report; Run
// returns an error only for bad options.
func Run(ctx context.Context, workloads []Workload, opts Options) (*Report, error) {
	if (opts.Executor == nil) == (opts.Verify == nil) {
		return nil, errors.New("audit: set one of Options.Executor and Options.Verify")
	}
	if opts.Verify != nil {
		opts.Executor = func(ns string) (*vouch.Executor, string, error) { return nil, "ns=" + ns, nil }
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	type nsExec struct {
		exec *vouch.Executor
		key  string
		err  error
	}
	namespaces := map[string]nsExec{}
	jobs := map[string]*job{}
	var order []*job
	report := &Report{Version: ReportVersion}
	pending := make([][]*job, len(workloads)) // per workload, per container; nil: not verified
	reasons := make([][]string, len(workloads))
	for i, w := range workloads {
		ne, ok := namespaces[w.Namespace]
		if !ok {
			ne.exec, ne.key, ne.err = opts.Executor(w.Namespace)
			if ne.err == nil && ne.exec == nil && opts.Verify == nil {
				ne.err = errors.New("no executor")
			}
			namespaces[w.Namespace] = ne
		}
		pending[i] = make([]*job, len(w.Containers))
		reasons[i] = make([]string, len(w.Containers))
		for j, c := range w.Containers {
			if ne.err != nil {
				reasons[i][j] = fmt.Sprintf("could not decide: the policy of namespace %s: %v", w.Namespace, ne.err)
				continue
			}
			ref, err := subject(c)
			if err != nil {
				reasons[i][j] = "could not decide: " + err.Error()
				continue
			}
			key := ne.key + "\x00" + ref.String()
			var ps *admission.PullSecrets
			if opts.Credentials != nil && w.PullSecrets != nil {
				ps = w.PullSecrets
				key += fmt.Sprintf("\x00%s\x00%s\x00%q", ps.Namespace, ps.ServiceAccount, ps.Names)
			}
			jb, ok := jobs[key]
			if !ok {
				jb = &job{exec: ne.exec, namespace: w.Namespace, ref: ref, pullSecrets: ps}
				jobs[key] = jb
				order = append(order, jb)
			}
			pending[i][j] = jb
		}
	}
	verify(ctx, order, opts)
	report.Verified = len(order)

	all := make([]vouch.Verdict, 0, len(workloads))
	for i, w := range workloads {
		wr := &WorkloadReport{Namespace: w.Namespace, Kind: w.Kind, Name: w.Name, Source: w.Source, Pods: w.Pods, Images: make([]ImageReport, len(w.Containers))}
		verdicts := make([]vouch.Verdict, len(w.Containers))
		for j, c := range w.Containers {
			ir := ImageReport{Container: c.Container, Image: c.Image, Verdict: vouch.Undecided, Reason: reasons[i][j]}
			if jb := pending[i][j]; jb != nil {
				r := jb.report
				ir.Reference, ir.Verdict, ir.Reason, ir.Mode, ir.Waived = r.Reference, r.Verdict, r.Reason, r.Mode, r.Waived
				if r.Root != nil {
					ir.Digest = r.Root.Digest
				} else if ref, err := vouch.ParseReference(r.Reference); err == nil {
					ir.Digest = ref.Digest
				}
			}
			wr.Images[j] = ir
			verdicts[j] = ir.Verdict
		}
		wr.Verdict = combine(verdicts, vouch.Allowed)
		report.Workloads = append(report.Workloads, wr)
		all = append(all, wr.Verdict)
	}
	report.Verdict = combine(all, vouch.Allowed)
	slices.SortStableFunc(report.Workloads, func(a, b *WorkloadReport) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return report, nil
}

// subject is the reference to verify for c: its image, pinned to the
// running digest when the node reported one. OCI layouts on disk are
// refused: an image name in a Pod is never a path on this machine.
func subject(c Container) (vouch.Reference, error) {
	ref, err := vouch.ParseReference(c.Image)
	if err != nil {
		return vouch.Reference{}, err
	}
	if ref.IsLayout() {
		return vouch.Reference{}, fmt.Errorf("image %q is not a registry reference", c.Image)
	}
	if c.Running != "" {
		if err := c.Running.Validate(); err != nil {
			return vouch.Reference{}, fmt.Errorf("running digest %q: %v", c.Running, err)
		}
		ref = ref.WithDigest(c.Running)
	}
	return ref, nil
}

// verify runs jobs, up to opts.Parallel at once, each after opts.Wait,
// filling each one's report.
func verify(ctx context.Context, jobs []*job, opts Options) {
	sem := make(chan struct{}, opts.Parallel)
	done := make(chan struct{})
	for _, jb := range jobs {
		go func() {
			sem <- struct{}{}
			jb.report = run(ctx, jb, opts)
			<-sem
			done <- struct{}{}
		}()
	}
	for range jobs {
		<-done
	}
}

// combine is denied when any verdict is, else undecided when any is, else
// empty (allowed for none).
func combine(verdicts []vouch.Verdict, empty vouch.Verdict) vouch.Verdict {
	out := empty
	for _, v := range verdicts {
		switch v {
		case vouch.Denied:
			return vouch.Denied
		case vouch.Allowed:
		default:
			out = vouch.Undecided
		}
	}
	return out
}

// run verifies one job.
func run(ctx context.Context, jb *job, opts Options) *vouch.Report {
	if opts.Wait != nil {
		if err := opts.Wait(ctx); err != nil {
			return &vouch.Report{Subject: jb.ref.String(), Reference: jb.ref.String(), Verdict: vouch.Undecided, Reason: "could not decide: " + err.Error()}
		}
	}
	if jb.pullSecrets != nil {
		// Fewer credentials can only make vouch read less: an error
		// leaves those that could be read.
		ctx, _ = opts.Credentials(ctx, *jb.pullSecrets)
	}
	if opts.Verify == nil {
		r, _ := jb.exec.Verify(ctx, jb.ref)
		return r
	}
	r, err := opts.Verify(ctx, jb.namespace, jb.ref.String())
	if r == nil {
		reason := "could not decide"
		if err != nil {
			reason += ": " + err.Error()
		}
		r = &vouch.Report{Subject: jb.ref.String(), Reference: jb.ref.String(), Verdict: vouch.Undecided, Reason: reason}
	}
	return r
}
