# The Rego version of the config policy of examples/config/quickstart.yaml
#
#   require:
#     - artifactType: application/vnd.cncf.notary.signature
#     - artifactType: application/spdx+json
#       require:
#         - artifactType: application/vnd.cncf.notary.signature
#
# A subject is allowed when one of its Notary Project signatures verified
# and one of its SPDX SBOMs is itself signed by a signature that verified
# (the SBOM must not fail a check of its own: an sbom verifier's license
# or package rules). Input: docs/policy-rego.md.
package vouch

notary := "application/vnd.cncf.notary.signature"

spdx := "application/spdx+json"

deny contains msg if {
	not verified_signature(input.graph)
	msg := sprintf("no %s verified: %s", [notary, found(input.graph, notary)])
}

deny contains msg if {
	not signed_sbom
	msg := sprintf("no %s verified and signed: %s", [spdx, found(input.graph, spdx)])
}

signed_sbom if {
	some sbom in input.referrers
	sbom.artifactType == spdx
	# An SBOM that no verifier checks is vouched for by its signature; one
	# that a verifier failed is not.
	sbom.outcome in {"passed", "skipped"}
	verified_signature(sbom)
}

verified_signature(node) if {
	some r in node.referrers
	r.artifactType == notary
	r.verified
}

found(node, t) := "none found" if {
	not t in {r.artifactType | some r in node.referrers}
}

found(node, t) := concat("; ", [sprintf("%s %s: %s", [substring(r.digest, 0, 19), r.outcome, r.reason]) |
	some r in node.referrers
	r.artifactType == t
]) if {
	t in {r.artifactType | some r in node.referrers}
}
