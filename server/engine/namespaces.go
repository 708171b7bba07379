package engine

import (
	"errors"
	"slices"
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
	// Set it or Namespace, not both.
	NamespacePolicy func(namespace string) (vouch.Policy, error)
	// Namespace returns what a namespace changes in Base: its policy, and
	// the verifiers and fingerprint its tenants add (config.Composition's
	// Namespace), or nil when it changes nothing and Policy decides there
	// under PolicyHash. Optional; set it or NamespacePolicy, not both.
	Namespace func(namespace string) (*Namespace, error)
	// PolicyHash is the hash of everything verdicts depend on (see
	// ExecutorFunc); a namespace with a policy of its own adds its name
	// to it. Required.
	PolicyHash string
}

// Namespace is what one namespace changes in the executor of
// NamespaceOptions.Base.
type Namespace struct {
	// Policy decides in the namespace. Required.
	Policy vouch.Policy
	// Verifiers run in the namespace besides Base's. Optional.
	Verifiers []vouch.Verifier
	// Fingerprint identifies what the namespace adds to what PolicyHash
	// covers (its tenants' configuration and trust material). Optional.
	Fingerprint string
}

// NamespaceExecutors gives each Kubernetes namespace the executor of its
// policy; its Executor method is an ExecutorFunc. It is safe for
// concurrent use.
type NamespaceExecutors struct {
	opts NamespaceOptions
	all  *vouch.Executor

	mu   sync.Mutex
	byNS map[string]namespaceExecutor
}

// namespaceExecutor is a namespace's executor and the hash of its verdicts.
type namespaceExecutor struct {
	ex   *vouch.Executor
	hash string
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
	if opts.NamespacePolicy != nil && opts.Namespace != nil {
		return nil, errors.New("engine: set NamespaceOptions.NamespacePolicy or Namespace, not both")
	}
	if np := opts.NamespacePolicy; np != nil {
		opts.Namespace = func(ns string) (*Namespace, error) {
			p, err := np(ns)
			if err != nil {
				return nil, err
			}
			return &Namespace{Policy: p}, nil
		}
	}
	if opts.Namespace != nil {
		if _, err := opts.Namespace("default"); err != nil {
			return nil, err
		}
	}
	all := opts.Base
	all.Policy = opts.Policy
	return &NamespaceExecutors{opts: opts, all: &all, byNS: map[string]namespaceExecutor{}}, nil
}

// Executor returns the executor that decides in namespace ("" for none)
// and the hash its verdicts are cached under: an ExecutorFunc. It returns
// a nil executor (the engine then cannot decide, and callers fail closed)
// when the namespace's policy cannot be built, which the check at start
// makes a bug.
//
// A namespace that changes something has its verdicts cached under
// PolicyHash + "/ns=" + namespace, and + "/" + its Fingerprint when it has
// one; a namespace that changes nothing shares the executor and hash of
// requests without a namespace.
func (n *NamespaceExecutors) Executor(namespace string) (*vouch.Executor, string) {
	if n.opts.Namespace == nil || namespace == "" {
		return n.all, n.opts.PolicyHash
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.byNS[namespace]; ok {
		return e.ex, e.hash
	}
	e := namespaceExecutor{ex: n.all, hash: n.opts.PolicyHash}
	ns, err := n.opts.Namespace(namespace)
	switch {
	case err != nil || (ns != nil && ns.Policy == nil):
		return nil, n.opts.PolicyHash + "/ns=" + namespace
	case ns != nil:
		ex := n.opts.Base
		ex.Policy = ns.Policy
		if len(ns.Verifiers) > 0 {
			ex.Verifiers = append(slices.Clip(n.opts.Base.Verifiers), ns.Verifiers...)
		}
		e = namespaceExecutor{ex: &ex, hash: n.opts.PolicyHash + "/ns=" + namespace}
		if ns.Fingerprint != "" {
			e.hash += "/" + ns.Fingerprint
		}
	}
	if len(n.byNS) < MaxNamespaceExecutors {
		n.byNS[namespace] = e
	}
	return e.ex, e.hash
}
