package vouch

import "context"

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
