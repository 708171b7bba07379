package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"oras.land/oras-go/v2/registry/remote/auth"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch/server/admission"
	"github.com/vouch-project/vouch/store/registry"
)

// Defaults of PullSecretsOptions.
const (
	DefaultPullSecretsTTL = 10 * time.Second
	// maxPullSecretsEntries bounds the Secrets and ServiceAccounts whose
	// reads a PullSecrets keeps.
	maxPullSecretsEntries = 4096
)

// PullSecretsOptions configure a PullSecrets.
type PullSecretsOptions struct {
	// Client reads Secrets and ServiceAccounts in any namespace (get only:
	// deploy/rbac/pull-secrets/clusterrole.yaml). Required.
	Client client.Reader
	// TTL is how long what was read of one Secret or ServiceAccount is
	// reused, so that admission requests do not each cost the API server
	// a read. Optional; default DefaultPullSecretsTTL.
	TTL time.Duration
	// Now is the clock. Optional; default time.Now.
	Now func() time.Time
}

// PullSecrets gives each admission request the registry credentials of its
// pod's image pull secrets, read in the request's namespace: the pod's
// imagePullSecrets or, when it lists none, its ServiceAccount's, as the
// kubelet pulls with them. Its Credentials method is an
// admission.CredentialsFunc. It is safe for concurrent use.
type PullSecrets struct {
	opts PullSecretsOptions

	mu   sync.Mutex
	read map[objectKey]pullEntry
}

// pullEntry is what was read of one Secret (creds) or ServiceAccount
// (names), or why it could not be used.
type pullEntry struct {
	at    time.Time
	creds map[string]auth.Credential
	names []string
	err   error
}

// NewPullSecrets returns a PullSecrets for opts.
func NewPullSecrets(opts PullSecretsOptions) (*PullSecrets, error) {
	if opts.Client == nil {
		return nil, errors.New("kube: PullSecretsOptions.Client is required")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultPullSecretsTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &PullSecrets{opts: opts, read: map[objectKey]pullEntry{}}, nil
}

var _ admission.CredentialsFunc = (*PullSecrets)(nil).Credentials

// Credentials returns ctx carrying the credentials of p's pull secrets
// (registry.WithCredentials), all read in p.Namespace. For a registry that
// several secrets name, the first secret's credential is used. A secret
// that is missing is passed over, as the kubelet does; one that cannot be
// read or parsed is passed over too, and named in the error, which never
// quotes a credential.
func (ps *PullSecrets) Credentials(ctx context.Context, p admission.PullSecrets) (context.Context, error) {
	var problems []error
	names := p.Names
	if len(names) == 0 {
		sa := ps.get(ctx, objectKey{"ServiceAccount", p.Namespace, p.ServiceAccount})
		if sa.err != nil {
			problems = append(problems, sa.err)
		}
		names = sa.names
	}
	merged := map[string]auth.Credential{}
	for _, name := range names {
		s := ps.get(ctx, objectKey{"Secret", p.Namespace, name})
		if s.err != nil {
			problems = append(problems, s.err)
			continue
		}
		for host, c := range s.creds {
			if _, ok := merged[host]; !ok {
				merged[host] = c
			}
		}
	}
	return registry.WithCredentials(ctx, registry.NewRequestCredentials(merged)), errors.Join(problems...)
}

// get returns what was read of k less than TTL ago, else reads it.
func (ps *PullSecrets) get(ctx context.Context, k objectKey) pullEntry {
	now := ps.opts.Now()
	ps.mu.Lock()
	e, ok := ps.read[k]
	ps.mu.Unlock()
	if ok && now.Sub(e.at) < ps.opts.TTL {
		return e
	}
	e = ps.fetch(ctx, k)
	e.at = now
	var transient *transientError
	if errors.As(e.err, &transient) {
		return e // the API server did not answer: ask again next time
	}
	ps.mu.Lock()
	if len(ps.read) >= maxPullSecretsEntries {
		clear(ps.read)
	}
	ps.read[k] = e
	ps.mu.Unlock()
	return e
}

// transientError is a read the API server did not answer.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// fetch reads one ServiceAccount's imagePullSecrets or one Secret's
// credentials.
func (ps *PullSecrets) fetch(ctx context.Context, k objectKey) pullEntry {
	name := k.kind + " " + k.namespace + "/" + k.name
	fail := func(err error) pullEntry {
		switch {
		case apierrors.IsNotFound(err):
			return pullEntry{} // as the kubelet: nothing to pull with
		case apierrors.IsForbidden(err):
			return pullEntry{err: fmt.Errorf("%s may not be read by vouch (grant get on secrets and serviceaccounts: deploy/rbac/pull-secrets/clusterrole.yaml)", name)}
		}
		return pullEntry{err: &transientError{fmt.Errorf("reading %s: %w", name, err)}}
	}
	key := client.ObjectKey{Namespace: k.namespace, Name: k.name}
	if k.kind == "ServiceAccount" {
		var sa corev1.ServiceAccount
		if err := ps.opts.Client.Get(ctx, key, &sa); err != nil {
			return fail(err)
		}
		var names []string
		for _, r := range sa.ImagePullSecrets {
			if r.Name != "" && len(names) < admission.MaxPullSecrets {
				names = append(names, r.Name)
			}
		}
		return pullEntry{names: names}
	}
	var s corev1.Secret
	if err := ps.opts.Client.Get(ctx, key, &s); err != nil {
		return fail(err)
	}
	var data []byte
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		data = s.Data[corev1.DockerConfigJsonKey]
	case corev1.SecretTypeDockercfg:
		// The legacy form is the auths object alone.
		data = append(append([]byte(`{"auths":`), s.Data[corev1.DockerConfigKey]...), '}')
	default:
		return pullEntry{err: fmt.Errorf("%s is of type %q, not %s", name, s.Type, corev1.SecretTypeDockerConfigJson)}
	}
	creds, err := registry.ParseDockerConfig(data)
	if err != nil {
		return pullEntry{err: fmt.Errorf("%s: %w", name, err)}
	}
	return pullEntry{creds: creds}
}
