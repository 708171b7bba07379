package policy

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/policy/code"
)

// Match values of a Requirement.
const (
	// MatchAny: at least one referrer of the type satisfies the requirement.
	MatchAny = "any"
	// MatchAll: every referrer of the type satisfies it, and there is one.
	MatchAll = "all"
)

// Platform coverage values of a Scope, for image index subjects.
const (
	// PlatformsIndex: the index's own referrers must satisfy the
	// requirements; a signature on the index covers its platform manifests.
	PlatformsIndex = "index"
	// PlatformsEach: every platform manifest must satisfy the requirements
	// with its own referrers.
	PlatformsEach = "each"
)

// Config is the typed policy of vouch's config file: scopes of repositories,
// each with a mode and requirements on the referrers of a subject.
//
// +kubebuilder:object:generate=true
type Config struct {
	// Scopes are tried most specific first (see Scope.Repositories).
	// Required: a subject that no scope covers is denied.
	Scopes []Scope `json:"scopes"`
}

// Scope applies requirements to the subjects of some repositories.
//
// +kubebuilder:object:generate=true
// +kubebuilder:validation:XValidation:rule="has(self.require) && size(self.require) > 0 || has(self.rego) || has(self.cel)",message="a scope needs require, rego or cel (vouch fails closed; use mode audit to observe)"
// +kubebuilder:validation:XValidation:rule="!(has(self.rego) && has(self.cel))",message="set rego or cel, not both"
type Scope struct {
	// Name labels the scope in reasons. Required, unique.
	Name string `json:"name"`
	// Repositories lists the repositories the scope covers: an exact
	// "registry/repository", a prefix ending in "/*" ("registry.io/team/*"),
	// "oci-layout:*" for every OCI layout, or "*" for everything. The most
	// specific pattern that matches a subject wins, as Notation's registry
	// scopes do: exact, then the longest prefix, then "*". Required.
	Repositories []string `json:"repositories"`
	// Namespaces limits the scope to these Kubernetes namespaces when vouch
	// serves admission requests; for the CLI, and for requests that name no
	// namespace, only scopes without namespaces apply. In a namespace, a
	// scope naming it wins over one that does not for the same pattern.
	// Optional; default every namespace.
	Namespaces []string `json:"namespaces,omitempty"`
	// Mode is enforce, warn or audit. Optional; default enforce.
	// +kubebuilder:validation:Enum=enforce;warn;audit
	Mode vouch.Mode `json:"mode,omitempty"`
	// Platforms says how an image index subject is covered: "index"
	// (default) or "each". Optional.
	// +kubebuilder:validation:Enum=index;each
	Platforms string `json:"platforms,omitempty"`
	// Require lists what must be attached to the subject. Required unless
	// Rego or CEL is set: an empty list would allow everything, so it is
	// refused; use a scope whose mode is audit to observe without denying.
	Require []Requirement `json:"require,omitempty"`
	// Rego is a Rego policy that decides the scope's subjects, after
	// Require when both are set: a subject must meet Require, then the
	// Rego policy must not deny it. Optional; set Rego or CEL, not both.
	Rego *Rego `json:"rego,omitempty"`
	// CEL is a CEL policy that decides the scope's subjects, after Require
	// as Rego does. Optional.
	CEL *CEL `json:"cel,omitempty"`
}

