// Package gatekeeper is vouch's external data provider for OPA Gatekeeper:
// the verify endpoint answers one item per image with vouch's verdict, the
// mutate endpoint pins images to their digests.
//
// The protocol is Gatekeeper's, defined here (protocol.go) rather than
// imported:
// https://open-policy-agent.github.io/gatekeeper/website/docs/externaldata
// Keys may start with "[namespace]", Ratify's convention for choosing the
// namespace whose policy applies. The Provider (provider.go) answers the
// keys a LocalDecider holds in memory at once, in the request's goroutine,
// and the others concurrently; requests of the usual shape are parsed
// without reflection (protocol.go), and answers are written by splicing
// encoded parts, each cached verdict encoded once (encoding.go).
//
// A verify item's value is a JSON object with these fields, in this order:
//
//	isSuccess        true when the verdict is allowed (read by Ratify's
//	                 constraint templates, which work unchanged)
//	traceID          the request's id, as in vouch's logs
//	timestamp        when the answer was given, RFC 3339 in UTC
//	subject          the image as the key named it
//	reference        the image pinned to the digest that was verified
//	verdict          allowed or denied
//	reason           the requirement that failed, or what satisfied the policy
//	mode             the policy mode that applied (enforce, warn, audit); optional
//	waived           true when the requirements were not met and the mode let
//	                 the image run; optional
//	failures         the nodes of the report's graph that failed a check or
//	                 could not be checked (Failure), parents first, at most
//	                 MaxFailures; optional
//	failuresOmitted  the failed nodes beyond MaxFailures; optional
//	explanations     why each unmet requirement is not met (vouch.Explanation:
//	                 requirement, node, found, wanted), at most
//	                 MaxExplanations, texts cut at MaxExplanationText bytes;
//	                 optional
//	explanationsOmitted  the explanations beyond MaxExplanations; optional
//	graph            the report tree (report-format.md), when asked for
//
// The graph, every artifact and every verifier's result, is there only when
// asked for (Options.Graph, or "?graph=true" on the request's URL), because
// Gatekeeper decodes every answer and the graph is most of its size.
package gatekeeper
