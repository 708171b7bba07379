# The Rego version of the "production" scope of examples/config/vouch.yaml
#
#   require:
#     - artifactType: application/vnd.cncf.notary.signature
#       verifiers: [notation]
#     - artifactType: application/spdx+json
#       require:
#         - artifactType: application/vnd.cncf.notary.signature
#
# The subject's signature must be verified by the verifier named
# "notation" (another verifier's pass does not count, and a failure by
# notation disqualifies the signature); its SPDX SBOM must be signed.
# Input: docs/policy-rego.md.
package vouch

notary := "application/vnd.cncf.notary.signature"

spdx := "application/spdx+json"

deny contains msg if {
	not signed_by_notation
	msg := sprintf("no %s verified by notation", [notary])
}

deny contains msg if {
	not signed_sbom
	msg := sprintf("no %s verified and signed", [spdx])
}

signed_by_notation if {
	some sig in input.referrers
	sig.artifactType == notary
	some res in sig.results
	res.verifier == "notation"
	res.outcome == "passed"
	not failed_by_notation(sig)
}

failed_by_notation(sig) if {
	some res in sig.results
	res.verifier == "notation"
	res.outcome in {"failed", "error"}
}

signed_sbom if {
	some sbom in input.referrers
	sbom.artifactType == spdx
	sbom.outcome in {"passed", "skipped"}
	some sig in sbom.referrers
	sig.artifactType == notary
	sig.verified
}
