package vouch

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// Policy turns a subject's report tree into a verdict. Implementations live
// in policy/; they read the tree and never do I/O of their own.
type Policy interface {
	// Decide returns the verdict on the subject ref, whose graph is root.
	// An error means the policy could not be evaluated.
	Decide(ctx context.Context, ref Reference, root *Node) (Decision, error)
}

// Settler is an optional Policy capability that lets the Executor stop
// verifying once more results cannot change the verdict: with many
// signatures on an image and a policy that needs one, the first that passes
// settles it, as `notation verify` and `cosign verify` stop at the first
// valid signature.
type Settler interface {
	// Settled reports whether Decide allows root (without waiving) and
	// keeps allowing it whatever the outcome of the nodes for which pending
	// returns true: referrers not verified yet, whose Outcome is "". It
	// must not do I/O; it is called after each node that passes.
	Settled(ctx context.Context, ref Reference, root *Node, pending func(*Node) bool) bool
}

// Decision is a policy's answer for one subject.
type Decision struct {
	// Verdict is allowed or denied (a policy that cannot decide returns an
	// error instead).
	Verdict Verdict
	// Reason names the requirement that failed, or what was satisfied.
	Reason string
	// Mode is the policy mode that applied: enforce, warn or audit. Under
	// warn and audit a would-be denial is allowed and Reason says so.
	Mode Mode
	// Waived is true when the requirements were not met and the mode (warn
	// or audit) allowed the subject anyway.
	Waived bool
	// Explanations say, one per unmet requirement, what failed in full:
	// Reason is their short form. Optional: set on denials (and waived
	// allows) by the policies that can say more than Reason.
	Explanations []Explanation
}

// Explanation says why one requirement is not met: what was asked, of which
// node, what was found there instead, and what would satisfy it.
type Explanation struct {
	// Requirement names what was asked for ("signature",
	// "application/spdx+json", "the Rego policy"), as in the config.
	Requirement string `json:"requirement"`
	// Policy names the policy whose requirement it is, when several are
	// composed (policy.All: "cluster", a VouchConfig's name). Optional.
	Policy string `json:"policy,omitempty"`
	// Scope is the policy scope whose requirement it is. Optional.
	Scope string `json:"scope,omitempty"`
	// Node is the digest of the node that the requirement is on: the
	// subject, a platform manifest, or a referrer for a nested requirement.
	Node digest.Digest `json:"node,omitempty"`
	// NodeType is that node's artifact type, or for subjects and platform
	// manifests its media type (Node.DisplayType). Optional.
	NodeType string `json:"nodeType,omitempty"`
	// Reason is the short form, as in the decision's reason.
	Reason string `json:"reason"`
	// Found lists what the node has that was considered, each with why it
	// does not satisfy the requirement; at most MaxExplained.
	Found []Finding `json:"found,omitempty"`
	// FoundOmitted counts the findings beyond MaxExplained. Optional.
	FoundOmitted int `json:"foundOmitted,omitempty"`
	// Wanted says what would satisfy the requirement.
	Wanted string `json:"wanted"`
}

// MaxExplained bounds the findings an Explanation lists.
const MaxExplained = 10

// Finding is one artifact an Explanation considered.
type Finding struct {
	// Digest is the artifact's manifest digest.
	Digest digest.Digest `json:"digest"`
	// ArtifactType is its artifact type. Optional.
	ArtifactType string `json:"artifactType,omitempty"`
	// Outcome is its outcome on what the requirement asks (passed when it
	// passed its checks but a nested requirement is unmet).
	Outcome Outcome `json:"outcome,omitempty"`
	// Signer is the signer's certificate subject or identity, when a
	// verifier reported one (details "signer" or "identity"). Optional.
	Signer string `json:"signer,omitempty"`
	// Reason says why it does not satisfy the requirement.
	Reason string `json:"reason"`
}

// Mode says what a policy's denial does.
type Mode string

// Policy modes. Under warn and audit a subject that the requirements deny is
// allowed, and the reason says what would have denied it; the server turns
// warn into admission warnings and audit into log lines.
const (
	// ModeEnforce: a denial denies. The default.
	ModeEnforce Mode = "enforce"
	// ModeWarn: a denial is allowed with a warning.
	ModeWarn Mode = "warn"
	// ModeAudit: a denial is allowed and only logged.
	ModeAudit Mode = "audit"
)

// PolicyFunc adapts a function to a Policy.
type PolicyFunc func(ctx context.Context, ref Reference, root *Node) (Decision, error)

// Decide calls f.
func (f PolicyFunc) Decide(ctx context.Context, ref Reference, root *Node) (Decision, error) {
	return f(ctx, ref, root)
}