// Requirement asks for referrers of one artifact type that verify, or for
// one of several alternatives (AnyOf).
//
// +kubebuilder:object:generate=true
type Requirement struct {
	// ArtifactType is the referrers' artifact type, read from their
	// manifests. Required unless AnyOf, Kind or PredicateType is set; with
	// them it narrows the packaging that counts.
	ArtifactType string `json:"artifactType,omitempty"`
	// Kind asks for referrers that a verifier found to claim this about the
	// subject: "signature" (a Notary Project signature, a cosign signature
	// in the tag layout, as a referrer or in a Sigstore bundle) or
	// "attestation" (an in-toto statement, whatever carried it: cosign's
	// .att tag, an in-toto referrer, a Sigstore bundle). Only the claims
	// of that kind count, with their own outcomes: a Sigstore bundle that
	// is a signature never meets an attestation requirement, nor the
	// reverse. Optional; "attestation" when PredicateType is set.
	// +kubebuilder:validation:Enum=signature;attestation
	Kind string `json:"kind,omitempty"`
	// PredicateType asks for attestations of this in-toto predicate type
	// (a URI, such as https://slsa.dev/provenance/v1), read from the
	// statement itself. Optional; implies kind attestation.
	PredicateType string `json:"predicateType,omitempty"`
	// SLSABuildLevel asks for an SLSA provenance (v0.2 or v1, or of
	// PredicateType when set) that shows at least this SLSA Build level,
	// 1 to 3, as the verifiers judge it (vouch.Claim.SLSABuildLevel): 1 a
	// provenance about the subject that passes its content checks, 2 also
	// signed by a trusted signer, 3 also from a hardened builder. Optional;
	// implies kind attestation.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3
	SLSABuildLevel int `json:"slsaBuildLevel,omitempty"`
	// AnyOf lists alternative requirements, of which one must be met: "a
	// Notary Project signature or a cosign signature". Set either AnyOf or
	// ArtifactType (with its other fields), not both. (In the CRDs, nested
	// requirements are not described by the schema, which cannot recurse:
	// vouch checks them.)
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	AnyOf []Requirement `json:"anyOf,omitempty"`
	// Match is "any" (default) or "all".
	// +kubebuilder:validation:Enum=any;all
	Match string `json:"match,omitempty"`
	// Verifiers, when set, counts only results of these verifiers: a
	// referrer satisfies the requirement when one of them passed it and
	// none failed it. Optional; default: the node's outcome (every verifier
	// that handles the type must not fail, and one must pass).
	Verifiers []string `json:"verifiers,omitempty"`
	// Optional makes absence acceptable; referrers of the type that are
	// present must still satisfy Match.
	Optional bool `json:"optional,omitempty"`
	// Require lists nested requirements on each referrer that satisfies
	// this one: "the SBOM must itself be signed". A referrer that no
	// verifier checks (skipped) satisfies a requirement with nested
	// requirements when they are met; without them it never does.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Require []Requirement `json:"require,omitempty"`
}

// Validate checks c, naming the first bad field by its path.
func (c *Config) Validate() error {
	if len(c.Scopes) == 0 {
		return fmt.Errorf("policy.scopes: at least one scope is required")
	}
	names := map[string]bool{}
	for i, s := range c.Scopes {
		path := fmt.Sprintf("policy.scopes[%d]", i)
		if s.Name == "" {
			return fmt.Errorf("%s.name: required", path)
		}
		if names[s.Name] {
			return fmt.Errorf("%s.name: %q is used twice", path, s.Name)
		}
		names[s.Name] = true
		if len(s.Repositories) == 0 {
			return fmt.Errorf("%s.repositories: at least one pattern is required", path)
		}
		for j, p := range s.Repositories {
			if err := validPattern(p); err != nil {
				return fmt.Errorf("%s.repositories[%d]: %v", path, j, err)
			}
		}
		for j, ns := range s.Namespaces {
			if ns == "" || strings.ContainsAny(ns, " /*") {
				return fmt.Errorf("%s.namespaces[%d]: %q is not a namespace name", path, j, ns)
			}
		}
		switch s.Mode {
		case "", vouch.ModeEnforce, vouch.ModeWarn, vouch.ModeAudit:
		default:
			return fmt.Errorf("%s.mode: %q is not enforce, warn or audit", path, s.Mode)
		}
		switch s.Platforms {
		case "", PlatformsIndex, PlatformsEach:
		default:
			return fmt.Errorf("%s.platforms: %q is not index or each", path, s.Platforms)
		}
		if err := validCode(s, path); err != nil {
			return err
		}
		if len(s.Require) == 0 && s.Rego == nil && s.CEL == nil {
			return fmt.Errorf("%s.require: at least one requirement is required, or a rego or cel policy (vouch fails closed; use mode audit to observe)", path)
		}
		if err := validRequirements(s.Require, path+".require"); err != nil {
			return err
		}
	}
	// Two scopes claiming the same pattern for the same namespace would make
	// the winner arbitrary.
	seen := map[string]string{}
	for _, s := range c.Scopes {
		namespaces := s.Namespaces
		if len(namespaces) == 0 {
			namespaces = []string{""}
		}
		for _, p := range s.Repositories {
			for _, ns := range namespaces {
				key := ns + "\x00" + p
				if other, ok := seen[key]; ok {
					where := ""
					if ns != "" {
						where = " for namespace " + ns
					}
					return fmt.Errorf("policy.scopes: pattern %q is in both %q and %q%s", p, other, s.Name, where)
				}
				seen[key] = s.Name
			}
		}
	}
	return nil
}

