// Package admission is vouch's native Kubernetes admission webhook, for
// clusters without Gatekeeper: Validate denies Pods and workloads whose
// images vouch does not allow, Mutate pins their images to digests.
//
// It speaks AdmissionReview admission.k8s.io/v1
// (https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request)
// with the few types it needs defined here: k8s.io/api would bring
// apimachinery and its dependencies into the module for five structs, and
// decoding only the fields vouch reads (the containers' images) keeps the
// work per request small.
package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/untrusted"
)

// APIVersion is the AdmissionReview version served.
const APIVersion = "admission.k8s.io/v1"

// Defaults of Options.
const (
	DefaultConcurrency = 16
	DefaultMaxImages   = 500
	// maxMessage bounds the denial message (the API server shows it to the
	// user) and maxWarning each warning.
	maxMessage = 4000
	maxWarning = 500
)

// Review is an AdmissionReview: a request from the API server, answered by
// the same object with Response set.
type Review struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Request    *Request  `json:"request,omitempty"`
	Response   *Response `json:"response,omitempty"`
}

// Request is the part of an AdmissionRequest vouch reads.
type Request struct {
	// UID identifies the request; the response echoes it.
	UID string `json:"uid"`
	// Kind is the object's kind, such as apps/v1 Deployment.
	Kind GroupVersionKind `json:"kind"`
	// SubResource is set for pods/ephemeralcontainers, for example.
	SubResource string `json:"subResource,omitempty"`
	// Namespace is the object's namespace; its policy applies.
	Namespace string `json:"namespace,omitempty"`
	// Name is the object's name (empty on some creates).
	Name string `json:"name,omitempty"`
	// Operation is CREATE, UPDATE, DELETE or CONNECT.
	Operation string `json:"operation"`
	// Object is the object as it would be stored.
	Object json.RawMessage `json:"object,omitempty"`
}

