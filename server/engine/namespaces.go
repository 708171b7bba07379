package engine

import (
	"errors"
	"sync"

	"github.com/vouch-project/vouch"
)

// MaxNamespaceExecutors bounds the executors a NamespaceExecutors keeps
// for namespaces with a policy of their own; beyond it they are built per
// request.
const MaxNamespaceExecutors = 4096

// NamespaceOptions configure a NamespaceExecutors.
type NamespaceOptions struct {
	// Base is the executor of every namespace, but for its Policy:
	// store, verifiers, limits, concurrency, discovery. Required.
	Base vouch.Executor
	// Policy decides for requests that name no namespace and, without
	// NamespacePolicy, for every namespace. Required.
	Policy vouch.Policy
	// NamespacePolicy returns the policy of a namespace (the config's
	// scopes for it). Optional; default nil: Policy in every namespace.
	NamespacePolicy func(namespace string) (vouch.Policy, error)
	// PolicyHash is the hash of everything verdicts depend on (see
	// ExecutorFunc); a namespace with a policy of its own adds its name
	// to it. Required.
	PolicyHash string
}

// NamespaceExecutors gives each Kubernetes namespace the executor of its
// policy; its Executor method is an ExecutorFunc. It is safe for
// concurrent use.
type NamespaceExecutors struct {
	opts NamespaceOptions
	all  *vouch.Executor

	mu   sync.Mutex
	byNS map[string]*vouch.Executor
}

// NewNamespaceExecutors returns the NamespaceExecutors for opts. With a
// NamespacePolicy, it builds the policy of the namespace "default" at
// once, so that an error in it shows at start rather than on the first
// request.
func NewNamespaceExecutors(opts NamespaceOptions) (*NamespaceExecutors, error) {
	if opts.Policy == nil {
		return nil, errors.New("engine: NamespaceOptions.Policy is required")
	}
	if opts.PolicyHash == "" {
		return nil, errors.New("engine: NamespaceOptions.PolicyHash is required")
	}
	if opts.NamespacePolicy != nil {
		if _, err := opts.NamespacePolicy("default"); err != nil {
			return nil, err
		}
	}
	all := opts.Base
	all.Policy = opts.Policy
	return &NamespaceExecutors{opts: opts, all: &all, byNS: map[string]*vouch.Executor{}}, nil
}

// Executor returns the executor that decides in namespace ("" for none)
// and the hash its verdicts are cached under: an ExecutorFunc. It returns
// a nil executor (the engine then cannot decide, and callers fail closed)
// when the namespace's policy cannot be built, which the check at start
// makes a bug.
func (n *NamespaceExecutors) Executor(namespace string) (*vouch.Executor, string) {
	if n.opts.NamespacePolicy == nil || namespace == "" {
		return n.all, n.opts.PolicyHash
	}
	hash := n.opts.PolicyHash + "/ns=" + namespace
	n.mu.Lock()
	defer n.mu.Unlock()
	if ex, ok := n.byNS[namespace]; ok {
		return ex, hash
	}
	pol, err := n.opts.NamespacePolicy(namespace)
	if err != nil {
		return nil, hash
	}
	ex := n.opts.Base
	ex.Policy = pol
	if len(n.byNS) < MaxNamespaceExecutors {
		n.byNS[namespace] = &ex
	}
	return &ex, hash
}