// ForNamespace returns the policy that applies in a Kubernetes namespace:
// the scopes without namespaces, and those naming ns, which replace a
// namespace-free scope's claim on the same pattern. ns "" gives the
// namespace-free scopes only.
func (c Config) ForNamespace(ns string) Config {
	claimed := map[string]bool{}
	for _, s := range c.Scopes {
		if ns != "" && slices.Contains(s.Namespaces, ns) {
			for _, p := range s.Repositories {
				claimed[p] = true
			}
		}
	}
	var out Config
	for _, s := range c.Scopes {
		switch {
		case ns != "" && slices.Contains(s.Namespaces, ns):
			out.Scopes = append(out.Scopes, s)
		case len(s.Namespaces) == 0:
			s.Repositories = slices.DeleteFunc(slices.Clone(s.Repositories), func(p string) bool { return claimed[p] })
			if len(s.Repositories) > 0 {
				out.Scopes = append(out.Scopes, s)
			}
		}
	}
	return out
}

func validRequirements(reqs []Requirement, path string) error {
	for i, r := range reqs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if len(r.AnyOf) > 0 {
			if r.ArtifactType != "" || r.Kind != "" || r.PredicateType != "" || r.SLSABuildLevel != 0 || r.Match != "" || len(r.Verifiers) > 0 || r.Optional || len(r.Require) > 0 {
				return fmt.Errorf("%s.anyOf: a requirement with anyOf has no other fields", p)
			}
			if err := validRequirements(r.AnyOf, p+".anyOf"); err != nil {
				return err
			}
			continue
		}
		if r.ArtifactType == "" && r.Kind == "" && r.PredicateType == "" && r.SLSABuildLevel == 0 {
			return fmt.Errorf("%s.artifactType: required (or kind, predicateType, slsaBuildLevel or anyOf)", p)
		}
		if r.SLSABuildLevel < 0 || r.SLSABuildLevel > 3 {
			return fmt.Errorf("%s.slsaBuildLevel: %d is not an SLSA Build level (1, 2 or 3)", p, r.SLSABuildLevel)
		}
		if r.SLSABuildLevel > 0 && r.Kind == string(vouch.ClaimSignature) {
			return fmt.Errorf("%s.slsaBuildLevel: a signature shows no SLSA Build level; use kind attestation, or leave kind out", p)
		}
		switch vouch.ClaimKind(r.Kind) {
		case "", vouch.ClaimSignature, vouch.ClaimAttestation:
		default:
			return fmt.Errorf("%s.kind: %q is not signature or attestation", p, r.Kind)
		}
		if r.PredicateType != "" {
			if r.Kind == string(vouch.ClaimSignature) {
				return fmt.Errorf("%s.predicateType: a signature has no predicate type; use kind attestation, or leave kind out", p)
			}
			if u, err := url.Parse(r.PredicateType); err != nil || u.Scheme == "" {
				return fmt.Errorf("%s.predicateType: %q is not a URI (write the predicate type in full, such as https://slsa.dev/provenance/v1)", p, r.PredicateType)
			}
		}
		switch r.Match {
		case "", MatchAny, MatchAll:
		default:
			return fmt.Errorf("%s.match: %q is not any or all", p, r.Match)
		}
		if err := validRequirements(r.Require, p+".require"); err != nil {
			return err
		}
	}
	return nil
}

