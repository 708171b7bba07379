// Package fault is vouch's fault suite: `vouch serve` (the built binary)
// answers Gatekeeper and AdmissionReview load while the registry it reads
// and the Redis it shares verdicts through misbehave, and the tests count
// what it answered. Between vouch and both sits a real fault-injection
// proxy (Toxiproxy, built by hack/testbed.sh) for network faults; the
// registry is a real one (go-containerregistry's, in process) wrapped in
// a hostile layer that lies the ways registries can: throttling, errors,
// trickled blobs, bytes that do not match their digest, referrers of
// other subjects, endless pages, redirect loops, huge and deeply nested
// manifests. Certificates are rotated and the configuration reloaded
// under load.
//
// Every scenario must end with 0 wrong allows, 0 answers past the budget,
// 0 requests vouch failed to answer, no panic, and afterwards no leaked
// goroutines and a bounded resident set. TestFaults runs each scenario
// briefly in the test suite; BenchmarkSoak runs them longer and prints the
// table that docs/reliability.md records. TestEventFlood floods the
// pre-verification events endpoint while the registry stalls, and checks
// that the queue stays within its bound and admission answers from the
// cache as before (docs/pre-verification.md). It holds tests only.
package fault
