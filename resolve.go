package vouch

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Resolve returns the descriptor that ref's version (its digest when it
// has one, else its tag) names in its repository, asking e.Store. It reads
// no manifest and verifies nothing: it is how a server pins a tag to a
// digest before deciding on it. A missing artifact is an error matching
// ErrNotFound; a registry that answers a malformed digest, or another
// digest than ref names, is an error too.
func (e *Executor) Resolve(ctx context.Context, ref Reference) (ocispec.Descriptor, error) {
	if e.Store == nil {
		return ocispec.Descriptor{}, errors.New("no store configured")
	}
	repo, err := e.Store.Repository(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := repo.Resolve(ctx, ref.Version())
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := desc.Digest.Validate(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("registry returned a bad digest for %s: %w", ref, err)
	}
	if ref.Digest != "" && desc.Digest != ref.Digest {
		return ocispec.Descriptor{}, &DigestMismatchError{Expected: ref.Digest.String(), Actual: desc.Digest.String()}
	}
	return desc, nil
}