func validPattern(p string) error {
	switch {
	case p == "*" || p == vouch.LayoutPrefix+"*":
		return nil
	case p == "" || strings.ContainsAny(p, " \t@"):
		return fmt.Errorf("pattern %q is not a repository, a prefix ending in /*, or *", p)
	case strings.Contains(strings.TrimSuffix(p, "/*"), "*"):
		return fmt.Errorf("pattern %q: * is allowed only as the whole pattern or after a final /", p)
	}
	return nil
}

// Option changes what New builds.
type Option func(*options)

type options struct {
	namespace      string
	allowUncovered bool
	programs       Programs
}

// WithPrograms gives New the compiled Rego and CEL policies of the
// config's scopes (Compile), which New otherwise compiles itself: build
// the policy of many namespaces from one config, compiling once.
func WithPrograms(p Programs) Option {
	return func(o *options) { o.programs = p }
}

// InNamespace makes New build the policy that applies in the Kubernetes
// namespace ns (see Config.ForNamespace). Without it New builds the policy
// for requests that name no namespace, such as the CLI's.
func InNamespace(ns string) Option {
	return func(o *options) { o.namespace = ns }
}

// AllowUncovered makes the policy allow a subject that none of its scopes
// covers, instead of denying it: for a policy that only adds requirements
// to another's, composed with it by All (a tenant's VouchConfig, whose
// scopes name the repositories it cares about). Alone, such a policy lets
// every subject outside its scopes through unverified.
func AllowUncovered() Option {
	return func(o *options) { o.allowUncovered = true }
}

// New returns the policy c describes, after validating it; verifiers lists
// the configured verifiers' names, so that requirements naming an unknown
// verifier are refused. The whole of c is validated whatever namespace is
// chosen.
func New(c Config, verifiers []string, opts ...Option) (vouch.Policy, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, v := range verifiers {
		known[v] = true
	}
	var check func([]Requirement, string) error
	check = func(reqs []Requirement, path string) error {
		for i, r := range reqs {
			for _, v := range r.Verifiers {
				if !known[v] {
					return fmt.Errorf("%s[%d].verifiers: no verifier is named %q", path, i, v)
				}
			}
			if err := check(r.Require, fmt.Sprintf("%s[%d].require", path, i)); err != nil {
				return err
			}
			if err := check(r.AnyOf, fmt.Sprintf("%s[%d].anyOf", path, i)); err != nil {
				return err
			}
		}
		return nil
	}
	for i, s := range c.Scopes {
		if err := check(s.Require, fmt.Sprintf("policy.scopes[%d].require", i)); err != nil {
			return nil, err
		}
	}
	progs := o.programs
	if progs == nil {
		var err error
		if progs, err = Compile(context.Background(), c); err != nil {
			return nil, err
		}
	}
	for _, s := range c.Scopes {
		if (s.Rego != nil || s.CEL != nil) && progs[s.Name] == nil {
			return nil, fmt.Errorf("policy: scope %q: its rego or cel policy is not compiled", s.Name)
		}
	}
	nc := c.ForNamespace(o.namespace)
	for i := range nc.Scopes {
		s := &nc.Scopes[i]
		s.Repositories = slices.Clone(s.Repositories)
		for j, p := range s.Repositories {
			s.Repositories[j] = normalPattern(p)
		}
	}
	return &configPolicy{c: nc, allowUncovered: o.allowUncovered, namespace: o.namespace, programs: progs}, nil
}

