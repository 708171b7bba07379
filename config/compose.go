package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/trust"
)

// Tenant is a VouchConfig as Compose reads it.
type Tenant struct {
	// Namespace is the VouchConfig's namespace: where it adds
	// requirements, and whose Secrets and ConfigMaps its references read.
	// Required.
	Namespace string
	// Name is the VouchConfig's name. Required.
	Name string
	// Spec is its spec. Required.
	Spec TenantSpec
	// Resolver reads the tenant's references, each asked for in
	// Namespace. Optional; default the resolver given to Compose.
	Resolver trust.Resolver
}

// String names the tenant in messages: "VouchConfig team-a/strict".
func (t *Tenant) String() string { return KindTenant + " " + t.Namespace + "/" + t.Name }

// VerifierName is the name under which t's verifier named name reports
// its results and is named in t's policy once composed:
// NAMESPACE/NAME/VERIFIER ("team-a/strict/notation"). Namespaces and
// object names have no "/", nor have the verifiers of custom resources
// (TenantSpec.Validate), so the name belongs to one verifier of one
// VouchConfig, never to another's nor to a ClusterVouchConfig's.
func (t *Tenant) VerifierName(name string) string { return t.Namespace + "/" + t.Name + "/" + name }

// TenantError is an error in one VouchConfig, which Compose refused.
type TenantError struct {
	// Namespace and Name are the VouchConfig's.
	Namespace, Name string
	// Err says what is wrong, naming the field ("spec.verifiers[0]...").
	Err error
}

// Error implements error: "VouchConfig team-a/strict: spec....".
func (e *TenantError) Error() string {
	return fmt.Sprintf("%s %s/%s: %v", KindTenant, e.Namespace, e.Name, e.Err)
}

// Unwrap returns Err.
func (e *TenantError) Unwrap() error { return e.Err }

// Composition is a ClusterVouchConfig's spec composed with the VouchConfigs
// of its namespaces (docs/kubernetes.md, "Tenants"), built: the cluster's
// verifiers and policy, and what each namespace adds to them (Namespace).
// In a namespace with VouchConfigs a subject is allowed only when the
// cluster's policy allows it and every VouchConfig's does, each deciding on
// its own verifiers' results only (policy.All). It is read-only once
// built, and safe for concurrent use.
type Composition struct {
	// Verifiers are the cluster's verifiers: with Policy, the executor of
	// requests that name no namespace, and of namespaces that add nothing
	// (Namespace returns nil).
	Verifiers []vouch.Verifier
	// Policy is the cluster's policy for requests that name no namespace
	// and, unless the cluster's policy has scopes for some namespaces, for
	// every namespace without a VouchConfig.
	Policy vouch.Policy

	// names are the cluster's verifiers' names.
	names []string
	// policy is the cluster's policy section when it has scopes for some
	// namespaces, or a Rego or CEL policy (which reads the namespace), else
	// nil.
	policy *policy.Config
	// programs are policy's compiled Rego and CEL policies, shared by the
	// namespaces.
	programs policy.Programs
	// tenants are the built VouchConfigs of each namespace, by name.
	tenants map[string][]*builtTenant
	// refused are the VouchConfigs of each namespace that ComposeFailClosed
	// refused, in the order given.
	refused map[string][]*TenantError
}

// builtTenant is one VouchConfig, built.
type builtTenant struct {
	// part is the tenant's part of its namespace's policy.
	part policy.Part
	// verifiers are its verifiers, named by Tenant.VerifierName.
	verifiers []vouch.Verifier
	// fingerprint hashes its spec and the trust material read for it.
	fingerprint string
}

// Namespace is what a namespace adds to the cluster's configuration.
type Namespace struct {
	// Policy decides in the namespace: the cluster's policy for it, and
	// with VouchConfigs, policy.All of the cluster's and theirs.
	Policy vouch.Policy
	// Verifiers are the namespace's VouchConfigs' verifiers, which its
	// executor runs besides the cluster's.
	Verifiers []vouch.Verifier
	// Fingerprint hashes the namespace's VouchConfigs (specs and the
	// trust material read for them); "" without one. The namespace's
	// verdicts depend on it besides what they depend on everywhere.
	Fingerprint string
}

