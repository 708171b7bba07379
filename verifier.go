package vouch

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Verifier checks one node of an artifact graph: a signature, an SBOM, a
// vulnerability report, an attestation.
//
// A failed check is a Result with Outcome Failed and a reason; an error means
// the verifier could not check (a fetch failed, its trust material is
// missing), and vouch then cannot decide on that node.
type Verifier interface {
	// Name identifies the verifier in reports, as configured.
	Name() string
	// Handles reports whether the verifier checks artifacts of this type.
	Handles(artifactType string) bool
	// Verify checks req.Artifact, a referrer of req.Subject.
	Verify(ctx context.Context, req *VerifyRequest) (Result, error)
}

// VerifyRequest is what a Verifier gets to check one referrer.
type VerifyRequest struct {
	// Reference is the top-level subject as the user named it, pinned to its
	// digest. Verifiers that scope trust by repository read it.
	Reference Reference
	// Subject is the node the artifact refers to: the top-level subject, or
	// for nested referrers (a signature on an SBOM) the parent referrer.
	Subject ocispec.Descriptor
	// Artifact is the referrer to check, with ArtifactType set from its
	// fetched manifest.
	Artifact ocispec.Descriptor
	// Manifest is the artifact's manifest, already fetched and checked
	// against Artifact.Digest.
	Manifest ocispec.Manifest
	// Repository reads the artifact's blobs, bounded and digest-checked.
	Repository Repository
}

// VerifierFunc adapts a function to a Verifier that handles the artifact
// types listed; for tests and simple cases.
type VerifierFunc struct {
	// VerifierName is returned by Name.
	VerifierName string
	// ArtifactTypes lists the types handled; "*" handles every type.
	ArtifactTypes []string
	// Func does the check.
	Func func(ctx context.Context, req *VerifyRequest) (Result, error)
}

// Name returns f.VerifierName.
func (f VerifierFunc) Name() string { return f.VerifierName }

// Handles reports whether artifactType is listed in f.ArtifactTypes.
func (f VerifierFunc) Handles(artifactType string) bool {
	for _, t := range f.ArtifactTypes {
		if t == "*" || t == artifactType {
			return true
		}
	}
	return false
}

// Verify calls f.Func.
func (f VerifierFunc) Verify(ctx context.Context, req *VerifyRequest) (Result, error) {
	return f.Func(ctx, req)
}