// normalPattern writes a repository pattern as vouch.ParseReference writes
// a subject's name, so that both meet: the registry host lowercased,
// "index.docker.io" as "docker.io", and an exact Docker Hub name in full
// ("alpine" is "docker.io/library/alpine").
func normalPattern(p string) string {
	if p == "*" || strings.HasPrefix(p, vouch.LayoutPrefix) {
		return p
	}
	if prefix, ok := strings.CutSuffix(p, "/*"); ok {
		host, rest, _ := strings.Cut(prefix, "/")
		if host = strings.ToLower(host); host == "index.docker.io" {
			host = vouch.DockerHub
		}
		if rest == "" {
			return host + "/*"
		}
		return host + "/" + rest + "/*"
	}
	if strings.ContainsRune(p[strings.LastIndexByte(p, '/')+1:], ':') {
		return p // names a tag: never matches a name
	}
	if ref, err := vouch.ParseReference(p); err == nil {
		return ref.Name()
	}
	return p
}

// configPolicy is the policy a Config describes, narrowed to one namespace.
type configPolicy struct {
	c Config
	// allowUncovered allows what no scope covers (AllowUncovered).
	allowUncovered bool
	// namespace is the namespace c was narrowed to, for the input document.
	namespace string
	// programs are the scopes' Rego and CEL policies, by scope name.
	programs Programs
}

// Scope returns the scope that covers ref, or nil.
func (c *Config) Scope(ref vouch.Reference) *Scope {
	name := ref.Name()
	best, bestRank := -1, -1
	for i, s := range c.Scopes {
		for _, p := range s.Repositories {
			if r := patternRank(p, name, ref.IsLayout()); r > bestRank {
				best, bestRank = i, r
			}
		}
	}
	if best < 0 {
		return nil
	}
	return &c.Scopes[best]
}

// patternRank is -1 when p does not match name, else higher for more
// specific patterns.
func patternRank(p, name string, layout bool) int {
	switch {
	case p == "*":
		return 0
	case p == vouch.LayoutPrefix+"*":
		if layout {
			return 1
		}
		return -1
	case strings.HasSuffix(p, "/*"):
		prefix := strings.TrimSuffix(p, "*")
		if strings.HasPrefix(name, prefix) {
			return 2 + len(prefix)
		}
		return -1
	case p == name:
		return 1 << 20
	}
	return -1
}

// Decide implements vouch.Policy.
func (p *configPolicy) Decide(ctx context.Context, ref vouch.Reference, root *vouch.Node) (vouch.Decision, error) {
	if root == nil {
		return vouch.Decision{}, fmt.Errorf("no graph to decide on")
	}
	scope := p.c.Scope(ref)
	if scope == nil {
		return p.uncovered(ref), nil
	}
	mode := scope.Mode
	if mode == "" {
		mode = vouch.ModeEnforce
	}
	var problems []string
	if scope.Platforms == PlatformsEach && len(root.Manifests) > 0 {
		for _, m := range root.Manifests {
			for _, why := range unmet(scope.Require, m) {
				problems = append(problems, fmt.Sprintf("%s: %s", describe(m), why))
			}
		}
	} else {
		problems = unmet(scope.Require, root)
	}
	var warnings []string
	satisfied := describeRequirements(scope.Require)
	if prog := p.programs[scope.Name]; prog != nil && len(problems) == 0 {
		// Require is met (or empty): the scope's Rego or CEL policy
		// decides. An error is no verdict: the caller fails closed.
		a, err := prog.Eval(ctx, code.Input(code.Subject{Ref: ref, Namespace: p.namespace, Scope: scope.Name}, root))
		if err != nil {
			return vouch.Decision{}, fmt.Errorf("scope %q: %s policy could not decide: %w", scope.Name, scope.language(), err)
		}
		problems, warnings = a.Deny, a.Warn
		if satisfied != "" {
			satisfied += ", and "
		}
		satisfied += "the " + scope.language() + " policy allows"
	}
	if len(problems) == 0 {
		if len(warnings) > 0 {
			return vouch.Decision{Verdict: vouch.Allowed, Mode: vouch.ModeWarn, Waived: true, Reason: fmt.Sprintf("scope %q: allowed with warnings: %s", scope.Name, list(warnings, "; "))}, nil
		}
		return vouch.Decision{Verdict: vouch.Allowed, Mode: mode, Reason: fmt.Sprintf("scope %q: %s", scope.Name, satisfied)}, nil
	}
	reason := fmt.Sprintf("scope %q: %s", scope.Name, list(problems, "; "))
	if mode != vouch.ModeEnforce {
		return vouch.Decision{Verdict: vouch.Allowed, Mode: mode, Waived: true, Reason: fmt.Sprintf("allowed in %s mode, would deny: %s", mode, reason)}, nil
	}
	return vouch.Decision{Verdict: vouch.Denied, Mode: mode, Reason: reason}, nil
}