// Compose builds the cluster's spec and the tenants' (each validated in its
// form first), reading references through r: a cluster's reference
// without a namespace as r reads it (vouch's own namespace), a tenant's in
// the tenant's namespace. A tenant's verifiers are built from its own trust
// stores and named by Tenant.VerifierName; its policy may name its own
// verifiers only, and without a policy section it is the default policy
// over its verifiers (policy.Default). A tenant's scope covers what it
// names: a subject that none of its scopes covers is left to the cluster
// (policy.AllowUncovered).
//
// An error in the cluster's spec names the field after "spec."; the
// tenants' errors are *TenantError, joined (errors.Join) when several
// tenants are at fault. Compose builds nothing on error: callers that keep
// serving while one tenant is broken compose again without it.
func Compose(cluster *Spec, tenants []Tenant, r trust.Resolver) (*Composition, error) {
	c, refused, err := compose(cluster, tenants, r)
	if err != nil {
		return nil, err
	}
	if len(refused) > 0 {
		errs := make([]error, len(refused))
		for i, e := range refused {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// ComposeFailClosed is Compose for a server that keeps serving while some
// tenants are broken: a tenant that Compose would refuse does not fail the
// composition, but its namespace fails closed. There, Namespace's policy
// denies every subject, whatever the cluster and the namespace's other
// tenants say, with a reason that names the refused VouchConfig and why it
// was refused ("tenant VouchConfig team-a/strict: not applied
// (spec.trustStores[0]...), ..."): a namespace must not silently lose
// requirements its tenant asked for. Namespaces without a refused tenant
// are served as Compose serves them.
//
// It returns the composition, and the tenants it refused in the order
// given (also Composition.Refused); the error is the cluster's alone, and
// then nothing is built.
func ComposeFailClosed(cluster *Spec, tenants []Tenant, r trust.Resolver) (*Composition, []*TenantError, error) {
	c, refused, err := compose(cluster, tenants, r)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range refused {
		c.refused[e.Namespace] = append(c.refused[e.Namespace], e)
	}
	return c, refused, nil
}

// compose builds cluster and every tenant it can; it returns the tenants
// it could not build, and an error when the cluster's spec does not build.
func compose(cluster *Spec, tenants []Tenant, r trust.Resolver) (*Composition, []*TenantError, error) {
	if err := cluster.Validate(FormCluster, "spec."); err != nil {
		return nil, nil, err
	}
	verifiers, names, err := cluster.buildVerifiers(r, nil, "spec.", nil)
	if err != nil {
		return nil, nil, err
	}
	c := &Composition{Verifiers: verifiers, names: names, tenants: map[string][]*builtTenant{}, refused: map[string][]*TenantError{}}
	if cluster.Policy == nil {
		c.Policy = policy.Default(names)
	} else {
		progs, err := policy.Compile(context.Background(), *cluster.Policy)
		if err != nil {
			return nil, nil, fmt.Errorf("spec.%w", err)
		}
		if c.Policy, err = policy.New(*cluster.Policy, names, policy.WithPrograms(progs)); err != nil {
			return nil, nil, fmt.Errorf("spec.%w", err)
		}
		if slices.ContainsFunc(cluster.Policy.Scopes, func(s policy.Scope) bool { return len(s.Namespaces) > 0 || s.Rego != nil || s.CEL != nil }) {
			c.policy, c.programs = cluster.Policy.DeepCopy(), progs
		}
	}
	var refused []*TenantError
	seen := map[string]bool{}
	for i := range tenants {
		t := &tenants[i]
		key := t.Namespace + "/" + t.Name
		if seen[key] {
			refused = append(refused, &TenantError{Namespace: t.Namespace, Name: t.Name, Err: errors.New("given twice")})
			continue
		}
		seen[key] = true
		tr := r
		if t.Resolver != nil {
			tr = t.Resolver
		}
		b, err := buildTenant(t, tr)
		if err != nil {
			refused = append(refused, &TenantError{Namespace: t.Namespace, Name: t.Name, Err: err})
			continue
		}
		c.tenants[t.Namespace] = append(c.tenants[t.Namespace], b)
	}
	for _, ts := range c.tenants {
		slices.SortFunc(ts, func(a, b *builtTenant) int { return strings.Compare(a.part.Name, b.part.Name) })
	}
	return c, refused, nil
}

// buildTenant validates t and builds its verifiers and its part of its
// namespace's policy.
func buildTenant(t *Tenant, r trust.Resolver) (*builtTenant, error) {
	if t.Namespace == "" || strings.Contains(t.Namespace, "/") {
		return nil, fmt.Errorf("metadata.namespace: %q is not a namespace name", t.Namespace)
	}
	if t.Name == "" || strings.Contains(t.Name, "/") {
		return nil, fmt.Errorf("metadata.name: %q is not an object name", t.Name)
	}
	spec := t.Spec.DeepCopy()
	if err := spec.Validate(FormTenant, "spec."); err != nil {
		return nil, err
	}
	if len(spec.Verifiers) == 0 && spec.Policy == nil {
		return nil, fmt.Errorf("spec: no verifiers and no policy: a %s adds requirements with them (empty, it would deny every image in namespace %s)", KindTenant, t.Namespace)
	}
	own := map[string]bool{}
	for _, v := range spec.Verifiers {
		own[v.Name] = true
	}
	if spec.Policy != nil {
		for i := range spec.Policy.Scopes {
			if err := qualify(spec.Policy.Scopes[i].Require, fmt.Sprintf("spec.policy.scopes[%d].require", i), own, t.VerifierName); err != nil {
				return nil, err
			}
		}
	}
	fp := trust.NewFingerprinter()
	specJSON, err := json.Marshal(&t.Spec)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	fp.Add("tenant", t.Namespace+"/"+t.Name)
	fp.Add("spec", string(specJSON))
	read := trust.ResolverFunc(func(ref trust.Ref, max int64) ([]byte, error) {
		// Validate refused a namespace in a tenant's references: they read
		// the tenant's own.
		ref.Namespace = t.Namespace
		if r == nil {
			return nil, trust.ErrNoResolver
		}
		data, err := r.Resolve(ref, max)
		if err == nil {
			fp.Add(ref.String(), string(data))
		}
		return data, err
	})
	verifiers, names, err := spec.buildVerifiers(read, nil, "spec.", t.VerifierName)
	if err != nil {
		return nil, err
	}
	b := &builtTenant{verifiers: verifiers, part: policy.Part{Name: "tenant " + t.String(), Verifiers: names}}
	if spec.Policy == nil {
		b.part.Policy = policy.Default(names)
	} else if b.part.Policy, err = policy.New(*spec.Policy, names, policy.AllowUncovered(), policy.InNamespace(t.Namespace)); err != nil {
		return nil, fmt.Errorf("spec.%w", err)
	}
	b.fingerprint = fp.Sum()
	return b, nil
}

// qualify checks that reqs name only the tenant's own verifiers and renames
// them as they report (Tenant.VerifierName), in place; path names reqs.
func qualify(reqs []policy.Requirement, path string, own map[string]bool, name func(string) string) error {
	for i := range reqs {
		r := &reqs[i]
		p := fmt.Sprintf("%s[%d]", path, i)
		for j, v := range r.Verifiers {
			if !own[v] {
				return fmt.Errorf("%s.verifiers[%d]: %q is not a verifier of this %s (a %s's requirements are checked by its own verifiers only)", p, j, v, KindTenant, KindTenant)
			}
			r.Verifiers[j] = name(v)
		}
		if err := qualify(r.AnyOf, p+".anyOf", own, name); err != nil {
			return err
		}
		if err := qualify(r.Require, p+".require", own, name); err != nil {
			return err
		}
	}
	return nil
}

// Namespace returns what namespace ns adds to the cluster's verifiers and
// policy, or nil when it adds nothing: no VouchConfig is in ns, and the
// cluster's policy has no scope for some namespaces (then Verifiers and
// Policy decide there, as for requests that name no namespace, "").
//
// In a namespace with a tenant that ComposeFailClosed refused, the policy
// also has a part per refused tenant that denies every subject, and the
// fingerprint covers why each was refused.
func (c *Composition) Namespace(ns string) (*Namespace, error) {
	tenants, refused := c.tenants[ns], c.refused[ns]
	if ns == "" || (len(tenants) == 0 && len(refused) == 0 && c.policy == nil) {
		return nil, nil
	}
	clusterPolicy := c.Policy
	if c.policy != nil {
		p, err := policy.New(*c.policy, c.names, policy.InNamespace(ns), policy.WithPrograms(c.programs))
		if err != nil {
			return nil, fmt.Errorf("spec.%w", err)
		}
		clusterPolicy = p
	}
	if len(tenants) == 0 && len(refused) == 0 {
		return &Namespace{Policy: clusterPolicy}, nil
	}
	parts := []policy.Part{{Name: "cluster", Policy: clusterPolicy, Verifiers: c.names}}
	n := &Namespace{}
	fp := trust.NewFingerprinter()
	for _, t := range tenants {
		parts = append(parts, t.part)
		n.Verifiers = append(n.Verifiers, t.verifiers...)
		fp.Add(t.part.Name, t.fingerprint)
	}
	for _, e := range refused {
		name := "tenant " + KindTenant + " " + e.Namespace + "/" + e.Name
		parts = append(parts, policy.Part{Name: name, Policy: refusal(e)})
		fp.Add(name, "refused: "+e.Err.Error())
	}
	n.Policy, n.Fingerprint = policy.All(parts...), fp.Sum()
	return n, nil
}

// Refused returns the tenants that ComposeFailClosed refused, by
// namespace and name.
func (c *Composition) Refused() []*TenantError {
	var out []*TenantError
	for _, es := range c.refused {
		out = append(out, es...)
	}
	slices.SortFunc(out, func(a, b *TenantError) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out
}

// refusal is the policy of a refused tenant's part: it denies every
// subject, in enforce mode, saying why the tenant was refused.
func refusal(e *TenantError) vouch.Policy {
	reason := fmt.Sprintf("not applied (%v), so vouch denies every image in namespace %s until this %s is fixed or deleted", e.Err, e.Namespace, KindTenant)
	return vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
		return vouch.Decision{Verdict: vouch.Denied, Reason: reason, Mode: vouch.ModeEnforce}, nil
	})
}
