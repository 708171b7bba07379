// Package ocilayout reads artifact graphs from OCI image layouts on disk
// (https://github.com/opencontainers/image-spec/blob/v1.1.1/image-layout.md),
// so that CI jobs and air-gapped sites verify without a registry.
//
// Referrers are found by scanning the manifests the layout holds for a
// subject field, as oras-go's read-only OCI store does, and by the
// "sha256-<hex>" tag schema when the layout carries such tags.
package ocilayout

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry"

	"github.com/vouch-project/vouch"
)

// Store opens OCI image layouts. Each layout is read once and kept for the
// Store's lifetime; a Store is safe for concurrent use.
type Store struct {
	limits vouch.Limits

	mu      sync.Mutex
	layouts map[string]*repository
}

// New returns a Store that bounds what it reads by limits (zero fields take
// their defaults).
func New(limits vouch.Limits) *Store {
	return &Store{limits: limits.WithDefaults(), layouts: map[string]*repository{}}
}

// Repository opens the layout that ref names.
func (s *Store) Repository(ctx context.Context, ref vouch.Reference) (vouch.Repository, error) {
	if !ref.IsLayout() {
		return nil, fmt.Errorf("%s is not an OCI layout reference", ref)
	}
	path, err := filepath.Abs(ref.Layout)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.layouts[path]; ok {
		return r, nil
	}
	// index.json is read whole by oras-go: bound it first.
	fi, err := os.Stat(filepath.Join(path, ocispec.ImageIndexFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s is not an OCI image layout: no %s", ref.Layout, ocispec.ImageIndexFile)
		}
		return nil, err
	}
	if fi.Size() > s.limits.MaxManifestBytes {
		return nil, &vouch.LimitError{Limit: "max-manifest-bytes", What: filepath.Join(ref.Layout, ocispec.ImageIndexFile), Value: fi.Size(), Max: s.limits.MaxManifestBytes}
	}
	store, err := oci.NewFromFS(ctx, os.DirFS(path))
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", ref.Layout, err)
	}
	r := &repository{store: store, limits: s.limits}
	s.layouts[path] = r
	return r, nil
}

// repository is one opened layout.
type repository struct {
	store  *oci.ReadOnlyStore
	limits vouch.Limits
}

// Resolve returns the descriptor of a tag or digest in the layout.
func (r *repository) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	return r.store.Resolve(ctx, reference)
}

// Fetch reads content by digest, bounded by the limits and checked against
// the descriptor's size and digest.
func (r *repository) Fetch(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if err := checkSize(desc, r.limits); err != nil {
		return nil, err
	}
	rc, err := r.store.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := content.ReadAll(rc, desc)
	if err != nil {
		if errors.Is(err, content.ErrMismatchedDigest) {
			return nil, &vouch.DigestMismatchError{Expected: desc.Digest.String(), Actual: "other content"}
		}
		return nil, fmt.Errorf("read %s: %w", desc.Digest, err)
	}
	return data, nil
}

// Referrers lists the manifests in the layout whose subject is desc.
func (r *repository) Referrers(ctx context.Context, desc ocispec.Descriptor, artifactType string, fn func([]ocispec.Descriptor) error) error {
	refs, err := registry.Referrers(ctx, r.store, desc, artifactType)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		return nil
	}
	return fn(refs)
}

// checkSize applies the manifest or blob size limit to desc.
func checkSize(desc ocispec.Descriptor, l vouch.Limits) error {
	max, name, what := l.MaxBlobBytes, "max-blob-bytes", "blob"
	switch desc.MediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json":
		max, name, what = l.MaxManifestBytes, "max-manifest-bytes", "manifest"
	}
	if desc.Size > max {
		return &vouch.LimitError{Limit: name, What: fmt.Sprintf("%s %s", what, desc.Digest), Value: desc.Size, Max: max}
	}
	return nil
}