// Screen implements vouch.Screener: a subject that no scope covers is
// decided from its reference alone (denied, or allowed with
// AllowUncovered), before the Executor asks its registry anything.
func (p *configPolicy) Screen(_ context.Context, ref vouch.Reference) (vouch.Decision, bool) {
	if p.c.Scope(ref) != nil {
		return vouch.Decision{}, false
	}
	return p.uncovered(ref), true
}

// uncovered is the decision on a subject that no scope covers.
func (p *configPolicy) uncovered(ref vouch.Reference) vouch.Decision {
	if p.allowUncovered {
		return vouch.Decision{Verdict: vouch.Allowed, Mode: vouch.ModeEnforce, Reason: fmt.Sprintf("no policy scope covers %s: nothing required", ref.Name())}
	}
	return vouch.Decision{Verdict: vouch.Denied, Mode: vouch.ModeEnforce, Reason: fmt.Sprintf("no policy scope covers %s", ref.Name())}
}

// Settled implements vouch.Settler. The config policy is monotone: a node
// not verified yet counts as not passing, and no requirement is harder to
// meet when a node passes, so an allow that is not waived stands whatever
// the pending nodes turn out to be.
func (p *configPolicy) Settled(ctx context.Context, ref vouch.Reference, root *vouch.Node, _ func(*vouch.Node) bool) bool {
	if s := p.c.Scope(ref); s != nil && p.programs[s.Name] != nil {
		// A Rego or CEL policy need not be monotone: it may deny on what a
		// pending node turns out to be.
		return false
	}
	d, err := p.Decide(ctx, ref, root)
	return err == nil && d.Verdict == vouch.Allowed && !d.Waived
}

// unmet returns why each requirement is not met at node, or nil.
func unmet(reqs []Requirement, node *vouch.Node) []string {
	var out []string
	for _, r := range reqs {
		if why := r.unmet(node); why != "" {
			out = append(out, why)
		}
	}
	return out
}

// unmet says why r is not met by node's referrers, or "".
func (r Requirement) unmet(node *vouch.Node) string {
	if len(r.AnyOf) > 0 {
		var whys []string
		for _, alt := range r.AnyOf {
			why := alt.unmet(node)
			if why == "" {
				return ""
			}
			whys = append(whys, why)
		}
		return "none of the alternatives is met: " + strings.Join(whys, " / ")
	}
	var (
		candidates []*vouch.Node
		findings   [][]finding
	)
	for _, c := range node.Referrers {
		if r.ArtifactType != "" && c.ArtifactType != r.ArtifactType {
			continue
		}
		if fs, ok := r.findings(c); ok {
			candidates, findings = append(candidates, c), append(findings, fs)
		}
	}
	what := r.wanted()
	if len(candidates) == 0 {
		if r.Optional {
			return ""
		}
		return "no " + what + " found"
	}
	var good, bad []string
	for i, c := range candidates {
		if why := r.satisfiedBy(c, findings[i]); why != "" {
			bad = append(bad, fmt.Sprintf("%s %s", vouch.ShortDigest(c.Digest), why))
		} else {
			good = append(good, vouch.ShortDigest(c.Digest))
		}
	}
	if r.Match == MatchAll {
		if len(bad) > 0 {
			return fmt.Sprintf("all %s must verify, %d of %d do not: %s", what, len(bad), len(candidates), list(bad, "; "))
		}
		return ""
	}
	if len(good) == 0 {
		return fmt.Sprintf("no %s verified: %s", what, list(bad, "; "))
	}
	return ""
}

