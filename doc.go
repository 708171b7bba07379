// Package vouch holds the core contracts of vouch: references to subjects,
// the Store and Repository that read an artifact graph, the Verifier that
// checks one node of it, the Policy that turns a report tree into a verdict,
// and the Executor that walks subject → referrers → nested referrers.
//
// The package depends on the OCI image spec, go-digest and oras-go only: no
// verifier, policy engine or Kubernetes code is imported here. Stores live in
// store/, verifiers in verifier/, policies in policy/.
package vouch
