# The Rego version of the config policy
#
#   require:
#     - artifactType: application/vnd.cncf.notary.signature
#
# A subject is allowed when one of its Notary Project signatures verified.
# Input: docs/policy-rego.md.
package vouch

notary := "application/vnd.cncf.notary.signature"

deny contains msg if {
	not verified_signature(input.graph)
	msg := sprintf("no %s verified: %s", [notary, found(input.graph, notary)])
}

# node has a referrer of type notary that verified.
verified_signature(node) if {
	some r in node.referrers
	r.artifactType == notary
	r.verified
}

# found says what node has of type t instead: "none found", or each
# referrer's digest and reason.
found(node, t) := "none found" if {
	not t in {r.artifactType | some r in node.referrers}
}

found(node, t) := concat("; ", [sprintf("%s %s: %s", [substring(r.digest, 0, 19), r.outcome, r.reason]) |
	some r in node.referrers
	r.artifactType == t
]) if {
	t in {r.artifactType | some r in node.referrers}
}