// claimKind is the kind of claim r asks for, or "" when r asks for an
// artifact type alone.
func (r Requirement) claimKind() vouch.ClaimKind {
	switch {
	case r.Kind != "":
		return vouch.ClaimKind(r.Kind)
	case r.PredicateType != "" || r.SLSABuildLevel > 0:
		return vouch.ClaimAttestation
	}
	return ""
}

// SLSA provenance predicate types, for SLSABuildLevel.
var slsaTypes = []string{"https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1"}

// matches reports whether claim c is of what r asks for.
func (r Requirement) matches(c vouch.Claim) bool {
	if c.Kind != r.claimKind() {
		return false
	}
	if r.PredicateType != "" {
		return c.PredicateType == r.PredicateType
	}
	return r.SLSABuildLevel == 0 || slices.Contains(slsaTypes, c.PredicateType)
}

// leveled turns the claim of a verifier that shows the highest SLSA Build
// level into a finding: passed when it shows the level asked for, even if
// its own outcome is skipped (an unsigned provenance shows level 1).
func (r Requirement) leveled(verifier string, c vouch.Claim) finding {
	if c.SLSABuildLevel >= r.SLSABuildLevel {
		return finding{verifier, vouch.Passed, fmt.Sprintf("shows SLSA Build level %d: %s", c.SLSABuildLevel, c.Reason)}
	}
	if c.Outcome == vouch.Failed || c.Outcome == vouch.Errored {
		return finding{verifier, c.Outcome, c.Reason}
	}
	return finding{verifier, vouch.Failed, fmt.Sprintf("shows SLSA Build level %d, want %d: %s", c.SLSABuildLevel, r.SLSABuildLevel, c.Reason)}
}

// wanted names what r asks for, in reasons.
func (r Requirement) wanted() string {
	var s string
	switch r.claimKind() {
	case "":
		return r.ArtifactType
	case vouch.ClaimAttestation:
		s = "attestation"
		switch {
		case r.SLSABuildLevel > 0 && r.PredicateType != "":
			s = fmt.Sprintf("SLSA Build level %d provenance (%s)", r.SLSABuildLevel, r.PredicateType)
		case r.SLSABuildLevel > 0:
			s = fmt.Sprintf("SLSA Build level %d provenance", r.SLSABuildLevel)
		case r.PredicateType != "":
			s += " of predicate type " + r.PredicateType
		}
	default:
		s = r.Kind
	}
	if r.ArtifactType != "" {
		s += " (" + r.ArtifactType + ")"
	}
	return s
}

// finding is one verifier's outcome on what a requirement asks of a node.
type finding struct {
	verifier string
	outcome  vouch.Outcome
	reason   string
}

// findings returns the outcomes on node of what r asks for, and whether
// node is a candidate for r at all. For a requirement on an artifact type,
// every referrer of the type is, and its results count. For one on a kind
// of claim, the claims of that kind (and predicate type) in its results
// count, and a referrer claiming none is no candidate; a referrer whose
// verifiers report no claims (such as the notation verifier's) claims to
// be a signature when its artifact type is one. A referrer without results
// (not verified yet, or unreadable) is a candidate that does not pass,
// unless nothing checks it at all.
func (r Requirement) findings(node *vouch.Node) ([]finding, bool) {
	kind := r.claimKind()
	counted := func(res vouch.Result) bool {
		return len(r.Verifiers) == 0 || slices.Contains(r.Verifiers, res.Verifier)
	}
	if kind == "" || len(node.Results) == 0 {
		if kind != "" && node.Outcome != "" && node.Outcome != vouch.Failed && node.Outcome != vouch.Errored {
			return nil, false
		}
		var fs []finding
		for _, res := range node.Results {
			if counted(res) {
				fs = append(fs, finding{res.Verifier, res.Outcome, res.Reason})
			}
		}
		return fs, true
	}
	claimed := false
	for _, res := range node.Results {
		claimed = claimed || len(res.Claims) > 0
	}
	var fs []finding
	for _, res := range node.Results {
		if !counted(res) {
			continue
		}
		if !claimed {
			if kind == vouch.ClaimSignature && vouch.IsSignature(node.ArtifactType) {
				fs = append(fs, finding{res.Verifier, res.Outcome, res.Reason})
			}
			continue
		}
		var top *vouch.Claim
		for i, c := range res.Claims {
			switch {
			case !r.matches(c):
			case r.SLSABuildLevel == 0:
				fs = append(fs, finding{res.Verifier, c.Outcome, c.Reason})
			case top == nil || c.SLSABuildLevel > top.SLSABuildLevel:
				// For a level, the provenance that shows the most counts.
				top = &res.Claims[i]
			}
		}
		if top != nil {
			fs = append(fs, r.leveled(res.Verifier, *top))
		}
	}
	return fs, len(fs) > 0
}

