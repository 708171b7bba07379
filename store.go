package vouch

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store opens the repository that holds a subject: a registry repository
// (store/registry) or an OCI image layout (store/ocilayout).
type Store interface {
	// Repository returns the repository named by ref. It does no I/O that
	// can fail on a missing artifact; Resolve does.
	Repository(ctx context.Context, ref Reference) (Repository, error)
}

// Repository reads one repository's content. Every implementation bounds
// what it reads by its Limits and checks content against its digest.
type Repository interface {
	// Resolve returns the descriptor that a tag or digest names. A missing
	// one is an error matching ErrNotFound.
	Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error)
	// Fetch returns the content that desc names, after checking its size
	// against the limits and its bytes against desc.Digest.
	Fetch(ctx context.Context, desc ocispec.Descriptor) ([]byte, error)
	// Referrers lists the manifests whose subject is desc, one page per call
	// of fn, by the OCI referrers API or the tag-schema fallback. A non-empty
	// artifactType is a hint the store may pass on; callers filter again.
	Referrers(ctx context.Context, desc ocispec.Descriptor, artifactType string, fn func(page []ocispec.Descriptor) error) error
}
