package admission

import (
	"context"
	"fmt"
)

// MaxPullSecrets bounds the image pull secrets read of one pod spec.
const MaxPullSecrets = 32

// PullSecrets names what the kubelet would pull a pod's images with: the
// pod's imagePullSecrets, and its service account, whose imagePullSecrets
// the ServiceAccount admission plugin copies into a Pod that lists none
// (https://kubernetes.io/docs/concepts/security/service-accounts/#add-image-pull-secret-to-service-account).
type PullSecrets struct {
	// Namespace is the request's namespace, where all of them are read.
	Namespace string
	// ServiceAccount is the pod spec's serviceAccountName; "default" when
	// it names none.
	ServiceAccount string
	// Names are the pod spec's imagePullSecrets, in order.
	Names []string
}

// CredentialsFunc returns ctx carrying the registry credentials that the
// images of a pod described by p are read with (registry.WithCredentials),
// for one admission request. An error means some of them could not be
// read; the returned context then carries those that could (or none), and
// the request goes on with them: fewer credentials can only make vouch
// read less.
type CredentialsFunc func(ctx context.Context, p PullSecrets) (context.Context, error)

// PodPullSecrets reads the pull secrets of the pod spec of an object of
// kind (as Images reads its images); ok is false when the object holds no
// pod spec.
func PodPullSecrets(kind, namespace string, object []byte) (p PullSecrets, ok bool, err error) {
	spec, _, err := podSpec(kind, object)
	if err != nil || spec == nil {
		return PullSecrets{}, false, err
	}
	p = PullSecrets{Namespace: namespace}
	if err := unmarshalOptional(spec["serviceAccountName"], &p.ServiceAccount); err != nil {
		return PullSecrets{}, false, fmt.Errorf("%s serviceAccountName: %v", kind, err)
	}
	if p.ServiceAccount == "" {
		p.ServiceAccount = "default"
	}
	var refs []struct {
		Name string `json:"name"`
	}
	if err := unmarshalOptional(spec["imagePullSecrets"], &refs); err != nil {
		return PullSecrets{}, false, fmt.Errorf("%s imagePullSecrets: %v", kind, err)
	}
	if len(refs) > MaxPullSecrets {
		return PullSecrets{}, false, fmt.Errorf("%s imagePullSecrets: more than %d", kind, MaxPullSecrets)
	}
	for _, r := range refs {
		if r.Name != "" {
			p.Names = append(p.Names, r.Name)
		}
	}
	return p, true, nil
}

// withCredentials returns ctx with the credentials of req's pod, when the
// webhook has a CredentialsFunc.
func (wh *Webhook) withCredentials(ctx context.Context, req *Request) context.Context {
	if wh.opts.Credentials == nil || req.Namespace == "" {
		return ctx
	}
	p, ok, err := PodPullSecrets(req.Kind.Kind, req.Namespace, req.Object)
	if err != nil || !ok {
		return ctx // Images reports a malformed object
	}
	cctx, err := wh.opts.Credentials(ctx, p)
	if err != nil {
		wh.opts.Logger.WarnContext(ctx, "could not read every image pull secret; reading the images without them", "namespace", req.Namespace, "serviceAccount", p.ServiceAccount, "error", err.Error())
	}
	if cctx == nil {
		return ctx
	}
	return cctx
}