// outcome sums up findings as a node's results are: failed if any failed,
// else error if any erred, else passed if any passed, else skipped; with
// the reason of the first of that outcome. A node without findings (no
// results) has its own outcome.
func outcome(node *vouch.Node, fs []finding) (vouch.Outcome, string) {
	if len(node.Results) == 0 {
		return node.Outcome, node.Reason
	}
	for _, o := range []vouch.Outcome{vouch.Failed, vouch.Errored, vouch.Passed, vouch.Skipped} {
		for _, f := range fs {
			if f.outcome == o {
				return o, f.verifier + ": " + f.reason
			}
		}
	}
	return vouch.Skipped, "no verifier checked it"
}

// satisfiedBy says why node, with findings fs on what r asks, does not
// satisfy r, or "".
func (r Requirement) satisfiedBy(node *vouch.Node, fs []finding) string {
	if len(r.Verifiers) == 0 {
		o, reason := node.Outcome, node.Reason
		if r.claimKind() != "" {
			o, reason = outcome(node, fs)
		}
		// A node that no verifier handles can still be vouched for by its
		// nested requirements (an SBOM by its signature); a leaf
		// requirement needs a check that passed.
		vouchedByNested := o == vouch.Skipped && len(r.Require) > 0
		if o != vouch.Passed && !vouchedByNested {
			return outcomeWhy(o, reason)
		}
	} else {
		passed := false
		for _, f := range fs {
			if f.outcome == vouch.Failed || f.outcome == vouch.Errored {
				return outcomeWhy(f.outcome, f.verifier+": "+f.reason)
			}
			passed = passed || f.outcome == vouch.Passed
		}
		if !passed {
			return fmt.Sprintf("not verified by %s", strings.Join(r.Verifiers, " or "))
		}
	}
	if nested := unmet(r.Require, node); len(nested) > 0 {
		return "(" + strings.Join(nested, "; ") + ")"
	}
	return ""
}

func outcomeWhy(o vouch.Outcome, reason string) string {
	switch o {
	case vouch.Failed:
		return "failed: " + reason
	case vouch.Errored:
		return "could not be checked: " + reason
	case vouch.Skipped, "":
		return "not checked: " + reason
	}
	return string(o) + ": " + reason
}

// describeRequirements summarises satisfied requirements for an allow reason.
func describeRequirements(reqs []Requirement) string {
	parts := make([]string, 0, len(reqs))
	for _, r := range reqs {
		if len(r.AnyOf) > 0 {
			parts = append(parts, "one of ("+strings.Join(strings.Split(describeRequirements(r.AnyOf), ", "), " | ")+")")
			continue
		}
		s := r.wanted() + " verified"
		if r.Match == MatchAll {
			s = "every " + s
		}
		if len(r.Require) > 0 {
			s += " with " + describeRequirements(r.Require)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// language names the scope's policy language: "Rego" or "CEL".
func (s *Scope) language() string {
	if s.CEL != nil {
		return "CEL"
	}
	return "Rego"
}