// GroupVersionKind names a kind.
type GroupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// Response is an AdmissionResponse.
type Response struct {
	UID       string   `json:"uid"`
	Allowed   bool     `json:"allowed"`
	Status    *Status  `json:"status,omitempty"`
	Patch     []byte   `json:"patch,omitempty"`
	PatchType string   `json:"patchType,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

// Status says why a request is denied (a metav1.Status).
type Status struct {
	Code    int    `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// LocalDecider is a Decider that can also answer some images at once,
// from memory; *engine.Engine is one (engine.VerifyLocal).
type LocalDecider interface {
	Decider
	// VerifyLocal is Verify for an image it can answer without I/O or
	// waiting; false (having done nothing) for any other. The report may
	// be shared with other callers: it must not be modified.
	VerifyLocal(ctx context.Context, namespace, image string) (report *vouch.Report, id uint64, ok bool)
}

// Decider decides on and pins images; *engine.Engine is one.
type Decider interface {
	// Verify returns the report on image under namespace's policy; an
	// error means vouch could not decide.
	Verify(ctx context.Context, namespace, image string) (*vouch.Report, error)
	// Resolve pins image to its digest.
	Resolve(ctx context.Context, namespace, image string) (vouch.Reference, error)
}

// Options configure a Webhook.
type Options struct {
	// Decider answers for images. Required.
	Decider Decider
	// Concurrency bounds the images checked at once for one request.
	// Optional; default DefaultConcurrency.
	Concurrency int
	// MaxImages bounds the containers of one object. Optional; default
	// DefaultMaxImages.
	MaxImages int
	// Logger logs denials. Optional; default slog.Default().
	Logger *slog.Logger
	// Credentials, when set, gives each request the registry credentials
	// of its pod's image pull secrets (PodPullSecrets), read in the
	// request's namespace, for that request only. Optional; default nil:
	// the registry store's own credentials.
	Credentials CredentialsFunc
}

// Webhook serves validating and mutating admission requests. The caller
// bounds the request body (http.MaxBytesReader) and the time (the request's
// context deadline): an image not decided by then is denied, fail closed.
type Webhook struct {
	opts Options
}

// New returns a Webhook for opts.
func New(opts Options) (*Webhook, error) {
	if opts.Decider == nil {
		return nil, errors.New("admission: Options.Decider is required")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.MaxImages <= 0 {
		opts.MaxImages = DefaultMaxImages
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Webhook{opts: opts}, nil
}

// Validate serves the validating webhook: every container, init container
// and ephemeral container image of a Pod or a workload's pod template must
// be allowed. A denial lists each denied image with vouch's reason; an
// image allowed only because its policy's mode is warn becomes an admission
// warning.
func (wh *Webhook) Validate(w http.ResponseWriter, r *http.Request) {
	wh.serve(w, r, wh.validate)
}

// Mutate serves the mutating webhook: a JSONPatch that pins each image
// named by tag to its digest ("registry/repository@sha256:…"). Images it
// cannot pin are left as they are, with a warning; the validating webhook
// decides on them.
func (wh *Webhook) Mutate(w http.ResponseWriter, r *http.Request) {
	wh.serve(w, r, wh.mutate)
}

func (wh *Webhook) serve(w http.ResponseWriter, r *http.Request, handle func(context.Context, *Request) *Response) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	var review Review
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(&review)
	if err == nil {
		if _, tokErr := dec.Token(); tokErr != io.EOF {
			err = tokErr
			if err == nil {
				err = errors.New("data after the JSON object")
			}
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request body is over the limit of %d bytes", tooBig.Limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "malformed AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	if review.APIVersion != APIVersion || review.Kind != "AdmissionReview" || review.Request == nil {
		http.Error(w, fmt.Sprintf("want an AdmissionReview %s with a request, got %q %q", APIVersion, review.APIVersion, review.Kind), http.StatusBadRequest)
		return
	}
	resp := handle(r.Context(), review.Request)
	resp.UID = review.Request.UID
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Review{APIVersion: APIVersion, Kind: "AdmissionReview", Response: resp})
}

// verdict is the engine's answer on one image.
type verdict struct {
	report *vouch.Report
	err    error
}

func (wh *Webhook) validate(ctx context.Context, req *Request) *Response {
	images, resp := wh.images(req)
	if resp != nil {
		return resp
	}
	ctx = wh.withCredentials(ctx, req)
	distinctImages := map[string]bool{}
	var list []string
	for _, im := range images {
		if !distinctImages[im.Image] {
			distinctImages[im.Image] = true
			list = append(list, im.Image)
		}
	}
	verdicts := make([]verdict, len(list))
	// Images the decider holds in memory are answered here, the others
	// concurrently.
	local, _ := wh.opts.Decider.(LocalDecider)
	pending := make([]int, 0, len(list))
	for i, im := range list {
		if local != nil {
			if r, _, ok := local.VerifyLocal(ctx, req.Namespace, im); ok {
				verdicts[i] = verdict{r, nil}
				continue
			}
		}
		pending = append(pending, i)
	}
	wh.each(len(pending), func(j int) {
		i := pending[j]
		r, err := wh.opts.Decider.Verify(ctx, req.Namespace, list[i])
		verdicts[i] = verdict{r, err}
	})

	byImage := map[string]verdict{}
	for i, im := range list {
		byImage[im] = verdicts[i]
	}
	var denials, warnings []string
	described := map[string]bool{}
	for _, im := range images {
		if described[im.Image] {
			continue
		}
		described[im.Image] = true
		v := byImage[im.Image]
		switch {
		case v.err != nil:
			reason := "vouch could not decide"
			if ctx.Err() != nil {
				reason = "vouch could not decide in time (fail closed)"
			} else if v.report != nil && v.report.Reason != "" {
				reason = "vouch " + v.report.Reason + " (fail closed)"
			} else {
				reason += ": " + v.err.Error() + " (fail closed)"
			}
			denials = append(denials, fmt.Sprintf("%s image %s: %s", im.Where, im.Image, reason))
		case v.report.Verdict != vouch.Allowed:
			denials = append(denials, fmt.Sprintf("%s image %s: %s", im.Where, im.Image, v.report.Reason))
		case wouldDeny(v.report, vouch.ModeWarn):
			warnings = append(warnings, truncate(fmt.Sprintf("vouch: %s image %s: %s", im.Where, im.Image, v.report.Reason), maxWarning))
		case wouldDeny(v.report, vouch.ModeAudit):
			wh.opts.Logger.InfoContext(ctx, "audit: would deny", "namespace", req.Namespace, "image", im.Image, "reason", v.report.Reason)
		}
	}
	if len(denials) == 0 {
		return &Response{Allowed: true, Warnings: warnings}
	}
	wh.opts.Logger.InfoContext(ctx, "denied", "namespace", req.Namespace, "kind", req.Kind.Kind, "name", req.Name, "denials", denials)
	msg := fmt.Sprintf("vouch denied %d of %d images: %s", len(denials), len(list), strings.Join(denials, "; "))
	return &Response{Allowed: false, Warnings: warnings, Status: &Status{Code: http.StatusForbidden, Reason: "Forbidden", Message: truncate(msg, maxMessage)}}
}

// wouldDeny tells a subject allowed only because its policy scope's mode
// is mode (warn or audit).
func wouldDeny(r *vouch.Report, mode vouch.Mode) bool {
	return r.Mode == mode && r.Waived
}

// patchOp is one JSONPatch (RFC 6902) operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

func (wh *Webhook) mutate(ctx context.Context, req *Request) *Response {
	images, resp := wh.images(req)
	if resp != nil {
		return resp
	}
	ctx = wh.withCredentials(ctx, req)
	pinned := make([]string, len(images))
	errs := make([]error, len(images))
	wh.each(len(images), func(i int) {
		ref, err := wh.opts.Decider.Resolve(ctx, req.Namespace, images[i].Image)
		if err != nil {
			errs[i] = err
			return
		}
		pinned[i] = ref.Name() + "@" + ref.Digest.String()
	})
	var ops []patchOp
	var warnings []string
	for i, im := range images {
		switch {
		case errs[i] != nil:
			warnings = append(warnings, truncate(fmt.Sprintf("vouch could not pin %s image %s to its digest: %v", im.Where, im.Image, errs[i]), maxWarning))
		case pinned[i] != im.Image:
			ops = append(ops, patchOp{Op: "replace", Path: im.Path, Value: pinned[i]})
		}
	}
	resp = &Response{Allowed: true, Warnings: warnings}
	if len(ops) > 0 {
		patch, err := json.Marshal(ops)
		if err != nil {
			return &Response{Allowed: true, Warnings: append(warnings, "vouch could not encode its patch: "+err.Error())}
		}
		resp.Patch, resp.PatchType = patch, "JSONPatch"
	}
	return resp
}

// images reads the images of the request's object, or returns the
// response for a request with nothing to check.
func (wh *Webhook) images(req *Request) ([]Image, *Response) {
	if req.Operation != "CREATE" && req.Operation != "UPDATE" || len(req.Object) == 0 {
		return nil, &Response{Allowed: true}
	}
	images, err := Images(req.Kind.Kind, req.Object)
	if errors.Is(err, ErrUnsupportedKind) {
		return nil, &Response{Allowed: true}
	}
	if err != nil {
		return nil, &Response{Allowed: false, Status: &Status{Code: http.StatusBadRequest, Reason: "BadRequest", Message: "vouch could not read the object: " + err.Error()}}
	}
	if len(images) > wh.opts.MaxImages {
		return nil, &Response{Allowed: false, Status: &Status{Code: http.StatusForbidden, Reason: "Forbidden", Message: fmt.Sprintf("vouch: %d containers is over the limit of %d per object", len(images), wh.opts.MaxImages)}}
	}
	return images, nil
}

// each calls fn(0..n-1), at most Concurrency at once.
func (wh *Webhook) each(n int, fn func(i int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(wh.opts.Concurrency, n) {
		wg.Go(func() {
			for i := range jobs {
				fn(i)
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// truncate cuts s to at most n bytes, at a rune boundary (the message
// must stay valid UTF-8: reasons quote certificate subjects and package
// names), marking the cut with "…".
var truncate = untrusted.Cut
